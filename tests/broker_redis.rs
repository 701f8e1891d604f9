//! Celery's Redis broker transport against the real Redis, with the Python
//! celery client publishing exactly as the RSTUF API does and kombu's own
//! code reading what the worker leaves behind.
mod common;

use std::path::Path;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver};
use serde_json::{json, Value};

use common::fixtures::{eventually, install_bins_after_bootstrap};
use common::proxy::StallingProxy;
use common::services::{Deployment, RedisDb, WorkerProcess};
use common::{run_python, unique};
use rstuf_worker::broker::{
    self, parse_broker_url, BrokerConfig, Disposition, QueueName, Shutdown,
};
use rstuf_worker::celery::TaskHeaders;

const LIMIT: Duration = Duration::from_secs(30);

fn script(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
}

/// Publishes with the celery client (tests/py/send_tasks.py).
fn send(broker_url: &str, queue: &str, tasks: &Value) {
    let out = run_python(
        &script("send_tasks.py"),
        &[broker_url, queue, &tasks.to_string()],
    );
    assert!(
        out.status.success(),
        "send_tasks.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The broker database of a Redis-broker deployment.
fn broker_db(dep: &Deployment) -> redis::Connection {
    let url = dep.redis_broker.as_ref().unwrap().url();
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

fn count(conn: &mut redis::Connection, command: &str, key: &str) -> u64 {
    redis::cmd(command).arg(key).query(conn).unwrap()
}

/// (messages waiting in `queue`, messages recorded as unacknowledged).
fn broker_state(dep: &Deployment, queue: &str) -> (u64, u64) {
    let mut conn = broker_db(dep);
    let unacked = count(&mut conn, "HLEN", "unacked");
    assert_eq!(unacked, count(&mut conn, "ZCARD", "unacked_index"));
    (count(&mut conn, "LLEN", queue), unacked)
}

#[test]
fn api_tasks_run_results_read_back_and_acked_messages_leave_no_record() {
    let dep = Deployment::new_redis_broker();
    let worker = dep.start_worker(&[]);
    let id = dep.send_action("no_such_action", json!({"x": 1}));
    let record = dep.wait_for_final(&id, LIMIT);
    assert_eq!(record["result"]["exc_type"], "AttributeError");
    let view = dep.api_view(&id);
    assert_eq!(view["data"]["state"], "FAILURE");
    eventually(LIMIT, "the ack", || {
        broker_state(&dep, &dep.queue) == (0, 0)
    });
    let member: bool = redis::cmd("SISMEMBER")
        .arg(format!("_kombu.binding.{}", dep.internals))
        .arg(format!("{0}\x06\x16\x06\x16{0}", dep.internals))
        .query(&mut broker_db(&dep))
        .unwrap();
    assert!(member, "the worker declares Celery's bindings");
    assert!(worker.log_text().contains("visibility timeout 3600s"));
}

/// A worker on the deployment's main queue that took one task and hangs
/// in it (its result Redis stalls), then is SIGKILLed. Returns the task id.
fn task_left_by_a_killed_worker(dep: &Deployment) -> String {
    let proxy = StallingProxy::to(6379);
    let via_proxy = format!("redis://127.0.0.1:{}/{}", proxy.port, dep.redis.number);
    let stuck = dep.start_worker_on(&[&dep.queue], 2, &[("RSTUF_REDIS_SERVER", &via_proxy)]);
    proxy.stall();
    let id = dep.send_action("no_such_action", json!({}));
    eventually(
        LIMIT,
        "the worker taking the task and hanging in it",
        || proxy.held() > 0 && broker_state(dep, &dep.queue) == (0, 1),
    );
    assert!(!stuck.signal_and_wait("KILL").success());
    assert_eq!(broker_state(dep, &dep.queue), (0, 1), "kombu's state B1");
    let entries: Vec<String> = redis::cmd("HVALS")
        .arg("unacked")
        .query(&mut broker_db(dep))
        .unwrap();
    let entry: Value = serde_json::from_str(&entries[0]).unwrap();
    assert_eq!(entry[0]["headers"]["id"], id.as_str());
    assert_eq!(entry[1], "");
    assert_eq!(entry[2], dep.queue.as_str());
    id
}

#[test]
fn a_killed_workers_task_comes_back_after_the_visibility_timeout_and_another_runs_it() {
    let dep = Deployment::new_redis_broker();
    let id = task_left_by_a_killed_worker(&dep);
    let rescuer = dep.start_worker(&[("RSTUF_BROKER_VISIBILITY_TIMEOUT", "2")]);
    let record = dep.wait_for_final(&id, LIMIT);
    assert_eq!(record["result"]["exc_type"], "AttributeError");
    rescuer.wait_for_log("put back into", LIMIT);
    eventually(LIMIT, "the ack", || {
        broker_state(&dep, &dep.queue) == (0, 0)
    });
}

#[test]
fn kombu_restores_what_a_killed_rust_worker_left_and_a_rust_worker_runs_it() {
    let dep = Deployment::new_redis_broker();
    let id = task_left_by_a_killed_worker(&dep);
    let out = run_python(&script("kombu_restore.py"), &[&dep.broker_url(), "0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(broker_state(&dep, &dep.queue), (1, 0), "kombu put it back");
    let waiting: String = redis::cmd("LINDEX")
        .arg(&dep.queue)
        .arg(0)
        .query(&mut broker_db(&dep))
        .unwrap();
    let envelope: Value = serde_json::from_str(&waiting).unwrap();
    assert_eq!(envelope["headers"]["redelivered"], true);
    assert_eq!(envelope["properties"]["delivery_info"]["redelivered"], true);
    let _rescuer: WorkerProcess = dep.start_worker(&[]);
    let record = dep.wait_for_final(&id, LIMIT);
    assert_eq!(record["result"]["exc_type"], "AttributeError");
    eventually(LIMIT, "the ack", || {
        broker_state(&dep, &dep.queue) == (0, 0)
    });
}

/// Runs `broker::run` on one thread until dropped; every delivery is sent
/// to the returned channel as (task id, redelivered).
struct Pool {
    stop: Shutdown,
    thread: Option<std::thread::JoinHandle<Result<(), broker::Error>>>,
}

impl Pool {
    fn start(
        url: &str,
        queue: &str,
        decide: impl Fn(&str, bool) -> Disposition + Send + Sync + 'static,
    ) -> (Pool, Receiver<(String, bool)>) {
        let config = BrokerConfig {
            queues: vec![QueueName::new(queue).unwrap()],
            threads: std::num::NonZeroUsize::MIN,
            ..BrokerConfig::new(parse_broker_url(url).unwrap())
        };
        let (tx, rx) = unbounded();
        let stop = Shutdown::new();
        let shutdown = stop.clone();
        let thread = std::thread::spawn(move || {
            broker::run(&config, &shutdown, |delivery| {
                let id = TaskHeaders::decode(&delivery.message.headers)
                    .map_or_else(|e| e.to_string(), |h| h.id.to_string());
                let disposition = decide(&id, delivery.redelivered);
                tx.send((id, delivery.redelivered)).unwrap();
                disposition
            })
        });
        let pool = Pool {
            stop,
            thread: Some(thread),
        };
        (pool, rx)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop.request();
        if let Some(thread) = self.thread.take() {
            let ended = thread.join().unwrap();
            assert!(ended.is_ok(), "{ended:?}");
        }
    }
}

/// Repository tasks under these ids whose action no worker knows: what the
/// pool tests need is messages, not work.
fn unknown_action_tasks(ids: &[&str]) -> Value {
    let tasks = ids
        .iter()
        .map(|id| {
            json!({"name": "app.repository_service_tuf_worker", "id": id,
                   "kwargs": {"action": "x", "payload": null}})
        })
        .collect();
    Value::Array(tasks)
}

#[test]
fn a_requeued_message_goes_behind_the_waiting_ones_marked_redelivered() {
    let db = RedisDb::claim();
    let queue = unique("q");
    let tasks = unknown_action_tasks(&["first", "second"]);
    send(&db.url(), &queue, &tasks);
    let (pool, seen) = Pool::start(&db.url(), &queue, |id, redelivered| {
        if id == "first" && !redelivered {
            Disposition::Requeue
        } else {
            Disposition::Ack
        }
    });
    let next = || seen.recv_timeout(LIMIT).unwrap();
    assert_eq!(next(), ("first".into(), false));
    assert_eq!(next(), ("second".into(), false));
    assert_eq!(next(), ("first".into(), true));
    drop(pool);
    let mut conn = redis::Client::open(db.url())
        .unwrap()
        .get_connection()
        .unwrap();
    assert_eq!(count(&mut conn, "LLEN", &queue), 0);
    assert_eq!(count(&mut conn, "HLEN", "unacked"), 0);
}

#[test]
fn unreadable_envelopes_are_dropped_with_their_failure_recorded_when_named() {
    let dep = Deployment::new_redis_broker();
    let worker = dep.start_worker(&[]);
    let named = unique("bad-base64");
    let bad_body = json!({
        "body": "%%% not base64",
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"lang": "py", "task": "app.repository_service_tuf_worker", "id": named},
        "properties": {"body_encoding": "base64", "delivery_tag": unique("tag"),
                       "delivery_info": {"exchange": "", "routing_key": dep.queue}},
    });
    redis::cmd("LPUSH")
        .arg(&dep.queue)
        .arg("{not json at all")
        .arg(bad_body.to_string())
        .exec(&mut broker_db(&dep))
        .unwrap();
    let record = dep.wait_for_final(&named, LIMIT);
    assert_eq!(record["status"], "FAILURE");
    let message = record["result"]["exc_message"][0].as_str().unwrap();
    assert!(message.contains("not valid base64"), "{message}");
    let after = dep.send_action("no_such_action", json!({}));
    dep.wait_for_final(&after, LIMIT);
    eventually(LIMIT, "the ack", || {
        broker_state(&dep, &dep.queue) == (0, 0)
    });
    assert!(worker
        .log_text()
        .contains("dropped a message that cannot be read: the envelope is not JSON"));
}

#[test]
fn artifacts_added_over_the_redis_broker_reach_the_tuf_client() {
    let dep = Deployment::new_redis_broker();
    install_bins_after_bootstrap(&dep);
    let _worker = dep.start_worker(&[]);
    let info = json!({"length": 1, "hashes": {"sha256": "ab"}});
    let id = dep.send_action(
        "add_artifacts",
        json!({"artifacts": [{"path": "over-redis.bin", "info": info}]}),
    );
    let record = dep.wait_for_final(&id, LIMIT);
    assert_eq!(record["result"]["message"], "Artifact(s) Added", "{record}");
    assert_eq!(dep.api_view(&id)["data"]["state"], "SUCCESS");
    let client = dep.ngclient(&["over-redis.bin"]);
    assert_eq!(client.found, ["over-redis.bin"], "{client:?}");
}

#[test]
fn a_panicking_handler_loses_its_message_not_the_pool() {
    let db = RedisDb::claim();
    let queue = unique("q");
    let tasks = unknown_action_tasks(&["boom", "after"]);
    send(&db.url(), &queue, &tasks);
    let (pool, seen) = Pool::start(&db.url(), &queue, |id, _| {
        assert_ne!(id, "boom", "a task that panics");
        Disposition::Ack
    });
    assert_eq!(seen.recv_timeout(LIMIT).unwrap(), ("after".into(), false));
    drop(pool);
    let mut conn = redis::Client::open(db.url())
        .unwrap()
        .get_connection()
        .unwrap();
    assert_eq!(count(&mut conn, "LLEN", &queue), 0);
    assert_eq!(count(&mut conn, "HLEN", "unacked"), 0, "rejected, not kept");
}

/// Redis drops every connection of the broker database (a restart or a
/// fail-over looks the same to clients): the worker carries on.
#[test]
fn the_worker_carries_on_when_redis_drops_its_broker_connections() {
    let dep = Deployment::new_redis_broker();
    let _worker = dep.start_worker(&[]);
    let before = dep.send_action("no_such_action", json!({}));
    dep.wait_for_final(&before, LIMIT);
    let mut admin = broker_db(&dep);
    let own: i64 = redis::cmd("CLIENT").arg("ID").query(&mut admin).unwrap();
    let clients: String = redis::cmd("CLIENT").arg("LIST").query(&mut admin).unwrap();
    let db = format!("db={}", dep.redis_broker.as_ref().unwrap().number);
    let ids: Vec<&str> = clients
        .lines()
        .filter(|line| line.split(' ').any(|field| field == db))
        .filter_map(|line| line.split(' ').next()?.strip_prefix("id="))
        .filter(|id| *id != own.to_string())
        .collect();
    assert!(
        !ids.is_empty(),
        "the worker has broker connections: {clients}"
    );
    for id in ids {
        redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .exec(&mut admin)
            .unwrap();
    }
    let after = dep.send_action("no_such_action", json!({}));
    let record = dep.wait_for_final(&after, LIMIT);
    assert_eq!(record["result"]["exc_type"], "AttributeError");
}

#[test]
fn health_counts_redis_consumers_and_sigterm_exits_zero() {
    let dep = Deployment::new_redis_broker();
    let worker = dep.start_worker(&[]);
    eventually(LIMIT, "a healthy heartbeat", || worker.health().0);
    let (_, report) = worker.health();
    assert!(report.contains("consuming with 4 consumers"), "{report}");
    let id = dep.send_action("no_such_action", json!({}));
    dep.wait_for_final(&id, LIMIT);
    let status = worker.signal_and_wait("TERM");
    assert!(status.success(), "exit status {status:?}");
}
