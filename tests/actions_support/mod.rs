//! What the behaviour tests of bootstrap, signing, root updates and
//! delegations share: the API's payloads, offline signatures, a look at the
//! published files, the database rows, and python-tuf's client.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rstuf_worker::tuf::UtcTime;
use serde_json::{json, Value};

use crate::common::services::Deployment;
use crate::common::{run_python, shared};

pub const JH: &str = "c6d8bf2e4f48b41ac2ce8eca21415ca8ef68c133b47fc33df03d4070a7e1e9cc";
pub const JJ: &str = "50d7e110ad65f3b2dba5c3cfc8c5ca259be9774cc26be3410044ffd4be3aa5f3";
pub const JC: &str = "2f685fa7546f1856b123223ab086b3def14c89d24eef18f49c32508c2f60e241";
/// The ed25519 online key of the hash-bin vectors (`fn:online-ed25519.pem`).
pub const ONLINE_ED25519: &str = "9e5a93a998845599e5065a1164a0bd9cbfec78b12bb38730a46bc24825c6a4c1";
/// The ECDSA P-256 online key of the custom vectors and of root v2.
pub const ONLINE_ECDSA: &str = "cb20fa1061dde8e6267e0bef0981766aaadae168e917030f7f26edc7a0bab9c2";

/// The umbrella RSA key, usable as an online key (`fn:<keyid>`).
pub const RSA_ONLINE: &str = "0d9d3d4bad91c455bc03921daa95774576b86625ac45570d0cac025b08e65043";

/// The public key dict of a vector key (`keys.json`).
pub fn vector_key_dict(keyid: &str) -> Value {
    let keys: Value =
        serde_json::from_slice(&std::fs::read(shared("vectors/tuf/keys.json")).unwrap()).unwrap();
    keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["keyid"] == keyid)
        .unwrap_or_else(|| panic!("no vector key {keyid}"))["key_dict"]
        .clone()
}

/// Root metadata of `signed` with the online roles moved to `keyid` (a
/// vector key whose private key file the test key directory names by its
/// key id), the old online key dropped, signed by the three offline keys.
pub fn root_with_online_key(signed: Value, keyid: &str, name: &str) -> Value {
    let mut key = vector_key_dict(keyid);
    key["x-rstuf-key-name"] = json!(name);
    key["x-rstuf-online-key-uri"] = json!(format!("fn:{keyid}"));
    root_with_online_key_dict(signed, keyid, key)
}

/// Root metadata of `signed` with the online roles moved to the key dict
/// `key` (its URI included), signed by the three offline keys.
pub fn root_with_online_key_dict(mut signed: Value, keyid: &str, key: Value) -> Value {
    let old = signed["roles"]["timestamp"]["keyids"][0]
        .as_str()
        .unwrap()
        .to_owned();
    signed["keys"].as_object_mut().unwrap().remove(&old);
    signed["keys"][keyid] = key;
    for role in ["targets", "snapshot", "timestamp"] {
        signed["roles"][role]["keyids"] = json!([keyid]);
    }
    signed_by(json!({"signatures": [], "signed": signed}), &[JH, JJ, JC])
}

/// An operator's offline keys (encrypted PEM, password `hunter2`) and the
/// online keys, by key id.
pub fn key_file(keyid: &str) -> String {
    let file = match keyid {
        JH => "keys/umbrella/JH.ed25519:hunter2",
        JJ => "keys/umbrella/JJ.ecdsa:hunter2",
        JC => "keys/umbrella/JC.rsa:hunter2",
        ONLINE_ECDSA => {
            "keys/umbrella/cb20fa1061dde8e6267e0bef0981766aaadae168e917030f7f26edc7a0bab9c2"
        }
        ONLINE_ED25519 => "keys/generated/online-ed25519.pem",
        other => panic!("no key file for {other}"),
    };
    format!("{}/{file}", shared("vectors/tuf").display())
}

/// The payload of a vector task, exactly as the API sends it.
pub fn payload_vector(name: &str) -> Value {
    let path = shared(&format!("vectors/payloads/{name}.json"));
    let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    doc["kwargs"]["payload"].clone()
}

