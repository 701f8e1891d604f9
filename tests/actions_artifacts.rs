//! add_artifacts, remove_artifacts and publish_artifacts against a real
//! worker, row by row of upstream's result tables (shared/spec/
//! task-results.md with the audit's corrections), starting from the
//! repository upstream's bootstrap leaves (tests/common/fixtures.rs), and
//! checked with python-tuf's client after every publication.
mod actions_support;
mod common;

use std::time::{Duration, Instant};

use actions_support::{assert_meta, assert_result, payload_vector};
use common::fixtures::{self, install_bins_after_bootstrap};
use common::services::Deployment;
use common::unique;
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(60);

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
    assert_meta(&snapshot, &[("bins-f.json", 2), ("bins-e.json", 1)]);
    let timestamp = dep.metadata("timestamp.json");
    assert_eq!(timestamp["signed"]["version"], 2);
    assert_meta(&timestamp, &[("snapshot.json", 2)]);
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
    let id = dep.send_action("remove_artifacts", json!({"artifacts": ["ok", "a/\u{0}b"]}));
    let record = dep.wait_for_final(&id, LONG);
    assert_eq!(
        record["result"]["exc_message"],
        json!(["payload field 'artifacts[1]': must not contain NUL"])
    );
    assert!(dep.artifact_rows().is_empty());
    assert_eq!(dep.latest_version("snapshot"), 1);

    // Upstream crashes (AttributeError) when the responsible role has no
    // row; here the task fails saying so, before writing anything.
    dep.sql()
        .execute(
            "UPDATE rstuf_target_roles SET active = false WHERE rolename = 'bins-f'",
            &[],
        )
        .unwrap();
    let id = dep.send_action("add_artifacts", payload_vector("add_artifacts"));
    let record = dep.wait_for_final(&id, LONG);
    assert_eq!(
        record["result"],
        json!({
            "exc_type": "RuntimeError",
            "exc_message": ["role 'bins-f' is responsible for artifact 'file1.tar.gz' but has \
                             no active database row; the database and the targets metadata disagree"],
            "exc_module": "builtins",
        })
    );
    assert!(dep.artifact_rows().is_empty());
}

/// A path that falls in `bin` of the 16 bins, distinct per `tag`.
fn path_in(bin: &str, tag: &str) -> String {
    let bins = rstuf_worker::tuf::hashbins::HashBins::from_count(16).unwrap();
    (0..)
        .map(|n| format!("{tag}/pkg-{n}.tar.gz"))
        .find(|p| bins.role_for_path(p) == bin)
        .unwrap()
}

#[test]
fn unpublished_artifacts_wait_running_until_a_later_publish() {
    let (dep, _worker) = bootstrapped(&[]);
    let (a, b, c) = (
        path_in("bins-e", "a"),
        path_in("bins-3", "b"),
        path_in("bins-e", "c"),
    );
    let d = path_in("bins-7", "d");
    let first = dep.send_action(
        "add_artifacts",
        json!({"artifacts": [artifact(&a, 1), artifact(&b, 2), artifact(&c, 3)], "publish_artifacts": false}),
    );
    // Only the JSON boolean true asks for publication (upstream's `is True`).
    let second = dep.send_action(
        "add_artifacts",
        json!({"artifacts": [artifact(&d, 4)], "publish_artifacts": "true"}),
    );
    let running = wait_for_state(&dep, &first, "RUNNING");
    let meta = &running["result"];
    assert_eq!(
        meta["details"],
        json!({"published_roles": [], "roles_to_publish": "['bins-e', 'bins-3']"})
    );
    assert_eq!(meta["message"], "Publishing");
    assert_eq!(meta["last_update"]["__type__"], "datetime");
    assert_eq!(
        (&meta["exc_type"], &meta["exc_message"]),
        (&Value::Null, &Value::Null)
    );
    let keys: Vec<&String> = meta.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "details",
            "message",
            "last_update",
            "exc_type",
            "exc_message"
        ]
    );
    wait_for_state(&dep, &second, "RUNNING");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(record_now(&dep, &first).unwrap()["status"], "RUNNING");
    assert_eq!(dep.latest_version("snapshot"), 1);
    assert!(dep
        .artifact_rows()
        .iter()
        .all(|(_, _, published)| !published));

    // POST /api/v1/artifacts/publish.
    let publish = send_internal(&dep, "publish_artifacts", Value::Null);
    assert_result(
        &result_of(&dep, &publish),
        "publish_artifacts",
        "Publish Artifacts Processed",
        Value::Null,
        json!({"artifact_roles": ["bins-3", "bins-7", "bins-e"]}),
    );
    assert_result(
        &result_of(&dep, &first),
        "add_artifacts",
        "Artifact(s) Added",
        Value::Null,
        json!({"added_artifacts": [a, b, c], "invalid_paths": [], "artifact_roles": ["bins-e", "bins-3"]}),
    );
    assert_eq!(
        result_of(&dep, &second)["details"]["artifact_roles"],
        json!(["bins-7"])
    );
    // One round: each bin once, one snapshot.
    assert_eq!(dep.latest_version("snapshot"), 2);
    assert_eq!(dep.latest_version("bins-e"), 2);
    let client = dep.ngclient(&[&a, &b, &c, &d]);
    assert!(client.not_found.is_empty(), "{client:?}");
}

