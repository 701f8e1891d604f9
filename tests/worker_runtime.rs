//! The worker binary against the real RabbitMQ, Redis and PostgreSQL, driven
//! by the Python celery client exactly as the RSTUF API drives it.
mod common;

use std::time::Duration;

use common::proxy::StallingProxy;
use common::rabbitmq::{rabbitmqctl, Vhost};
use common::services::{queue_depth, Deployment};
use common::unique;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn api_tasks_reach_the_pool_and_results_read_back_through_the_api() {
    let dep = Deployment::new();
    let worker = dep.start_worker(&[]);
    let id = dep.send_action("no_such_action", json!({"x": 1}));
    let record = dep.wait_for_final(&id, LIMIT);
    assert_eq!(record["status"], "FAILURE");
    assert_eq!(record["result"]["exc_type"], "AttributeError");
    let view = dep.api_view(&id);
    assert_eq!(view["data"]["state"], "FAILURE");
    let message = view["data"]["result"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("unknown action \"no_such_action\""),
        "{message}"
    );
    assert!(
        worker.log_text().contains(&id),
        "task id missing from the log"
    );
}

#[test]
fn unknown_tasks_and_malformed_messages_are_rejected_and_recorded() {
    let dep = Deployment::new();
    let worker = dep.start_worker(&[]);
    let unknown = unique("unknown");
    let malformed = unique("malformed");
    dep.send(
        &dep.queue,
        &json!([
            {"name": "app.no_such_task", "id": unknown, "kwargs": {}},
            {"name": "app.repository_service_tuf_worker", "id": malformed, "raw_body": "[[], {not json"},
        ]),
    );
    let record = dep.wait_for_final(&unknown, LIMIT);
    assert_eq!(record["result"]["exc_type"], "NotRegistered");
    assert_eq!(
        dep.api_view(&unknown)["data"]["result"]["message"],
        "'app.no_such_task'"
    );
    let record = dep.wait_for_final(&malformed, LIMIT);
    assert_eq!(record["status"], "FAILURE");
    let message = record["result"]["exc_message"][0].as_str().unwrap();
    assert!(message.contains("not protocol 2"), "{message}");

    // The worker keeps consuming, and rejected messages are gone for good.
    let next = dep.send_action("no_such_action", json!({}));
    dep.wait_for_final(&next, LIMIT);
    assert_eq!(queue_depth(&dep.queue), 0);
    assert!(worker.log_text().contains("rejecting"));
}

/// A worker killed with SIGKILL while running a task has not acked it, so
/// RabbitMQ gives the task to another worker, which finishes it.
#[test]
fn a_task_of_a_killed_worker_is_redelivered_to_another() {
    let dep = Deployment::new();
    // Redis through a proxy that stops answering once the worker is up: the
    // first worker then hangs inside the task (storing PRE_RUN) until killed.
    let proxy = StallingProxy::to(6379);
    let via_proxy = format!("redis://127.0.0.1:{}/{}", proxy.port, dep.redis.number);
    let stuck = dep.start_worker_on(&[&dep.queue], 2, &[("RSTUF_REDIS_SERVER", &via_proxy)]);
    proxy.stall();
    let id = dep.send_action("no_such_action", json!({}));
    let start = std::time::Instant::now();
    while proxy.held() == 0 || queue_depth(&dep.queue) != 0 {
        assert!(
            start.elapsed() < LIMIT,
            "the worker never took the task and tried to store a result"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = stuck.signal_and_wait("KILL");
    assert!(!status.success());

    let rescuer = dep.start_worker(&[]);
    let record = dep.wait_for_final(&id, LIMIT);
    assert_eq!(record["result"]["exc_type"], "AttributeError");
    rescuer.wait_for_log(&id, LIMIT);
}

#[test]
fn the_worker_reconnects_when_rabbitmq_closes_its_connections() {
    let vhost = Vhost::new();
    let url = vhost.url();
    let dep = Deployment::new();
    let worker = dep.start_worker(&[("RSTUF_BROKER_SERVER", &url)]);
    let send = |id: &str| {
        let task = json!([{"name": "app.repository_service_tuf_worker", "id": id,
                            "kwargs": {"action": "no_such_action", "payload": null}}]);
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/send_tasks.py");
        let out = common::run_python(&script, &[&url, &dep.queue, &task.to_string()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let before = unique("before");
    send(&before);
    dep.wait_for_final(&before, LIMIT);

    rabbitmqctl(&[
        "close_all_connections",
        "-p",
        vhost.name(),
        "test: connection closed on purpose",
    ]);
    let after = unique("after");
    send(&after);
    let record = dep.wait_for_final(&after, LIMIT);
    assert_eq!(record["status"], "FAILURE");
    assert!(
        worker.log_text().to_lowercase().contains("reconnect"),
        "{}",
        worker.log_text()
    );
}

#[test]
fn sigterm_finishes_and_exits_zero() {
    let dep = Deployment::new();
    let worker = dep.start_worker(&[]);
    let id = dep.send_action("no_such_action", json!({}));
    dep.wait_for_final(&id, LIMIT);
    let status = worker.signal_and_wait("TERM");
    assert!(status.success(), "exit status {status:?}");
}

/// PostgreSQL kills every connection of the worker (as a fail-over or an
/// administrator would): the next task still succeeds, no restart needed.
#[test]
fn the_next_task_succeeds_after_postgresql_kills_the_workers_connections() {
    let dep = Deployment::new();
    common::fixtures::install_bins_after_bootstrap(&dep);
    let _worker = dep.start_worker(&[]);
    let add = |path: &str| {
        let info = json!({"length": 1, "hashes": {"sha256": "ab"}});
        let id = dep.send_action(
            "add_artifacts",
            json!({"artifacts": [{"path": path, "info": info}]}),
        );
        let record = dep.wait_for_final(&id, LIMIT);
        assert_eq!(record["result"]["message"], "Artifact(s) Added", "{record}");
    };
    add("before-kill.bin");
    let killed: i64 = dep
        .sql()
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(killed > 0, "the worker had no connection to kill");
    add("after-kill.bin");
    let client = dep.ngclient(&["before-kill.bin", "after-kill.bin"]);
    assert!(client.not_found.is_empty(), "{client:?}");
}
