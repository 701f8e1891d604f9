//! Schema creation, compatible with upstream's alembic: our SQL scripts
//! produce exactly what alembic's revisions produce and record the same
//! revision ids in `alembic_version`, so Python and Rust workers (and
//! upstream's `alembic upgrade head`) accept each other's databases.
use postgres::Transaction;

use super::{Db, Error, Failure, Result};

/// One alembic revision and our SQL that performs it.
struct Revision {
    alembic_id: &'static str,
    sql: &'static str,
}

/// Oldest first; each script ends by recording its revision.
const REVISIONS: &[Revision] = &[Revision {
    alembic_id: "1effe827d0cd",
    sql: include_str!("../../sql/0001_initial.sql"),
}];

/// The alembic revision a migrated database carries.
pub const HEAD_REVISION: &str = REVISIONS[REVISIONS.len() - 1].alembic_id;

/// Serializes migrations of workers starting at the same time. Any fixed
/// number works as long as every rstuf-worker uses the same one; this is
/// "rstuf_db" in ASCII.
const MIGRATION_LOCK: i64 = 0x7273_7475_665f_6462;

/// The two tables and the enum, in the order the check below queries them.
const SCHEMA_OBJECTS: [&str; 3] = ["rstuf_target_roles", "rstuf_target_files", "targetaction"];

/// What [`Db::migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Revisions applied now, oldest first; empty when already at head.
    pub applied: Vec<&'static str>,
    pub revision: &'static str,
}

impl Db {
    /// Brings the schema to [`HEAD_REVISION`]. Safe to run from every worker
    /// at start: it waits for any concurrent migration, accepts a database
    /// already migrated (by us or by upstream's alembic) without touching it,
    /// and refuses revisions it does not know.
    pub fn migrate(&self) -> Result<MigrationReport> {
        let report = self.transaction(
            || "migrate the database schema".into(),
            |tx| {
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
                let current = current_revision(tx)?;
                check_objects(tx, current.as_deref())?;
                let pending = pending(current.as_deref()).map_err(Failure::Named)?;
                for revision in pending {
                    tx.batch_execute(revision.sql)?;
                }
                Ok(MigrationReport {
                    applied: pending.iter().map(|r| r.alembic_id).collect(),
                    revision: HEAD_REVISION,
                })
            },
        )?;
        match report.applied.as_slice() {
            [] => log::info!("database schema is at revision {HEAD_REVISION}"),
            applied => log::info!("database schema migrated: applied {}", applied.join(", ")),
        }
        Ok(report)
    }
}

fn current_revision(tx: &mut Transaction<'_>) -> std::result::Result<Option<String>, Failure> {
    let exists: bool = tx
        .query_one("SELECT to_regclass('alembic_version') IS NOT NULL", &[])?
        .try_get(0)?;
    if !exists {
        return Ok(None);
    }
    let rows = tx.query("SELECT version_num FROM alembic_version", &[])?;
    let mut revisions = rows
        .iter()
        .map(|row| row.try_get::<_, String>(0))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    match revisions.len() {
        0 | 1 => Ok(revisions.pop()),
        _ => Err(Failure::Named(Error::Schema {
            reason: format!(
                "alembic_version holds several revisions ({}); this worker knows a single \
                 linear history",
                revisions.join(", ")
            ),
        })),
    }
}

/// The revisions still to apply after `current`.
fn pending(current: Option<&str>) -> Result<&'static [Revision]> {
    let Some(current) = current else {
        return Ok(REVISIONS);
    };
    REVISIONS
        .iter()
        .position(|r| r.alembic_id == current)
        .map(|i| &REVISIONS[i + 1..])
        .ok_or_else(|| Error::UnknownRevision {
            revision: current.to_owned(),
            known: HEAD_REVISION,
        })
}

/// The tables and enum must all exist when a revision is recorded, and none
/// may exist when none is: anything else was made by hand or by a broken
/// run, and guessing could destroy data.
fn check_objects(
    tx: &mut Transaction<'_>,
    revision: Option<&str>,
) -> std::result::Result<(), Failure> {
    let row = tx.query_one(
        "SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL, \
                to_regtype($3) IS NOT NULL",
        &[&SCHEMA_OBJECTS[0], &SCHEMA_OBJECTS[1], &SCHEMA_OBJECTS[2]],
    )?;
    let mut present = Vec::new();
    let mut missing = Vec::new();
    for (i, name) in SCHEMA_OBJECTS.into_iter().enumerate() {
        if row.try_get::<_, bool>(i)? {
            present.push(name);
        } else {
            missing.push(name);
        }
    }
    let reason = match revision {
        Some(revision) if !missing.is_empty() => format!(
            "alembic_version says {revision} but {} missing; restore it from a backup, or drop \
             the rest (tables, type targetaction, alembic_version) to start empty",
            missing.join(", ")
        ),
        None if !present.is_empty() => format!(
            "{} already exist but alembic_version records no revision; if this schema is \
             upstream's, record it with `INSERT INTO alembic_version VALUES ('{HEAD_REVISION}')`",
            present.join(", ")
        ),
        _ => return Ok(()),
    };
    Err(Failure::Named(Error::Schema { reason }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_is_upstreams_alembic_head() {
        assert_eq!(HEAD_REVISION, "1effe827d0cd");
    }

    #[test]
    fn pending_revisions_follow_the_current_one() {
        let ids = |revs: &[Revision]| revs.iter().map(|r| r.alembic_id).collect::<Vec<_>>();
        assert_eq!(ids(pending(None).unwrap()), vec!["1effe827d0cd"]);
        assert!(pending(Some("1effe827d0cd")).unwrap().is_empty());
        match pending(Some("0b1c2d3e4f50")) {
            Err(Error::UnknownRevision { revision, known }) => {
                assert_eq!((revision.as_str(), known), ("0b1c2d3e4f50", "1effe827d0cd"))
            }
            other => panic!("expected UnknownRevision, got {:?}", other.map(ids)),
        }
    }

    #[test]
    fn initial_script_records_the_head_revision() {
        assert!(REVISIONS[0]
            .sql
            .contains("INSERT INTO alembic_version (version_num) VALUES ('1effe827d0cd');"));
    }
}
