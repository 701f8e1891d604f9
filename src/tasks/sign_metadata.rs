//! `sign_metadata`: one offline signature for a pending signing event. The
//! event completes when the threshold is met: the bootstrap is finalized,
//! the new root is published (rotating the online key if it changed), or
//! the delegated role is published with a new snapshot and timestamp.
use serde_json::{json, Value};

use super::bootstrap;
use super::context::{snapshot_and_timestamp, Context, Publication, Result};
use super::input::{check_signing_role, parse, required, string};
use super::metadata_update;
use super::resign::{latest, record_versions};
use super::result::{done, failed};
use super::signing::{
    clear_pending, pending, pending_metadata, set_pending, signature_is_valid, threshold_met,
};
use super::{Action, Error};
use crate::backend::TaskResult;
use crate::settings::BootstrapState;
use crate::tuf::metadata::{peek_type, MetadataType, Root, Signature, Targets};
use crate::tuf::Metadata;

const FAILED: &str = "Signature Failed";
const PROCESSED: &str = "Signature Processed";

pub fn run(ctx: &Context, payload: &Value) -> Result<TaskResult> {
    let signature: Signature = parse(required(payload, "signature", "signature")?, "signature")?;
    let role = string(payload, "role", "role")?;
    check_signing_role(role, "role")?;
    let Some(value) = pending(ctx, role)? else {
        return failed(
            Action::SignMetadata,
            FAILED,
            format!("No signatures pending for {role}"),
        );
    };
    let bytes = serde_json::to_vec(&value).map_err(|e| Error::Repository(e.to_string()))?;
    match peek_type(&bytes)? {
        MetadataType::Root => {
            let root = pending_metadata::<Root>(&value, role)?;
            match ctx.bootstrap_state()? {
                BootstrapState::Signing(task) => {
                    bootstrap_root(ctx, root, signature, task.as_str())
                }
                BootstrapState::None => Err(Error::Repository(
                    "a root waits for signatures but no bootstrap is under way (BOOTSTRAP \
                     is unset); delete the signing event (delete_sign_metadata)"
                        .into(),
                )),
                BootstrapState::Pre(_) | BootstrapState::Finished(_) => {
                    new_root(ctx, root, signature)
                }
            }
        }
        MetadataType::Targets => {
            let md = pending_metadata::<Targets>(&value, role)?;
            delegated_role(ctx, role, md, signature)
        }
        other => Err(Error::Repository(format!(
            "setting {} holds {other} metadata, which is never signed offline; delete \
             the signing event (delete_sign_metadata)",
            super::signing::signing_setting(role)
        ))),
    }
}

fn processed(key: &str, text: String) -> Result<TaskResult> {
    done(Action::SignMetadata, PROCESSED, json!({ key: text }))
}

fn invalid() -> Result<TaskResult> {
    failed(Action::SignMetadata, FAILED, "Invalid signature")
}

/// The root of a bootstrap waiting for signatures: it only has itself to
/// trust.
fn bootstrap_root(
    ctx: &Context,
    mut root: Metadata<Root>,
    signature: Signature,
    task_id: &str,
) -> Result<TaskResult> {
    if !signature_is_valid(&root.signed.role_spec("root")?, &root, &signature)? {
        return invalid();
    }
    root.add_signature(signature.keyid, signature.sig);
    if !threshold_met(&root.signed.role_spec("root")?, &root)? {
        set_pending(ctx, "root", &root)?;
        return processed(
            "bootstrap",
            format!("Root v{} is pending signatures", root.version()),
        );
    }
    bootstrap::finalize(ctx, &root, task_id)?;
    processed("bootstrap", "Bootstrap Finished".into())
}

/// A root update: the signature may come from a key of the trusted root or
/// of the new one; both thresholds must be met.
fn new_root(ctx: &Context, mut root: Metadata<Root>, signature: Signature) -> Result<TaskResult> {
    let trusted = ctx.load::<Root>("root")?;
    let by_trusted = signature_is_valid(&trusted.signed.role_spec("root")?, &root, &signature)?;
    let by_new = signature_is_valid(&root.signed.role_spec("root")?, &root, &signature)?;
    if !(by_trusted || by_new) {
        return invalid();
    }
    root.add_signature(signature.keyid, signature.sig);
    if metadata_update::trust(&trusted, &root)? == metadata_update::Trust::Unsigned {
        set_pending(ctx, "root", &root)?;
        return processed(
            "update",
            format!("Root v{} is pending signatures", root.version()),
        );
    }
    metadata_update::finalize_pending(ctx, &trusted, &root)?;
    clear_pending(ctx, "root")?;
    processed("update", "Metadata update finished".into())
}

/// A custom role waiting for offline keys; once complete it is published
/// with a new snapshot and timestamp.
fn delegated_role(
    ctx: &Context,
    role: &str,
    mut md: Metadata<Targets>,
    signature: Signature,
) -> Result<TaskResult> {
    // Held from the check to the publication, so a delegation change in
    // between cannot make the published role unverifiable.
    let mut lock = ctx.lock_targets()?;
    let targets = ctx.load::<Targets>("targets")?;
    let spec = targets.signed.role_spec(role)?;
    if !signature_is_valid(&spec, &md, &signature)? {
        return invalid();
    }
    md.add_signature(signature.keyid, signature.sig);
    if !threshold_met(&spec, &md)? {
        set_pending(ctx, role, &md)?;
        return processed(
            "update",
            format!("{role} v{} is pending signatures", md.version()),
        );
    }
    if let Some(published) = latest(ctx, role)? {
        if published.version() >= md.version() {
            return Err(Error::Repository(format!(
                "{role} v{} waits for signatures but v{} is already published; delete the \
                 signing event (delete_sign_metadata)",
                md.version(),
                published.version()
            )));
        }
    }
    let signer = ctx.online_signer()?;
    let mut publication = Publication::default();
    publication.add(role, &md)?;
    snapshot_and_timestamp(
        ctx,
        &[(role.to_owned(), md.version())],
        &[],
        signer.as_ref(),
        &mut publication,
    )?;
    publication.commit(ctx, Some(&mut lock))?;
    clear_pending(ctx, role)?;
    record_versions(ctx, &[(role.to_owned(), md)])?;
    super::context::release_after_commit(lock);
    processed("update", format!("Role {role} signing complete"))
}
