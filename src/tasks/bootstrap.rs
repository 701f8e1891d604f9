//! `bootstrap`: the one-time setup of a repository from a root the
//! operators signed offline. When root meets its own threshold the worker
//! creates and publishes everything signed online (targets, hash bins or
//! custom roles, snapshot, timestamp) and then root; otherwise root waits
//! in `ROOT_SIGNING` for `sign_metadata` to finish the job.
use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::context::{online_key_of, Context, Publication, Result};
use super::delegations::{
    add_roles, create_rows, custom_delegations, first_versions, record_role_names, rows_for,
    save_policies, DelegationRequest, OnlineKey,
};
use super::input::{days, member, metadata, required};
use super::result::{done, failed};
use super::signing::{
    clear_pending, json_setting, set_online_key, set_pending, signature_is_valid, threshold_met,
};
use super::{Action, Error};
use crate::backend::TaskResult;
use crate::celery::TaskId;
use crate::db::NewRole;
use crate::settings::{BootstrapState, SettingName, SettingValue};
use crate::storage::MetadataFile;
use crate::tuf::hashbins::HashBins;
use crate::tuf::metadata::{
    Delegations, MetaFile, Root, Snapshot, SuccinctRoles, Targets, Timestamp,
};
use crate::tuf::{KeyId, Metadata, Signer, UtcTime, Version};

const FAILED: &str = "Bootstrap Failed";
const PROCESSED: &str = "Bootstrap Processed";
/// The top-level roles in the order upstream saves their settings.
const TOP_LEVEL: [&str; 4] = ["root", "snapshot", "targets", "timestamp"];

pub fn run(ctx: &Context, task: &TaskId, payload: &Value) -> Result<TaskResult> {
    let Some(settings) = member(payload, "settings") else {
        return failed(Action::Bootstrap, FAILED, "No 'settings' in the payload");
    };
    let Some(metadata_field) = member(payload, "metadata") else {
        return failed(Action::Bootstrap, FAILED, "No 'metadata' in the payload");
    };
    // The API writes `pre-<id>` before it sends the task; anything else
    // means a bootstrap is done or waiting for signatures.
    let state = ctx
        .settings()
        .get_fresh_str(&SettingName::new("BOOTSTRAP"))?;
    if let Some(state) = state.filter(|s| !s.contains("pre-")) {
        return failed(
            Action::Bootstrap,
            FAILED,
            format!("Bootstrap state is {state}"),
        );
    }
    let root: Metadata<Root> = metadata(
        required(metadata_field, "root", "metadata.root")?,
        "metadata.root",
    )?;
    if let Some(problem) = signature_problem(&root)? {
        ctx.settings().set_bootstrap_state(&BootstrapState::None)?;
        return failed(Action::Bootstrap, FAILED, problem);
    }
    let roles = required(settings, "roles", "settings.roles")?;
    if truthy(roles, "bins") && (truthy(roles, "delegated_roles") || truthy(roles, "delegations")) {
        return failed(
            Action::Bootstrap,
            FAILED,
            "Bootstrap cannot use both hash bin delegation and custom target delegations",
        );
    }
    BootstrapSettings::parse(roles)?.save(ctx, &root)?;

    let message = if threshold_met(&root.signed.role_spec("root")?, &root)? {
        finalize(ctx, &root, task.as_str())?;
        format!("Bootstrap finished {task}")
    } else {
        set_pending(ctx, "root", &root)?;
        ctx.settings()
            .set_bootstrap_state(&BootstrapState::Signing(crate::celery::TaskId::new(
                task.as_str(),
            )))?;
        format!("Root v{} is pending signature", root.version())
    };
    done(
        Action::Bootstrap,
        PROCESSED,
        json!({ "bootstrap": message }),
    )
}

/// Why root's signatures disqualify the bootstrap: none at all, or one
/// that is not a valid signature by a root key.
fn signature_problem(root: &Metadata<Root>) -> Result<Option<&'static str>> {
    if root.signatures.is_empty() {
        return Ok(Some("Metadata requires at least one valid signature"));
    }
    let spec = root.signed.role_spec("root")?;
    for signature in &root.signatures {
        if !signature_is_valid(&spec, root, signature)? {
            return Ok(Some("Bootstrap has invalid signature(s)"));
        }
    }
    Ok(None)
}

