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

/// Every versioned metadata file in storage with its bytes.
fn versioned_files(dep: &Deployment) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = dep.stored_files();
    files.retain(|name, _| {
        name.split('.')
            .next()
            .is_some_and(|v| v.parse::<u64>().is_ok())
    });
    files
}

/// Sends the tasks at once and checks each one's message.
fn run_all(dep: &Deployment, tasks: Vec<(String, Value, &str)>) {
    let (ids, bodies): (Vec<_>, Vec<_>) = tasks
        .into_iter()
        .map(|(id, body, message)| ((id, message), body))
        .unzip();
    dep.send(&dep.queue, &Value::Array(bodies));
    for (id, message) in ids {
        let record = dep.wait_for_final(&id, LONG);
        assert_eq!(record["result"]["message"], message, "{record}");
    }
}

fn remove_task(paths: &[String]) -> (String, Value) {
    internal_task("remove_artifacts", json!({"artifacts": paths}))
}

/// The artifact tasks again with two processes of four threads each on the
/// same queues: adds (some waiting for a publish), then removes interleaved
/// with more adds. Nothing is lost, nothing published twice: the client
/// sees exactly what should be there, every version of every role exists
/// once and is never rewritten, and the database agrees with storage.
#[test]
fn two_processes_of_four_threads_add_and_remove_concurrently() {
    let dep = Deployment::new();
    install_bins_after_bootstrap(&dep);
    let workers = [
        dep.start_worker_with_threads(4, &[]),
        dep.start_worker_with_threads(4, &[]),
    ];
    let batch = |n: u64| -> Vec<Value> {
        (0..3)
            .map(|i| artifact(&format!("mp/{n}/{i}.bin"), n * 10 + i + 1))
            .collect()
    };
    let paths_of = |n: u64| -> Vec<String> { (0..3).map(|i| format!("mp/{n}/{i}.bin")).collect() };
    let add = |n: u64, publish: bool| {
        let (id, task) = internal_task(
            "add_artifacts",
            json!({"artifacts": batch(n), "publish_artifacts": publish}),
        );
        (id, task, "Artifact(s) Added")
    };

    // Every fifth add waits for a publish_artifacts from the API.
    let held: Vec<(String, Value, &str)> = (0..40)
        .filter(|n| n % 5 == 0)
        .map(|n| add(n, false))
        .collect();
    let held_ids: Vec<String> = held.iter().map(|(id, _, _)| id.clone()).collect();
    let first: Vec<_> = (0..40)
        .filter(|n| n % 5 != 0)
        .map(|n| add(n, true))
        .collect();
    run_all(&dep, first);
    dep.send(
        &dep.queue,
        &Value::Array(held.into_iter().map(|(_, t, _)| t).collect()),
    );
    for id in &held_ids {
        let start = Instant::now();
        while dep.record(id)["status"] != "RUNNING" {
            assert!(start.elapsed() < LONG, "{id} never waited for a publish");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let (publish, task) = internal_task("publish_artifacts", Value::Null);
    dep.send(&dep.internals, &json!([task]));
    assert_eq!(dep.wait_for_final(&publish, LONG)["status"], "SUCCESS");
    for id in &held_ids {
        let record = dep.wait_for_final(id, LONG);
        assert_eq!(record["result"]["message"], "Artifact(s) Added", "{record}");
    }
    let published = versioned_files(&dep);

    // Removes of the first twenty batches' first two artifacts, with twenty
    // new adds in between.
    let mut second = Vec::new();
    for n in 0..20 {
        let (id, task) = remove_task(&paths_of(n)[..2]);
        second.push((id, task, "Artifact(s) removed"));
        second.push(add(40 + n, true));
    }
    run_all(&dep, second);

    for worker in &workers {
        let log = worker.log_text();
        assert!(log.contains("add_artifacts in"), "{log}");
    }
    let after = versioned_files(&dep);
    for (name, bytes) in &published {
        assert_eq!(
            after.get(name),
            Some(bytes),
            "{name} was rewritten or removed"
        );
    }
    assert_no_version_gaps(&dep, &["snapshot", "bins-0", "bins-7", "bins-f"]);
    for bin in common::fixtures::bin_names() {
        assert_eq!(
            dep.role_row(&bin).0 as u64,
            dep.latest_version(&bin),
            "{bin}"
        );
    }
    let removed: Vec<String> = (0..20).flat_map(|n| paths_of(n)[..2].to_vec()).collect();
    let kept: Vec<String> = (0..60)
        .flat_map(paths_of)
        .filter(|p| !removed.contains(p))
        .collect();
    let all: Vec<&str> = kept.iter().chain(&removed).map(String::as_str).collect();
    let client = dep.ngclient(&all);
    let mut found = client.found.clone();
    found.sort();
    let mut expected = kept.clone();
    expected.sort();
    assert_eq!(found, expected, "the client's view differs");
}
