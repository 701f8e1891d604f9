//! Custom delegations: the roles an operator delegates to, with their keys
//! and expiration policy, as the bootstrap and `metadata_delegation`
//! payloads describe them, and what creating one involves (targets entry,
//! keys, first metadata, settings, database row).
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::context::{Context, Result};
use super::input::{check_role_name, days, parse, required};
use super::resign::parallel;
use super::signing::threshold_met;
use super::Error;
use crate::backend::Failure;
use crate::db::NewRole;
use crate::settings::SettingValue;
use crate::tuf::crypto::PublicKey;
use crate::tuf::hashbins::HashBins;
use crate::tuf::metadata::{DelegatedRole, Delegations, Targets};
use crate::tuf::{Key, KeyId, Metadata, Signer, UtcTime, Version};

/// The role field carrying a custom role's expiration policy in days; it
/// stays in the targets metadata, as upstream keeps it.
pub const EXPIRE_POLICY: &str = "x-rstuf-expire-policy";

/// More roles than this in one request is not an operator's delegation
/// plan but a mistake (or an attack on the worker's memory).
const MAX_ROLES: usize = 10_000;

/// One delegated role as requested.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleRequest {
    pub role: DelegatedRole,
    pub expire_days: i64,
}

/// A `delegations` object of a payload: keys and roles, in request order.
#[derive(Debug, Clone, PartialEq)]
pub struct DelegationRequest {
    pub keys: BTreeMap<KeyId, Key>,
    pub roles: Vec<RoleRequest>,
}

impl DelegationRequest {
    /// Parses and checks everything python-tuf would refuse, plus what
    /// RSTUF needs (safe names, an expiration policy, usable keys).
    pub fn parse(value: &Value, field: &str) -> Result<DelegationRequest> {
        let keys_field = format!("{field}.keys");
        let keys: BTreeMap<KeyId, Key> = parse(required(value, "keys", &keys_field)?, &keys_field)?;
        for (keyid, key) in &keys {
            PublicKey::from_key(key)
                .map_err(|e| Error::payload(format!("{keys_field}.{keyid}"), e.to_string()))?;
        }
        let roles_field = format!("{field}.roles");
        let listed = required(value, "roles", &roles_field)?
            .as_array()
            .ok_or_else(|| Error::payload(&roles_field, "must be a list of roles"))?;
        if listed.len() > MAX_ROLES {
            return Err(Error::payload(
                &roles_field,
                format!(
                    "lists {} roles; at most {MAX_ROLES} per request",
                    listed.len()
                ),
            ));
        }
        let mut names = BTreeSet::new();
        let mut roles = Vec::with_capacity(listed.len());
        for (i, raw) in listed.iter().enumerate() {
            let at = format!("{roles_field}[{i}]");
            let request = parse_role(raw, &at)?;
            if !names.insert(request.role.name.clone()) {
                return Err(Error::payload(
                    format!("{at}.name"),
                    format!("role {:?} is listed more than once", request.role.name),
                ));
            }
            roles.push(request);
        }
        Ok(DelegationRequest { keys, roles })
    }
}

fn parse_role(raw: &Value, at: &str) -> Result<RoleRequest> {
    let role: DelegatedRole = parse(raw, at)?;
    check_role_name(&role.name, &format!("{at}.name"))?;
    if role.threshold == 0 {
        return Err(Error::payload(
            format!("{at}.threshold"),
            "must be at least 1",
        ));
    }
    let mut seen = BTreeSet::new();
    if let Some(dup) = role.keyids.iter().find(|k| !seen.insert(*k)) {
        return Err(Error::payload(
            format!("{at}.keyids"),
            format!("key {dup} is listed more than once"),
        ));
    }
    if role.paths.is_some() == role.path_hash_prefixes.is_some() {
        return Err(Error::payload(
            at,
            "exactly one of paths and path_hash_prefixes must be set",
        ));
    }
    let patterns = role.paths.iter().chain(&role.path_hash_prefixes).flatten();
    if patterns.into_iter().any(|p| p.contains('\0')) {
        return Err(Error::payload(
            at,
            "a path pattern contains a NUL character",
        ));
    }
    let policy_field = format!("{at}.{EXPIRE_POLICY}");
    let policy = role
        .extra
        .get(EXPIRE_POLICY)
        .ok_or_else(|| Error::payload(&policy_field, "is missing"))?;
    let expire_days = days(policy, &policy_field)?;
    Ok(RoleRequest { role, expire_days })
}