/// Python's truthiness of `roles.get(name)`.
fn truthy(roles: &Value, name: &str) -> bool {
    match roles.get(name) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::Bool(true)) => true,
    }
}

/// How targets delegates.
enum Layout {
    Bins {
        count: u64,
        days: i64,
    },
    /// The `delegations` object as sent; finalize reads it back.
    Custom(Value),
}

/// `settings.roles` of the payload, checked in full before anything is
/// saved (upstream saves as it reads and may stop half-way).
struct BootstrapSettings {
    expiration: BTreeMap<&'static str, i64>,
    layout: Layout,
}

impl BootstrapSettings {
    fn parse(roles: &Value) -> Result<BootstrapSettings> {
        let mut expiration = BTreeMap::new();
        for role in TOP_LEVEL {
            let field = format!("settings.roles.{role}.expiration");
            let role_settings = required(roles, role, &format!("settings.roles.{role}"))?;
            expiration.insert(
                role,
                days(required(role_settings, "expiration", &field)?, &field)?,
            );
        }
        let layout = if truthy(roles, "bins") {
            let bins = &roles["bins"];
            let field = "settings.roles.bins.number_of_delegated_bins";
            let count = required(bins, "number_of_delegated_bins", field)?
                .as_u64()
                .filter(|n| HashBins::from_count(*n).is_ok())
                .ok_or_else(|| Error::payload(field, "must be a power of two from 2 to 16384"))?;
            let field = "settings.roles.bins.expiration";
            let days = days(required(bins, "expiration", field)?, field)?;
            Layout::Bins { count, days }
        } else if truthy(roles, "delegations") {
            let delegations = &roles["delegations"];
            DelegationRequest::parse(delegations, "settings.roles.delegations")?;
            Layout::Custom(delegations.clone())
        } else {
            return Err(Error::payload(
                "settings.roles",
                "needs 'bins' (hash-bin delegation) or 'delegations' (custom roles)",
            ));
        };
        Ok(BootstrapSettings { expiration, layout })
    }

    /// Upstream's `save_settings`, field for field.
    fn save(&self, ctx: &Context, root: &Metadata<Root>) -> Result<()> {
        for (role, days) in &self.expiration {
            let upper = role.to_uppercase();
            let (threshold, keys) = match *role {
                // Upstream counts root's signatures as its "number of keys".
                "root" => (
                    i64::from(root.signed.role_spec("root")?.threshold),
                    root.signatures.len() as i64,
                ),
                _ => (1, 1),
            };
            ctx.set_setting(&format!("{upper}_EXPIRATION"), SettingValue::Int(*days))?;
            ctx.set_setting(&format!("{upper}_THRESHOLD"), SettingValue::Int(threshold))?;
            ctx.set_setting(&format!("{upper}_NUM_KEYS"), SettingValue::Int(keys))?;
        }
        ctx.set_setting("TARGETS_ONLINE_KEY", SettingValue::Bool(true))?;
        match &self.layout {
            Layout::Bins { count, days } => {
                ctx.set_setting("BINS_EXPIRATION", SettingValue::Int(*days))?;
                ctx.set_setting("BINS_THRESHOLD", SettingValue::Int(1))?;
                ctx.set_setting("BINS_NUM_KEYS", SettingValue::Int(1))?;
                ctx.set_setting("NUMBER_OF_DELEGATED_BINS", SettingValue::Int(*count as i64))?;
                // Finalize picks custom roles whenever DELEGATIONS is set, so
                // one left by an abandoned custom bootstrap must go (upstream
                // never clears it).
                if json_setting::<Value>(ctx, "DELEGATIONS")?.is_some() {
                    ctx.set_setting("DELEGATIONS", SettingValue::None)?;
                }
            }
            Layout::Custom(delegations) => ctx.set_setting_json("DELEGATIONS", delegations)?,
        }
        Ok(())
    }
}

