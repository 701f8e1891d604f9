//! `bootstrap` against a real worker, row by row of upstream's result table
//! (shared/spec/task-results.md), with the settings, files and database
//! rows it leaves, and python-tuf's client on the result.
mod actions_support;
mod common;

use actions_support::*;
use common::services::Deployment;
use serde_json::{json, Value};

const FAILED: &str = "Bootstrap Failed";

fn failed_with(dep: &Deployment, payload: Value, error: &str) {
    let (_, record) = run_task(dep, "bootstrap", payload);
    assert_result(
        &record["result"],
        "bootstrap",
        FAILED,
        json!(error),
        Value::Null,
    );
}

/// Runs bootstrap with the API's payload vector `name` and asserts it was
/// processed with the details `bootstrap(id)`; returns the task id and the
/// payload.
fn processed(
    dep: &Deployment,
    name: &str,
    bootstrap: impl FnOnce(&str) -> String,
) -> (String, Value) {
    api_pre_lock(dep);
    let payload = payload_vector(name);
    let (id, record) = run_task(dep, "bootstrap", payload.clone());
    assert_result(
        &record["result"],
        "bootstrap",
        "Bootstrap Processed",
        Value::Null,
        json!({"bootstrap": bootstrap(&id)}),
    );
    (id, payload)
}

/// The settings hash upstream leaves at `step` of its bins bootstrap
/// (settings vector).
fn upstream_settings(step: usize) -> serde_json::Map<String, Value> {
    let vector = common::shared("vectors/settings/after-bootstrap-bins.json");
    let vector: Value = serde_json::from_slice(&std::fs::read(vector).unwrap()).unwrap();
    vector["steps"][step]["HGETALL DYNACONF_MAIN"]
        .as_object()
        .unwrap()
        .clone()
}

/// Every field of the settings hash, raw.
fn settings_hash(dep: &Deployment) -> std::collections::BTreeMap<String, String> {
    redis::cmd("HGETALL")
        .arg("DYNACONF_MAIN")
        .query(&mut dep.redis())
        .unwrap()
}

#[test]
fn refused_bootstraps_write_nothing_but_the_reset() {
    let dep = Deployment::new();
    let _worker = dep.start_worker(&[]);
    let payload = payload_vector("bootstrap-bins");

    let mut no_settings = payload.clone();
    no_settings.as_object_mut().unwrap().remove("settings");
    failed_with(&dep, no_settings, "No 'settings' in the payload");
    let mut no_metadata = payload.clone();
    no_metadata["metadata"] = Value::Null;
    failed_with(&dep, no_metadata, "No 'metadata' in the payload");

    for state in ["signing-abc", "7a634b556f784ae88785d36425f9a218"] {
        dep.set_settings(&[("BOOTSTRAP", state)]);
        failed_with(
            &dep,
            payload.clone(),
            &format!("Bootstrap state is {state}"),
        );
        assert_eq!(dep.setting("BOOTSTRAP").as_deref(), Some(state));
    }

    // Signature problems reset BOOTSTRAP so the API accepts a new attempt.
    api_pre_lock(&dep);
    let mut unsigned = payload.clone();
    unsigned["metadata"]["root"]["signatures"] = json!([]);
    failed_with(
        &dep,
        unsigned,
        "Metadata requires at least one valid signature",
    );
    assert_eq!(dep.setting("BOOTSTRAP").as_deref(), Some("@none "));

    api_pre_lock(&dep);
    let mut forged = payload.clone();
    forged["metadata"]["root"]["signatures"][1]["sig"] =
        forged["metadata"]["root"]["signatures"][0]["sig"].clone();
    failed_with(&dep, forged, "Bootstrap has invalid signature(s)");
    assert_eq!(dep.setting("BOOTSTRAP").as_deref(), Some("@none "));

    // A valid signature by a key that is not a root key is invalid too.
    api_pre_lock(&dep);
    let mut online_signed = payload.clone();
    let root = online_signed["metadata"]["root"].clone();
    online_signed["metadata"]["root"]["signatures"]
        .as_array_mut()
        .unwrap()
        .extend(sign(&root, &[ONLINE_ED25519]));
    failed_with(&dep, online_signed, "Bootstrap has invalid signature(s)");

    api_pre_lock(&dep);
    let mut both = payload.clone();
    both["settings"]["roles"]["delegated_roles"] = json!({"dev": {}});
    failed_with(
        &dep,
        both,
        "Bootstrap cannot use both hash bin delegation and custom target delegations",
    );

    // Payloads upstream would crash on (or half-save) fail naming the field
    // and save nothing.
    let cases = [
        (
            "/settings/roles/bins/number_of_delegated_bins",
            json!(100),
            "payload field 'settings.roles.bins.number_of_delegated_bins': must be a power of two from 2 to 16384",
        ),
        (
            "/settings/roles/timestamp/expiration",
            json!(null),
            "payload field 'settings.roles.timestamp.expiration': is missing",
        ),
        (
            "/metadata/root/signed/roles",
            json!({}),
            "payload field 'metadata.root': invalid root metadata: roles must be exactly root, snapshot, targets and timestamp, found []",
        ),
    ];
    for (pointer, value, message) in cases {
        let mut bad = payload.clone();
        *bad.pointer_mut(pointer).unwrap() = value;
        let (_, record) = run_task(&dep, "bootstrap", bad);
        assert_eq!(
            failure(&record),
            ("builtins".into(), "ValueError".into(), message.into())
        );
    }
    let hash = settings_hash(&dep);
    assert_eq!(
        hash.keys().collect::<Vec<_>>(),
        ["BOOTSTRAP"],
        "nothing but the state was written: {hash:?}"
    );
    assert!(files(&dep).is_empty());
    assert!(role_rows(&dep).is_empty());
}