/// The roles a request added to the targets delegations, and the ones it
/// could not add, in upstream's `failed_roles` shape.
#[derive(Debug, Default)]
pub struct Added {
    pub created: Vec<RoleRequest>,
    pub failed: Vec<Value>,
}

/// The online key: what a role with no keys of its own is signed with.
pub struct OnlineKey<'a> {
    pub keyid: &'a KeyId,
    pub key: &'a Key,
}

/// Adds the requested roles at the end of `delegations` (custom roles,
/// never hash bins), with their keys. A name in use now or in the past is
/// refused; a role without keys gets the online key.
pub fn add_roles(
    ctx: &Context,
    delegations: &mut Delegations,
    request: &DelegationRequest,
    online: &OnlineKey,
) -> Result<Added> {
    let mut added = Added::default();
    for (i, requested) in request.roles.iter().enumerate() {
        let name = &requested.role.name;
        let listed = delegations
            .roles
            .as_ref()
            .is_some_and(|roles| roles.iter().any(|r| &r.name == name));
        if listed
            || ctx
                .db
                .role_name_taken(&super::context::role_name(name.as_str())?)?
        {
            added.failed.push(json!({
                "role": name,
                // A tuple in upstream's code, so the API shows a list.
                "reason": ["role already exists or name used in the past"],
            }));
            continue;
        }
        let mut role = requested.role.clone();
        if let Some(failure) = assign_keys(&mut role, online) {
            added.failed.push(failure);
        }
        let field = format!("delegations.roles[{i}].keyids");
        add_keys(delegations, &role.keyids, &request.keys, online, &field)?;
        delegations
            .roles
            .get_or_insert_with(Vec::new)
            .push(role.clone());
        added.created.push(RoleRequest {
            role,
            expire_days: requested.expire_days,
        });
    }
    Ok(added)
}

/// Gives a role without keys the online key. Upstream reports a threshold
/// above 1 as a failure but adds the role all the same (signed by one key,
/// it then waits for signatures forever); that is kept, the API shows it.
pub fn assign_keys(role: &mut DelegatedRole, online: &OnlineKey) -> Option<Value> {
    if !role.keyids.is_empty() {
        return None;
    }
    role.keyids.push(online.keyid.clone());
    (role.threshold > 1)
        .then(|| json!({"role": role.name, "reason": "If no keys assigned threshold must be 1"}))
}

/// Makes every key of `keyids` known to the delegations, from the request's
/// keys or the online key.
pub fn add_keys(
    delegations: &mut Delegations,
    keyids: &[KeyId],
    requested: &BTreeMap<KeyId, Key>,
    online: &OnlineKey,
    field: &str,
) -> Result<()> {
    for keyid in keyids {
        if delegations.keys.contains_key(keyid) {
            continue;
        }
        let key = match requested.get(keyid) {
            Some(key) => key,
            None if keyid == online.keyid => online.key,
            None => {
                return Err(Error::payload(
                    field,
                    format!("key {keyid} is not in delegations.keys"),
                ))
            }
        };
        delegations.keys.insert(keyid.clone(), key.clone());
    }
    Ok(())
}

/// Removes the keys among `candidates` that no role uses any more.
pub fn drop_unused_keys(delegations: &mut Delegations, candidates: &[KeyId]) {
    let roles = delegations.roles.as_deref().unwrap_or_default();
    for keyid in candidates {
        if !roles.iter().any(|r| r.keyids.contains(keyid)) {
            delegations.keys.remove(keyid);
        }
    }
}

/// First metadata of new roles: published now when the online key alone
/// meets the threshold, otherwise waiting for offline signatures.
#[derive(Debug, Default)]
pub struct FirstVersions {
    pub published: Vec<(String, Metadata<Targets>)>,
    pub pending: Vec<(String, Metadata<Targets>)>,
}

