//! `metadata_delegation`: add, update or delete custom delegated roles.
//!
//! The result keeps upstream's shape, quirks included, because the API and
//! CLI show it: `delegated_roles` is `{}` (add, update) or `[]` (delete)
//! when nothing succeeded, an "already exists" reason is a one-element
//! list, and an update reports every other existing role as a "doesn't
//! exist" failure naming a Python object. The metadata, on the other hand,
//! is made correct: one new targets, snapshot and timestamp per request,
//! all under `LOCK_TARGETS`; new roles expire after their policy; updated
//! roles keep their place (first match wins for artifact paths); keys no
//! role uses any more are removed; deleted roles leave snapshot through a
//! new, signed version.
use std::sync::Arc;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::context::{Context, Publication, Result};
use super::delegations::{
    add_keys, add_roles, assign_keys, create_rows, custom_delegations, drop_unused_keys,
    first_versions, record_role_names, refuse_hash_bins, rows_for, save_policies,
    DelegationRequest, OnlineKey, RoleRequest,
};
use super::input::{check_role_name, member, required, string};
use super::resign::{publish_with_targets, record_versions, Resign};
use super::result::done;
use super::signing::{clear_pending, set_pending};
use super::{Action, Error};
use crate::backend::Failure;
use crate::backend::TaskResult;
use crate::lock::LockGuard;
use crate::settings::{SettingName, SettingValue};
use crate::tuf::key::hex_lower;
use crate::tuf::metadata::{DelegatedRole, Delegations, Targets};
use crate::tuf::{Key, KeyId, Metadata, Signer, UtcTime};

pub fn run(ctx: &Context, payload: &Value) -> Result<TaskResult> {
    match member(payload, "action").and_then(Value::as_str) {
        Some("add") => add(ctx, payload),
        Some("update") => update(ctx, payload),
        Some("delete") => delete(ctx, payload),
        _ => Err(Error::Raised(Failure::new(
            "builtins",
            "ValueError",
            "metadata delegation supports 'add', 'update', 'remove'",
        ))),
    }
}

fn processed(delegated: Value, failed: Vec<Value>) -> Result<TaskResult> {
    done(
        Action::MetadataDelegation,
        "Metadata Delegation Processed",
        json!({"delegated_roles": delegated, "failed_roles": failed}),
    )
}

/// Upstream returns its dict of successes when it is empty (`[...] or
/// success`), which the API shows as `{}`.
fn names_or_empty_dict(names: Vec<String>) -> Value {
    if names.is_empty() {
        json!({})
    } else {
        json!(names)
    }
}

/// What every change works on: the lock, targets and the online signer.
struct Change {
    lock: LockGuard,
    targets: Metadata<Targets>,
    online_keyid: KeyId,
    online_key: Key,
    signer: Arc<dyn Signer>,
}

impl Change {
    fn begin(ctx: &Context, verb: &str) -> Result<Change> {
        let lock = ctx.lock_targets()?;
        let targets = ctx.load::<Targets>("targets")?;
        refuse_hash_bins(&targets.signed, verb)?;
        let (online_keyid, online_key) = ctx.online_key()?;
        Ok(Change {
            lock,
            targets,
            signer: ctx.signer_for(&online_keyid, &online_key)?,
            online_keyid,
            online_key,
        })
    }

    /// The online key, and the custom delegations of targets to change.
    fn parts(&mut self) -> (OnlineKey<'_>, &mut Delegations) {
        let online = OnlineKey {
            keyid: &self.online_keyid,
            key: &self.online_key,
        };
        (online, custom_delegations(&mut self.targets.signed))
    }

    /// Publishes `roles`, the new targets and a snapshot recording them
    /// (and no longer listing `removed`), then the timestamp.
    fn publish(
        &mut self,
        ctx: &Context,
        roles: &[(String, Metadata<Targets>)],
        removed: &[String],
    ) -> Result<()> {
        let mut publication = Publication::default();
        publish_with_targets(
            ctx,
            roles,
            &mut self.targets,
            removed,
            self.signer.as_ref(),
            &mut publication,
        )?;
        publication.commit(ctx, Some(&mut self.lock))?;
        ctx.set_setting_json("TRUSTED_TARGETS", &self.targets)
    }

