//! One publication round: what a (merged) [`Plan`] asks for, done under one
//! LOCK_TARGETS hold.
//!
//! Each selected delegated role is rebuilt from its database rows (the ADD
//! rows are its targets) and re-signed once, in parallel across cores; then
//! targets if asked, one snapshot pointing at every new version, and one
//! timestamp. The files are written in that order in one batch, and only
//! then does the database record the rows as published and the roles'
//! new versions; a crash in between republishes, it never loses a change.
//!
//! Roles signed by the online key alone are published. Roles that also
//! (or only) need offline keys are written to `<ROLE>_SIGNING` for the
//! offline signers, as upstream does.
use std::collections::{BTreeMap, BTreeSet};
use std::thread;

use log::{info, warn};

use super::context::{bump_and_sign, remember_targets, role_name, Context, Publication, Result};
use super::publisher::{Plan, Report};
use super::Error;
use crate::db::{FileStamp, RoleFiles, RoleUpdate};
use crate::lock::LockGuard;
use crate::settings::SettingName;
use crate::storage::MetadataFile;
use crate::tuf::hashbins::HashBins;
use crate::tuf::metadata::{MetaFile, Snapshot, TargetFile, Targets, Timestamp};
use crate::tuf::RoleName;
use crate::tuf::{KeyId, Metadata, Signer, UtcTime, Version};

/// Below this many roles per core, spawning threads costs more than it saves.
const ROLES_PER_THREAD: usize = 32;

/// Carries out `plan` and returns what it did.
pub fn run(ctx: &Context, plan: &Plan) -> Result<Report> {
    let mut lock = ctx.lock_targets()?;
    let report = publish(ctx, plan, &mut lock)?;
    lock.release()?;
    Ok(report)
}

/// The roles a round looks at, read under the lock.
struct Selection {
    unpublished: Vec<RoleName>,
    expiring: Vec<RoleName>,
    roles: Vec<RoleFiles>,
}

fn select(ctx: &Context, plan: &Plan, limit: Option<UtcTime>) -> Result<Selection> {
    let unpublished = match plan.unpublished {
        true => ctx.db.roles_with_unpublished_files()?,
        false => Vec::new(),
    };
    let expiring = match limit {
        Some(limit) => ctx.db.roles_expiring_before(limit.to_system_time())?,
        None => Vec::new(),
    };
    let mut names: BTreeSet<RoleName> = unpublished.iter().chain(&expiring).cloned().collect();
    for role in &plan.roles {
        names.insert(role_name(role)?);
    }
    if plan.all_roles {
        names.extend(ctx.db.active_roles()?.into_iter().map(|r| r.name));
    }
    let names: Vec<RoleName> = names.into_iter().collect();
    let roles = match names.is_empty() {
        true => Vec::new(),
        false => ctx.db.roles_with_files(&names)?,
    };
    Ok(Selection {
        unpublished,
        expiring,
        roles,
    })
}

fn publish(ctx: &Context, plan: &Plan, lock: &mut LockGuard) -> Result<Report> {
    let now = UtcTime::now()?;
    let limit = plan
        .expiring_within
        .map(|w| now.add_seconds(i64::try_from(w.as_secs()).unwrap_or(i64::MAX)))
        .transpose()?;
    let selection = select(ctx, plan, limit)?;
    let mut report = Report {
        unpublished_roles: names(&selection.unpublished),
        expired: names(&selection.expiring),
        resigned: Vec::new(),
    };
    let nothing_asked = !plan.targets && !plan.snapshot && !plan.timestamp && limit.is_none();
    if selection.roles.is_empty() && nothing_asked {
        return Ok(report);
    }

    let signer = ctx.online_signer()?;
    let mut targets = ctx.load::<Targets>("targets")?;
    let jobs = jobs(ctx, &targets.signed, &selection.roles, signer.as_ref())?;
    report.resigned = jobs
        .iter()
        .map(|j| j.files.role.name.as_str().to_owned())
        .collect();
    let mut publication = Publication::default();
    let mut changed: Vec<(String, Version)> = Vec::new();
    let mut role_updates = Vec::new();
    let mut pending = Vec::new();
    for resigned in resign_all(ctx, &jobs)? {
        match resigned {
            Resigned::Persisted(role) => {
                publication.add_encoded(role.file, role.bytes);
                role_updates.push(RoleUpdate {
                    name: role_name(&role.name)?,
                    version: role.version,
                    expires: role.expires.to_system_time(),
                });
                changed.push((role.name, role.version));
            }
            Resigned::Pending(name, metadata) => pending.push((name, metadata)),
        }
    }

    let expiring = |expires: UtcTime| limit.is_some_and(|limit| expires < limit);
    let targets_expiring = expiring(targets.expires()) && targets_signed_online(ctx)?;
    let bump_targets = plan.targets || targets_expiring;
    if bump_targets {
        bump_and_sign(&mut targets, ctx.expiry_for("targets")?, signer.as_ref())?;
        publication.add("targets", &targets)?;
        changed.push(("targets".into(), targets.version()));
        if targets_expiring {
            report.expired.push("targets".into());
        }
    }

    let mut snapshot = ctx.load::<Snapshot>("snapshot")?;
    let snapshot_expiring = expiring(snapshot.expires());
    let new_snapshot = !changed.is_empty() || plan.snapshot || snapshot_expiring;
    if new_snapshot {
        for (role, version) in &changed {
            snapshot
                .signed
                .meta
                .insert(format!("{role}.json"), MetaFile::new(*version));
        }
        bump_and_sign(&mut snapshot, ctx.expiry_for("snapshot")?, signer.as_ref())?;
        publication.add("snapshot", &snapshot)?;
        if snapshot_expiring {
            report.expired.push("snapshot".into());
        }
    }
    let mut timestamp = ctx.load::<Timestamp>("timestamp")?;
    let timestamp_expiring = expiring(timestamp.expires());
    if new_snapshot || plan.timestamp || timestamp_expiring {
        timestamp
            .signed
            .meta
            .insert("snapshot.json".into(), MetaFile::new(snapshot.version()));
        bump_and_sign(
            &mut timestamp,
            ctx.expiry_for("timestamp")?,
            signer.as_ref(),
        )?;
        publication.add("timestamp", &timestamp)?;
        if timestamp_expiring {
            report.expired.push("timestamp".into());
        }
    }

    let written = !publication.is_empty();
    match written {
        true => publication.commit(ctx, Some(lock))?,
        false => lock.extend()?,
    }
    for (name, metadata) in &pending {
        ctx.set_setting_json(&signing_setting(name), metadata)?;
    }
    if bump_targets {
        remember_targets(ctx, &targets)?;
    }
    let settled: Vec<FileStamp> = jobs.iter().flat_map(|j| j.files.unpublished()).collect();
    ctx.db.commit_publication(&settled, &role_updates)?;
    if written {
        info!(
            "published {} role(s), {} pending signature(s), {} artifact change(s); snapshot v{}, timestamp v{}",
            changed.len(),
            pending.len(),
            settled.len(),
            snapshot.version(),
            timestamp.version()
        );
    }
    Ok(report)
}

