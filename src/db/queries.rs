//! The reads and writes the worker does on the two tables. Batches go as
//! arrays through `unnest` (one statement for 16384 roles); every statement
//! is parameterized, so the server prepares it and values never become SQL.
//!
//! `json` and the `targetaction` enum have no driver mapping without extra
//! crate features, so they cross as text with casts in the SQL.
use std::collections::HashMap;
use std::time::SystemTime;

use postgres::Row;

use super::types::{
    ArtifactPath, FileId, FileStamp, NewFile, NewRole, RoleFiles, RoleId, RoleUpdate, RowStamp,
    TargetAction, TargetFile, TargetRole,
};
use super::{Db, Failure, Result};
use crate::tuf::{RoleName, Version};

/// Upstream's rows hold naive UTC; this is "now" in that form whatever the
/// session's TimeZone.
const NOW_UTC: &str = "(now() AT TIME ZONE 'UTC')";

const ROLE_COLUMNS: &str = "id, rolename, expires, version, active, last_update";
const FILE_COLUMNS: &str = "id, path, info::text, published, action::text, last_update, \
                            targets_role, xmin::text::bigint";

type Step<T> = std::result::Result<T, Failure>;

fn version_to_sql(version: Version, role: &RoleName) -> Step<i32> {
    i32::try_from(version.0).map_err(|_| {
        Failure::Value(format!(
            "version {version} of role '{role}' does not fit the INTEGER column"
        ))
    })
}

/// Columns 0 and 1 (`id, rolename`) of a role row. A stored name that is
/// not a valid role name (written by hand or another tool) is reported with
/// its row, as it could never be published.
fn role_id_and_name(row: &Row) -> Step<(RoleId, RoleName)> {
    let id: i32 = row.try_get(0)?;
    let name = RoleName::new(row.try_get::<_, String>(1)?)
        .map_err(|e| Failure::Value(format!("rstuf_target_roles row with id {id}: {e}")))?;
    Ok((RoleId(id), name))
}

fn role_from_row(row: &Row) -> Step<TargetRole> {
    let (id, name) = role_id_and_name(row)?;
    let version: i32 = row.try_get(3)?;
    let version = u64::try_from(version)
        .map(Version)
        .map_err(|_| Failure::Value(format!("role '{name}' has negative version {version}")))?;
    Ok(TargetRole {
        id,
        expires: row.try_get(2)?,
        version,
        active: row.try_get(4)?,
        last_update: row.try_get(5)?,
        name,
    })
}

fn file_from_row(row: &Row) -> Step<TargetFile> {
    let path = ArtifactPath(row.try_get(1)?);
    let info: &str = row.try_get(2)?;
    let info = serde_json::from_str(info)
        .map_err(|e| Failure::Value(format!("info of artifact '{path}' is not JSON: {e}")))?;
    let label: &str = row.try_get(4)?;
    let action = TargetAction::from_label(label)
        .ok_or_else(|| Failure::Value(format!("artifact '{path}' has unknown action '{label}'")))?;
    Ok(TargetFile {
        id: FileId(row.try_get(0)?),
        info,
        published: row.try_get(3)?,
        action,
        last_update: row.try_get(5)?,
        role: row.try_get::<_, Option<i32>>(6)?.map(RoleId),
        stamp: RowStamp(row.try_get(7)?),
        path,
    })
}

fn collect<T>(rows: &[Row], convert: impl Fn(&Row) -> Step<T>) -> Step<Vec<T>> {
    rows.iter().map(convert).collect()
}

fn role_names(rows: &[Row]) -> Step<Vec<RoleName>> {
    collect(rows, |row| Ok(role_id_and_name(row)?.1))
}

/// Short list of names for messages about a batch.
fn sample<T: std::fmt::Display>(items: &[T]) -> String {
    const SHOWN: usize = 3;
    let shown: Vec<String> = items.iter().take(SHOWN).map(|i| format!("'{i}'")).collect();
    let more = items.len().saturating_sub(SHOWN);
    match more {
        0 => shown.join(", "),
        _ => format!("{}, and {more} more", shown.join(", ")),
    }
}

