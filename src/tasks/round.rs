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

use log::{info, warn};

use super::context::{
    publish_snapshot, publish_targets, publish_timestamp, remember_targets, role_name, Context,
    Publication, Result,
};
use super::publisher::{Plan, Report};
use super::resign::{expiries, key_use, parallel, stored_or_pending, KeyUse, Stored};
use super::signing::{set_pending, signing_setting};
use super::Error;
use crate::db::{FileStamp, RoleFiles, RoleUpdate};
use crate::lock::LockGuard;
use crate::settings::SettingName;
use crate::storage::MetadataFile;
use crate::tuf::metadata::{TargetFile, Targets, Timestamp};
use crate::tuf::RoleName;
use crate::tuf::{KeyId, Metadata, Signer, UtcTime, Version};

/// Carries out `plan` and returns what it did.
pub fn run(ctx: &Context, plan: &Plan) -> Result<Report> {
    let mut lock = ctx.lock_targets()?;
    let report = publish(ctx, plan, &mut lock)?;
    super::context::release_after_commit(lock);
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
    for resigned in parallel(&jobs, signer.concurrency(), |job| resign(ctx, job))? {
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
        changed.push(publish_targets(
            ctx,
            &mut targets,
            signer.as_ref(),
            &mut publication,
        )?);
        if targets_expiring {
            report.expired.push("targets".into());
        }
    }

    let mut snapshot = ctx.load_snapshot()?;
    let snapshot_expiring = expiring(snapshot.expires());
    let new_snapshot = !changed.is_empty() || plan.snapshot || snapshot_expiring;
    if new_snapshot {
        publish_snapshot(
            ctx,
            &mut snapshot,
            &changed,
            &[],
            signer.as_ref(),
            &mut publication,
        )?;
        if snapshot_expiring {
            report.expired.push("snapshot".into());
        }
    }
    let mut timestamp = ctx.load::<Timestamp>("timestamp")?;
    let timestamp_expiring = expiring(timestamp.expires());
    if new_snapshot || plan.timestamp || timestamp_expiring {
        publish_timestamp(
            ctx,
            &mut timestamp,
            snapshot.version(),
            signer.as_ref(),
            &mut publication,
        )?;
        if timestamp_expiring {
            report.expired.push("timestamp".into());
        }
    }

    let written = !publication.is_empty();
    match written {
        true => publication.commit(ctx, Some(lock))?,
        false => lock.extend()?,
    }
    let snapshot_version = snapshot.version();
    ctx.remember_snapshot(snapshot);
    for (name, metadata) in &pending {
        set_pending(ctx, name, metadata)?;
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
            snapshot_version,
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

/// How targets delegates `role` relative to the online key; None when it
/// does not delegate to it.
fn signing_of(targets: &Targets, role: &str, online: &KeyId) -> Option<KeyUse> {
    let spec = targets.role_spec(role).ok()?;
    Some(key_use(spec.keyids, online))
}

/// One role to re-sign.
struct Job<'a> {
    files: &'a RoleFiles,
    signing: KeyUse,
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
    let delegated: Vec<(&RoleFiles, KeyUse)> = roles
        .iter()
        .filter_map(|files| {
            let name = files.role.name.as_str();
            let signing = signing_of(targets, name, signer.keyid());
            if signing.is_none() {
                warn!(
                    "role '{name}' has a database row but targets does not delegate to it; skipped"
                );
            }
            signing.map(|signing| (files, signing))
        })
        .collect();
    let bins = targets
        .delegations
        .as_ref()
        .is_some_and(|d| d.succinct_roles.is_some());
    let names: Vec<String> = delegated
        .iter()
        .map(|(files, _)| files.role.name.as_str().to_owned())
        .collect();
    let expiries = expiries(ctx, &names, bins)?;
    Ok(delegated
        .into_iter()
        .zip(expiries)
        .map(|((files, signing), (_, expires))| Job {
            files,
            signing,
            expires,
            signer,
        })
        .collect())
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

fn resign(ctx: &Context, job: &Job) -> Result<Resigned> {
    let name = job.files.role.name.as_str();
    let (mut metadata, stored) = stored_or_pending(ctx, name)?.ok_or_else(|| {
        Error::Repository(format!(
            "role '{name}' has neither a metadata file nor pending metadata in {}, \
             so it cannot be re-signed",
            signing_setting(name)
        ))
    })?;
    metadata.signed.targets = listed_targets(job.files)?;
    metadata.set_expires(job.expires);
    // A role that was only ever pending keeps the version it was offered at.
    if stored == Stored::Yes || job.signing == KeyUse::Online {
        metadata.bump_version();
    }
    job.signing.sign(&mut metadata, job.signer)?;
    match job.signing {
        KeyUse::Online => {
            let version = metadata.version();
            Ok(Resigned::Persisted(Persisted {
                name: name.to_owned(),
                version,
                expires: job.expires,
                file: MetadataFile::persisted(role_name(name)?, version),
                bytes: metadata.to_file_bytes()?,
            }))
        }
        KeyUse::Mixed | KeyUse::Offline => {
            Ok(Resigned::Pending(name.to_owned(), Box::new(metadata)))
        }
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
    use crate::tasks::routing::tests::targets;

    #[test]
    fn who_signs_follows_the_delegation() {
        let bins = targets("vectors/tuf/repo-bins/1-after-bootstrap");
        let online =
            KeyId::from("9e5a93a998845599e5065a1164a0bd9cbfec78b12bb38730a46bc24825c6a4c1");
        assert_eq!(signing_of(&bins, "bins-a", &online), Some(KeyUse::Online));
        assert_eq!(signing_of(&bins, "bins-10", &online), None);
        assert_eq!(signing_of(&bins, "dev", &online), None);
        let other = KeyId::from("cb20fa1061dde8e6267e0bef0981766aaadae168e917030f7f26edc7a0bab9c2");
        assert_eq!(signing_of(&bins, "bins-a", &other), Some(KeyUse::Offline));

        let custom = targets("vectors/tuf/repo-custom/1-after-bootstrap-and-signing");
        assert_eq!(signing_of(&custom, "dev", &other), Some(KeyUse::Online));
        assert_eq!(
            signing_of(&custom, "production", &other),
            Some(KeyUse::Offline)
        );
        assert_eq!(signing_of(&custom, "bins-a", &other), None);
        let mut mixed = custom.clone();
        let roles = mixed.delegations.as_mut().unwrap().roles.as_mut().unwrap();
        roles[1].keyids.push(other.clone());
        assert_eq!(
            signing_of(&mixed, "production", &other),
            Some(KeyUse::Mixed)
        );
    }
}
