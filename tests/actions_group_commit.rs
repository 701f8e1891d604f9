//! The publisher under load: concurrent tasks share publication rounds
//! (group commit), one pool thread is enough, and two worker processes on
//! the same queues and repository stay consistent.
mod common;

use std::time::{Duration, Instant};

use common::fixtures::install_bins_after_bootstrap;
use common::services::Deployment;
use common::unique;
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(120);

fn artifact(path: &str, length: u64) -> Value {
    json!({"path": path, "info": {"length": length, "hashes": {"sha256": format!("{length:064x}")}}})
}

fn add_task(path: &str, length: u64, publish: bool) -> (String, Value) {
    let id = unique("add");
    let task = json!({
        "name": "app.repository_service_tuf_worker",
        "id": id,
        "kwargs": {"action": "add_artifacts",
                   "payload": {"artifacts": [artifact(path, length)], "publish_artifacts": publish}},
    });
    (id, task)
}

fn internal_task(action: &str, payload: Value) -> (String, Value) {
    let id = unique("internal");
    let task = json!({
        "name": "app.repository_service_tuf_worker",
        "id": id,
        "kwargs": {"action": action, "payload": payload},
    });
    (id, task)
}

fn assert_added(dep: &Deployment, id: &str, path: &str) {
    let record = dep.wait_for_final(id, LONG);
    assert_eq!(record["status"], "SUCCESS", "{record}");
    assert_eq!(record["result"]["message"], "Artifact(s) Added", "{record}");
    assert_eq!(
        record["result"]["details"]["added_artifacts"],
        json!([path])
    );
}

/// Versions of each role in storage are 1..=latest, no gaps.
fn assert_no_version_gaps(dep: &Deployment, roles: &[&str]) {
    for role in roles {
        for version in 1..=dep.latest_version(role) {
            let file = dep.storage.path().join(format!("{version}.{role}.json"));
            assert!(file.exists(), "{} missing", file.display());
        }
    }
}

#[test]
fn fifty_concurrent_adds_share_a_few_publications() {
    let dep = Deployment::new();
    install_bins_after_bootstrap(&dep);
    let _worker = dep.start_worker_with_threads(16, &[]);
    let paths: Vec<String> = (0..50).map(|n| format!("group/artifact-{n}.bin")).collect();
    let (ids, tasks): (Vec<String>, Vec<Value>) = paths
        .iter()
        .enumerate()
        .map(|(n, p)| add_task(p, n as u64 + 1, true))
        .unzip();
    dep.send(&dep.queue, &Value::Array(tasks));
    for (id, path) in ids.iter().zip(&paths) {
        assert_added(&dep, id, path);
    }
    let publications = dep.latest_version("snapshot") - 1;
    eprintln!("50 concurrent additions: {publications} publication(s)");
    assert!(
        (1..=15).contains(&publications),
        "50 additions took {publications} snapshots"
    );
    assert_eq!(
        dep.metadata("timestamp.json")["signed"]["version"],
        publications + 1
    );
    assert_no_version_gaps(&dep, &["snapshot", "bins-0", "bins-f"]);
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let client = dep.ngclient(&refs);
    assert!(client.not_found.is_empty(), "{client:?}");
    assert!(dep
        .artifact_rows()
        .iter()
        .all(|(_, _, published)| *published));
}