pub fn assert_result(result: &Value, task: &str, message: &str, error: Value, details: Value) {
    assert_eq!(result["task"], task, "{result}");
    assert_eq!(result["message"], message, "{result}");
    assert_eq!(result["error"], error, "{result}");
    assert_eq!(result["status"], error.is_null(), "{result}");
    assert_eq!(result["details"], details, "{result}");
    assert_eq!(result["last_update"]["__type__"], "datetime", "{result}");
}

/// Runs an action; returns its task id and final record.
pub fn run_task(dep: &Deployment, action: &str, payload: Value) -> (String, Value) {
    let id = dep.send_action(action, payload);
    let record = dep.wait_for_final(&id, Duration::from_secs(60));
    assert!(
        dep.api_view(&id)["api_would_fail"] == false,
        "the API cannot show {record}"
    );
    (id, record)
}

/// A FAILURE record's (module, type, message).
pub fn failure(record: &Value) -> (String, String, String) {
    assert_eq!(record["status"], "FAILURE", "{record}");
    let r = &record["result"];
    (
        r["exc_module"].as_str().unwrap().to_owned(),
        r["exc_type"].as_str().unwrap().to_owned(),
        r["exc_message"][0].as_str().unwrap().to_owned(),
    )
}

/// A worker whose `LOCK_TARGETS` expires (1 ms) before it can publish.
pub const LOCK_LOST: [(&str, &str); 1] = [("RSTUF_LOCK_TIMEOUT", "0.001")];

/// The record of a task that lost `LOCK_TARGETS` (a [`LOCK_LOST`] worker),
/// as upstream's redis lock reports it.
pub fn assert_lock_lost(record: &Value) {
    assert_eq!(
        failure(record),
        (
            "redis.exceptions".into(),
            "LockError".into(),
            "RSTUF: Task exceed `LOCK_TIMEOUT` (0 seconds)".into()
        )
    );
}

/// Signatures by `keyids` over `metadata["signed"]`, as `{keyid, sig}`.
pub fn sign(metadata: &Value, keyids: &[&str]) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/sign_metadata.py");
    let mut args = vec![metadata.to_string()];
    args.extend(keyids.iter().map(|k| key_file(k)));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_python(&script, &args);
    assert!(
        out.status.success(),
        "signing failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// `metadata` with its signatures replaced by fresh ones of `keyids`.
pub fn signed_by(mut metadata: Value, keyids: &[&str]) -> Value {
    metadata["signatures"] = json!(sign(&metadata, keyids));
    metadata
}

/// Names of the published metadata files.
pub fn files(dep: &Deployment) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dep.storage.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// A published metadata file, parsed.
pub fn file(dep: &Deployment, name: &str) -> Value {
    let bytes =
        std::fs::read(dep.storage.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_slice(&bytes).unwrap()
}

/// A JSON setting (`@json ...`) parsed; None when absent or `@none `.
pub fn json_setting(dep: &Deployment, name: &str) -> Option<Value> {
    let raw = dep.setting(name)?;
    raw.strip_prefix("@json ")
        .map(|j| serde_json::from_str(j).unwrap())
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Seconds since the epoch of an `expires` string.
pub fn epoch(expires: &Value) -> i64 {
    UtcTime::parse(expires.as_str().unwrap())
        .unwrap()
        .unix_seconds()
}

/// Asserts `expires` is `days` days from now (within a minute).
pub fn assert_expires_in_days(expires: &Value, days: i64) {
    let delta = epoch(expires) - now() - days * 86_400;
    assert!(delta.abs() < 60, "{expires} is not {days} days from now");
}

/// One `rstuf_target_roles` row.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleRow {
    pub version: i32,
    pub active: bool,
    /// Seconds since the epoch (naive UTC).
    pub expires: i64,
}

/// Every role row, by name.
pub fn role_rows(dep: &Deployment) -> BTreeMap<String, RoleRow> {
    let mut client = postgres::Client::connect(&dep.db.url(), postgres::NoTls).unwrap();
    client
        .query(
            "SELECT rolename, version, active, \
               extract(epoch from expires)::bigint FROM rstuf_target_roles",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.get(0),
                RoleRow {
                    version: row.get(1),
                    active: row.get(2),
                    expires: row.get(3),
                },
            )
        })
        .collect()
}

