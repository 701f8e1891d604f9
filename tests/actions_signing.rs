//! `sign_metadata` and `delete_sign_metadata` against a real worker, row by
//! row of upstream's result tables: bootstrap roots, root updates (with the
//! online key rotation they finish) and offline custom roles.
mod actions_support;
mod common;

use actions_support::*;
use common::services::Deployment;
use serde_json::{json, Value};

fn sign_result(dep: &Deployment, payload: Value) -> Value {
    run_task(dep, "sign_metadata", payload).1["result"].clone()
}

fn assert_signed(result: &Value, key: &str, text: &str) {
    assert_result(
        result,
        "sign_metadata",
        "Signature Processed",
        Value::Null,
        json!({ key: text }),
    );
}

fn assert_sign_failed(result: &Value, error: &str) {
    assert_result(
        result,
        "sign_metadata",
        "Signature Failed",
        json!(error),
        Value::Null,
    );
}

fn signature_for(role: &str, signature: &Value) -> Value {
    json!({"role": role, "signature": signature})
}

#[test]
fn a_bootstrap_root_collects_signatures_until_its_threshold() {
    let dep = Deployment::new();
    let _worker = dep.start_worker(&[]);
    let good = payload_vector("sign_metadata-root-bootstrap");
    assert_sign_failed(
        &sign_result(&dep, good.clone()),
        "No signatures pending for root",
    );

    api_pre_lock(&dep);
    let pending = payload_vector("bootstrap-bins-pending-signature");
    let (bootstrap_id, _) = run_task(&dep, "bootstrap", pending.clone());
    let root = &pending["metadata"]["root"];

    assert_sign_failed(
        &sign_result(&dep, payload_vector("sign_metadata-root-invalid")),
        "Invalid signature",
    );
    // A valid signature, but by the online key, which does not sign root.
    let online = sign(root, &[ONLINE_ED25519]).remove(0);
    assert_sign_failed(
        &sign_result(&dep, signature_for("root", &online)),
        "Invalid signature",
    );
    // JH's signature again: valid, but still one of two.
    let again = signature_for("root", &root["signatures"][0]);
    assert_signed(
        &sign_result(&dep, again),
        "bootstrap",
        "Root v1 is pending signatures",
    );
    assert_eq!(json_setting(&dep, "ROOT_SIGNING").unwrap(), *root);
    assert!(files(&dep).is_empty());

    assert_signed(
        &sign_result(&dep, good.clone()),
        "bootstrap",
        "Bootstrap Finished",
    );
    // The bootstrap is finished by (and named after) the bootstrap task.
    assert_eq!(dep.setting("BOOTSTRAP"), Some(bootstrap_id));
    assert_eq!(dep.setting("ROOT_SIGNING").as_deref(), Some("@none "));
    let published = file(&dep, "1.root.json");
    assert_eq!(signers(&published), [JH, JJ]);
    assert_eq!(json_setting(&dep, "TRUSTED_ROOT").unwrap(), published);
    assert_eq!(dep.setting("ROOT_NUM_KEYS").as_deref(), Some("@int 1"));
    assert_eq!(files(&dep).len(), 20);
    assert_eq!(role_rows(&dep).len(), 16);
    assert_client_sees(&dep, [1, 1, 1, 1], &[]);

    assert_sign_failed(&sign_result(&dep, good), "No signatures pending for root");

    // Payloads without the fields upstream indexes fail naming them.
    for (payload, message) in [
        (
            json!({"role": "root"}),
            "payload field 'signature': is missing",
        ),
        (
            json!({"signature": online}),
            "payload field 'role': is missing",
        ),
        (
            json!({"role": "../root", "signature": online}),
            "payload field 'role': role name \"../root\" must be letters, digits, '_' or '-'",
        ),
    ] {
        let (_, record) = run_task(&dep, "sign_metadata", payload);
        assert_eq!(
            failure(&record),
            ("builtins".into(), "ValueError".into(), message.into())
        );
    }
}

