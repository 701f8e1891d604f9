//! The broker module against the local RabbitMQ (127.0.0.1:5672, guest),
//! with Python's celery 5.6.3 / kombu as the other side. Every test uses its
//! own queues (and, where it closes connections, its own vhost), so tests
//! run in parallel with each other and with other modules' tests.
use std::io::Read;
use std::net::{Shutdown as SocketShutdown, TcpListener, TcpStream};
use std::num::{NonZeroU16, NonZeroUsize};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use rstuf_worker::broker::{
    self, parse_broker_url, AmqpUrl, BrokerConfig, Delivery, Disposition, Publisher, QueueName,
    ReconnectPolicy, Shutdown,
};
use rstuf_worker::celery::RawMessage;
use serde_json::{json, Value};

mod common;
use common::rabbitmq::{rabbitmqctl, Vhost};
use common::{python, unique};

#[path = "../src/tuf/testdata.rs"]
#[allow(dead_code)]
mod testdata;

const RABBIT: &str = "127.0.0.1:5672";
const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------- helpers

/// Runs a Python snippet with `args` as sys.argv[1:]; returns its stdout.
fn run_python(code: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python().display()));
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Celery's own client: `send_task` for each `(queue, task id, kwargs)`.
fn celery_send(vhost: &str, tasks: &[(&QueueName, &str, Value)]) {
    const CODE: &str = r#"
import json, sys
from celery import Celery
app = Celery(broker=sys.argv[1])
for queue, task_id, kwargs in json.loads(sys.argv[2]):
    app.send_task("app.repository_service_tuf_worker", kwargs=kwargs, task_id=task_id, queue=queue)
"#;
    let tasks: Vec<Value> = tasks
        .iter()
        .map(|(q, id, kwargs)| json!([q.as_str(), id, kwargs]))
        .collect();
    run_python(
        CODE,
        &[&python_url(vhost), &Value::Array(tasks).to_string()],
    );
}

fn python_url(vhost: &str) -> String {
    if vhost == "/" {
        format!("amqp://guest:guest@{RABBIT}//")
    } else {
        format!("amqp://guest:guest@{RABBIT}/{vhost}")
    }
}

fn url(vhost: &str) -> AmqpUrl {
    parse_broker_url(&python_url(vhost))
        .unwrap()
        .into_amqp()
        .unwrap()
}

/// Test queues, deleted (with their exchanges) when the test ends.
struct Queues {
    url: AmqpUrl,
    names: Vec<QueueName>,
}

impl Queues {
    fn new(vhost: &str, names: &[&str]) -> Queues {
        Queues {
            url: url(vhost),
            names: names
                .iter()
                .map(|n| QueueName::new(&unique(n)).unwrap())
                .collect(),
        }
    }

    fn admin(&self) -> amiquip::Connection {
        amiquip::Connection::insecure_open(&format!(
            "amqp://guest:guest@{RABBIT}/{}",
            self.url.vhost().replace('/', "%2F")
        ))
        .unwrap()
    }

    /// (ready messages, consumers) of queue `i`.
    fn counts(&self, i: usize) -> (u32, u32) {
        self.try_counts(i)
            .unwrap_or_else(|| panic!("queue {} does not exist", self.names[i]))
    }

    fn try_counts(&self, i: usize) -> Option<(u32, u32)> {
        let mut conn = self.admin();
        let channel = conn.open_channel(None).unwrap();
        let counts = channel
            .queue_declare_passive(self.names[i].as_str())
            .ok()
            .map(|q| {
                (
                    q.declared_message_count().unwrap(),
                    q.declared_consumer_count().unwrap(),
                )
            });
        let _ = conn.close();
        counts
    }