/// The last entry for each path, in input order: upstream handles a payload
/// one artifact at a time, so a repeated path ends with its last `info`,
/// while one INSERT .. ON CONFLICT may not touch a row twice.
fn last_per_path(files: &[NewFile]) -> Vec<&NewFile> {
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<&NewFile> = files
        .iter()
        .rev()
        .filter(|f| seen.insert(&f.path))
        .collect();
    kept.reverse();
    kept
}

fn group_files(roles: Vec<TargetRole>, files: Vec<TargetFile>) -> Vec<RoleFiles> {
    let mut by_role: HashMap<RoleId, Vec<TargetFile>> = HashMap::new();
    for file in files {
        if let Some(role) = file.role {
            by_role.entry(role).or_default().push(file);
        }
    }
    roles
        .into_iter()
        .map(|role| RoleFiles {
            files: by_role.remove(&role.id).unwrap_or_default(),
            role,
        })
        .collect()
}

impl Db {
    /// Inserts active roles in one statement (bootstrap creates 16384 bins).
    pub fn create_roles(&self, roles: &[NewRole]) -> Result<()> {
        let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
        self.transaction(
            || format!("create {} target role(s) {}", roles.len(), sample(&names)),
            |tx| {
                let expires: Vec<SystemTime> = roles.iter().map(|r| r.expires).collect();
                let versions = roles
                    .iter()
                    .map(|r| version_to_sql(r.version, &r.name))
                    .collect::<Step<Vec<i32>>>()?;
                tx.execute(
                    &format!(
                        "INSERT INTO rstuf_target_roles \
                           (rolename, expires, version, active, last_update) \
                         SELECT name, expires, version, true, {NOW_UTC} \
                           FROM unnest($1::varchar[], $2::timestamp[], $3::integer[]) \
                             AS new_role(name, expires, version)"
                    ),
                    &[&names, &expires, &versions],
                )?;
                // Fresh statistics now: until autovacuum gets to it, the
                // planner guesses the table is small and hash-joins all
                // 16384 bins on every publication round.
                tx.execute("ANALYZE rstuf_target_roles", &[])?;
                Ok(())
            },
        )
    }

    /// The active role of that name.
    pub fn active_role(&self, name: &RoleName) -> Result<Option<TargetRole>> {
        self.transaction(
            || format!("read role '{name}'"),
            |tx| {
                let row = tx.query_opt(
                    &format!(
                        "SELECT {ROLE_COLUMNS} FROM rstuf_target_roles \
                         WHERE rolename = $1 AND active"
                    ),
                    &[&name.as_str()],
                )?;
                row.as_ref().map(role_from_row).transpose()
            },
        )
    }

    /// Whether a row of that name exists, active or deactivated: a deleted
    /// role's name can never be used again ("used in the past").
    pub fn role_name_taken(&self, name: &RoleName) -> Result<bool> {
        self.transaction(
            || format!("check whether role name '{name}' was ever used"),
            |tx| {
                let row = tx.query_one(
                    "SELECT EXISTS (SELECT 1 FROM rstuf_target_roles WHERE rolename = $1)",
                    &[&name.as_str()],
                )?;
                Ok(row.try_get(0)?)
            },
        )
    }

    /// All active roles, by name.
    pub fn active_roles(&self) -> Result<Vec<TargetRole>> {
        self.transaction(
            || "read the active target roles".into(),
            |tx| {
                let rows = tx.query(
                    &format!(
                        "SELECT {ROLE_COLUMNS} FROM rstuf_target_roles WHERE active \
                         ORDER BY rolename"
                    ),
                    &[],
                )?;
                collect(&rows, role_from_row)
            },
        )
    }