#[test]
fn one_thread_runs_everything_without_deadlock() {
    let dep = Deployment::new();
    install_bins_after_bootstrap(&dep);
    let _worker = dep.start_worker_with_threads(1, &[]);
    let start = Instant::now();
    // A task that waits for a later publish, then tasks behind it on the
    // same queue, then the publish on the internal queue.
    let (waiting, task) = add_task("held.bin", 7, false);
    dep.send(&dep.queue, &json!([task]));
    let mut queued = Vec::new();
    for n in 0..5 {
        let path = format!("one-thread-{n}.bin");
        let (id, task) = add_task(&path, n + 1, true);
        dep.send(&dep.queue, &json!([task]));
        queued.push((id, path));
    }
    let (publish, task) = internal_task("publish_artifacts", Value::Null);
    dep.send(&dep.internals, &json!([task]));
    let record = dep.wait_for_final(&publish, LONG);
    assert_eq!(
        record["result"]["details"],
        json!({"artifact_roles": [common::fixtures::bin_of("held.bin")]})
    );
    assert_added(&dep, &waiting, "held.bin");
    for (id, path) in &queued {
        assert_added(&dep, id, path);
    }
    let (force, task) = internal_task(
        "force_online_metadata_update",
        json!({"roles": ["snapshot"]}),
    );
    dep.send(&dep.queue, &json!([task]));
    let record = dep.wait_for_final(&force, LONG);
    assert_eq!(
        record["result"]["details"],
        json!({"updated_roles": ["snapshot", "timestamp"]})
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    let client = dep.ngclient(&["held.bin", "one-thread-0.bin", "one-thread-4.bin"]);
    assert!(client.not_found.is_empty(), "{client:?}");
}

#[test]
fn two_worker_processes_share_queues_and_repository() {
    let dep = Deployment::new();
    install_bins_after_bootstrap(&dep);
    let first = dep.start_worker(&[]);
    let second = dep.start_worker(&[]);
    let mut tasks = Vec::new();
    let mut expected = Vec::new();
    for n in 0..30 {
        let path = format!("two/p-{n}.bin");
        // Every fifth waits for someone's publish, wherever it runs.
        let (id, task) = add_task(&path, n + 1, n % 5 != 0);
        tasks.push(task);
        expected.push((id, path));
    }
    dep.send(&dep.queue, &Value::Array(tasks));
    // Let the held tasks start before the publish is sent.
    std::thread::sleep(Duration::from_millis(500));
    let (publish, task) = internal_task("publish_artifacts", Value::Null);
    dep.send(&dep.internals, &json!([task]));
    assert_eq!(dep.wait_for_final(&publish, LONG)["status"], "SUCCESS");
    for (id, path) in &expected {
        assert_added(&dep, id, path);
    }
    // Both processes took tasks.
    for worker in [&first, &second] {
        assert!(
            worker.log_text().contains("add_artifacts in"),
            "{}",
            worker.log_text()
        );
    }
    assert_no_version_gaps(&dep, &["snapshot", "bins-0", "bins-5", "bins-f"]);
    let paths: Vec<&str> = expected.iter().map(|(_, p)| p.as_str()).collect();
    let client = dep.ngclient(&paths);
    assert!(client.not_found.is_empty(), "{client:?}");
    // The database agrees with storage on every bin's version.
    for bin in common::fixtures::bin_names() {
        assert_eq!(
            dep.role_row(&bin).0 as u64,
            dep.latest_version(&bin),
            "{bin}"
        );
    }
}

/// Fifteen adds one after another: each task ends as soon as its own
/// artifact is published, and each is visible to the client.
#[test]
fn single_artifact_adds_each_publish() {
    let dep = Deployment::new();
    install_bins_after_bootstrap(&dep);
    let _worker = dep.start_worker(&[]);
    for n in 0..15 {
        let path = format!("single-{n}.bin");
        let id = dep.send_action(
            "add_artifacts",
            json!({"artifacts": [artifact(&path, n + 1)]}),
        );
        assert_added(&dep, &id, &path);
    }
}

/// A forced bump of every bin of a 16384-bin repository re-signs them all
/// once, in one snapshot and timestamp, and the client accepts the result.
/// (Its speed is measured by `make bench`, issue 6.)
#[test]
fn forced_bump_of_16384_bins() {
    let dep = Deployment::new();
    common::fixtures::install_generated_bins(&dep, 16384);
    let _worker = dep.start_worker(&[]);
    let id = dep.send_action("force_online_metadata_update", json!({"roles": ["bins"]}));
    let record = dep.wait_for_final(&id, Duration::from_secs(600));
    assert_eq!(
        record["result"]["details"],
        json!({"updated_roles": ["snapshot", "timestamp", "bins"]})
    );
    assert_eq!(dep.latest_version("bins-0000"), 2);
    assert_eq!(dep.latest_version("bins-3fff"), 2);
    assert_eq!(dep.latest_version("snapshot"), 2);
    dep.ngclient(&[]);
}
