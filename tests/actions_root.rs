//! `metadata_update` (new root) against a real worker, row by row of
//! upstream's result table, and the online key rotation a new root can
//! bring, checked with python-tuf's client walking the roots from
//! 1.root.json.
mod actions_support;
mod common;

use actions_support::*;
use common::services::Deployment;
use serde_json::{json, Value};

const FAILED: &str = "Metadata Update Failed";
const PROCESSED: &str = "Metadata Update Processed";

fn update(dep: &Deployment, payload: Value) -> Value {
    run_task(dep, "metadata_update", payload).1
}

fn assert_update_failed(dep: &Deployment, payload: Value, error: &str) {
    assert_result(
        &update(dep, payload)["result"],
        "metadata_update",
        FAILED,
        json!(error),
        Value::Null,
    );
}

#[test]
fn metadata_update_every_row() {
    let dep = Deployment::new();
    let _worker = dep.start_worker(&[]);
    let v2 = payload_vector("metadata_update-root-v2");
    let needs_bootstrap = "Metadata Update requires a completed bootstrap";
    assert_update_failed(&dep, v2.clone(), needs_bootstrap);
    api_pre_lock(&dep);
    assert_update_failed(&dep, v2.clone(), needs_bootstrap);
    // Upstream lets a root update run while a bootstrap waits for
    // signatures; there is no trusted root to check it against yet.
    dep.set_settings(&[("BOOTSTRAP", "signing-0123")]);
    let (module, kind, message) = failure(&update(&dep, v2.clone()));
    assert_eq!(
        (module.as_str(), kind.as_str()),
        ("builtins", "RuntimeError")
    );
    assert_eq!(
        message,
        "no metadata stored for role 'root'; is the repository bootstrapped?"
    );

    bootstrap_bins(&dep);
    assert_update_failed(&dep, json!({}), "No 'metadata' in the payload");
    assert_update_failed(&dep, json!({"metadata": {}}), "Unsupported Metadata type");
    assert_update_failed(
        &dep,
        json!({"metadata": {"targets": v2["metadata"]["root"]}}),
        "Unsupported Metadata type",
    );
    let mut v3 = v2.clone();
    v3["metadata"]["root"]["signed"]["version"] = json!(3);
    assert_update_failed(
        &dep,
        v3,
        "Failed to verify the trust: Expected root version 2 instead got version 3",
    );
    let mut broken = v2.clone();
    broken["metadata"]["root"]["signed"]["roles"]["root"]["threshold"] = json!(0);
    assert_eq!(
        failure(&update(&dep, broken)),
        (
            "builtins".into(),
            "ValueError".into(),
            "payload field 'metadata.root': invalid root metadata: roles.root: threshold must be at least 1".into()
        )
    );

    let pending = payload_vector("metadata_update-root-v2-pending");
    assert_result(
        &update(&dep, pending.clone())["result"],
        "metadata_update",
        PROCESSED,
        Value::Null,
        json!({"role": "root", "update": "Root v2 is pending signatures"}),
    );
    assert_eq!(
        json_setting(&dep, "ROOT_SIGNING").unwrap(),
        pending["metadata"]["root"]
    );

    // A trusted root that keeps the online key: only root is published.
    let before = files(&dep);
    let mut same_key = file(&dep, "1.root.json");
    same_key["signed"]["version"] = json!(2);
    let same_key = signed_by(same_key, &[JH, JJ]);
    assert_result(
        &update(&dep, json!({"metadata": {"root": same_key}}))["result"],
        "metadata_update",
        PROCESSED,
        Value::Null,
        json!({"role": "root"}),
    );
    let mut after = before;
    after.push("2.root.json".into());
    after.sort();
    assert_eq!(files(&dep), after);
    assert_eq!(file(&dep, "2.root.json"), same_key);
    assert_eq!(json_setting(&dep, "TRUSTED_ROOT").unwrap(), same_key);
    // The v2 still waiting for signatures can never be published now.
    assert_eq!(dep.setting("ROOT_SIGNING").as_deref(), Some("@none "));
    assert_client_sees(&dep, [2, 1, 1, 1], &[]);
}