    /// Active roles whose `expires` is before `limit` (the beat's "now +
    /// HOURS_BEFORE_EXPIRE"), by name.
    pub fn roles_expiring_before(&self, limit: SystemTime) -> Result<Vec<RoleName>> {
        self.transaction(
            || "read the roles about to expire".into(),
            |tx| {
                let rows = tx.query(
                    "SELECT id, rolename FROM rstuf_target_roles \
                     WHERE active AND expires < $1 ORDER BY rolename",
                    &[&limit],
                )?;
                role_names(&rows)
            },
        )
    }

    /// Names of roles with at least one unpublished file, alphabetical (the
    /// order publish_artifacts reports). Like upstream, deactivated roles
    /// are not filtered out.
    pub fn roles_with_unpublished_files(&self) -> Result<Vec<RoleName>> {
        self.transaction(
            || "read the roles with unpublished artifacts".into(),
            |tx| {
                let rows = tx.query(
                    "SELECT DISTINCT r.id, r.rolename FROM rstuf_target_roles r \
                       JOIN rstuf_target_files f ON f.targets_role = r.id \
                     WHERE NOT f.published ORDER BY r.rolename",
                    &[],
                )?;
                role_names(&rows)
            },
        )
    }

    /// The active roles among `names`, by name, each with all its file rows
    /// (by path). Unknown and deactivated names are left out.
    pub fn roles_with_files(&self, names: &[RoleName]) -> Result<Vec<RoleFiles>> {
        self.transaction(
            || format!("read the artifacts of role(s) {}", sample(names)),
            |tx| {
                let names: Vec<&str> = names.iter().map(RoleName::as_str).collect();
                let role_rows = tx.query(
                    &format!(
                        "SELECT {ROLE_COLUMNS} FROM rstuf_target_roles \
                         WHERE active AND rolename = ANY($1) ORDER BY rolename"
                    ),
                    &[&names],
                )?;
                let roles = collect(&role_rows, role_from_row)?;
                let ids: Vec<i32> = roles.iter().map(|r| r.id.0).collect();
                let file_rows = tx.query(
                    &format!(
                        "SELECT {FILE_COLUMNS} FROM rstuf_target_files \
                         WHERE targets_role = ANY($1) ORDER BY targets_role, path"
                    ),
                    &[&ids],
                )?;
                Ok(group_files(roles, collect(&file_rows, file_from_row)?))
            },
        )
    }

    /// Adds artifacts, unpublished, with action ADD. A path already in the
    /// table gets the new `info`, ADD, unpublished, as upstream does; unlike
    /// upstream it also moves to the role given, because a row left under a
    /// deleted role would never be published. Returns the rows as stored.
    pub fn add_files(&self, files: &[NewFile]) -> Result<Vec<TargetFile>> {
        let files = last_per_path(files);
        self.transaction(
            || {
                let paths: Vec<&ArtifactPath> = files.iter().map(|f| &f.path).collect();
                format!("add {} artifact(s) {}", paths.len(), sample(&paths))
            },
            |tx| {
                let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
                let infos: Vec<String> = files.iter().map(|f| f.info.to_string()).collect();
                let roles: Vec<i32> = files.iter().map(|f| f.role.0).collect();
                let rows = tx.query(
                    &format!(
                        "INSERT INTO rstuf_target_files \
                           (path, info, published, action, last_update, targets_role) \
                         SELECT path, info::json, false, 'ADD', {NOW_UTC}, role \
                           FROM unnest($1::varchar[], $2::text[], $3::integer[]) \
                             AS new_file(path, info, role) \
                         ON CONFLICT (path) DO UPDATE SET \
                           info = EXCLUDED.info, published = false, action = 'ADD', \
                           last_update = EXCLUDED.last_update, \
                           targets_role = EXCLUDED.targets_role \
                         RETURNING {FILE_COLUMNS}"
                    ),
                    &[&paths, &infos, &roles],
                )?;
                collect(&rows, file_from_row)
            },
        )
    }