#[test]
fn a_fully_signed_root_bootstraps_hash_bins() {
    let dep = Deployment::new();
    let _worker = dep.start_worker(&[]);
    let (id, payload) = processed(&dep, "bootstrap-bins", |id| {
        format!("Bootstrap finished {id}")
    });

    let mut expected: Vec<String> = ["1.root.json", "1.snapshot.json", "1.targets.json"]
        .map(String::from)
        .into();
    expected.extend((0..16).map(|b| format!("1.bins-{b:x}.json")));
    expected.push("timestamp.json".into());
    expected.sort();
    assert_eq!(files(&dep), expected);

    // Root as the operators signed it; targets delegates to 16 bins signed
    // by the online key; everything else at version 1 and unexpired.
    let root = file(&dep, "1.root.json");
    assert_eq!(root, payload["metadata"]["root"]);
    let targets = file(&dep, "1.targets.json");
    assert_eq!(
        targets["signed"]["delegations"],
        json!({
            "keys": {ONLINE_ED25519: root["signed"]["keys"][ONLINE_ED25519]},
            "succinct_roles": {"bit_length": 4, "keyids": [ONLINE_ED25519],
                               "name_prefix": "bins", "threshold": 1},
        })
    );
    assert_eq!(targets["signed"]["targets"], json!({}));
    assert_eq!(signers(&targets), [ONLINE_ED25519]);
    assert_expires_in_days(&targets["signed"]["expires"], 365);
    let bin = file(&dep, "1.bins-a.json");
    assert_eq!(bin["signed"]["version"], 1);
    assert_eq!(bin["signed"]["targets"], json!({}));
    assert_expires_in_days(&bin["signed"]["expires"], 1);
    let snapshot = file(&dep, "1.snapshot.json");
    let meta = snapshot_meta(&snapshot);
    assert_eq!(meta.len(), 17);
    assert!(meta.values().all(|v| *v == 1));
    assert_eq!(meta["targets.json"], 1);
    assert_eq!(
        file(&dep, "timestamp.json")["signed"]["meta"],
        json!({"snapshot.json": {"version": 1}})
    );

    // One active row per bin, version 1, expiring with the bin.
    let rows = role_rows(&dep);
    assert_eq!(rows.len(), 16);
    let bin_expiry = epoch(&bin["signed"]["expires"]);
    for (name, row) in &rows {
        assert!(name.starts_with("bins-"), "{name}");
        assert_eq!(
            *row,
            RoleRow {
                version: 1,
                active: true,
                expires: bin_expiry
            },
            "{name}"
        );
    }

    // The settings upstream leaves (settings vector, last step), plus
    // DELEGATED_ROLES_NAMES for the API's POST /metadata/online.
    let upstream = upstream_settings(2);
    let hash = settings_hash(&dep);
    let mut names: Vec<&String> = hash.keys().collect();
    names.retain(|n| *n != "DELEGATED_ROLES_NAMES");
    let mut upstream_names: Vec<&String> = upstream.keys().collect();
    upstream_names.sort();
    assert_eq!(names, upstream_names);
    for (name, value) in &upstream {
        match name.as_str() {
            "BOOTSTRAP" => assert_eq!(hash[name], id),
            // The vector's root got its second signature later, through
            // sign_metadata; this one came with all three.
            "ROOT_NUM_KEYS" => assert_eq!(hash[name], "@int 3"),
            "TRUSTED_ROOT" => assert_eq!(json_setting(&dep, name).unwrap(), root),
            "TRUSTED_TARGETS" => assert_eq!(json_setting(&dep, name).unwrap(), targets),
            _ => assert_eq!(&hash[name], value.as_str().unwrap(), "{name}"),
        }
    }
    let names: Vec<String> = (0..16).map(|b| format!("bins-{b:x}")).collect();
    assert_eq!(
        json_setting(&dep, "DELEGATED_ROLES_NAMES").unwrap(),
        json!(names)
    );

    assert_client_sees(&dep, [1, 1, 1, 1], &[("file1.tar.gz", false)]);

    // Finished means finished.
    failed_with(&dep, payload, &format!("Bootstrap state is {id}"));
}