#[test]
fn a_repeated_add_changes_nothing_and_a_changed_info_republishes() {
    let (dep, _worker) = bootstrapped(&[]);
    let payload = payload_vector("add_artifacts");
    let first = dep.run_action("add_artifacts", payload.clone());
    // The same payload again (a redelivery, or the API retrying).
    let again = dep.run_action("add_artifacts", payload.clone());
    assert_eq!(again["details"], first["details"]);
    assert_eq!(dep.latest_version("bins-f"), 2);
    assert_eq!(dep.latest_version("snapshot"), 2);
    assert_eq!(dep.metadata("timestamp.json")["signed"]["version"], 2);

    let mut changed = payload.clone();
    changed["artifacts"][0]["info"]["length"] = json!(99);
    dep.run_action("add_artifacts", changed);
    assert_eq!(dep.latest_version("bins-f"), 3);
    assert_eq!(
        dep.metadata("3.bins-f.json")["signed"]["targets"]["file1.tar.gz"]["length"],
        99
    );
    assert_eq!(dep.latest_version("snapshot"), 3);
    assert!(dep.ngclient(&["file1.tar.gz"]).not_found.is_empty());
}

#[test]
fn remove_every_row() {
    let (dep, _worker) = bootstrapped(&[]);
    let failed = "Removing artifact(s) Failed";
    let r = dep.run_action("remove_artifacts", json!({}));
    assert_result(
        &r,
        "remove_artifacts",
        failed,
        json!("No 'artifacts' in the payload"),
        Value::Null,
    );
    let r = dep.run_action("remove_artifacts", json!({"artifacts": []}));
    assert_result(
        &r,
        "remove_artifacts",
        failed,
        json!("At list one artifact is required"),
        Value::Null,
    );

    dep.run_action("add_artifacts", payload_vector("add_artifacts"));
    // The API's payload: one known artifact, one unknown.
    let r = dep.run_action("remove_artifacts", payload_vector("remove_artifacts"));
    assert_result(
        &r,
        "remove_artifacts",
        "Artifact(s) removed",
        Value::Null,
        json!({"deleted_artifacts": ["file1.tar.gz"], "not_found_artifacts": ["not-there.txt"]}),
    );
    assert_eq!(dep.latest_version("bins-f"), 3);
    let bin = dep.metadata("3.bins-f.json");
    let listed: Vec<&String> = bin["signed"]["targets"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(listed, ["café/文件-😀.txt"]);
    assert_eq!(
        dep.artifact_rows(),
        vec![
            ("café/文件-😀.txt".to_owned(), "ADD".to_owned(), true),
            ("file1.tar.gz".to_owned(), "REMOVE".to_owned(), true),
        ]
    );
    let client = dep.ngclient(&["file1.tar.gz", "café/文件-😀.txt"]);
    assert_eq!(client.not_found, ["file1.tar.gz"]);

    // Removed and published: not found; nothing is re-signed.
    let r = dep.run_action("remove_artifacts", json!({"artifacts": ["file1.tar.gz"]}));
    assert_eq!(
        r["details"],
        json!({"deleted_artifacts": [], "not_found_artifacts": ["file1.tar.gz"]})
    );
    assert_eq!(dep.latest_version("snapshot"), 3);

    // Without publication the task waits; a repeated path counts twice, as
    // upstream handles the list one entry at a time.
    let cafe = "café/文件-😀.txt";
    let id = dep.send_action(
        "remove_artifacts",
        json!({"artifacts": [cafe, cafe], "publish_artifacts": false}),
    );
    let running = wait_for_state(&dep, &id, "RUNNING");
    assert_eq!(
        running["result"]["details"],
        json!({"published_roles": [], "roles_to_publish": "['bins-f']"})
    );
    let publish = send_internal(&dep, "publish_artifacts", Value::Null);
    assert_eq!(
        result_of(&dep, &publish)["details"],
        json!({"artifact_roles": ["bins-f"]})
    );
    assert_eq!(
        result_of(&dep, &id)["details"],
        json!({"deleted_artifacts": [cafe, cafe], "not_found_artifacts": []})
    );
    assert_eq!(dep.ngclient(&[cafe]).not_found, [cafe]);
}

#[test]
fn custom_roles_route_by_path_and_offline_roles_wait_for_signatures() {
    let dep = Deployment::new();
    fixtures::install_custom_after_bootstrap(&dep);
    let _worker = dep.start_worker(&[]);
    let r = dep.run_action(
        "add_artifacts",
        json!({"artifacts": [
            artifact("dev/app.bin", 1),
            artifact("top.txt", 2),
            artifact("other/sub/x.txt", 3),
            artifact("production/p.bin", 4),
            artifact("dev/app2.bin", 5),
        ]}),
    );
    assert_result(
        &r,
        "add_artifacts",
        "Artifact(s) Added",
        Value::Null,
        json!({
            "added_artifacts": ["dev/app.bin", "top.txt", "production/p.bin", "dev/app2.bin"],
            "invalid_paths": ["other/sub/x.txt"],
            "artifact_roles": ["dev", "default", "production"],
        }),
    );
    assert_eq!(dep.latest_version("dev"), 2);
    assert_eq!(dep.latest_version("default"), 2);
    // production needs its offline keys: offered, unsigned, not published.
    assert_eq!(dep.latest_version("production"), 1);
    let pending: Value = serde_json::from_str(
        dep.setting("PRODUCTION_SIGNING")
            .unwrap()
            .strip_prefix("@json ")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(pending["signatures"], json!([]));
    assert_eq!(pending["signed"]["version"], 2);
    assert_eq!(
        pending["signed"]["targets"]["production/p.bin"],
        artifact("production/p.bin", 4)["info"]
    );
    let snapshot = dep.metadata("2.snapshot.json");
    assert_meta(&snapshot, &[("dev.json", 2), ("production.json", 1)]);
    let client = dep.ngclient(&["dev/app.bin", "top.txt", "dev/app2.bin", "production/p.bin"]);
    assert_eq!(client.not_found, ["production/p.bin"]);

    let r = dep.run_action(
        "remove_artifacts",
        json!({"artifacts": ["other/sub/x.txt", "dev/app.bin", "dev/never.bin"]}),
    );
    assert_eq!(
        r["details"],
        json!({"deleted_artifacts": ["dev/app.bin"], "not_found_artifacts": ["other/sub/x.txt", "dev/never.bin"]})
    );
    let client = dep.ngclient(&["dev/app.bin", "dev/app2.bin"]);
    assert_eq!(client.not_found, ["dev/app.bin"]);
}

#[test]
fn publish_every_row() {
    let (dep, _worker) = bootstrapped(&[]);
    let processed = "Publish Artifacts Processed";
    // Nothing waiting: from the API (payload null), from upstream's own
    // sub-task (delegated_artifacts is ignored), with delegated_targets [].
    for payload in [
        Value::Null,
        payload_vector("publish_artifacts-from-worker-subtask"),
        json!({"delegated_targets": []}),
    ] {
        let id = send_internal(&dep, "publish_artifacts", payload);
        assert_result(
            &result_of(&dep, &id),
            "publish_artifacts",
            processed,
            Value::Null,
            json!({"artifact_roles": null}),
        );
    }
    assert_eq!(dep.latest_version("snapshot"), 1);

    let (in3, ine) = (path_in("bins-3", "p"), path_in("bins-e", "p"));
    let add = dep.send_action(
        "add_artifacts",
        json!({"artifacts": [artifact(&in3, 1), artifact(&ine, 2)], "publish_artifacts": false}),
    );
    wait_for_state(&dep, &add, "RUNNING");
    // Named roles: exactly those, echoed as sent.
    let id = send_internal(
        &dep,
        "publish_artifacts",
        json!({"delegated_targets": ["bins-3", "bins-7"]}),
    );
    assert_result(
        &result_of(&dep, &id),
        "publish_artifacts",
        processed,
        Value::Null,
        json!({"artifact_roles": ["bins-3", "bins-7"]}),
    );
    assert_eq!(dep.latest_version("bins-3"), 2);
    assert_eq!(dep.latest_version("bins-7"), 2);
    assert_eq!(dep.latest_version("bins-e"), 1);
    assert_eq!(dep.latest_version("snapshot"), 2);
    assert_eq!(record_now(&dep, &add).unwrap()["status"], "RUNNING");
    let client = dep.ngclient(&[&in3, &ine]);
    assert_eq!(client.not_found, std::slice::from_ref(&ine));

    // Upstream's sub-task payload publishes whatever still waits.
    let id = send_internal(
        &dep,
        "publish_artifacts",
        payload_vector("publish_artifacts-from-worker-subtask"),
    );
    assert_eq!(
        result_of(&dep, &id)["details"],
        json!({"artifact_roles": ["bins-e"]})
    );
    assert_eq!(
        result_of(&dep, &add)["details"]["artifact_roles"],
        json!(["bins-3", "bins-e"])
    );
    assert!(dep.ngclient(&[&in3, &ine]).not_found.is_empty());

    let id = send_internal(
        &dep,
        "publish_artifacts",
        json!({"delegated_targets": "bins-3"}),
    );
    let record = dep.wait_for_final(&id, LONG);
    assert_eq!(
        record["result"]["exc_message"],
        json!(["payload field 'delegated_targets': must be a list of role names"])
    );
}

#[test]
fn a_lost_lock_fails_publish_and_the_tasks_waiting_for_it() {
    // The lock is stolen as soon as it is taken, so every round that writes
    // finds it lost (the 1 ms timeout only sets the expected text).
    let (dep, _worker) = bootstrapped(&[("RSTUF_LOCK_TIMEOUT", "0.001")]);
    let pending = dep.send_action(
        "add_artifacts",
        json!({"artifacts": [artifact("a.txt", 1)], "publish_artifacts": false}),
    );
    wait_for_state(&dep, &pending, "RUNNING");
    let _thief = dep.steal_lock_targets();
    let id = send_internal(&dep, "publish_artifacts", Value::Null);
    let record = dep.wait_for_final(&id, LONG);
    assert_eq!(record["status"], "FAILURE");
    assert_eq!(
        record["result"],
        json!({
            "exc_type": "LockError",
            "exc_message": ["RSTUF: Task exceed `LOCK_TIMEOUT` (0 seconds)"],
            "exc_module": "redis.exceptions",
        })
    );
    assert_eq!(
        dep.api_view(&id)["data"]["result"],
        json!({"message": "RSTUF: Task exceed `LOCK_TIMEOUT` (0 seconds)"})
    );

    // A task whose publication fails fails like upstream's failed chord.
    let add = dep.send_action(
        "add_artifacts",
        json!({"artifacts": [artifact("b.txt", 2)]}),
    );
    let record = dep.wait_for_final(&add, LONG);
    assert_eq!(
        record["result"],
        json!({
            "exc_type": "ChordError",
            "exc_message": [format!(
                "Failed to execute publish_artifacts-{add}: LockError \
                 ['RSTUF: Task exceed `LOCK_TIMEOUT` (0 seconds)']"
            )],
            "exc_module": "celery.exceptions",
        })
    );
    assert_eq!(dep.latest_version("snapshot"), 1);
    assert_eq!(dep.metadata("timestamp.json")["signed"]["version"], 1);
}