/// Version 1 of each created role: empty, expiring after its policy (unlike
/// upstream, whose new roles expire the moment they are made), signed by
/// the online key when the role lists it (in parallel, as the signer
/// prefers).
pub fn first_versions(
    targets: &Targets,
    created: &[RoleRequest],
    signer: &dyn Signer,
    now: UtcTime,
) -> Result<FirstVersions> {
    let signed = parallel(created, signer.concurrency(), |requested| {
        let mut md = Metadata::new(Targets::new(
            Version(1),
            now.add_days(requested.expire_days)?,
        ));
        if requested.role.keyids.contains(signer.keyid()) {
            md.sign(signer)?;
        }
        Ok(md)
    })?;
    let mut out = FirstVersions::default();
    for (requested, md) in created.iter().zip(signed) {
        let name = &requested.role.name;
        if threshold_met(&targets.role_spec(name)?, &md)? {
            out.published.push((name.clone(), md));
        } else {
            out.pending.push((name.clone(), md));
        }
    }
    Ok(out)
}

/// The `<ROLE>_EXPIRATION` settings of created roles.
pub fn save_policies(ctx: &Context, created: &[RoleRequest]) -> Result<()> {
    for requested in created {
        ctx.set_setting(
            &format!("{}_EXPIRATION", requested.role.name.to_uppercase()),
            SettingValue::Int(requested.expire_days),
        )?;
    }
    Ok(())
}

/// Database rows of created roles: version 1, expiring after the policy.
pub fn rows_for(created: &[RoleRequest], now: UtcTime) -> Result<Vec<NewRole>> {
    created
        .iter()
        .map(|requested| {
            Ok(NewRole {
                name: super::context::role_name(requested.role.name.as_str())?,
                expires: now.add_days(requested.expire_days)?.to_system_time(),
                version: Version(1),
            })
        })
        .collect()
}

/// Inserts role rows in one statement (bootstrap creates 16384 bins).
pub fn create_rows(ctx: &Context, rows: &[NewRole]) -> Result<()> {
    if !rows.is_empty() {
        ctx.db.create_roles(rows)?;
    }
    Ok(())
}

/// `DELEGATED_ROLES_NAMES`: the API's `POST /metadata/online` reads it to
/// tell hash bins from custom roles. Upstream never writes it (the endpoint
/// then fails); this worker keeps it current. Nothing left is stored as
/// None: dynaconf reads an empty list as missing anyway.
pub fn record_role_names(ctx: &Context, targets: &Targets) -> Result<()> {
    let names = delegated_role_names(targets)?;
    if names.is_empty() {
        ctx.set_setting("DELEGATED_ROLES_NAMES", SettingValue::None)
    } else {
        ctx.set_setting_json("DELEGATED_ROLES_NAMES", &names)
    }
}

/// Every role targets delegates to: all bins, or the custom roles in order.
pub fn delegated_role_names(targets: &Targets) -> Result<Vec<String>> {
    let Some(delegations) = &targets.delegations else {
        return Ok(Vec::new());
    };
    if let Some(succinct) = &delegations.succinct_roles {
        let bins = HashBins::new(succinct.bit_length, &succinct.name_prefix)?;
        return Ok(bins.roles().map(|(_, name)| name).collect());
    }
    Ok(delegations
        .roles
        .iter()
        .flatten()
        .map(|r| r.name.clone())
        .collect())
}

/// A repository delegating to hash bins has no custom roles to change;
/// upstream raises tuf's RepositoryError with these words.
pub fn refuse_hash_bins(targets: &Targets, verb: &str) -> Result<()> {
    let bins = targets
        .delegations
        .as_ref()
        .is_some_and(|d| d.succinct_roles.is_some());
    if bins {
        return Err(Error::Raised(Failure::new(
            "tuf.api.exceptions",
            "RepositoryError",
            format!("Delegations already using hash-bins, {verb}"),
        )));
    }
    Ok(())
}