    fn wait_for(&self, i: usize, what: &str, ok: impl Fn((u32, u32)) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !self.try_counts(i).is_some_and(&ok) {
            assert!(
                Instant::now() < deadline,
                "{what}: counts of {} stayed {:?}",
                self.names[i],
                self.try_counts(i)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn config(&self, threads: usize, prefetch: u16) -> BrokerConfig {
        BrokerConfig {
            queues: self.names.clone(),
            threads: NonZeroUsize::new(threads).unwrap(),
            prefetch: NonZeroU16::new(prefetch).unwrap(),
            reconnect: ReconnectPolicy {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(500),
            },
            connect_timeout: Duration::from_secs(5),
            ..BrokerConfig::new(self.url.clone())
        }
    }
}

impl Drop for Queues {
    fn drop(&mut self) {
        let mut conn = self.admin();
        let channel = conn.open_channel(None).unwrap();
        for q in &self.names {
            let _ = channel.queue_delete(q.as_str(), Default::default());
            let _ = channel.exchange_delete(q.as_str(), false);
        }
        let _ = conn.close();
    }
}

/// A pool running on its own thread; stopped (and joined) when dropped, so
/// a failing test does not leave it redeclaring its queues.
struct Pool {
    shutdown: Shutdown,
    thread: Option<JoinHandle<Result<(), broker::Error>>>,
}

impl Pool {
    fn start(
        config: BrokerConfig,
        handler: impl Fn(Delivery) -> Disposition + Send + Sync + 'static,
    ) -> Pool {
        // RUST_LOG=debug shows what the pool did.
        let _ = env_logger::builder().is_test(true).try_init();
        let shutdown = Shutdown::new();
        let stop = shutdown.clone();
        let thread = std::thread::spawn(move || broker::run(&config, &stop, handler));
        Pool {
            shutdown,
            thread: Some(thread),
        }
    }

    fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    fn stop(mut self) {
        self.shutdown.request();
        let thread = self.thread.take().unwrap();
        thread.join().unwrap().unwrap();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shutdown.request();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The task id (`id` header) and redelivered flag of a delivery.
type Seen = (String, bool);

fn seen(d: &Delivery) -> Seen {
    (
        d.message.headers["id"].as_str().unwrap().to_owned(),
        d.redelivered,
    )
}

fn next(events: &Receiver<Seen>) -> Seen {
    events
        .recv_timeout(WAIT)
        .expect("no delivery reached the handler in time")
}

fn assert_quiet(events: &Receiver<Seen>) {
    if let Ok(extra) = events.recv_timeout(Duration::from_millis(300)) {
        panic!("unexpected delivery {extra:?}");
    }
}

/// A minimal Celery-shaped message, as the worker's own sub-tasks look.
fn task(id: &str) -> RawMessage {
    RawMessage {
        headers: json!({"lang": "py", "task": "app.repository_service_tuf_worker", "id": id})
            .as_object()
            .unwrap()
            .clone(),
        content_type: Some("application/json".into()),
        content_encoding: Some("utf-8".into()),
        correlation_id: Some(id.into()),
        body: br#"[[], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]"#
            .to_vec(),
    }
}

fn publisher(queues: &Queues) -> Publisher {
    Publisher::new(queues.url.clone(), Duration::from_secs(5))
}

fn recorder(tx: Sender<Seen>) -> impl Fn(Delivery) -> Disposition + Send + Sync + 'static {
    move |d| {
        tx.send(seen(&d)).unwrap();
        Disposition::Ack
    }
}

// ------------------------------------------------------------------ tests

#[test]
fn celery_messages_reach_the_pool_intact_and_are_acked() {
    let queues = Queues::new("/", &["metadata_repository", "rstuf_internals"]);
    // Celery declares the queues first here; the pool's declarations must match.
    let vectors = [
        "vectors/celery/amqp-metadata_repository-11111111111111111111111111111111.json",
        "vectors/celery/amqp-rstuf_internals-0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e.json",
    ]
    .map(testdata::json);
    let ids: Vec<String> = vectors
        .iter()
        .map(|v| v["headers"]["id"].as_str().unwrap().to_owned())
        .collect();
    celery_send(
        "/",
        &[
            (
                &queues.names[0],
                &ids[0],
                vectors[0]["body_decoded"][1].clone(),
            ),
            (
                &queues.names[1],
                &ids[1],
                vectors[1]["body_decoded"][1].clone(),
            ),
        ],
    );

    let (tx, rx) = unbounded();
    let pool = Pool::start(queues.config(2, 4), move |d| {
        tx.send(d).unwrap();
        Disposition::Ack
    });
    let got: Vec<Delivery> = (0..2)
        .map(|_| rx.recv_timeout(WAIT).expect("celery message not delivered"))
        .collect();
    pool.stop();

    for (vector, queue) in vectors.iter().zip(&queues.names) {
        let delivery = got.iter().find(|d| &d.queue == queue).unwrap();
        let mut expected = vector["headers"].as_object().unwrap().clone();
        let mut headers = delivery.message.headers.clone();
        // The only header that depends on the sending process.
        assert!(headers
            .remove("origin")
            .unwrap()
            .as_str()
            .unwrap()
            .starts_with("gen"));
        expected.remove("origin");
        assert_eq!(headers, expected);
        assert!(!delivery.redelivered);
        assert_eq!(
            delivery.message.body,
            vector["body_text"].as_str().unwrap().as_bytes()
        );
        assert_eq!(
            delivery.message.content_type.as_deref(),
            Some("application/json")
        );
        assert_eq!(delivery.message.content_encoding.as_deref(), Some("utf-8"));
        assert_eq!(
            delivery.message.correlation_id.as_deref(),
            vector["headers"]["id"].as_str()
        );
    }
    assert_eq!(queues.counts(0), (0, 0));
    assert_eq!(queues.counts(1), (0, 0));
}

#[test]
fn reject_drops_and_requeue_redelivers() {
    let queues = Queues::new("/", &["metadata_repository"]);
    let (tx, rx) = unbounded();
    let pool = Pool::start(queues.config(1, 4), move |d| {
        let s = seen(&d);
        let verdict = match (s.0.as_str(), s.1) {
            ("reject-me", _) => Disposition::Reject,
            ("requeue-me", false) => Disposition::Requeue,
            _ => Disposition::Ack,
        };
        tx.send(s).unwrap();
        verdict
    });
    // The pool declared first; Celery's declarations must still be accepted.
    queues.wait_for(0, "pool consuming", |(_, consumers)| consumers == 1);
    celery_send(
        "/",
        &[
            (&queues.names[0], "reject-me", json!({})),
            (&queues.names[0], "requeue-me", json!({})),
        ],
    );
    assert_eq!(next(&rx), ("reject-me".into(), false));
    assert_eq!(next(&rx), ("requeue-me".into(), false));
    assert_eq!(next(&rx), ("requeue-me".into(), true));
    assert_quiet(&rx);
    pool.stop();
    assert_eq!(queues.counts(0), (0, 0));
}

#[test]
fn prefetch_bounds_unacknowledged_messages() {
    let queues = Queues::new("/", &["metadata_repository"]);
    let publisher = publisher(&queues);
    for i in 0..5 {
        publisher
            .publish(&queues.names[0], &task(&format!("t{i}")), None)
            .unwrap();
    }
    let (tx, rx) = unbounded();
    let (release_tx, release_rx) = unbounded::<()>();
    let pool = Pool::start(queues.config(1, 2), move |d| {
        tx.send(seen(&d)).unwrap();
        // Bounded, so a failing test's Pool::drop cannot hang on it.
        let _ = release_rx.recv_timeout(WAIT);
        Disposition::Ack
    });
    assert_eq!(next(&rx), ("t0".into(), false));
    // One running, one waiting in the prefetch window, three left in the queue.
    queues.wait_for(0, "prefetch 2", |(ready, _)| ready == 3);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(queues.counts(0), (3, 1));
    for i in 1..5 {
        release_tx.send(()).unwrap();
        assert_eq!(next(&rx), (format!("t{i}"), false));
    }
    release_tx.send(()).unwrap();
    pool.stop();
    assert_eq!(queues.counts(0), (0, 0));
}

#[test]
fn published_message_reads_in_kombu_as_celerys_own() {
    let queues = Queues::new("/", &["rstuf_internals"]);
    let vector = testdata::json("vectors/celery/amqp-wire-subtask-from-worker.json");
    let header = &vector["content_header"];
    let plain = |typed: &Value| -> Value {
        // {"type": .., "value": ..} trees → plain JSON, as Celery would see them.
        fn strip(t: &Value) -> Value {
            match &t["value"] {
                Value::Array(items) => Value::Array(items.iter().map(strip).collect()),
                Value::Object(map) => {
                    Value::Object(map.iter().map(|(k, v)| (k.clone(), strip(v))).collect())
                }
                other => other.clone(),
            }
        }
        Value::Object(
            typed
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        )
    };
    let headers = plain(&header["headers"]);
    let message = RawMessage {
        headers: headers.as_object().unwrap().clone(),
        content_type: Some("application/json".into()),
        content_encoding: Some("utf-8".into()),
        correlation_id: header["correlation_id"].as_str().map(str::to_owned),
        body: vector["body"].as_str().unwrap().as_bytes().to_vec(),
    };
    let reply_to = header["reply_to"].as_str().unwrap();
    publisher(&queues)
        .publish(&queues.names[0], &message, Some(reply_to))
        .unwrap();

    const CODE: &str = r#"
import json, sys
from kombu import Connection, Exchange, Queue
with Connection(sys.argv[1]) as conn:
    name = sys.argv[2]
    queue = Queue(name, Exchange(name, "direct"), routing_key=name)(conn.default_channel)
    m = queue.get(no_ack=True)
    print(json.dumps({"headers": m.headers, "properties": m.properties,
                      "content_type": m.content_type, "content_encoding": m.content_encoding,
                      "payload": m.decode(), "body": m.body if isinstance(m.body, str) else m.body.decode(),
                      "delivery_info": {k: m.delivery_info[k] for k in ("exchange", "routing_key")}}))
"#;
    let out: Value = serde_json::from_str(&run_python(
        CODE,
        &[&python_url("/"), queues.names[0].as_str()],
    ))
    .unwrap();
    assert_eq!(out["headers"], headers);
    assert_eq!(
        out["properties"],
        json!({
            "content_type": "application/json",
            "content_encoding": "utf-8",
            "application_headers": headers,
            "delivery_mode": 2,
            "correlation_id": header["correlation_id"],
            "reply_to": reply_to,
        })
    );
    assert_eq!(out["body"], vector["body"]);
    assert_eq!(
        out["payload"],
        serde_json::from_str::<Value>(vector["body"].as_str().unwrap()).unwrap()
    );
    assert_eq!(
        out["delivery_info"],
        json!({"exchange": "", "routing_key": queues.names[0].as_str()})
    );
}

#[test]
fn reconnects_after_rabbitmq_closes_the_connections() {
    let vhost = Vhost::new();
    let queues = Queues::new(vhost.name(), &["metadata_repository"]);
    let (tx, rx) = unbounded();
    let (release_tx, release_rx) = unbounded::<()>();
    let pool = Pool::start(queues.config(2, 1), move |d| {
        let s = seen(&d);
        tx.send(s.clone()).unwrap();
        if s == ("slow".into(), false) {
            // Bounded, so a failing test's Pool::drop cannot hang on it.
            let _ = release_rx.recv_timeout(WAIT);
        }
        Disposition::Ack
    });
    queues.wait_for(0, "both threads consuming", |(_, consumers)| consumers == 2);
    let publisher = publisher(&queues);
    publisher
        .publish(&queues.names[0], &task("slow"), None)
        .unwrap();
    assert_eq!(next(&rx), ("slow".into(), false));

    rabbitmqctl(&["close_all_connections", "-p", vhost.name(), "broker test"]);
    // The in-flight task finishes; its ack fails and RabbitMQ redelivers it.
    release_tx.send(()).unwrap();
    // The publisher's connection was closed too; it reconnects by itself.
    publisher
        .publish(&queues.names[0], &task("next"), None)
        .unwrap();
    // "slow" comes back once per closed connection that held it: RabbitMQ
    // may hand it to the other thread before closing that one too.
    let (mut next_seen, mut slow_again) = (false, false);
    while !(next_seen && slow_again) {
        match next(&rx) {
            (id, false) if id == "next" && !next_seen => next_seen = true,
            (id, true) if id == "slow" => slow_again = true,
            other => panic!("unexpected delivery {other:?}"),
        }
    }
    assert_quiet(&rx);
    pool.stop();
    assert_eq!(queues.counts(0), (0, 0));
}

/// Forwards TCP to RabbitMQ; `cut` kills every forwarded socket the way a
/// RabbitMQ crash or a network failure does (no AMQP close).
struct Proxy {
    port: u16,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    accepted: Arc<AtomicUsize>,
}

impl Proxy {
    fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sockets = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (s, a) = (sockets.clone(), accepted.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let client = client.unwrap();
                let server = TcpStream::connect(RABBIT).unwrap();
                a.fetch_add(1, Ordering::SeqCst);
                s.lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                pump(client.try_clone().unwrap(), server.try_clone().unwrap());
                pump(server, client);
            }
        });
        Proxy {
            port,
            sockets,
            accepted,
        }
    }

    fn cut(&self) {
        for socket in self.sockets.lock().unwrap().drain(..) {
            let _ = socket.shutdown(SocketShutdown::Both);
        }
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            if std::io::Write::write_all(&mut to, &buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(SocketShutdown::Both);
    });
}

#[test]
fn reconnects_after_the_socket_dies() {
    let queues = Queues::new("/", &["metadata_repository"]);
    let proxy = Proxy::start();
    let config = BrokerConfig {
        url: parse_broker_url(&format!("guest:guest@127.0.0.1:{}", proxy.port)).unwrap(),
        ..queues.config(1, 4)
    };
    let (tx, rx) = unbounded();
    let pool = Pool::start(config, recorder(tx));
    let publisher = publisher(&queues);
    publisher
        .publish(&queues.names[0], &task("before"), None)
        .unwrap();
    assert_eq!(next(&rx), ("before".into(), false));

    proxy.cut();
    publisher
        .publish(&queues.names[0], &task("after"), None)
        .unwrap();
    // "before" comes again if its ack was still on the way when the socket
    // died; "after" is redelivered if RabbitMQ sent it down the dead socket.
    loop {
        match next(&rx) {
            (id, _) if id == "after" => break,
            other => assert_eq!(other, ("before".into(), true)),
        }
    }
    assert_eq!(proxy.accepted.load(Ordering::SeqCst), 2);
    pool.stop();
    assert_eq!(queues.counts(0), (0, 0));
}

#[test]
fn graceful_shutdown_finishes_and_acks_the_running_task() {
    let queues = Queues::new("/", &["metadata_repository"]);
    let publisher = publisher(&queues);
    for id in ["running", "waiting-1", "waiting-2"] {
        publisher
            .publish(&queues.names[0], &task(id), None)
            .unwrap();
    }
    let (tx, rx) = unbounded();
    let (release_tx, release_rx) = unbounded::<()>();
    let pool = Pool::start(queues.config(1, 4), move |d| {
        tx.send(seen(&d)).unwrap();
        // Bounded, so a failing test's Pool::drop cannot hang on it.
        let _ = release_rx.recv_timeout(WAIT);
        Disposition::Ack
    });
    assert_eq!(next(&rx), ("running".into(), false));
    // All three are with the pool now: one running, two prefetched.
    queues.wait_for(0, "all prefetched", |(ready, _)| ready == 0);

    pool.shutdown.request();
    std::thread::sleep(Duration::from_millis(300));
    assert!(pool.is_running(), "stopped before the running task ended");
    release_tx.send(()).unwrap();
    let stopping = Instant::now();
    pool.stop();
    assert!(stopping.elapsed() < Duration::from_secs(2));
    assert_quiet(&rx);
    // The running task was acked; the prefetched ones went back.
    assert_eq!(queues.counts(0), (2, 0));
}

#[test]
fn panicking_handler_loses_its_message_not_the_pool() {
    let queues = Queues::new("/", &["metadata_repository"]);
    let (tx, rx) = unbounded();
    let pool = Pool::start(queues.config(1, 4), move |d| {
        let s = seen(&d);
        tx.send(s.clone()).unwrap();
        assert_ne!(s.0, "boom", "handler bug");
        Disposition::Ack
    });
    let publisher = publisher(&queues);
    publisher
        .publish(&queues.names[0], &task("boom"), None)
        .unwrap();
    publisher
        .publish(&queues.names[0], &task("fine"), None)
        .unwrap();
    assert_eq!(next(&rx), ("boom".into(), false));
    assert_eq!(next(&rx), ("fine".into(), false));
    assert_quiet(&rx);
    pool.stop();
    assert_eq!(queues.counts(0), (0, 0));
}

#[test]
fn message_amiquip_cannot_parse_is_rejected() {
    poison_is_rejected(1);
}

/// Every consumer may take the requeued poison and die of it before one
/// sweep gets it; the pool must come back whole, with the poison gone.
#[test]
fn message_amiquip_cannot_parse_is_rejected_with_many_consumers() {
    poison_is_rejected(8);
}

fn poison_is_rejected(threads: usize) {
    let queues = Queues::new("/", &["metadata_repository"]);
    const CODE: &str = r#"
import sys, amqp
c = amqp.Connection("127.0.0.1:5672", userid="guest", password="guest")
c.connect()
ch = c.channel()
ch.basic_publish(amqp.Message(b"poison", content_type=b"\xff\xfe", application_headers={"id": "poison"}),
                 exchange="", routing_key=sys.argv[1])
ch.basic_publish(amqp.Message(b"good", content_type="application/json", application_headers={"id": "good"}),
                 exchange="", routing_key=sys.argv[1])
c.close()
"#;
    let (tx, rx) = unbounded();
    let config = BrokerConfig {
        // Threads back at once: a requeued poison always finds a consumer.
        reconnect: ReconnectPolicy {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(1),
        },
        ..queues.config(threads, 4)
    };
    let pool = Pool::start(config, recorder(tx));
    queues.wait_for(0, "pool consuming", |(_, consumers)| {
        consumers as usize == threads
    });
    run_python(CODE, &[queues.names[0].as_str()]);
    // The good one may come first (redelivered) or after the sweep.
    assert_eq!(next(&rx).0, "good");
    if threads == 1 {
        assert_quiet(&rx);
    } else {
        // A connection the poison kills may take the ack of the good one
        // with it; the good one then comes again (at least once).
        while let Ok(extra) = rx.recv_timeout(Duration::from_millis(300)) {
            assert_eq!(extra, ("good".to_owned(), true));
        }
    }
    pool.stop();
    assert_eq!(queues.counts(0), (0, 0));
}

#[test]
fn unreachable_broker_errors_name_it_without_the_password() {
    let publish = |raw: &str| {
        let url = parse_broker_url(raw).unwrap().into_amqp().unwrap();
        Publisher::new(url, Duration::from_secs(2))
            .publish(&QueueName::new("q").unwrap(), &task("t"), None)
            .unwrap_err()
            .to_string()
    };
    const HINT: &str = "check that RabbitMQ is running and reachable at this address";
    // Nothing listens on port 1.
    assert_eq!(
        publish("amqp://rstuf:hunter2@127.0.0.1:1/prod"),
        format!(
            "RabbitMQ at amqp://rstuf:***@127.0.0.1:1/prod: connecting failed: 127.0.0.1:1: \
             Connection refused (os error 111); {HINT}"
        )
    );
    let err = publish("amqp://rstuf:hunter2@nonexistent.invalid/prod");
    assert!(
        err.starts_with(
            "RabbitMQ at amqp://rstuf:***@nonexistent.invalid:5672/prod: resolving the host \
             failed: "
        ),
        "{err}"
    );
    assert!(err.ends_with(HINT), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn pool_without_queues_refuses_to_start() {
    let config = BrokerConfig {
        queues: Vec::new(),
        ..BrokerConfig::new(url("/"))
    };
    let err = broker::run(&config, &Shutdown::new(), |_| Disposition::Ack).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no queues to consume from; configure at least one (upstream uses metadata_repository \
         and rstuf_internals)"
    );
}

/// Pool threads share one publisher.
#[test]
fn publisher_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Publisher>();
}

#[test]
fn first_signal_stops_gracefully_second_exits() {
    if std::env::var_os("BROKER_SIGNAL_CHILD").is_some() {
        let shutdown = Shutdown::new();
        shutdown.install_signal_handlers().unwrap();
        signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();
        println!(
            "after first signal: stop requested = {}",
            shutdown.is_requested()
        );
        signal_hook::low_level::raise(signal_hook::consts::SIGINT).unwrap();
        println!("still running after the second signal");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "first_signal_stops_gracefully_second_exits",
            "--nocapture",
        ])
        .env("BROKER_SIGNAL_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("after first signal: stop requested = true"),
        "{stdout}"
    );
    assert!(!stdout.contains("still running"), "{stdout}");
    assert_eq!(out.status.code(), Some(1));
}
