//! `metadata_update`: a new root from the operators. It must be the next
//! version and be signed by the thresholds of both the trusted root and
//! itself; short of signatures it waits in `ROOT_SIGNING`.
//!
//! A root that changes the online key is published together with
//! everything signed by that key: targets, every online delegated role,
//! snapshot and timestamp, re-signed with the new key under `LOCK_TARGETS`,
//! and the root last. A client that walks the roots from 1.root.json then
//! finds every file signed by a key its newest root trusts.
use serde_json::{json, Value};

use super::context::{online_key_of, Context, Publication, Result};
use super::delegations::delegated_role_names;
use super::input::{member, metadata};
use super::resign::{expiries, publish_with_targets, record_versions, Resign};
use super::result::{done, failed};
use super::signing::{clear_pending, json_setting, set_online_key, set_pending, threshold_met};
use super::{Action, Error};
use crate::backend::TaskResult;
use crate::lock::LockGuard;
use crate::settings::BootstrapState;
use crate::tuf::metadata::{Root, Targets};
use crate::tuf::{Key, KeyId, Metadata};

const FAILED: &str = "Metadata Update Failed";
const PROCESSED: &str = "Metadata Update Processed";

pub fn run(ctx: &Context, payload: &Value) -> Result<TaskResult> {
    if matches!(
        ctx.bootstrap_state()?,
        BootstrapState::None | BootstrapState::Pre(_)
    ) {
        return failed(
            Action::MetadataUpdate,
            FAILED,
            "Metadata Update requires a completed bootstrap",
        );
    }
    let Some(metadata_field) = member(payload, "metadata") else {
        return failed(
            Action::MetadataUpdate,
            FAILED,
            "No 'metadata' in the payload",
        );
    };
    let Some(root_field) = member(metadata_field, "root") else {
        return failed(Action::MetadataUpdate, FAILED, "Unsupported Metadata type");
    };
    let new_root: Metadata<Root> = metadata(root_field, "metadata.root")?;
    let trusted = ctx.load::<Root>("root")?;
    match trust(&trusted, &new_root)? {
        Trust::Refused(reason) => failed(
            Action::MetadataUpdate,
            FAILED,
            format!("Failed to verify the trust: {reason}"),
        ),
        Trust::Unsigned => {
            set_pending(ctx, "root", &new_root)?;
            done(
                Action::MetadataUpdate,
                PROCESSED,
                json!({
                    "role": "root",
                    "update": format!("Root v{} is pending signatures", new_root.version()),
                }),
            )
        }
        Trust::Trusted => {
            finalize(ctx, &trusted, &new_root)?;
            forget_stale_pending_root(ctx, &new_root)?;
            done(Action::MetadataUpdate, PROCESSED, json!({"role": "root"}))
        }
    }
}

/// What the trusted root makes of a new one.
#[derive(Debug, PartialEq, Eq)]
pub enum Trust {
    Trusted,
    /// Right version, but a threshold (old or new) is not met yet.
    Unsigned,
    /// Never acceptable; upstream's words for why.
    Refused(String),
}

/// Upstream's `_verify_new_root_signing`: next version, then both
/// thresholds.
pub fn trust(trusted: &Metadata<Root>, new: &Metadata<Root>) -> Result<Trust> {
    let expected = trusted.version().next();
    if new.version() != expected {
        return Ok(Trust::Refused(format!(
            "Expected root version {expected} instead got version {}",
            new.version()
        )));
    }
    let by_trusted = threshold_met(&trusted.signed.role_spec("root")?, new)?;
    let by_itself = threshold_met(&new.signed.role_spec("root")?, new)?;
    Ok(if by_trusted && by_itself {
        Trust::Trusted
    } else {
        Trust::Unsigned
    })
}

/// Publishes a trusted new root (after everything the new online key must
/// re-sign, if it changed) and records it as TRUSTED_ROOT.
pub fn finalize(ctx: &Context, trusted: &Metadata<Root>, new: &Metadata<Root>) -> Result<()> {
    let (old_keyid, _) = online_key_of(&trusted.signed)?;
    let (new_keyid, new_key) = online_key_of(&new.signed)?;
    let mut lock = ctx.lock_targets()?;
    if old_keyid == new_keyid {
        let mut publication = Publication::default();
        publication.add("root", new)?;
        publication.commit(ctx, Some(&mut lock))?;
    } else {
        rotate_online_key(ctx, &mut lock, &old_keyid, (&new_keyid, &new_key), new)?;
    }
    ctx.set_setting_json("TRUSTED_ROOT", new)?;
    super::context::release_after_commit(lock);
    Ok(())
}

/// Re-signs targets, the online delegated roles, snapshot and timestamp
/// with the new online key and publishes them with the new root.
fn rotate_online_key(
    ctx: &Context,
    lock: &mut LockGuard,
    old_keyid: &KeyId,
    (new_keyid, new_key): (&KeyId, &Key),
    new_root: &Metadata<Root>,
) -> Result<()> {
    // Loading the new key first: a missing key file stops the rotation
    // before anything is written.
    let signer = ctx.signer_for(new_keyid, new_key)?;
    let mut targets = ctx.load::<Targets>("targets")?;
    replace_online_key(&mut targets.signed, old_keyid, new_keyid, new_key);
    let bins = targets
        .signed
        .delegations
        .as_ref()
        .is_some_and(|d| d.succinct_roles.is_some());
    let roles = expiries(ctx, &delegated_role_names(&targets.signed)?, bins)?;
    let resigned = Resign {
        targets: &targets.signed,
        signer: signer.as_ref(),
        offline_too: false,
    }
    .run(ctx, &roles)?;
    let mut publication = Publication::default();
    publish_with_targets(
        ctx,
        &resigned.published,
        &mut targets,
        &[],
        signer.as_ref(),
        &mut publication,
    )?;
    publication.add("root", new_root)?;
    publication.commit(ctx, Some(lock))?;

    set_online_key(ctx, new_keyid, new_key)?;
    for (name, md) in &resigned.pending {
        set_pending(ctx, name, md)?;
    }
    ctx.set_setting_json("TRUSTED_TARGETS", &targets)?;
    record_versions(ctx, &resigned.published)
}