#[test]
fn a_root_update_needs_both_thresholds_then_rotates_the_online_key() {
    let dep = Deployment::new();
    let _worker = dep.start_worker(&[]);
    bootstrap_bins(&dep);
    let (_, record) = run_task(
        &dep,
        "metadata_update",
        payload_vector("metadata_update-root-v2-pending"),
    );
    assert_eq!(
        record["result"]["details"]["update"],
        "Root v2 is pending signatures"
    );
    // Signatures over the same root v2, by JH (v1 only), JJ and JC.
    let full = payload_vector("metadata_update-root-v2");
    let by = |i: usize| signature_for("root", &full["metadata"]["root"]["signatures"][i]);

    let mut forged = full["metadata"]["root"]["signatures"][1].clone();
    forged["sig"] = full["metadata"]["root"]["signatures"][2]["sig"].clone();
    assert_sign_failed(
        &sign_result(&dep, signature_for("root", &forged)),
        "Invalid signature",
    );
    // JH is trusted by root v1 only: v1's threshold is met, v2's is not.
    assert_signed(
        &sign_result(&dep, by(0)),
        "update",
        "Root v2 is pending signatures",
    );
    let pending = json_setting(&dep, "ROOT_SIGNING").unwrap();
    assert_eq!(signers(&pending), [JC, JH]);
    assert!(!files(&dep).contains(&"2.root.json".to_owned()));

    assert_signed(
        &sign_result(&dep, by(1)),
        "update",
        "Metadata update finished",
    );
    assert_eq!(dep.setting("ROOT_SIGNING").as_deref(), Some("@none "));
    let root = file(&dep, "2.root.json");
    assert_eq!(signers(&root), [JC, JH, JJ]);
    assert_eq!(json_setting(&dep, "TRUSTED_ROOT").unwrap(), root);
    // Finished like a trusted metadata_update: everything online re-signed
    // with the new (ECDSA) key.
    assert_eq!(
        json_setting(&dep, "ONLINE_KEY").unwrap()["keyid"],
        ONLINE_ECDSA
    );
    assert_eq!(signers(&file(&dep, "2.targets.json")), [ONLINE_ECDSA]);
    assert_eq!(signers(&file(&dep, "2.bins-7.json")), [ONLINE_ECDSA]);
    assert_eq!(signers(&file(&dep, "timestamp.json")), [ONLINE_ECDSA]);
    assert_client_sees(&dep, [2, 2, 2, 2], &[("file1.tar.gz", false)]);
}

#[test]
fn an_offline_role_is_published_when_its_signatures_are_complete() {
    let dep = Deployment::new();
    let _worker = dep.start_worker(&[]);
    bootstrap_custom(&dep);
    assert_sign_failed(
        &sign_result(
            &dep,
            signature_for("dev", &json!({"keyid": JH, "sig": "00"})),
        ),
        "No signatures pending for dev",
    );
    let pending = json_setting(&dep, "PRODUCTION_SIGNING").unwrap();
    // JJ signs root, not production.
    let by_jj = sign(&pending, &[JJ]).remove(0);
    assert_sign_failed(
        &sign_result(&dep, signature_for("production", &by_jj)),
        "Invalid signature",
    );
    // The vector's signature covers another expiry than this worker's.
    assert_sign_failed(
        &sign_result(&dep, payload_vector("sign_metadata-production")),
        "Invalid signature",
    );
    let signatures = sign(&pending, &[JH, JC]);
    assert_signed(
        &sign_result(&dep, signature_for("production", &signatures[0])),
        "update",
        "production v1 is pending signatures",
    );
    assert_eq!(
        signers(&json_setting(&dep, "PRODUCTION_SIGNING").unwrap()),
        [JH]
    );
    assert!(!files(&dep).contains(&"1.production.json".to_owned()));

    assert_signed(
        &sign_result(&dep, signature_for("production", &signatures[1])),
        "update",
        "Role production signing complete",
    );
    assert_eq!(dep.setting("PRODUCTION_SIGNING").as_deref(), Some("@none "));
    let production = file(&dep, "1.production.json");
    assert_eq!(signers(&production), [JH, JC]);
    assert_eq!(production["signed"], pending["signed"]);
    let snapshot = file(&dep, "2.snapshot.json");
    assert_eq!(snapshot_meta(&snapshot)["production.json"], 1);
    assert_eq!(file(&dep, "timestamp.json")["signed"]["version"], 2);
    let row = &role_rows(&dep)["production"];
    assert_eq!(
        (row.version, row.expires),
        (1, epoch(&production["signed"]["expires"]))
    );
    assert_client_sees(
        &dep,
        [1, 2, 2, 1],
        &[("production/app.bin", false), ("dev/app.bin", false)],
    );
}

