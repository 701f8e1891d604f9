//! A thousand malformed messages, generated from a fixed seed and published
//! raw to the worker's queue: none may crash it, every one that carries a
//! task id gets a final result naming the problem, the others are rejected,
//! nothing is published or recorded, and the worker goes on serving.
mod common;

use std::time::{Duration, Instant};

use amiquip::{AmqpProperties, AmqpValue, Connection, FieldTable, Publish};
use common::services::{queue_depth, Deployment};
use serde_json::{json, Value};

const MESSAGES: usize = 1000;

/// xorshift64: the same sequence on every run, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// One generated message: its AMQP headers, content type and body, and the
/// task id the worker can read from it (if any).
struct Hostile {
    headers: FieldTable,
    content_type: &'static str,
    body: Vec<u8>,
    id: Option<String>,
}

fn celery_headers(id: &str, task: &str) -> FieldTable {
    let mut headers = FieldTable::default();
    headers.insert("lang".into(), AmqpValue::LongString("py".into()));
    headers.insert("task".into(), AmqpValue::LongString(task.into()));
    headers.insert("id".into(), AmqpValue::LongString(id.into()));
    headers.insert("root_id".into(), AmqpValue::LongString(id.into()));
    headers
}

fn task_body(action: Value, payload: Value) -> Vec<u8> {
    json!([[], {"action": action, "payload": payload}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}])
        .to_string()
        .into_bytes()
}

/// Bad payloads for real actions: wrong types, missing fields, paths and
/// role names that try to escape, huge inputs.
fn bad_payload(rng: &mut Rng) -> (Value, Value) {
    let long = "a".repeat(5000);
    let cases = [
        ("add_artifacts", json!("not an object")),
        (
            "add_artifacts",
            json!({"artifacts": [{"path": "../escape", "info": {"length": 1, "hashes": {"sha256": "ab"}}}]}),
        ),
        (
            "add_artifacts",
            json!({"artifacts": [{"path": "/abs", "info": {}}]}),
        ),
        ("add_artifacts", json!({"artifacts": [{"path": 7}]})),
        ("remove_artifacts", json!({"artifacts": "x"})),
        ("bootstrap", json!({"settings": 1, "metadata": []})),
        (
            "metadata_delegation",
            json!({"action": "add", "delegations": {"roles": [{"name": "../root"}]}}),
        ),
        (
            "metadata_delegation",
            json!({"action": "add", "delegations": {"roles": [{"name": long}]}}),
        ),
        (
            "sign_metadata",
            json!({"role": "root\u{0}", "signature": {"keyid": 1}}),
        ),
        (
            "update_settings",
            json!({"settings": {"expiration": {"bins": "soon"}}}),
        ),
        ("force_online_metadata_update", json!({"roles": [{}]})),
        ("metadata_update", json!({"metadata": {"root": "x"}})),
        ("delete_sign_metadata", json!({"role": ["root"]})),
        ("publish_artifacts", json!([1, 2])),
    ];
    let (action, payload) = &cases[rng.below(cases.len())];
    (json!(action), payload.clone())
}