fn names(roles: &[RoleName]) -> Vec<String> {
    roles.iter().map(|r| r.as_str().to_owned()).collect()
}

/// `TARGETS_ONLINE_KEY`: the bump re-signs targets only when it is online.
fn targets_signed_online(ctx: &Context) -> Result<bool> {
    let online = ctx
        .settings()
        .get_fresh_bool(&SettingName::new("TARGETS_ONLINE_KEY"))?;
    if online.is_none() {
        warn!("TARGETS_ONLINE_KEY is not set or false: targets is not re-signed by the bump");
    }
    Ok(online == Some(true))
}

fn signing_setting(role: &str) -> String {
    format!("{}_SIGNING", role.to_uppercase())
}

/// Who signs a delegated role, as targets delegates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signing {
    /// The online key alone: re-signed and published.
    Online,
    /// The online key among others: signed, left for the offline signers.
    Mixed,
    /// Offline keys only: left unsigned for them.
    Offline,
}

fn signing_of(targets: &Targets, role: &str, online: &KeyId) -> Option<Signing> {
    let delegations = targets.delegations.as_ref()?;
    let keyids = match (&delegations.succinct_roles, &delegations.roles) {
        (Some(succinct), _) => HashBins::new(succinct.bit_length, &succinct.name_prefix)
            .ok()
            .filter(|bins| bins.is_bin_role(role))
            .map(|_| &succinct.keyids)?,
        (None, Some(roles)) => &roles.iter().find(|r| r.name == role)?.keyids,
        (None, None) => return None,
    };
    Some(match (keyids.contains(online), keyids.len()) {
        (true, 1) => Signing::Online,
        (true, _) => Signing::Mixed,
        (false, _) => Signing::Offline,
    })
}

/// One role to re-sign.
struct Job<'a> {
    files: &'a RoleFiles,
    signing: Signing,
    expires: UtcTime,
    signer: &'a dyn Signer,
}

/// A job per selected role that targets still delegates to; a role it does
/// not (a stale database row) is left alone, its rows unpublished.
fn jobs<'a>(
    ctx: &Context,
    targets: &Targets,
    roles: &'a [RoleFiles],
    signer: &'a dyn Signer,
) -> Result<Vec<Job<'a>>> {
    let bins = targets
        .delegations
        .as_ref()
        .is_some_and(|d| d.succinct_roles.is_some());
    // Read once: 16384 bins share one policy.
    let bins_expiry = match bins && !roles.is_empty() {
        true => Some(ctx.expiry_for("bins")?),
        false => None,
    };
    let mut jobs = Vec::with_capacity(roles.len());
    for files in roles {
        let name = files.role.name.as_str();
        let Some(signing) = signing_of(targets, name, signer.keyid()) else {
            warn!("role '{name}' has a database row but targets does not delegate to it; skipped");
            continue;
        };
        let expires = match bins_expiry {
            Some(expires) => expires,
            None => ctx.expiry_for(name)?,
        };
        jobs.push(Job {
            files,
            signing,
            expires,
            signer,
        });
    }
    Ok(jobs)
}

