//! Storage that fails under the worker: a full disk, a read-only file
//! system, an S3 endpoint that goes down or hangs. Each scenario (in
//! tests/common/faults.rs, which `make chaos` runs with larger counts) must
//! end with the faulted task failing with a message naming the problem,
//! nothing partial visible to a client, every reported success visible, and
//! the next task succeeding on the same worker.
mod common;

use std::time::Duration;

use common::faults::{
    observe_disk_full, observe_read_only, observe_s3_down, observe_s3_hang, proxy_url,
    s3_deployment, Observed, BIN, HANG_TIME_LIMIT,
};
use common::fixtures::install_bins_after_bootstrap;
use common::free_port;
use common::proxy::StallingProxy;
use common::services::Deployment;
use rstuf_worker::storage::{AwsS3, S3Config};
use serde_json::json;

/// One injection, nothing lost or inconsistent, recovered in place; the
/// failure of the task sent during the fault.
fn one_clean_failure(seen: &Observed) -> &common::faults::Failed {
    let row = &seen.row;
    assert_eq!(
        (
            row.count,
            row.lost,
            row.inconsistent,
            row.recovered_without_restart
        ),
        (1, 0, 0, true),
        "{row:?} (failures: {:?})",
        seen.failures
    );
    &seen.failures[0]
}

/// The ChordError of an addition whose publication failed writing the next
/// version of its bin.
fn local_write_failure(seen: &Observed, cause: &str) {
    let failed = one_clean_failure(seen);
    assert_eq!(failed.exc_type, "ChordError");
    assert_eq!(
        failed.message,
        format!(
            "Failed to execute publish_artifacts-{}: StorageError ['metadata storage: \
             {}/{}.{BIN}.json: cannot write a temporary copy: {cause}']",
            failed.task_id,
            seen.storage.display(),
            failed.bin_version + 1
        )
    );
}

#[test]
fn a_full_disk_fails_the_task_naming_the_file_and_leaves_nothing_partial() {
    local_write_failure(
        &observe_disk_full(1),
        "No space left on device (os error 28)",
    );
}

#[test]
fn a_read_only_file_system_fails_the_task_and_the_next_one_succeeds() {
    local_write_failure(&observe_read_only(1), "Read-only file system (os error 30)");
}

#[test]
fn an_s3_endpoint_that_goes_down_fails_the_task_and_the_next_one_succeeds() {
    let seen = observe_s3_down(1);
    let failed = one_clean_failure(&seen);
    // The addition reads targets to route its artifacts: the first request.
    assert_eq!(
        (failed.exc_type.as_str(), failed.message.as_str()),
        (
            "StorageError",
            "metadata storage: cannot check for s3://rstuf-metadata/2.targets.json: attohttpc: \
             Io Error: Connection refused (os error 111)"
        )
    );
}

#[test]
fn a_task_stuck_on_a_hung_s3_endpoint_is_ended_by_the_time_limit() {
    let seen = observe_s3_hang(1);
    let failed = one_clean_failure(&seen);
    assert_eq!(failed.exc_type, "TimeLimitExceeded");
    assert_eq!(
        failed.message,
        format!(
            "RSTUF: task exceeded `RSTUF_TASK_TIME_LIMIT` ({HANG_TIME_LIMIT} seconds) and was \
             ended by the worker"
        )
    );
}

/// A root update stuck on S3 is ended by the limit; when its requests are
/// answered after all, its abandoned thread goes on to publish the new root
/// and is stopped right there: nothing appears, the record stays.
#[test]
fn an_abandoned_task_that_wakes_up_publishes_nothing() {
    let (dep, proxy) = s3_deployment();
    let worker = dep.start_worker_on(
        &[&dep.queue],
        1,
        &[
            ("RSTUF_AWS_ENDPOINT_URL", &proxy_url(&proxy)),
            ("RSTUF_TASK_TIME_LIMIT", HANG_TIME_LIMIT),
        ],
    );
    proxy.stall();
    let vector = common::shared("vectors/payloads/metadata_update-root-v2.json");
    let task: serde_json::Value = serde_json::from_slice(&std::fs::read(vector).unwrap()).unwrap();
    let id = dep.send_action("metadata_update", task["kwargs"]["payload"].clone());
    let ended = dep.wait_for_final(&id, Duration::from_secs(60));
    assert_eq!(ended["result"]["exc_type"], "TimeLimitExceeded", "{ended}");

    proxy.resume_held();
    worker.wait_for_log(
        "its thread ended after the time limit",
        Duration::from_secs(60),
    );
    dep.sync_storage();
    assert!(
        !dep.storage.path().join("2.root.json").exists(),
        "the abandoned task published root v2"
    );
    assert_eq!(dep.record(&id), ended);
}

/// A request to an endpoint that accepted the connection and never answers
/// fails at the request timeout instead of holding its thread.
#[test]
fn a_request_to_a_hung_s3_endpoint_fails_at_its_timeout() {
    let proxy = StallingProxy::to(free_port());
    proxy.stall();
    let mut config = S3Config::new("metadata", "key", "secret");
    config.endpoint_url = Some(format!("http://127.0.0.1:{}", proxy.port));
    config.request_timeout = Duration::from_millis(500);
    let err = AwsS3::connect(&config).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot check the bucket s3://metadata/: attohttpc: Io Error: timed out: the endpoint \
         did not answer in time (RSTUF_AWS_REQUEST_TIMEOUT is 0.5s; a single read waits at most \
         30s)"
    );
    assert_eq!(proxy.held(), 1, "the request reached the hung endpoint");
}

/// An addition whose publication cannot start (another worker holds
/// `LOCK_TARGETS`) is ended by the limit, and its thread stops waiting at
/// once instead of when the publication finally runs. Its artifact stays
/// recorded: the next publication brings it out with the next addition.
#[test]
fn a_task_waiting_for_a_publication_stops_waiting_when_ended() {
    let dep = Deployment::new();
    install_bins_after_bootstrap(&dep);
    let worker = dep.start_worker_on(
        &[&dep.queue],
        1,
        &[("RSTUF_TASK_TIME_LIMIT", HANG_TIME_LIMIT)],
    );
    redis::cmd("SET")
        .arg("LOCK_TARGETS")
        .arg("held-by-another-worker")
        .arg("EX")
        .arg(600)
        .query::<()>(&mut dep.redis())
        .unwrap();
    let first = artifact("waited/first.tar.gz");
    let id = dep.send_action("add_artifacts", json!({"artifacts": [first]}));
    let ended = dep.wait_for_final(&id, Duration::from_secs(60));
    assert_eq!(ended["result"]["exc_type"], "TimeLimitExceeded", "{ended}");
    worker.wait_for_log(
        "its thread ended after the time limit",
        Duration::from_secs(30),
    );

    redis::cmd("DEL")
        .arg("LOCK_TARGETS")
        .query::<()>(&mut dep.redis())
        .unwrap();
    let next = dep.send_action(
        "add_artifacts",
        json!({"artifacts": [artifact("waited/next.tar.gz")]}),
    );
    let record = dep.wait_for_final(&next, Duration::from_secs(60));
    assert_eq!(record["status"], "SUCCESS", "{record}");
    let client = dep.ngclient(&["waited/first.tar.gz", "waited/next.tar.gz"]);
    assert!(client.not_found.is_empty(), "{client:?}");
    assert_eq!(dep.record(&id), ended);
}

fn artifact(path: &str) -> serde_json::Value {
    json!({"path": path, "info": {"length": 7, "hashes": {"sha256": "cd".repeat(32)}}})
}