/// Publishes the repository for a root that meets its threshold: delegated
/// roles, targets, snapshot, timestamp, then root, and only then marks the
/// bootstrap finished by task `task_id`.
pub fn finalize(ctx: &Context, root: &Metadata<Root>, task_id: &str) -> Result<()> {
    let (keyid, key) = online_key_of(&root.signed)?;
    let signer = ctx.signer_for(&keyid, &key)?;
    set_online_key(ctx, &keyid, &key)?;
    let mut targets = Metadata::new(Targets::new(Version(1), ctx.expiry_for("targets")?));
    targets.signed.delegations = Some(Delegations {
        keys: BTreeMap::from([(keyid.clone(), key.clone())]),
        roles: None,
        succinct_roles: None,
        extra: Default::default(),
    });
    let online = OnlineKey {
        keyid: &keyid,
        key: &key,
    };
    let delegated = match json_setting::<Value>(ctx, "DELEGATIONS")? {
        Some(requested) => custom_roles(ctx, &mut targets.signed, &requested, &online, &*signer)?,
        None => hash_bins(ctx, &mut targets.signed, &keyid, &*signer)?,
    };
    let mut publication = delegated.publication;
    targets.sign(signer.as_ref())?;
    publication.add("targets", &targets)?;
    let snapshot = first_snapshot(ctx, &delegated.listed, signer.as_ref())?;
    publication.add("snapshot", &snapshot)?;
    let mut timestamp = Metadata::new(Timestamp::new(
        Version(1),
        ctx.expiry_for("timestamp")?,
        MetaFile::new(snapshot.version()),
    ));
    timestamp.sign(signer.as_ref())?;
    publication.add("timestamp", &timestamp)?;
    publication.add("root", root)?;
    publication.commit(ctx, None)?;

    // Rows after the files: if anything fails from here on, BOOTSTRAP is
    // unchanged and the whole bootstrap can run again.
    create_rows(ctx, &delegated.rows)?;
    for (name, md) in &delegated.pending {
        set_pending(ctx, name, md)?;
    }
    ctx.set_setting_json("TRUSTED_TARGETS", &targets)?;
    clear_pending(ctx, "root")?;
    ctx.set_setting_json("TRUSTED_ROOT", root)?;
    record_role_names(ctx, &targets.signed)?;
    ctx.settings()
        .set_bootstrap_state(&BootstrapState::Finished(crate::celery::TaskId::new(
            task_id,
        )))?;
    Ok(())
}

/// The delegated roles of a new repository: files to publish before
/// targets, the names snapshot lists, roles waiting for offline keys, and
/// their database rows.
struct DelegatedRoles {
    publication: Publication,
    listed: Vec<String>,
    pending: Vec<(String, Metadata<Targets>)>,
    rows: Vec<NewRole>,
}

/// The custom roles `DELEGATIONS` asks for, added to `targets`.
fn custom_roles(
    ctx: &Context,
    targets: &mut Targets,
    requested: &Value,
    online: &OnlineKey,
    signer: &dyn Signer,
) -> Result<DelegatedRoles> {
    let request = DelegationRequest::parse(requested, "DELEGATIONS")?;
    let now = UtcTime::now()?;
    let added = add_roles(ctx, custom_delegations(targets), &request, online)?;
    let first = first_versions(targets, &added.created, signer, now)?;
    save_policies(ctx, &added.created)?;
    let mut publication = Publication::default();
    for (name, md) in &first.published {
        publication.add(name, md)?;
    }
    Ok(DelegatedRoles {
        publication,
        listed: first.published.iter().map(|(n, _)| n.clone()).collect(),
        pending: first.pending,
        rows: rows_for(&added.created, now)?,
    })
}

/// `NUMBER_OF_DELEGATED_BINS` empty bins, delegated from `targets` to the
/// online key. All bins have the same content, so one signature serves
/// them all, and one encoding.
fn hash_bins(
    ctx: &Context,
    targets: &mut Targets,
    keyid: &KeyId,
    signer: &dyn Signer,
) -> Result<DelegatedRoles> {
    let bins = bins_from_settings(ctx)?;
    if let Some(delegations) = targets.delegations.as_mut() {
        delegations.succinct_roles = Some(SuccinctRoles {
            bit_length: bins.bit_length(),
            name_prefix: bins.name_prefix().to_owned(),
            keyids: vec![keyid.clone()],
            threshold: 1,
            extra: Default::default(),
        });
    }
    let expires = ctx.expiry_for("bins")?;
    let mut empty = Metadata::new(Targets::new(Version(1), expires));
    empty.sign(signer)?;
    let bytes = empty.to_file_bytes()?;
    let mut publication = Publication::default();
    let mut listed = Vec::with_capacity(bins.count() as usize);
    let mut rows = Vec::with_capacity(bins.count() as usize);
    for (_, name) in bins.roles() {
        let role = super::context::role_name(name.as_str())?;
        publication.add_encoded(
            MetadataFile::persisted(role.clone(), Version(1)),
            bytes.clone(),
        );
        rows.push(NewRole {
            name: role,
            expires: expires.to_system_time(),
            version: Version(1),
        });
        listed.push(name);
    }
    Ok(DelegatedRoles {
        publication,
        listed,
        pending: Vec::new(),
        rows,
    })
}