/// Points every delegation that used the old online key at the new one,
/// keeping the order of key ids, and forgets the old key.
fn replace_online_key(targets: &mut Targets, old: &KeyId, new: &KeyId, key: &Key) {
    let Some(delegations) = targets.delegations.as_mut() else {
        return;
    };
    let keyid_lists = delegations
        .succinct_roles
        .iter_mut()
        .map(|s| &mut s.keyids)
        .chain(
            delegations
                .roles
                .iter_mut()
                .flatten()
                .map(|r| &mut r.keyids),
        );
    for keyids in keyid_lists {
        if let Some(at) = keyids.iter().position(|k| k == old) {
            if keyids.contains(new) {
                keyids.remove(at);
            } else {
                keyids[at] = new.clone();
            }
        }
    }
    delegations.keys.remove(old);
    delegations.keys.insert(new.clone(), key.clone());
}

/// A root still waiting for signatures at or below the version just
/// trusted can never be published; upstream leaves it listed forever.
fn forget_stale_pending_root(ctx: &Context, trusted: &Metadata<Root>) -> Result<()> {
    let Some(pending) = json_setting::<Value>(ctx, "ROOT_SIGNING")? else {
        return Ok(());
    };
    let version = pending["signed"]["version"].as_u64().unwrap_or(0);
    if version <= trusted.version().0 {
        clear_pending(ctx, "root")?;
    }
    Ok(())
}

/// A signature that completed both thresholds of a pending root; checked
/// again against the current trusted root, which may have moved on.
pub fn finalize_pending(
    ctx: &Context,
    trusted: &Metadata<Root>,
    new: &Metadata<Root>,
) -> Result<()> {
    if let Trust::Refused(reason) = trust(trusted, new)? {
        return Err(Error::Repository(format!(
            "the pending root cannot be published: {reason}; delete the signing event \
             (delete_sign_metadata) and send the right root"
        )));
    }
    finalize(ctx, trusted, new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuf::testdata;

    fn payload_root(name: &str) -> Metadata<Root> {
        let doc = testdata::json(&format!("vectors/payloads/{name}.json"));
        metadata(&doc["kwargs"]["payload"]["metadata"]["root"], "r").unwrap()
    }

    fn bins_root() -> Metadata<Root> {
        let bytes = testdata::bytes("vectors/tuf/repo-bins/1-after-bootstrap/1.root.json");
        Metadata::from_file_bytes(&bytes).unwrap()
    }

    #[test]
    fn the_vector_roots_are_trusted_pending_or_refused() {
        let trusted = bins_root();
        assert_eq!(
            trust(&trusted, &payload_root("metadata_update-root-v2")).unwrap(),
            Trust::Trusted
        );
        assert_eq!(
            trust(&trusted, &payload_root("metadata_update-root-v2-pending")).unwrap(),
            Trust::Unsigned
        );
        let mut v3 = payload_root("metadata_update-root-v2");
        v3.signed.version = crate::tuf::Version(3);
        assert_eq!(
            trust(&trusted, &v3).unwrap(),
            Trust::Refused("Expected root version 2 instead got version 3".into())
        );
    }

    #[test]
    fn the_online_key_is_replaced_in_every_delegation() {
        let new_root = payload_root("metadata_update-root-v2");
        let (new_id, new_key) = online_key_of(&new_root.signed).unwrap();
        let (old_id, _) = online_key_of(&bins_root().signed).unwrap();

        let bytes = testdata::bytes("vectors/tuf/repo-bins/1-after-bootstrap/1.targets.json");
        let mut bins = Metadata::<Targets>::from_file_bytes(&bytes).unwrap().signed;
        replace_online_key(&mut bins, &old_id, &new_id, &new_key);
        let delegations = bins.delegations.unwrap();
        assert_eq!(
            delegations.succinct_roles.unwrap().keyids,
            std::slice::from_ref(&new_id)
        );
        assert_eq!(delegations.keys.keys().collect::<Vec<_>>(), [&new_id]);

        let bytes =
            testdata::bytes("vectors/tuf/repo-custom/1-after-bootstrap-and-signing/1.targets.json");
        let mut custom = Metadata::<Targets>::from_file_bytes(&bytes).unwrap().signed;
        let online =
            custom.delegations.as_ref().unwrap().roles.as_ref().unwrap()[0].keyids[0].clone();
        let other = KeyId::from("feedface");
        replace_online_key(&mut custom, &online, &other, &new_key);
        let delegations = custom.delegations.unwrap();
        let roles = delegations.roles.unwrap();
        assert_eq!(roles[0].keyids, std::slice::from_ref(&other));
        assert_eq!(roles[1].keyids.len(), 2);
        assert!(!roles[1].keyids.contains(&other));
        assert_eq!(roles[2].keyids, std::slice::from_ref(&other));
        assert!(delegations.keys.contains_key(&other));
        assert!(!delegations.keys.contains_key(&online));
        assert_eq!(delegations.keys.len(), 3);
    }
}