    fn finish(self) -> Result<()> {
        super::context::release_after_commit(self.lock);
        Ok(())
    }
}

fn request(payload: &Value) -> Result<DelegationRequest> {
    DelegationRequest::parse(
        required(payload, "delegations", "delegations")?,
        "delegations",
    )
}

fn add(ctx: &Context, payload: &Value) -> Result<TaskResult> {
    let request = request(payload)?;
    let mut change = Change::begin(ctx, "cannot add custom roles")?;
    let (online, delegations) = change.parts();
    let added = add_roles(ctx, delegations, &request, &online)?;
    if added.created.is_empty() {
        change.finish()?;
        return processed(json!({}), added.failed);
    }
    let now = UtcTime::now()?;
    let first = first_versions(
        &change.targets.signed,
        &added.created,
        change.signer.as_ref(),
        now,
    )?;
    // Before the files: a name recorded for a role that then failed to
    // publish is only burnt, while a published role without its row could
    // never receive artifacts.
    save_policies(ctx, &added.created)?;
    create_rows(ctx, &rows_for(&added.created, now)?)?;
    change.publish(ctx, &first.published, &[])?;
    for (name, md) in &first.pending {
        set_pending(ctx, name, md)?;
    }
    record_role_names(ctx, &change.targets.signed)?;
    change.finish()?;
    let names = added.created.into_iter().map(|r| r.role.name).collect();
    processed(names_or_empty_dict(names), added.failed)
}

fn update(ctx: &Context, payload: &Value) -> Result<TaskResult> {
    let request = request(payload)?;
    let mut change = Change::begin(ctx, "cannot updatecustom roles")?;
    let (online, delegations) = change.parts();
    let (updated, failed) = apply_updates(delegations, &request, &online)?;
    if updated.is_empty() {
        change.finish()?;
        return processed(json!({}), failed);
    }
    save_changed_policies(ctx, &updated)?;
    let now = UtcTime::now()?;
    let roles = updated
        .iter()
        .map(|r| Ok((r.role.name.clone(), now.add_days(r.expire_days)?)))
        .collect::<Result<Vec<_>>>()?;
    // Their delegation changed, so even offline roles need new signatures.
    let resigned = Resign {
        targets: &change.targets.signed,
        signer: change.signer.as_ref(),
        offline_too: true,
    }
    .run(ctx, &roles)?;
    change.publish(ctx, &resigned.published, &[])?;
    for (name, md) in &resigned.pending {
        set_pending(ctx, name, md)?;
    }
    record_versions(ctx, &resigned.published)?;
    change.finish()?;
    let names = updated.iter().map(|r| r.role.name.clone()).collect();
    processed(names_or_empty_dict(names), failed)
}

/// Replaces the definitions of existing roles with the requested ones;
/// returns the roles updated and upstream's failure entries.
fn apply_updates<'r>(
    delegations: &mut Delegations,
    request: &'r DelegationRequest,
    online: &OnlineKey,
) -> Result<(Vec<&'r RoleRequest>, Vec<Value>)> {
    let existing: Vec<String> = delegations
        .roles
        .iter()
        .flatten()
        .map(|r| r.name.clone())
        .collect();
    let mut updated = Vec::new();
    let mut failed = Vec::new();
    for (i, requested) in request.roles.iter().enumerate() {
        let name = &requested.role.name;
        // Upstream compares every requested role with every existing one, in
        // order, and reports each mismatch; the API shows those entries.
        for other in &existing {
            if other != name {
                failed.push(json!({
                    "role": name,
                    "reason": format!("role {} doesn't exist.", python_repr(&requested.role)),
                }));
                continue;
            }
            let mut role = requested.role.clone();
            if let Some(failure) = assign_keys(&mut role, online) {
                failed.push(failure);
                continue;
            }
            let field = format!("delegations.roles[{i}].keyids");
            replace_role(delegations, role, request, online, &field)?;
            updated.push(requested);
        }
    }
    Ok((updated, failed))
}