#[test]
fn a_root_below_threshold_waits_for_signatures() {
    let dep = Deployment::new();
    let _worker = dep.start_worker(&[]);
    let (id, payload) = processed(&dep, "bootstrap-bins-pending-signature", |_| {
        "Root v1 is pending signature".into()
    });
    assert!(files(&dep).is_empty());
    assert!(role_rows(&dep).is_empty());
    assert_eq!(
        json_setting(&dep, "ROOT_SIGNING").unwrap(),
        payload["metadata"]["root"]
    );
    // Settings are saved before the threshold check (settings vector, step 2).
    let upstream = upstream_settings(1);
    let hash = settings_hash(&dep);
    assert_eq!(hash.len(), upstream.len());
    for (name, value) in &upstream {
        match name.as_str() {
            "BOOTSTRAP" => assert_eq!(hash[name], format!("signing-{id}")),
            "ROOT_SIGNING" => {}
            _ => assert_eq!(&hash[name], value.as_str().unwrap(), "{name}"),
        }
    }
    // The API refuses another bootstrap; so does the worker.
    failed_with(&dep, payload, &format!("Bootstrap state is signing-{id}"));
}

#[test]
fn custom_delegations_publish_online_roles_and_queue_offline_ones() {
    let dep = Deployment::new();
    let _worker = dep.start_worker(&[]);
    let (id, payload) = processed(&dep, "bootstrap-custom-delegations", |id| {
        format!("Bootstrap finished {id}")
    });
    assert_eq!(
        files(&dep),
        [
            "1.default.json",
            "1.dev.json",
            "1.root.json",
            "1.snapshot.json",
            "1.targets.json",
            "timestamp.json"
        ]
    );
    let targets = file(&dep, "1.targets.json");
    assert_eq!(
        delegated_roles(&targets),
        [
            ("dev".to_owned(), vec![ONLINE_ECDSA.to_owned()]),
            ("production".to_owned(), vec![JH.to_owned(), JC.to_owned()]),
            ("default".to_owned(), vec![ONLINE_ECDSA.to_owned()]),
        ]
    );
    let keys = targets["signed"]["delegations"]["keys"]
        .as_object()
        .unwrap();
    assert_eq!(keys.keys().collect::<Vec<_>>(), [JC, JH, ONLINE_ECDSA]);
    let requested = &payload["settings"]["roles"]["delegations"]["roles"];
    for (i, role) in requested.as_array().unwrap().iter().enumerate() {
        let published = &targets["signed"]["delegations"]["roles"][i];
        assert_eq!(published["paths"], role["paths"]);
        assert_eq!(
            published["x-rstuf-expire-policy"],
            role["x-rstuf-expire-policy"]
        );
    }
    // New roles expire after their policy (upstream's are born expired).
    let dev = file(&dep, "1.dev.json");
    assert_expires_in_days(&dev["signed"]["expires"], 30);
    assert_eq!(signers(&dev), [ONLINE_ECDSA]);
    assert_expires_in_days(&file(&dep, "1.default.json")["signed"]["expires"], 1);
    let production = json_setting(&dep, "PRODUCTION_SIGNING").unwrap();
    assert_eq!(production["signatures"], json!([]));
    assert_eq!(production["signed"]["version"], 1);
    assert_expires_in_days(&production["signed"]["expires"], 7);

    assert_eq!(
        snapshot_meta(&file(&dep, "1.snapshot.json")),
        [("default.json", 1), ("dev.json", 1), ("targets.json", 1)]
            .map(|(k, v)| (k.to_owned(), v))
            .into()
    );
    let rows = role_rows(&dep);
    assert_eq!(
        rows.keys().collect::<Vec<_>>(),
        ["default", "dev", "production"]
    );
    assert!(rows.values().all(|r| r.version == 1 && r.active));
    assert_eq!(rows["dev"].expires, epoch(&dev["signed"]["expires"]));
    assert_eq!(
        rows["production"].expires,
        epoch(&production["signed"]["expires"])
    );
    for (setting, value) in [
        ("DEV_EXPIRATION", "@int 30"),
        ("PRODUCTION_EXPIRATION", "@int 7"),
        ("DEFAULT_EXPIRATION", "@int 1"),
        ("ROOT_SIGNING", "@none "),
        ("TARGETS_ONLINE_KEY", "@bool True"),
    ] {
        assert_eq!(dep.setting(setting).as_deref(), Some(value), "{setting}");
    }
    assert_eq!(dep.setting("BOOTSTRAP"), Some(id));
    assert_eq!(dep.setting("NUMBER_OF_DELEGATED_BINS"), None);
    assert_eq!(
        json_setting(&dep, "DELEGATIONS").unwrap(),
        payload["settings"]["roles"]["delegations"]
    );
    assert_eq!(
        json_setting(&dep, "DELEGATED_ROLES_NAMES").unwrap(),
        json!(["dev", "production", "default"])
    );
    assert_eq!(
        json_setting(&dep, "ONLINE_KEY").unwrap()["keyid"],
        ONLINE_ECDSA
    );

    // The client trusts dev and default; production is not published yet,
    // so a lookup there fails.
    assert_client_sees(
        &dep,
        [1, 1, 1, 1],
        &[("dev/app.bin", false), ("readme.txt", false)],
    );
    let (ok, text) = ngclient(&dep, &["production/app.bin"]);
    assert!(!ok && text.contains("production"), "{text}");
}