fn bins_from_settings(ctx: &Context) -> Result<HashBins> {
    let count = ctx
        .setting_int("NUMBER_OF_DELEGATED_BINS")?
        .ok_or_else(|| {
            Error::Repository(
                "setting NUMBER_OF_DELEGATED_BINS is missing; run the bootstrap again".into(),
            )
        })?;
    Ok(HashBins::from_count(u64::try_from(count).unwrap_or(0))?)
}

/// Snapshot version 1: targets and every published delegated role at 1.
fn first_snapshot(
    ctx: &Context,
    roles: &[String],
    signer: &dyn Signer,
) -> Result<Metadata<Snapshot>> {
    let mut snapshot = Snapshot::new(Version(1), ctx.expiry_for("snapshot")?);
    snapshot
        .meta
        .insert("targets.json".into(), MetaFile::new(Version(1)));
    for role in roles {
        snapshot
            .meta
            .insert(format!("{role}.json"), MetaFile::new(Version(1)));
    }
    let mut snapshot = Metadata::new(snapshot);
    snapshot.sign(signer)?;
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuf::testdata;

    fn vector_root(name: &str) -> Metadata<Root> {
        let doc = testdata::json(&format!("vectors/payloads/{name}.json"));
        metadata(
            &doc["kwargs"]["payload"]["metadata"]["root"],
            "metadata.root",
        )
        .unwrap()
    }

    #[test]
    fn signature_problems_of_the_vector_roots() {
        assert_eq!(
            signature_problem(&vector_root("bootstrap-bins")).unwrap(),
            None
        );
        assert_eq!(
            signature_problem(&vector_root("bootstrap-bins-pending-signature")).unwrap(),
            None
        );
        let mut none = vector_root("bootstrap-bins");
        none.signatures.clear();
        assert_eq!(
            signature_problem(&none).unwrap(),
            Some("Metadata requires at least one valid signature")
        );
        let mut bad = vector_root("bootstrap-bins");
        bad.signatures[1].sig = bad.signatures[0].sig.clone();
        assert_eq!(
            signature_problem(&bad).unwrap(),
            Some("Bootstrap has invalid signature(s)")
        );
    }

    #[test]
    fn python_truthiness_of_settings() {
        let roles = json!({"a": {}, "b": {"x": 1}, "c": null, "d": [], "e": 0, "f": "x"});
        let truth: Vec<bool> = ["a", "b", "c", "d", "e", "f", "g"]
            .iter()
            .map(|k| truthy(&roles, k))
            .collect();
        assert_eq!(truth, [false, true, false, false, false, true, false]);
    }

    fn settings_error(edit: impl FnOnce(&mut Value)) -> String {
        let doc = testdata::json("vectors/payloads/bootstrap-bins.json");
        let mut roles = doc["kwargs"]["payload"]["settings"]["roles"].clone();
        edit(&mut roles);
        match BootstrapSettings::parse(&roles) {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn settings_are_checked_before_anything_is_saved() {
        assert_eq!(settings_error(|_| {}), "ok");
        assert_eq!(
            settings_error(|r| r["bins"]["number_of_delegated_bins"] = json!(100)),
            "payload field 'settings.roles.bins.number_of_delegated_bins': must be a power of two from 2 to 16384"
        );
        assert_eq!(
            settings_error(|r| {
                r["snapshot"].as_object_mut().unwrap().remove("expiration");
            }),
            "payload field 'settings.roles.snapshot.expiration': is missing"
        );
        assert_eq!(
            settings_error(|r| {
                r.as_object_mut().unwrap().remove("timestamp");
            }),
            "payload field 'settings.roles.timestamp': is missing"
        );
        assert_eq!(
            settings_error(|r| {
                r.as_object_mut().unwrap().remove("bins");
            }),
            "payload field 'settings.roles': needs 'bins' (hash-bin delegation) or 'delegations' (custom roles)"
        );
        assert_eq!(
            settings_error(|r| r["targets"]["expiration"] = json!("365")),
            "payload field 'settings.roles.targets.expiration': must be a whole number of days, at least 1"
        );
    }
}
