//! add_artifacts, remove_artifacts and publish_artifacts against a real
//! worker, row by row of upstream's result tables (shared/spec/
//! task-results.md with the audit's corrections), starting from the
//! repository upstream's bootstrap leaves (tests/common/fixtures.rs), and
//! checked with python-tuf's client after every publication.
mod common;

use std::time::{Duration, Instant};

use common::fixtures::{self, install_bins_after_bootstrap};
use common::services::Deployment;
use common::unique;
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(60);

fn payload_vector(name: &str) -> Value {
    let path = common::shared(&format!("vectors/payloads/{name}.json"));
    let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    doc["kwargs"]["payload"].clone()
}

fn assert_result(result: &Value, task: &str, message: &str, error: Value, details: Value) {
    assert_eq!(result["task"], task, "{result}");
    assert_eq!(result["message"], message, "{result}");
    assert_eq!(result["error"], error, "{result}");
    assert_eq!(result["status"], error.is_null(), "{result}");
    assert_eq!(result["details"], details, "{result}");
    assert_eq!(result["last_update"]["__type__"], "datetime", "{result}");
}

fn artifact(path: &str, length: u64) -> Value {
    json!({"path": path, "info": {"length": length, "hashes": {"sha256": format!("{length:064x}")}}})
}

/// A repository as upstream's bootstrap leaves it, and a worker on it.
fn bootstrapped(extra_env: &[(&str, &str)]) -> (Deployment, common::services::WorkerProcess) {
    let dep = Deployment::new();
    install_bins_after_bootstrap(&dep);
    let worker = dep.start_worker(extra_env);
    (dep, worker)
}

/// Sends an action to the deployment's `rstuf_internals` queue (where the
/// API sends publish_artifacts).
fn send_internal(dep: &Deployment, action: &str, payload: Value) -> String {
    let id = unique("task");
    dep.send(
        &dep.internals,
        &json!([{
            "name": "app.repository_service_tuf_worker",
            "id": id,
            "kwargs": {"action": action, "payload": payload},
        }]),
    );
    id
}

fn result_of(dep: &Deployment, id: &str) -> Value {
    let record = dep.wait_for_final(id, LONG);
    assert_eq!(record["status"], "SUCCESS", "{record}");
    assert!(dep.api_view(id)["api_would_fail"] == false);
    record["result"].clone()
}

/// The state record of a task as it is now (RUNNING while waiting).
fn record_now(dep: &Deployment, id: &str) -> Option<Value> {
    let raw: Option<String> = redis::cmd("GET")
        .arg(format!("celery-task-meta-{id}"))
        .query(&mut dep.redis())
        .unwrap();
    raw.map(|r| serde_json::from_str(&r).unwrap())
}