#[test]
fn a_new_online_key_re_signs_every_online_role_before_root() {
    let dep = Deployment::new();
    let _worker = dep.start_worker(&[]);
    bootstrap_bins(&dep);
    let payload = payload_vector("metadata_update-root-v2");
    assert_result(
        &update(&dep, payload.clone())["result"],
        "metadata_update",
        PROCESSED,
        Value::Null,
        json!({"role": "root"}),
    );
    let root = file(&dep, "2.root.json");
    assert_eq!(root, payload["metadata"]["root"]);
    assert_eq!(json_setting(&dep, "TRUSTED_ROOT").unwrap(), root);
    let online_key = &root["signed"]["keys"][ONLINE_ECDSA];
    let mut expected_setting = online_key.clone();
    expected_setting["keyid"] = json!(ONLINE_ECDSA);
    assert_eq!(json_setting(&dep, "ONLINE_KEY").unwrap(), expected_setting);

    let targets = file(&dep, "2.targets.json");
    assert_eq!(
        targets["signed"]["delegations"],
        json!({
            "keys": {ONLINE_ECDSA: online_key},
            "succinct_roles": {"bit_length": 4, "keyids": [ONLINE_ECDSA],
                               "name_prefix": "bins", "threshold": 1},
        })
    );
    assert_eq!(signers(&targets), [ONLINE_ECDSA]);
    assert_eq!(json_setting(&dep, "TRUSTED_TARGETS").unwrap(), targets);
    let rows = role_rows(&dep);
    for bin in 0..16 {
        let name = format!("bins-{bin:x}");
        let md = file(&dep, &format!("2.{name}.json"));
        assert_eq!(signers(&md), [ONLINE_ECDSA], "{name}");
        assert_expires_in_days(&md["signed"]["expires"], 1);
        assert_eq!(
            rows[&name],
            RoleRow {
                version: 2,
                active: true,
                expires: epoch(&md["signed"]["expires"])
            }
        );
    }
    let snapshot = file(&dep, "2.snapshot.json");
    assert!(snapshot_meta(&snapshot).values().all(|v| *v == 2));
    assert_eq!(signers(&snapshot), [ONLINE_ECDSA]);
    let timestamp = file(&dep, "timestamp.json");
    assert_eq!(timestamp["signed"]["version"], 2);
    assert_eq!(signers(&timestamp), [ONLINE_ECDSA]);
    // Version 1 stays for clients that are behind.
    assert!(files(&dep).contains(&"1.bins-0.json".to_owned()));
    assert_client_sees(&dep, [2, 2, 2, 2], &[("file1.tar.gz", false)]);
}

/// Root v2 of the custom repository, moving the online key from the ECDSA
/// key to the ed25519 one, signed by all three root keys.
fn custom_root_v2(dep: &Deployment) -> Value {
    let mut root = file(dep, "1.root.json");
    let ed25519 = payload_vector("bootstrap-bins")["metadata"]["root"]["signed"]["keys"]
        [ONLINE_ED25519]
        .clone();
    let signed = &mut root["signed"];
    signed["version"] = json!(2);
    let keys = signed["keys"].as_object_mut().unwrap();
    keys.remove(ONLINE_ECDSA);
    keys.insert(ONLINE_ED25519.into(), ed25519);
    for role in ["targets", "snapshot", "timestamp"] {
        signed["roles"][role]["keyids"] = json!([ONLINE_ED25519]);
    }
    signed_by(root, &[JH, JJ, JC])
}

#[test]
fn a_rotation_re_signs_online_custom_roles_and_leaves_offline_ones() {
    let dep = Deployment::new();
    let _worker = dep.start_worker(&[]);
    bootstrap_custom(&dep);
    let production = json_setting(&dep, "PRODUCTION_SIGNING").unwrap();
    for signature in sign(&production, &[JH, JC]) {
        run_task(
            &dep,
            "sign_metadata",
            json!({"role": "production", "signature": signature}),
        );
    }
    assert!(files(&dep).contains(&"1.production.json".to_owned()));

    let root = custom_root_v2(&dep);
    assert_result(
        &update(&dep, json!({"metadata": {"root": root}}))["result"],
        "metadata_update",
        PROCESSED,
        Value::Null,
        json!({"role": "root"}),
    );
    let targets = file(&dep, "2.targets.json");
    assert_eq!(
        delegated_roles(&targets),
        [
            ("dev".to_owned(), vec![ONLINE_ED25519.to_owned()]),
            ("production".to_owned(), vec![JH.to_owned(), JC.to_owned()]),
            ("default".to_owned(), vec![ONLINE_ED25519.to_owned()]),
        ]
    );
    let keys = targets["signed"]["delegations"]["keys"]
        .as_object()
        .unwrap();
    assert_eq!(keys.keys().collect::<Vec<_>>(), [JC, ONLINE_ED25519, JH]);
    for role in ["dev", "default"] {
        assert_eq!(
            signers(&file(&dep, &format!("2.{role}.json"))),
            [ONLINE_ED25519]
        );
    }
    // Production's keys did not change: its published version stays valid.
    assert!(!files(&dep).contains(&"2.production.json".to_owned()));
    assert_eq!(dep.setting("PRODUCTION_SIGNING").as_deref(), Some("@none "));
    let snapshot = file(&dep, "3.snapshot.json");
    assert_eq!(
        snapshot_meta(&snapshot),
        [
            ("default.json", 2),
            ("dev.json", 2),
            ("production.json", 1),
            ("targets.json", 2)
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .into()
    );
    let rows = role_rows(&dep);
    assert_eq!((rows["dev"].version, rows["production"].version), (2, 1));
    assert_client_sees(
        &dep,
        [2, 3, 3, 2],
        &[
            ("dev/app.bin", false),
            ("production/app.bin", false),
            ("readme.txt", false),
        ],
    );
}

#[test]
fn a_rotation_that_loses_its_lock_publishes_nothing() {
    let dep = Deployment::new();
    let _worker = dep.start_worker(&LOCK_LOST);
    bootstrap_bins(&dep);
    let before = files(&dep);
    let _thief = dep.steal_lock_targets();
    let record = update(&dep, payload_vector("metadata_update-root-v2"));
    assert_lock_lost(&record);
    assert_eq!(files(&dep), before);
    assert_eq!(
        json_setting(&dep, "ONLINE_KEY").unwrap()["keyid"],
        ONLINE_ED25519
    );
    assert_client_sees(&dep, [1, 1, 1, 1], &[]);
}