fn generate(rng: &mut Rng, n: usize) -> Hostile {
    let id = format!("hostile-{n}-{}", rng.next());
    let task = "app.repository_service_tuf_worker";
    let with_id = |body: Vec<u8>, content_type| Hostile {
        headers: celery_headers(&id, task),
        content_type,
        body,
        id: Some(id.clone()),
    };
    // A few megabyte-sized bodies; more would only test RabbitMQ.
    if n % 100 == 0 {
        let huge = "x".repeat(1 << 20);
        return with_id(task_body(json!(huge), json!({})), "application/json");
    }
    match rng.below(9) {
        0 => {
            let len = 1 + rng.below(300);
            with_id(rng.bytes(len), "application/json")
        }
        1 => with_id(
            b"[[], {\"action\": \"add_artifacts\"".to_vec(),
            "application/json",
        ),
        2 => {
            let shapes = [
                json!({}),
                json!([]),
                json!([1, 2, 3]),
                json!("x"),
                json!(null),
                json!([[], [], {}]),
            ];
            let body = shapes[rng.below(shapes.len())].to_string().into_bytes();
            with_id(body, "application/json")
        }
        3 => with_id(task_body(json!(rng.next()), json!({})), "application/json"),
        4 => {
            let (action, payload) = bad_payload(rng);
            with_id(task_body(action, payload), "application/json")
        }
        5 => {
            // Invalid UTF-8 inside an otherwise well-formed body.
            let mut body = task_body(json!("add_artifacts"), json!({"artifacts": []}));
            let at = body.len() / 2;
            body.splice(at..at, [0xff, 0xfe, 0xc3]);
            with_id(body, "application/json")
        }
        6 => with_id(
            b"\x80\x04\x95pickle".to_vec(),
            "application/x-python-serialize",
        ),
        7 => Hostile {
            // No Celery headers at all (protocol 1 or not Celery).
            headers: FieldTable::default(),
            content_type: "application/json",
            body: json!({"task": task, "id": id, "args": [], "kwargs": {}})
                .to_string()
                .into_bytes(),
            id: None,
        },
        _ => {
            // Headers of the wrong types.
            let mut headers = FieldTable::default();
            headers.insert("task".into(), AmqpValue::LongLongInt(rng.next() as i64));
            headers.insert("id".into(), AmqpValue::Boolean(true));
            Hostile {
                headers,
                content_type: "application/json",
                body: task_body(json!("bootstrap"), json!({})),
                id: None,
            }
        }
    }
}

fn publish_all(queue: &str, messages: &[Hostile]) {
    let mut connection = Connection::insecure_open("amqp://guest:guest@127.0.0.1:5672").unwrap();
    let channel = connection.open_channel(None).unwrap();
    for message in messages {
        let properties = AmqpProperties::default()
            .with_headers(message.headers.clone())
            .with_content_type(message.content_type.into())
            .with_content_encoding("utf-8".into())
            .with_delivery_mode(2);
        channel
            .basic_publish(
                "",
                Publish::with_properties(&message.body, queue, properties),
            )
            .unwrap();
    }
    connection.close().unwrap();
}

#[test]
fn a_thousand_malformed_messages_crash_nothing_and_each_is_answered_or_rejected() {
    let dep = Deployment::new();
    common::fixtures::install_bins_after_bootstrap(&dep);
    let published_before = dep.stored_files();
    // Only the task queue: no periodic bump may change storage meanwhile.
    let worker = dep.start_worker_on(&[&dep.queue], 2, &[]);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let messages: Vec<Hostile> = (0..MESSAGES).map(|n| generate(&mut rng, n)).collect();
    publish_all(&dep.queue, &messages);

    let with_id: Vec<&String> = messages.iter().filter_map(|m| m.id.as_ref()).collect();
    assert!(with_id.len() > MESSAGES / 2 && with_id.len() < MESSAGES);
    for id in with_id {
        let record = dep.wait_for_final(id, Duration::from_secs(120));
        let named = match record["status"].as_str() {
            Some("FAILURE") => record["result"]["exc_message"][0]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            Some("SUCCESS") => record["result"]["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
            _ => false,
        };
        assert!(named, "{id}: no result naming the problem: {record}");
    }

    // Every message left the queue, and the worker still runs tasks.
    let start = Instant::now();
    while queue_depth(&dep.queue) > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "messages left in the queue"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(dep.stored_files(), published_before, "metadata changed");
    let artifacts: i64 = dep
        .sql()
        .query_one("SELECT count(*) FROM rstuf_target_files", &[])
        .unwrap()
        .get(0);
    assert_eq!(artifacts, 0, "an artifact was recorded");
    let after = dep.send_action("no_such_action", json!({}));
    assert_eq!(
        dep.wait_for_final(&after, Duration::from_secs(30))["status"],
        "FAILURE"
    );
    let log = worker.log_text();
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        log.contains("rejecting message"),
        "headerless messages were not rejected"
    );
}