fn wait_for_state(dep: &Deployment, id: &str, state: &str) -> Value {
    let start = Instant::now();
    loop {
        if let Some(record) = record_now(dep, id) {
            if record["status"] == state {
                return record;
            }
        }
        assert!(start.elapsed() < LONG, "task {id} never reached {state}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn add_the_api_payload_publishes_both_artifacts_in_bins_f() {
    let (dep, _worker) = bootstrapped(&[]);
    let payload = payload_vector("add_artifacts");
    let r = dep.run_action("add_artifacts", payload.clone());
    assert_result(
        &r,
        "add_artifacts",
        "Artifact(s) Added",
        Value::Null,
        json!({
            "added_artifacts": ["file1.tar.gz", "café/文件-😀.txt"],
            "invalid_paths": [],
            "artifact_roles": ["bins-f"],
        }),
    );
    // What repo-bins/2-after-add-artifacts shows, with this payload's infos.
    let bin = dep.metadata("2.bins-f.json");
    assert_eq!(bin["signed"]["version"], 2);
    assert_eq!(
        bin["signed"]["targets"],
        json!({
            "file1.tar.gz": payload["artifacts"][0]["info"],
            "café/文件-😀.txt": payload["artifacts"][1]["info"],
        })
    );
    assert_eq!(dep.latest_version("snapshot"), 2);
    let snapshot = dep.metadata("2.snapshot.json");
    assert_eq!(snapshot["signed"]["meta"]["bins-f.json"], json!({"version": 2}));
    assert_eq!(snapshot["signed"]["meta"]["bins-e.json"], json!({"version": 1}));
    let timestamp = dep.metadata("timestamp.json");
    assert_eq!(timestamp["signed"]["version"], 2);
    assert_eq!(
        timestamp["signed"]["meta"]["snapshot.json"],
        json!({"version": 2})
    );
    assert_eq!(dep.role_row("bins-f").0, 2);
    assert_eq!(dep.role_row("bins-e").0, 1);
    assert_eq!(
        dep.artifact_rows(),
        vec![
            ("café/文件-😀.txt".to_owned(), "ADD".to_owned(), true),
            ("file1.tar.gz".to_owned(), "ADD".to_owned(), true),
        ]
    );
    let client = dep.ngclient(&["file1.tar.gz", "café/文件-😀.txt", "nope.txt"]);
    assert_eq!(client.found, ["file1.tar.gz", "café/文件-😀.txt"]);
    assert_eq!(client.not_found, ["nope.txt"]);
    assert_eq!(
        client.refresh,
        "refresh OK: root v1, timestamp v2, snapshot v2, targets v1"
    );
}

#[test]
fn add_without_artifacts_or_with_none_returns_at_once() {
    let (dep, _worker) = bootstrapped(&[]);
    let r = dep.run_action("add_artifacts", json!({"publish_artifacts": true}));
    assert_result(
        &r,
        "add_artifacts",
        "Adding artifact(s) Failed",
        json!("No 'artifacts' in the payload"),
        Value::Null,
    );
    let r = dep.run_action("add_artifacts", json!({"artifacts": null}));
    assert_eq!(r["error"], "No 'artifacts' in the payload");
    let r = dep.run_action("add_artifacts", json!({"artifacts": []}));
    assert_result(
        &r,
        "add_artifacts",
        "Artifact(s) Added",
        Value::Null,
        json!({"added_artifacts": [], "invalid_paths": [], "artifact_roles": []}),
    );
    assert_eq!(dep.latest_version("snapshot"), 1);
    assert!(dep.artifact_rows().is_empty());
}

#[test]
fn bad_artifacts_fail_naming_the_field_and_write_nothing() {
    let (dep, _worker) = bootstrapped(&[]);
    let cases = [
        (
            json!({"artifacts": [artifact("ok.txt", 1), {"path": "../etc/passwd", "info": {"length": 1, "hashes": {"sha256": "00"}}}]}),
            "payload field 'artifacts[1].path': \"../etc/passwd\" has a '..' segment",
        ),
        (
            json!({"artifacts": [artifact("ok.txt", 1), {"path": "x", "info": {"length": 1, "hashes": {}}}]}),
            "payload field 'artifacts[1].info.hashes': must list 1 to 16 digests",
        ),
        (
            json!({"artifacts": [{"path": "/abs", "info": {"length": 1, "hashes": {"sha256": "00"}}}]}),
            "payload field 'artifacts[0].path': \"/abs\" is absolute; artifact paths are relative",
        ),
        (
            json!({"artifacts": [{"path": "x", "info": {"length": "1", "hashes": {"sha256": "00"}}}]}),
            "payload field 'artifacts[0].info.length': must be a non-negative whole number",
        ),
        (
            json!({"artifacts": "file1.tar.gz"}),
            "payload field 'artifacts': must be a list",
        ),
    ];
    for (payload, message) in cases {
        let id = dep.send_action("add_artifacts", payload);
        let record = dep.wait_for_final(&id, LONG);
        assert_eq!(record["status"], "FAILURE", "{record}");
        assert_eq!(record["result"]["exc_type"], "ValueError");
        assert_eq!(record["result"]["exc_message"], json!([message]));
    }
    let id = dep.send_action(
        "remove_artifacts",
        json!({"artifacts": ["ok", "a/\u{0}b"]}),
    );
    let record = dep.wait_for_final(&id, LONG);
    assert_eq!(
        record["result"]["exc_message"],
        json!(["payload field 'artifacts[1]': must not contain NUL"])
    );
    assert!(dep.artifact_rows().is_empty());
    assert_eq!(dep.latest_version("snapshot"), 1);
}