/// python-tuf's client on the storage directory, from 1.root.json: whether
/// every step verified, and its report.
pub fn ngclient(dep: &Deployment, paths: &[&str]) -> (bool, String) {
    let script = shared("vectors/tuf/check_with_ngclient.py");
    let dir = dep.storage.path().display().to_string();
    let mut args = vec![dir.as_str()];
    args.extend_from_slice(paths);
    let out = run_python(&script, &args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The client refreshes to exactly these versions (root, timestamp,
/// snapshot, targets) and every path looks up as expected: `Some` found,
/// `None` absent (looked up through the delegations without an error).
pub fn assert_client_sees(dep: &Deployment, versions: [u64; 4], lookups: &[(&str, bool)]) {
    let paths: Vec<&str> = lookups.iter().map(|(p, _)| *p).collect();
    let (ok, text) = ngclient(dep, &paths);
    let [root, timestamp, snapshot, targets] = versions;
    assert!(
        text.contains(&format!(
            "refresh OK: root v{root}, timestamp v{timestamp}, snapshot v{snapshot}, targets v{targets}"
        )),
        "{text}"
    );
    assert!(!text.contains("Traceback"), "{text}");
    for (path, found) in lookups {
        let line = if *found {
            format!("found '{path}'")
        } else {
            format!("NOT FOUND '{path}'")
        };
        assert!(text.contains(&line), "{path}: {text}");
    }
    assert_eq!(ok, lookups.iter().all(|(_, f)| *f), "{text}");
}

/// BOOTSTRAP as the API leaves it right before it sends the task.
pub fn api_pre_lock(dep: &Deployment) {
    dep.set_settings(&[("BOOTSTRAP", "pre-0123456789abcdef")]);
}

/// A finished hash-bin bootstrap (16 bins, ed25519 online key); returns the
/// bootstrap task id.
pub fn bootstrap_bins(dep: &Deployment) -> String {
    api_pre_lock(dep);
    let (id, record) = run_task(dep, "bootstrap", payload_vector("bootstrap-bins"));
    assert_eq!(
        record["result"]["details"]["bootstrap"],
        format!("Bootstrap finished {id}"),
        "{record}"
    );
    id
}

/// A finished custom-delegation bootstrap (dev, production pending,
/// default; ECDSA online key); returns the bootstrap task id.
pub fn bootstrap_custom(dep: &Deployment) -> String {
    api_pre_lock(dep);
    let (id, record) = run_task(
        dep,
        "bootstrap",
        payload_vector("bootstrap-custom-delegations"),
    );
    assert_eq!(
        record["result"]["details"]["bootstrap"],
        format!("Bootstrap finished {id}"),
        "{record}"
    );
    id
}

/// The delegated roles of a targets file, as (name, keyids).
pub fn delegated_roles(targets: &Value) -> Vec<(String, Vec<String>)> {
    targets["signed"]["delegations"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["keyids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

/// The `meta` of a snapshot file as (file, version).
pub fn snapshot_meta(snapshot: &Value) -> BTreeMap<String, u64> {
    snapshot["signed"]["meta"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["version"].as_u64().unwrap()))
        .collect()
}

/// Asserts the `meta` entries of a snapshot or timestamp: each named file
/// is exactly `{"version": v}`.
pub fn assert_meta(metadata: &Value, expected: &[(&str, u64)]) {
    for (file, version) in expected {
        assert_eq!(
            metadata["signed"]["meta"][*file],
            json!({ "version": version }),
            "{file}"
        );
    }
}

/// Key ids of a metadata file's signatures.
pub fn signers(metadata: &Value) -> Vec<String> {
    metadata["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["keyid"].as_str().unwrap().to_owned())
        .collect()
}