/// The delegations of a custom-role targets, created empty if absent.
pub fn custom_delegations(targets: &mut Targets) -> &mut Delegations {
    let delegations = targets.delegations.get_or_insert_with(|| Delegations {
        keys: BTreeMap::new(),
        roles: Some(Vec::new()),
        succinct_roles: None,
        extra: Default::default(),
    });
    delegations.roles.get_or_insert_with(Vec::new);
    delegations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuf::testdata;

    fn vector_request(name: &str, pointer: &str) -> Value {
        let doc = testdata::json(&format!("vectors/payloads/{name}.json"));
        doc.pointer(pointer).unwrap().clone()
    }

    fn parse_error(value: Value) -> String {
        DelegationRequest::parse(&value, "delegations")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_apis_payloads_parse_in_order() {
        let bootstrap = vector_request(
            "bootstrap-custom-delegations",
            "/kwargs/payload/settings/roles/delegations",
        );
        let request = DelegationRequest::parse(&bootstrap, "delegations").unwrap();
        let names: Vec<(&str, i64)> = request
            .roles
            .iter()
            .map(|r| (r.role.name.as_str(), r.expire_days))
            .collect();
        assert_eq!(names, [("dev", 30), ("production", 7), ("default", 1)]);
        assert_eq!(request.keys.len(), 2);
        // The policy stays on the role, as upstream's targets carry it.
        assert_eq!(request.roles[0].role.extra[EXPIRE_POLICY], json!(30));

        let add = vector_request("metadata_delegation-add", "/kwargs/payload/delegations");
        let request = DelegationRequest::parse(&add, "delegations").unwrap();
        assert_eq!(request.roles[1].role.name, "tenant2");
        assert_eq!(request.roles[1].expire_days, 365);
    }

    #[test]
    fn bad_requests_name_the_field() {
        let good = vector_request("metadata_delegation-add", "/kwargs/payload/delegations");
        let with = |pointer: &str, value: Value| {
            let mut doc = good.clone();
            *doc.pointer_mut(pointer).unwrap() = value;
            parse_error(doc)
        };
        assert_eq!(
            with("/roles/0/name", json!("../etc")),
            "payload field 'delegations.roles[0].name': role name \"../etc\" must be letters, digits, '_' or '-'"
        );
        assert_eq!(
            with("/roles/1/name", json!("tenant1-group1")),
            "payload field 'delegations.roles[1].name': role \"tenant1-group1\" is listed more than once"
        );
        assert_eq!(
            with("/roles/0/threshold", json!(0)),
            "payload field 'delegations.roles[0].threshold': must be at least 1"
        );
        assert_eq!(
            with("/roles/0/x-rstuf-expire-policy", json!(0)),
            "payload field 'delegations.roles[0].x-rstuf-expire-policy': must be a whole number of days, at least 1"
        );
        assert_eq!(
            with("/roles/0/paths", json!(["a\u{0}b"])),
            "payload field 'delegations.roles[0]': a path pattern contains a NUL character"
        );
        assert_eq!(
            with("/roles", json!({})),
            "payload field 'delegations.roles': must be a list of roles"
        );
        assert!(with("/roles/0/keyids", json!("x"))
            .starts_with("payload field 'delegations.roles[0]': invalid type"));
        let mut no_policy = good.clone();
        no_policy["roles"][0]
            .as_object_mut()
            .unwrap()
            .remove(EXPIRE_POLICY);
        assert_eq!(
            parse_error(no_policy),
            "payload field 'delegations.roles[0].x-rstuf-expire-policy': is missing"
        );
        let mut bad_key = good.clone();
        bad_key["keys"]["c6d8bf2e4f48b41ac2ce8eca21415ca8ef68c133b47fc33df03d4070a7e1e9cc"]
            ["keyval"]["public"] = json!("zz");
        assert!(parse_error(bad_key).starts_with(
            "payload field 'delegations.keys.c6d8bf2e4f48b41ac2ce8eca21415ca8ef68c133b47fc33df03d4070a7e1e9cc': "
        ));
        let mut many = good;
        many["roles"] = Value::Array(vec![json!({}); MAX_ROLES + 1]);
        assert_eq!(
            parse_error(many),
            "payload field 'delegations.roles': lists 10001 roles; at most 10000 per request"
        );
    }

    fn role(name: &str, keyids: &[&str]) -> DelegatedRole {
        serde_json::from_value(json!({
            "name": name, "keyids": keyids, "threshold": 1, "terminating": true, "paths": ["*"],
        }))
        .unwrap()
    }

    #[test]
    fn keys_no_role_uses_are_dropped_and_only_those() {
        let key: Key = serde_json::from_value(
            testdata::json("vectors/tuf/repo-custom/1-after-bootstrap-and-signing/1.targets.json")
                ["signed"]["delegations"]["keys"]
                ["c6d8bf2e4f48b41ac2ce8eca21415ca8ef68c133b47fc33df03d4070a7e1e9cc"]
                .clone(),
        )
        .unwrap();
        let mut delegations = Delegations {
            keys: BTreeMap::from([
                (KeyId::from("a"), key.clone()),
                (KeyId::from("b"), key.clone()),
                (KeyId::from("c"), key),
            ]),
            roles: Some(vec![role("x", &["a"]), role("y", &["a", "b"])]),
            succinct_roles: None,
            extra: Default::default(),
        };
        delegations.roles.as_mut().unwrap().remove(1);
        drop_unused_keys(&mut delegations, &[KeyId::from("a"), KeyId::from("b")]);
        let left: Vec<&str> = delegations.keys.keys().map(KeyId::as_str).collect();
        assert_eq!(left, ["a", "c"]);
    }

    #[test]
    fn a_role_without_keys_gets_the_online_key() {
        let key: Key = serde_json::from_value(json!({
            "keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "ab"}}))
        .unwrap();
        let online_id = KeyId::from("online");
        let online = OnlineKey {
            keyid: &online_id,
            key: &key,
        };
        let mut one = role("r", &[]);
        assert_eq!(assign_keys(&mut one, &online), None);
        assert_eq!(one.keyids, std::slice::from_ref(&online_id));
        let mut two = role("r2", &[]);
        two.threshold = 2;
        assert_eq!(
            assign_keys(&mut two, &online),
            Some(json!({"role": "r2", "reason": "If no keys assigned threshold must be 1"}))
        );
        let mut keyed = role("r3", &["k"]);
        keyed.threshold = 2;
        assert_eq!(assign_keys(&mut keyed, &online), None);

        let mut delegations = Delegations {
            keys: BTreeMap::new(),
            roles: Some(Vec::new()),
            succinct_roles: None,
            extra: Default::default(),
        };
        add_keys(
            &mut delegations,
            std::slice::from_ref(&online_id),
            &BTreeMap::new(),
            &online,
            "f",
        )
        .unwrap();
        assert!(delegations.keys.contains_key(&online_id));
        let err = add_keys(
            &mut delegations,
            &[KeyId::from("k")],
            &BTreeMap::new(),
            &online,
            "delegations.roles[0].keyids",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "payload field 'delegations.roles[0].keyids': key k is not in delegations.keys"
        );
    }

    #[test]
    fn role_names_of_bins_and_custom_delegations() {
        let bins = testdata::bytes("vectors/tuf/repo-bins/1-after-bootstrap/1.targets.json");
        let bins = Metadata::<Targets>::from_file_bytes(&bins).unwrap().signed;
        let names = delegated_role_names(&bins).unwrap();
        assert_eq!(names.len(), 16);
        assert_eq!(
            (names[0].as_str(), names[15].as_str()),
            ("bins-0", "bins-f")
        );
        let custom =
            testdata::bytes("vectors/tuf/repo-custom/1-after-bootstrap-and-signing/1.targets.json");
        let custom = Metadata::<Targets>::from_file_bytes(&custom)
            .unwrap()
            .signed;
        assert_eq!(
            delegated_role_names(&custom).unwrap(),
            ["dev", "production", "default"]
        );
        let err = refuse_hash_bins(&bins, "cannot updatecustom roles").unwrap_err();
        let failure = err.into_failure(60);
        assert_eq!(
            (failure.exc_module.as_str(), failure.exc_type.as_str()),
            ("tuf.api.exceptions", "RepositoryError")
        );
        assert_eq!(
            failure.exc_message,
            ["Delegations already using hash-bins, cannot updatecustom roles"]
        );
        refuse_hash_bins(&custom, "cannot add custom roles").unwrap();
    }
}