fn delete_result(dep: &Deployment, payload: Value) -> Value {
    run_task(dep, "delete_sign_metadata", payload).1["result"].clone()
}

/// Deletes the root signing event with the API's payload; it stops, with
/// `details`, and ROOT_SIGNING is cleared.
fn delete_root_event(dep: &Deployment, details: Value) {
    let r = delete_result(dep, payload_vector("delete_sign_metadata-root"));
    assert_result(
        &r,
        "delete_sign_metadata",
        "Deletion of root metadata successful, signing process stopped",
        Value::Null,
        details,
    );
    assert_eq!(dep.setting("ROOT_SIGNING").as_deref(), Some("@none "));
}

#[test]
fn deleting_signing_events_every_row() {
    let dep = Deployment::new();
    let _worker = dep.start_worker(&[]);
    let r = delete_result(&dep, json!({}));
    assert_result(
        &r,
        "delete_sign_metadata",
        "Deletion of metadata pending signatures failed",
        json!("No role provided for deletion."),
        Value::Null,
    );
    let r = delete_result(&dep, payload_vector("delete_sign_metadata-root"));
    assert_result(
        &r,
        "delete_sign_metadata",
        "Deletion of root metadata failed.",
        json!("The root role is not in a signing process."),
        Value::Null,
    );
    let (_, record) = run_task(&dep, "delete_sign_metadata", json!({"role": "a/b"}));
    assert_eq!(
        failure(&record).2,
        "payload field 'role': role name \"a/b\" must be letters, digits, '_' or '-'"
    );

    // The root of a bootstrap: the bootstrap stops with it.
    api_pre_lock(&dep);
    run_task(
        &dep,
        "bootstrap",
        payload_vector("bootstrap-bins-pending-signature"),
    );
    delete_root_event(
        &dep,
        json!({"bootstrap": "Bootstrap process has been stopped"}),
    );
    assert_eq!(dep.setting("BOOTSTRAP").as_deref(), Some("@none "));

    // Any other event: a custom role, or a root update after bootstrap.
    let bootstrap = bootstrap_custom(&dep);
    let r = delete_result(&dep, json!({"role": "production"}));
    assert_result(
        &r,
        "delete_sign_metadata",
        "Deletion of production metadata successful, signing process stopped",
        Value::Null,
        Value::Null,
    );
    assert_eq!(dep.setting("PRODUCTION_SIGNING").as_deref(), Some("@none "));
    let r = delete_result(&dep, json!({"role": "dev"}));
    assert_result(
        &r,
        "delete_sign_metadata",
        "Deletion of dev metadata failed.",
        json!("The dev role is not in a signing process."),
        Value::Null,
    );
    let mut v2 = file(&dep, "1.root.json");
    v2["signed"]["version"] = json!(2);
    let v2 = signed_by(v2, &[JH]);
    let (_, record) = run_task(&dep, "metadata_update", json!({"metadata": {"root": v2}}));
    assert_eq!(
        record["result"]["details"]["update"],
        "Root v2 is pending signatures"
    );
    delete_root_event(&dep, Value::Null);
    assert_eq!(dep.setting("BOOTSTRAP"), Some(bootstrap));
}