/// Puts the new definition of a role in the place of the old one and
/// drops keys only the old definition used.
fn replace_role(
    delegations: &mut Delegations,
    role: DelegatedRole,
    request: &DelegationRequest,
    online: &OnlineKey,
    field: &str,
) -> Result<()> {
    add_keys(delegations, &role.keyids, &request.keys, online, field)?;
    let roles = delegations.roles.get_or_insert_with(Vec::new);
    let Some(slot) = roles.iter_mut().find(|r| r.name == role.name) else {
        return Ok(());
    };
    let old = std::mem::replace(slot, role);
    drop_unused_keys(delegations, &old.keyids);
    Ok(())
}

/// `<ROLE>_EXPIRATION` of updated roles whose policy changed.
fn save_changed_policies(ctx: &Context, updated: &[&RoleRequest]) -> Result<()> {
    for requested in updated {
        let setting = format!("{}_EXPIRATION", requested.role.name.to_uppercase());
        let current = ctx.settings().get_fresh(&SettingName::new(&setting))?;
        if current != Some(SettingValue::Int(requested.expire_days)) {
            ctx.set_setting(&setting, SettingValue::Int(requested.expire_days))?;
        }
    }
    Ok(())
}

/// How Python prints a `DelegatedRole` (it has no `__repr__`). Upstream's
/// text carries the object's memory address; this one is made up from the
/// role name, so it looks the same and stays stable between runs.
pub fn python_repr(role: &DelegatedRole) -> String {
    let digest = hex_lower(&Sha256::digest(role.name.as_bytes()));
    format!(
        "<tuf.api._payload.DelegatedRole object at 0x7f{}0>",
        &digest[..9]
    )
}

fn delete(ctx: &Context, payload: &Value) -> Result<TaskResult> {
    let requested = role_names_to_delete(payload)?;
    let mut change = Change::begin(ctx, "cannot delete custom roles")?;
    let (_, delegations) = change.parts();
    let mut removed: Vec<String> = Vec::new();
    let mut failed = Vec::new();
    for name in requested {
        let roles = delegations.roles.get_or_insert_with(Vec::new);
        let Some(at) = roles.iter().position(|r| r.name == name) else {
            failed.push(json!({
                "role": name,
                "reason": format!("Role '{name}' does not exists"),
            }));
            continue;
        };
        let role = roles.remove(at);
        drop_unused_keys(delegations, &role.keyids);
        removed.push(name);
    }
    if removed.is_empty() {
        change.finish()?;
        return processed(json!([]), failed);
    }
    change.publish(ctx, &[], &removed)?;
    for name in &removed {
        clear_pending(ctx, name)?;
        ctx.db
            .deactivate_role(&super::context::role_name(name.as_str())?)?;
    }
    record_role_names(ctx, &change.targets.signed)?;
    change.finish()?;
    processed(json!(removed), failed)
}

/// `delegations.roles[].name` of a delete request (no keys, no policy).
fn role_names_to_delete(payload: &Value) -> Result<Vec<String>> {
    let delegations = required(payload, "delegations", "delegations")?;
    let roles = required(delegations, "roles", "delegations.roles")?
        .as_array()
        .ok_or_else(|| Error::payload("delegations.roles", "must be a list of roles"))?;
    let mut names = Vec::with_capacity(roles.len());
    for (i, role) in roles.iter().enumerate() {
        let field = format!("delegations.roles[{i}].name");
        let name = string(role, "name", &field)?;
        check_role_name(name, &field)?;
        names.push(name.to_owned());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_python_repr_is_stable_and_plausible() {
        let role: DelegatedRole = serde_json::from_value(json!({
            "name": "tenant1-group1", "keyids": [], "threshold": 1,
            "terminating": true, "paths": ["tenant1/group1/*"],
        }))
        .unwrap();
        let repr = python_repr(&role);
        assert_eq!(repr, python_repr(&role));
        let address = repr
            .strip_prefix("<tuf.api._payload.DelegatedRole object at 0x")
            .and_then(|r| r.strip_suffix('>'))
            .unwrap();
        assert_eq!(address.len(), 12);
        assert!(address.starts_with("7f") && address.ends_with('0'));
        assert!(u64::from_str_radix(address, 16).is_ok());
    }

    #[test]
    fn nothing_succeeded_reads_as_an_empty_dict() {
        assert_eq!(names_or_empty_dict(Vec::new()), json!({}));
        assert_eq!(names_or_empty_dict(vec!["a".into()]), json!(["a"]));
    }
}