    /// Marks the artifacts at `paths` REMOVE and unpublished. Returns the rows
    /// changed; a path not returned is "not found" (no row, or already
    /// removed and published).
    pub fn remove_files(&self, paths: &[ArtifactPath]) -> Result<Vec<TargetFile>> {
        self.transaction(
            || format!("remove {} artifact(s) {}", paths.len(), sample(paths)),
            |tx| {
                let paths: Vec<&str> = paths.iter().map(ArtifactPath::as_str).collect();
                let rows = tx.query(
                    &format!(
                        "UPDATE rstuf_target_files \
                         SET action = 'REMOVE', published = false, last_update = {NOW_UTC} \
                         WHERE path = ANY($1) AND NOT (action = 'REMOVE' AND published) \
                         RETURNING {FILE_COLUMNS}"
                    ),
                    &[&paths],
                )?;
                collect(&rows, file_from_row)
            },
        )
    }

    /// Which of `ids` are still unpublished (what an add/remove task waits on).
    pub fn unpublished_files(&self, ids: &[FileId]) -> Result<Vec<FileId>> {
        self.transaction(
            || format!("check {} artifact(s) for publication", ids.len()),
            |tx| {
                let ids: Vec<i32> = ids.iter().map(|id| id.0).collect();
                let rows = tx.query(
                    "SELECT id FROM rstuf_target_files \
                     WHERE id = ANY($1) AND NOT published ORDER BY id",
                    &[&ids],
                )?;
                collect(&rows, |row| Ok(FileId(row.try_get(0)?)))
            },
        )
    }

    /// Records a publication in one transaction: the files, if still in the
    /// state they were read in, become published, and each role gets the
    /// version and expiry of its newly persisted metadata. Returns how many
    /// files were marked.
    pub fn commit_publication(&self, files: &[FileStamp], roles: &[RoleUpdate]) -> Result<u64> {
        let names: Vec<&RoleName> = roles.iter().map(|r| &r.name).collect();
        self.transaction(
            || format!("record the publication of role(s) {}", sample(&names)),
            |tx| {
                let ids: Vec<i32> = files.iter().map(|f| f.id.0).collect();
                let stamps: Vec<i64> = files.iter().map(|f| f.stamp.0).collect();
                let marked = tx.execute(
                    &format!(
                        "UPDATE rstuf_target_files AS f \
                         SET published = true, last_update = {NOW_UTC} \
                         FROM unnest($1::integer[], $2::bigint[]) AS seen(id, stamp) \
                         WHERE f.id = seen.id AND f.xmin::text::bigint = seen.stamp \
                           AND NOT f.published"
                    ),
                    &[&ids, &stamps],
                )?;
                write_role_updates(tx, roles)?;
                Ok(marked)
            },
        )
    }

    /// Sets version and expiry of roles re-signed without file changes (the
    /// beat's bump). Returns how many rows changed.
    pub fn update_roles(&self, roles: &[RoleUpdate]) -> Result<u64> {
        let names: Vec<&RoleName> = roles.iter().map(|r| &r.name).collect();
        self.transaction(
            || format!("update version and expiry of role(s) {}", sample(&names)),
            |tx| write_role_updates(tx, roles),
        )
    }

    /// Deactivates the active role of that name (delegation delete); its
    /// name stays taken and its file rows stay. False if none was active.
    pub fn deactivate_role(&self, name: &RoleName) -> Result<bool> {
        self.transaction(
            || format!("deactivate role '{name}'"),
            |tx| {
                let changed = tx.execute(
                    &format!(
                        "UPDATE rstuf_target_roles SET active = false, last_update = {NOW_UTC} \
                         WHERE rolename = $1 AND active"
                    ),
                    &[&name.as_str()],
                )?;
                Ok(changed > 0)
            },
        )
    }
}