/// A re-signed role ready to write.
struct Persisted {
    name: String,
    version: Version,
    expires: UtcTime,
    file: MetadataFile,
    bytes: Vec<u8>,
}

enum Resigned {
    Persisted(Persisted),
    /// Role name and metadata waiting for offline signatures.
    Pending(String, Box<Metadata<Targets>>),
}

fn resign_all(ctx: &Context, jobs: &[Job]) -> Result<Vec<Resigned>> {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(jobs.len() / ROLES_PER_THREAD).max(1);
    if threads == 1 {
        return jobs.iter().map(|job| resign(ctx, job)).collect();
    }
    let chunk = jobs.len().div_ceil(threads);
    thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|job| resign(ctx, job))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(jobs.len());
        for handle in handles {
            let part = handle
                .join()
                .map_err(|_| Error::Repository("a signing thread crashed".into()))??;
            all.extend(part);
        }
        Ok(all)
    })
}

fn resign(ctx: &Context, job: &Job) -> Result<Resigned> {
    let name = job.files.role.name.as_str();
    let (mut metadata, stored) = load_delegated(ctx, name)?;
    metadata.signed.targets = listed_targets(job.files)?;
    metadata.set_expires(job.expires);
    // A role that was only ever pending keeps the version it was offered at.
    if stored || job.signing == Signing::Online {
        metadata.bump_version();
    }
    match job.signing {
        Signing::Online => {
            metadata.sign(job.signer)?;
            let version = metadata.version();
            Ok(Resigned::Persisted(Persisted {
                name: name.to_owned(),
                version,
                expires: job.expires,
                file: MetadataFile::persisted(role_name(name)?, version),
                bytes: metadata.to_file_bytes()?,
            }))
        }
        Signing::Mixed => {
            metadata.sign(job.signer)?;
            Ok(Resigned::Pending(name.to_owned(), Box::new(metadata)))
        }
        Signing::Offline => {
            metadata.clear_signatures();
            Ok(Resigned::Pending(name.to_owned(), Box::new(metadata)))
        }
    }
}

/// The newest stored version of a delegated role, or (for one never
/// published) the one pending in `<ROLE>_SIGNING`; true when stored.
fn load_delegated(ctx: &Context, role: &str) -> Result<(Metadata<Targets>, bool)> {
    if let Some((_, bytes)) = ctx.storage.get_latest(&role_name(role)?)? {
        return Ok((Metadata::from_file_bytes(&bytes)?, true));
    }
    let setting = signing_setting(role);
    match ctx
        .settings()
        .get_fresh_json::<Metadata<Targets>>(&SettingName::new(&setting))?
    {
        Some(metadata) => Ok((metadata, false)),
        None => Err(Error::Repository(format!(
            "role '{role}' has neither a metadata file nor pending metadata in {setting}, \
             so it cannot be re-signed"
        ))),
    }
}

/// The targets a role lists: its rows whose last action is ADD.
fn listed_targets(files: &RoleFiles) -> Result<BTreeMap<String, TargetFile>> {
    files
        .added()
        .map(|file| {
            let target = serde_json::from_value(file.info.clone()).map_err(|e| {
                Error::Repository(format!(
                    "artifact '{}' of role '{}' has an info that is not a TUF target file: {e}",
                    file.path, files.role.name
                ))
            })?;
            Ok((file.path.0.clone(), target))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuf::testdata;

    fn targets(folder: &str) -> Targets {
        let bytes = testdata::bytes(&format!("{folder}/1.targets.json"));
        Metadata::<Targets>::from_file_bytes(&bytes).unwrap().signed
    }

    #[test]
    fn who_signs_follows_the_delegation() {
        let bins = targets("vectors/tuf/repo-bins/1-after-bootstrap");
        let online =
            KeyId::from("9e5a93a998845599e5065a1164a0bd9cbfec78b12bb38730a46bc24825c6a4c1");
        assert_eq!(signing_of(&bins, "bins-a", &online), Some(Signing::Online));
        assert_eq!(signing_of(&bins, "bins-10", &online), None);
        assert_eq!(signing_of(&bins, "dev", &online), None);
        let other = KeyId::from("cb20fa1061dde8e6267e0bef0981766aaadae168e917030f7f26edc7a0bab9c2");
        assert_eq!(signing_of(&bins, "bins-a", &other), Some(Signing::Offline));

        let custom = targets("vectors/tuf/repo-custom/1-after-bootstrap-and-signing");
        assert_eq!(signing_of(&custom, "dev", &other), Some(Signing::Online));
        assert_eq!(
            signing_of(&custom, "production", &other),
            Some(Signing::Offline)
        );
        assert_eq!(signing_of(&custom, "bins-a", &other), None);
        let mut mixed = custom.clone();
        let roles = mixed.delegations.as_mut().unwrap().roles.as_mut().unwrap();
        roles[1].keyids.push(other.clone());
        assert_eq!(
            signing_of(&mixed, "production", &other),
            Some(Signing::Mixed)
        );
    }
}
