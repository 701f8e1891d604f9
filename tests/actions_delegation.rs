//! `metadata_delegation` (add, update, delete of custom roles) against a
//! real worker, row by row of upstream's result table, with the metadata a
//! client then verifies.
mod actions_support;
mod common;

use actions_support::*;
use common::services::Deployment;
use serde_json::{json, Value};

const PROCESSED: &str = "Metadata Delegation Processed";

fn delegation(dep: &Deployment, payload: Value) -> Value {
    run_task(dep, "metadata_delegation", payload).1
}

fn assert_processed(record: &Value, delegated: Value, failed: Value) {
    assert_result(
        &record["result"],
        "metadata_delegation",
        PROCESSED,
        Value::Null,
        json!({"delegated_roles": delegated, "failed_roles": failed}),
    );
}

/// The role names targets delegates to, in order.
fn role_names(dep: &Deployment, targets_file: &str) -> Vec<String> {
    delegated_roles(&file(dep, targets_file))
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

#[test]
fn hash_bin_repositories_and_unknown_actions_are_refused() {
    let dep = Deployment::new();
    let _worker = dep.start_worker(&[]);
    bootstrap_bins(&dep);
    let before = files(&dep);
    for (action, words) in [
        ("add", "cannot add custom roles"),
        ("update", "cannot updatecustom roles"),
        ("delete", "cannot delete custom roles"),
    ] {
        let payload = payload_vector(&format!("metadata_delegation-{action}"));
        assert_eq!(
            failure(&delegation(&dep, payload)),
            (
                "tuf.api.exceptions".into(),
                "RepositoryError".into(),
                format!("Delegations already using hash-bins, {words}")
            )
        );
    }
    for action in [json!("remove"), Value::Null] {
        let mut payload = payload_vector("metadata_delegation-add");
        payload["action"] = action;
        assert_eq!(
            failure(&delegation(&dep, payload)),
            (
                "builtins".into(),
                "ValueError".into(),
                "metadata delegation supports 'add', 'update', 'remove'".into()
            )
        );
    }
    assert_eq!(files(&dep), before);
}

#[test]
fn adding_roles_every_row() {
    let dep = Deployment::new();
    let _worker = dep.start_worker(&[]);
    bootstrap_custom(&dep);
    let add = payload_vector("metadata_delegation-add");
    let record = delegation(&dep, add.clone());
    assert_processed(&record, json!(["tenant1-group1", "tenant2"]), json!([]));

    // One new targets, snapshot and timestamp; the online role published
    // and unexpired, the offline one waiting for its key.
    assert_eq!(
        role_names(&dep, "2.targets.json"),
        ["dev", "production", "default", "tenant1-group1", "tenant2"]
    );
    let targets = file(&dep, "2.targets.json");
    assert_eq!(
        delegated_roles(&targets)[3..],
        [
            ("tenant1-group1".to_owned(), vec![ONLINE_ECDSA.to_owned()]),
            ("tenant2".to_owned(), vec![JH.to_owned()]),
        ]
    );
    assert_eq!(json_setting(&dep, "TRUSTED_TARGETS").unwrap(), targets);
    let tenant1 = file(&dep, "1.tenant1-group1.json");
    assert_expires_in_days(&tenant1["signed"]["expires"], 30);
    assert_eq!(signers(&tenant1), [ONLINE_ECDSA]);
    let tenant2 = json_setting(&dep, "TENANT2_SIGNING").unwrap();
    assert_expires_in_days(&tenant2["signed"]["expires"], 365);
    assert_eq!(tenant2["signatures"], json!([]));
    assert!(!files(&dep).contains(&"3.snapshot.json".to_owned()));
    let snapshot = file(&dep, "2.snapshot.json");
    assert_eq!(snapshot_meta(&snapshot)["tenant1-group1.json"], 1);
    assert_eq!(snapshot_meta(&snapshot)["targets.json"], 2);
    assert!(!snapshot_meta(&snapshot).contains_key("tenant2.json"));
    assert_eq!(file(&dep, "timestamp.json")["signed"]["version"], 2);
    let rows = role_rows(&dep);
    assert_eq!(
        rows["tenant1-group1"],
        RoleRow {
            version: 1,
            active: true,
            expires: epoch(&tenant1["signed"]["expires"])
        }
    );
    assert_eq!(rows["tenant2"].version, 1);
    assert_eq!(
        dep.setting("TENANT1-GROUP1_EXPIRATION").as_deref(),
        Some("@int 30")
    );
    assert_eq!(
        dep.setting("TENANT2_EXPIRATION").as_deref(),
        Some("@int 365")
    );
    assert_eq!(
        json_setting(&dep, "DELEGATED_ROLES_NAMES").unwrap(),
        json!(["dev", "production", "default", "tenant1-group1", "tenant2"])
    );
    assert_client_sees(
        &dep,
        [1, 2, 2, 2],
        &[("tenant1/group1/app.bin", false), ("dev/app.bin", false)],
    );

    // The same roles again: nothing succeeds, nothing is published.
    let already = json!({"role": "", "reason": ["role already exists or name used in the past"]});
    let entry = |name: &str| {
        let mut e = already.clone();
        e["role"] = json!(name);
        e
    };
    let record = delegation(&dep, add.clone());
    assert_processed(
        &record,
        json!({}),
        json!([entry("tenant1-group1"), entry("tenant2")]),
    );
    assert!(!files(&dep).contains(&"3.targets.json".to_owned()));

    // No keys with a threshold above 1: reported, and added all the same
    // (it can never be signed; upstream's behaviour, which the API shows).
    let mut quirk = add.clone();
    quirk["delegations"]["roles"] = json!([{
        "name": "greedy", "terminating": true, "keyids": [], "threshold": 2,
        "paths": ["greedy/*"], "x-rstuf-expire-policy": 5
    }]);
    let record = delegation(&dep, quirk);
    assert_processed(
        &record,
        json!(["greedy"]),
        json!([{"role": "greedy", "reason": "If no keys assigned threshold must be 1"}]),
    );
    assert_eq!(
        delegated_roles(&file(&dep, "3.targets.json"))[5],
        ("greedy".to_owned(), vec![ONLINE_ECDSA.to_owned()])
    );
    assert_eq!(
        signers(&json_setting(&dep, "GREEDY_SIGNING").unwrap()),
        [ONLINE_ECDSA]
    );

    // A key the request does not carry: nothing is written.
    let mut unknown_key = add;
    unknown_key["delegations"]["roles"] = json!([{
        "name": "stranger", "terminating": true, "keyids": [JJ], "threshold": 1,
        "paths": ["s/*"], "x-rstuf-expire-policy": 5
    }]);
    let record = delegation(&dep, unknown_key);
    assert_eq!(
        failure(&record).2,
        format!("payload field 'delegations.roles[0].keyids': key {JJ} is not in delegations.keys")
    );
    assert!(!role_rows(&dep).contains_key("stranger"));
    assert_eq!(dep.setting("STRANGER_EXPIRATION"), None);
    assert!(!files(&dep).contains(&"4.targets.json".to_owned()));
    assert_client_sees(&dep, [1, 3, 3, 3], &[("tenant1/group1/app.bin", false)]);
}

#[test]
fn updating_roles_every_row() {
    let dep = Deployment::new();
    let _worker = dep.start_worker(&[]);
    bootstrap_custom(&dep);
    delegation(&dep, payload_vector("metadata_delegation-add"));
    // Roles now: dev, production, default, tenant1-group1, tenant2.
    let update = payload_vector("metadata_delegation-update");
    let record = delegation(&dep, update.clone());
    let role = &update["delegations"]["roles"][0];
    let reason = record["result"]["details"]["failed_roles"][0]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    // A Python object repr; the address is made up but stable.
    let repr = reason
        .strip_prefix("role <tuf.api._payload.DelegatedRole object at 0x")
        .and_then(|r| r.strip_suffix("> doesn't exist."))
        .unwrap_or_else(|| panic!("{reason}"));
    assert!(repr.len() == 12 && repr.starts_with("7f"), "{reason}");
    let mismatch = json!({"role": "tenant1-group1", "reason": reason});
    assert_processed(
        &record,
        json!(["tenant1-group1"]),
        json!([mismatch, mismatch, mismatch, mismatch]),
    );
    // Same place in the delegations (first match wins for artifacts).
    let targets = file(&dep, "3.targets.json");
    assert_eq!(
        role_names(&dep, "3.targets.json"),
        ["dev", "production", "default", "tenant1-group1", "tenant2"]
    );
    let updated = &targets["signed"]["delegations"]["roles"][3];
    assert_eq!(updated["paths"], role["paths"]);
    assert_eq!(updated["keyids"], json!([ONLINE_ECDSA]));
    assert_eq!(updated["x-rstuf-expire-policy"], 60);
    assert_eq!(
        dep.setting("TENANT1-GROUP1_EXPIRATION").as_deref(),
        Some("@int 60")
    );
    let tenant1 = file(&dep, "2.tenant1-group1.json");
    assert_expires_in_days(&tenant1["signed"]["expires"], 60);
    assert_eq!(role_rows(&dep)["tenant1-group1"].version, 2);
    let snapshot = file(&dep, "3.snapshot.json");
    assert_eq!(snapshot_meta(&snapshot)["tenant1-group1.json"], 2);
    assert_eq!(snapshot_meta(&snapshot)["targets.json"], 3);
    assert_client_sees(&dep, [1, 3, 3, 3], &[("tenant1/shared/x", false)]);

    // An offline role moved to the online key: published under it; the
    // key it no longer uses stays while production needs it.
    let mut to_online = update.clone();
    to_online["delegations"]["roles"] = json!([{
        "name": "tenant2", "terminating": true, "keyids": [], "threshold": 1,
        "paths": ["tenant2/*"], "x-rstuf-expire-policy": 365
    }]);
    let record = delegation(&dep, to_online.clone());
    assert_eq!(
        record["result"]["details"]["delegated_roles"],
        json!(["tenant2"])
    );
    let targets = file(&dep, "4.targets.json");
    assert_eq!(
        delegated_roles(&targets)[4],
        ("tenant2".to_owned(), vec![ONLINE_ECDSA.to_owned()])
    );
    assert!(targets["signed"]["delegations"]["keys"][JH].is_object());
    // It was never published: its pending copy is now signed online.
    assert_eq!(signers(&file(&dep, "1.tenant2.json")), [ONLINE_ECDSA]);
    assert_eq!(
        dep.setting("TENANT2_EXPIRATION").as_deref(),
        Some("@int 365")
    );

    // Threshold above 1 without keys: a failure, and nothing else succeeds.
    let mut quirk = to_online.clone();
    quirk["delegations"]["roles"][0]["threshold"] = json!(2);
    let record = delegation(&dep, quirk);
    let failed = record["result"]["details"]["failed_roles"]
        .as_array()
        .unwrap();
    assert_eq!(record["result"]["details"]["delegated_roles"], json!({}));
    assert_eq!(failed.len(), 5);
    assert_eq!(
        failed[4],
        json!({"role": "tenant2", "reason": "If no keys assigned threshold must be 1"})
    );
    // Unknown role: one "doesn't exist" per existing role.
    let mut unknown = to_online;
    unknown["delegations"]["roles"][0]["name"] = json!("nobody");
    let record = delegation(&dep, unknown);
    assert_eq!(record["result"]["details"]["delegated_roles"], json!({}));
    assert_eq!(
        record["result"]["details"]["failed_roles"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert!(!files(&dep).contains(&"5.targets.json".to_owned()));

    // Production drops JC: the key goes, and the role (never published)
    // waits for JH alone.
    let mut one_key = update;
    one_key["delegations"]["roles"] = json!([{
        "name": "production", "terminating": true, "keyids": [JH], "threshold": 1,
        "paths": ["production/*"], "x-rstuf-expire-policy": 7
    }]);
    let record = delegation(&dep, one_key);
    assert_eq!(
        record["result"]["details"]["delegated_roles"],
        json!(["production"])
    );
    let keys = file(&dep, "5.targets.json")["signed"]["delegations"]["keys"].clone();
    assert_eq!(
        keys.as_object().unwrap().keys().collect::<Vec<_>>(),
        [JH, ONLINE_ECDSA]
    );
    let pending = json_setting(&dep, "PRODUCTION_SIGNING").unwrap();
    assert_eq!(pending["signatures"], json!([]));
    let signature = sign(&pending, &[JH]).remove(0);
    let (_, record) = run_task(
        &dep,
        "sign_metadata",
        json!({"role": "production", "signature": signature}),
    );
    assert_eq!(
        record["result"]["details"]["update"],
        "Role production signing complete"
    );
    assert_client_sees(&dep, [1, 6, 6, 5], &[("production/app.bin", false)]);
}

#[test]
fn a_role_with_online_and_offline_keys_waits_signed_online() {
    let dep = Deployment::new();
    let _worker = dep.start_worker(&[]);
    bootstrap_custom(&dep);
    let mut add = payload_vector("metadata_delegation-add");
    add["delegations"]["roles"] = json!([{
        "name": "mixed", "terminating": true, "keyids": [ONLINE_ECDSA, JH],
        "threshold": 2, "paths": ["mixed/*"], "x-rstuf-expire-policy": 10
    }]);
    let record = delegation(&dep, add);
    assert_processed(&record, json!(["mixed"]), json!([]));
    let pending = json_setting(&dep, "MIXED_SIGNING").unwrap();
    assert_eq!(signers(&pending), [ONLINE_ECDSA]);
    assert_expires_in_days(&pending["signed"]["expires"], 10);
    assert!(!files(&dep).contains(&"1.mixed.json".to_owned()));

    let signature = sign(&pending, &[JH]).remove(0);
    let (_, record) = run_task(
        &dep,
        "sign_metadata",
        json!({"role": "mixed", "signature": signature}),
    );
    assert_eq!(
        record["result"]["details"]["update"],
        "Role mixed signing complete"
    );
    assert_eq!(signers(&file(&dep, "1.mixed.json")), [ONLINE_ECDSA, JH]);
    assert_client_sees(&dep, [1, 3, 3, 2], &[("mixed/app.bin", false)]);
}

#[test]
fn deleting_roles_every_row() {
    let dep = Deployment::new();
    let _worker = dep.start_worker(&[]);
    bootstrap_custom(&dep);
    delegation(&dep, payload_vector("metadata_delegation-add"));
    let record = delegation(&dep, payload_vector("metadata_delegation-delete"));
    assert_processed(
        &record,
        json!(["tenant2"]),
        json!([{"role": "nosuchrole", "reason": "Role 'nosuchrole' does not exists"}]),
    );
    assert_eq!(
        role_names(&dep, "3.targets.json"),
        ["dev", "production", "default", "tenant1-group1"]
    );
    assert_eq!(dep.setting("TENANT2_SIGNING").as_deref(), Some("@none "));
    assert!(!role_rows(&dep)["tenant2"].active);
    // JH, tenant2's key, stays: production still uses it.
    assert!(file(&dep, "3.targets.json")["signed"]["delegations"]["keys"][JH].is_object());
    // A new, signed snapshot without the role (upstream rewrites the old
    // one in place, breaking its signature).
    let snapshot = file(&dep, "3.snapshot.json");
    assert!(!snapshot_meta(&snapshot).contains_key("tenant2.json"));
    assert_eq!(snapshot_meta(&file(&dep, "2.snapshot.json")).len(), 4);
    assert_eq!(
        json_setting(&dep, "DELEGATED_ROLES_NAMES").unwrap(),
        json!(["dev", "production", "default", "tenant1-group1"])
    );

    // Keys no remaining role uses go (JH and JC with production).
    delegation(
        &dep,
        json!({"action": "delete", "delegations": {"roles": [{"name": "production"}]}}),
    );
    let keys = file(&dep, "4.targets.json")["signed"]["delegations"]["keys"].clone();
    assert_eq!(
        keys.as_object().unwrap().keys().collect::<Vec<_>>(),
        [ONLINE_ECDSA]
    );
    assert!(!snapshot_meta(&file(&dep, "4.snapshot.json")).contains_key("production.json"));
    assert_client_sees(
        &dep,
        [1, 4, 4, 4],
        &[("dev/app.bin", false), ("tenant1/group1/x", false)],
    );

    // Nothing deleted: an empty list; a deleted name is never reused.
    let record = delegation(&dep, payload_vector("metadata_delegation-delete"));
    assert_processed(
        &record,
        json!([]),
        json!([
            {"role": "tenant2", "reason": "Role 'tenant2' does not exists"},
            {"role": "nosuchrole", "reason": "Role 'nosuchrole' does not exists"},
        ]),
    );
    let record = delegation(&dep, payload_vector("metadata_delegation-add"));
    assert_eq!(
        record["result"]["details"]["failed_roles"],
        json!([
            {"role": "tenant1-group1", "reason": ["role already exists or name used in the past"]},
            {"role": "tenant2", "reason": ["role already exists or name used in the past"]},
        ])
    );
    let bad = json!({"action": "delete", "delegations": {"roles": [{"name": "../x"}]}});
    assert_eq!(
        failure(&delegation(&dep, bad)).2,
        "payload field 'delegations.roles[0].name': role name \"../x\" must be letters, digits, '_' or '-'"
    );
}

#[test]
fn a_delete_that_loses_its_lock_publishes_nothing() {
    let dep = Deployment::new();
    let _worker = dep.start_worker(&LOCK_LOST);
    bootstrap_custom(&dep);
    let before = files(&dep);
    let _thief = dep.steal_lock_targets();
    let record = delegation(
        &dep,
        json!({"action": "delete", "delegations": {"roles": [{"name": "dev"}]}}),
    );
    assert_lock_lost(&record);
    assert_eq!(files(&dep), before);
    assert!(role_rows(&dep)["dev"].active);
}