fn write_role_updates(tx: &mut postgres::Transaction<'_>, roles: &[RoleUpdate]) -> Step<u64> {
    let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
    let versions = roles
        .iter()
        .map(|r| version_to_sql(r.version, &r.name))
        .collect::<Step<Vec<i32>>>()?;
    let expires: Vec<SystemTime> = roles.iter().map(|r| r.expires).collect();
    Ok(tx.execute(
        &format!(
            "UPDATE rstuf_target_roles AS r \
             SET version = u.version, expires = u.expires, last_update = {NOW_UTC} \
             FROM unnest($1::varchar[], $2::integer[], $3::timestamp[]) \
               AS u(rolename, version, expires) \
             WHERE r.rolename = u.rolename"
        ),
        &[&names, &versions, &expires],
    )?)
}

// --- Queries of the artifact actions (issue 5: add/remove/publish) --------
//
// The actions read before they write so that a redelivered or repeated
// request changes no row, and so no version is bumped for nothing.

impl Db {
    /// The rows stored at `paths` (by path); paths without a row are left out.
    pub fn files_by_paths(&self, paths: &[ArtifactPath]) -> Result<Vec<TargetFile>> {
        self.transaction(
            || format!("read {} artifact(s) {}", paths.len(), sample(paths)),
            |tx| {
                let paths: Vec<&str> = paths.iter().map(ArtifactPath::as_str).collect();
                let rows = tx.query(
                    &format!(
                        "SELECT {FILE_COLUMNS} FROM rstuf_target_files \
                         WHERE path = ANY($1) ORDER BY path"
                    ),
                    &[&paths],
                )?;
                collect(&rows, file_from_row)
            },
        )
    }

    /// The active roles among `names`, by name; unknown and deactivated
    /// names are left out.
    pub fn active_roles_named(&self, names: &[RoleName]) -> Result<Vec<TargetRole>> {
        self.transaction(
            || format!("read role(s) {}", sample(names)),
            |tx| {
                let names: Vec<&str> = names.iter().map(RoleName::as_str).collect();
                let rows = tx.query(
                    &format!(
                        "SELECT {ROLE_COLUMNS} FROM rstuf_target_roles \
                         WHERE active AND rolename = ANY($1) ORDER BY rolename"
                    ),
                    &[&names],
                )?;
                collect(&rows, role_from_row)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::role_name;

    fn new_file(path: &str, length: u64, role: i32) -> NewFile {
        NewFile {
            path: ArtifactPath::from(path),
            info: serde_json::json!({ "length": length }),
            role: RoleId(role),
        }
    }

    #[test]
    fn repeated_paths_keep_their_last_entry_in_input_order() {
        let files = [
            new_file("a", 1, 1),
            new_file("b", 2, 1),
            new_file("a", 3, 2),
            new_file("c", 4, 1),
        ];
        let kept: Vec<(&str, u64, i32)> = last_per_path(&files)
            .iter()
            .map(|f| {
                (
                    f.path.as_str(),
                    f.info["length"].as_u64().unwrap(),
                    f.role.0,
                )
            })
            .collect();
        assert_eq!(kept, vec![("b", 2, 1), ("a", 3, 2), ("c", 4, 1)]);
    }

    #[test]
    fn batch_descriptions_name_the_first_items() {
        assert_eq!(sample(&["bins-0", "bins-1"]), "'bins-0', 'bins-1'");
        assert_eq!(
            sample(&["a", "b", "c", "d", "e"]),
            "'a', 'b', 'c', and 2 more"
        );
    }

    #[test]
    fn versions_beyond_integer_are_refused_with_the_role() {
        let role = role_name("bins-7");
        assert_eq!(version_to_sql(Version(7), &role).ok(), Some(7));
        match version_to_sql(Version(1 << 31), &role) {
            Err(Failure::Value(reason)) => assert_eq!(
                reason,
                "version 2147483648 of role 'bins-7' does not fit the INTEGER column"
            ),
            _ => panic!("expected a value failure"),
        }
    }
}
