//! Against the local Redis (127.0.0.1:6379, db 0, where the API reads by
//! default). Each test uses its own task ids, so tests run in parallel.
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::SystemTime;

use serde_json::{json, Value};

use super::record::{self, tests::at};
use super::*;
use crate::celery::TaskName;
use crate::testutil::{python, unique_name};
use crate::tuf::{testdata, UtcTime};

const REDIS_URL: &str = "redis://127.0.0.1:6379/0";

fn unique_id(label: &str) -> TaskId {
    TaskId::new(unique_name(&format!("rstuf-test-{label}-")))
}

fn backend() -> ResultBackend {
    ResultBackend::new(&BackendConfig::new(REDIS_URL)).unwrap()
}

fn redis_conn() -> redis::Connection {
    redis::Client::open(REDIS_URL)
        .unwrap()
        .get_connection()
        .unwrap()
}

fn stored(id: &TaskId) -> Option<String> {
    redis::cmd("GET")
        .arg(key_for(id))
        .query(&mut redis_conn())
        .unwrap()
}

fn ttl(id: &TaskId) -> i64 {
    redis::cmd("TTL")
        .arg(key_for(id))
        .query(&mut redis_conn())
        .unwrap()
}

/// Python's isoformat back into a Timestamp (test-only reader).
fn parse_iso(text: &str) -> Timestamp {
    let (seconds, rest) = text.split_at(19);
    let micros = match rest.strip_prefix('.') {
        Some(fraction) => fraction[..6].parse().unwrap(),
        None => 0,
    };
    assert!(rest.ends_with("+00:00"), "{text}");
    Timestamp::new(UtcTime::parse(&format!("{seconds}Z")).unwrap(), micros).unwrap()
}

/// The exact bytes a write must have produced, with the stored date_done
/// (which must be a fresh one exactly for ready states).
fn expected<R: Serialize + ?Sized>(
    request: &TaskRequest,
    state: State,
    result: &R,
    traceback: Option<&str>,
) -> String {
    let value: Value = serde_json::from_str(&stored(&request.id).unwrap()).unwrap();
    let date_done = value["date_done"].as_str().map(parse_iso);
    assert_eq!(date_done.is_some(), state.is_ready(), "{value}");
    if let Some(done) = date_done {
        let now = SystemTime::now();
        let earliest = Timestamp::from_system_time(now - Duration::from_secs(60)).unwrap();
        assert!(
            earliest < done && done <= Timestamp::from_system_time(now).unwrap(),
            "{done}"
        );
    }
    let json = record::record_json(request, state, result, traceback, date_done).unwrap();
    String::from_utf8(json).unwrap()
}

/// What the API would answer for the task (check_result.py), which must
/// not be a failure.
fn api_view(id: &TaskId) -> Value {
    let script = testdata::shared("vectors/celery/check_result.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(id.as_str())
        .args(["--backend", REDIS_URL])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (set RSTUF_TEST_PYTHON): {e}",
                python().display()
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let view: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(view["api_would_fail"], false, "{view}");
    assert_eq!(view["data"]["task_id"], id.as_str());
    view["data"].clone()
}

fn add_artifacts_result(error: Option<&str>) -> TaskResult {
    TaskResult {
        task: "add_artifacts".into(),
        last_update: at("2026-11-24T17:20:57Z", 281_166),
        message: "Artifact(s) Added".into(),
        error: error.map(str::to_owned),
        details: error
            .is_none()
            .then(|| json!({"added_artifacts": ["file1.tar.gz"]})),
    }
}

#[test]
fn a_task_lifecycle_is_stored_and_read_like_celery() {
    let backend = backend();
    let request = TaskRequest::new(unique_id("lifecycle"));
    let id = &request.id;

    backend.pre_run(id).unwrap();
    assert_eq!(
        stored(id).unwrap(),
        format!(r#"{{"status": "PRE_RUN", "task_id": "{id}", "result": null}}"#)
    );
    assert_eq!(ttl(id), -1, "PRE_RUN has no expiry");
    assert_eq!(
        api_view(id),
        json!({"task_id": id.as_str(), "state": "PRE_RUN", "result": null})
    );

    assert_eq!(
        backend.started(&request, 4242, "rstuf@host").unwrap(),
        Stored::Written
    );
    let started = record::started_result(4242, "rstuf@host");
    assert_eq!(
        stored(id).unwrap(),
        expected(&request, State::Started, &started, None)
    );
    assert!((86_390..=86_400).contains(&ttl(id)), "SETEX 86400");
    let view = api_view(id);
    assert_eq!(view["state"], "STARTED");
    assert_eq!(
        view["result"],
        json!({"pid": 4242, "hostname": "rstuf@host"})
    );

    let progress = Progress {
        details: json!({"published_roles": [], "roles_to_publish": "['bins-e']"}),
        message: "Publishing".into(),
        last_update: at("2026-11-24T17:20:56Z", 780_294),
    };
    backend.running(&request, &progress).unwrap();
    assert_eq!(
        stored(id).unwrap(),
        expected(&request, State::Running, &progress, None)
    );
    let view = api_view(id);
    assert_eq!(view["state"], "RUNNING");
    assert_eq!(view["result"]["message"], "Publishing");
    assert_eq!(
        view["result"]["last_update"],
        "2026-11-24T17:20:56.780294+00:00"
    );

    let result = add_artifacts_result(None);
    assert_eq!(backend.success(&request, &result).unwrap(), Stored::Written);
    let success = expected(&request, State::Success, &result, None);
    assert_eq!(stored(id).unwrap(), success);
    assert!((86_390..=86_400).contains(&ttl(id)));
    let view = api_view(id);
    assert_eq!(view["state"], "SUCCESS");
    assert_eq!(view["result"]["task"], "add_artifacts");
    assert_eq!(view["result"]["status"], true);
    assert_eq!(
        view["result"]["details"]["added_artifacts"],
        json!(["file1.tar.gz"])
    );

    // Celery never overwrites SUCCESS, whatever comes later.
    let failure = Failure::new("builtins", "ValueError", "late");
    assert_eq!(
        backend.failure(&request, &failure).unwrap(),
        Stored::SuccessKept
    );
    assert_eq!(
        backend.running(&request, &progress).unwrap(),
        Stored::SuccessKept
    );
    assert_eq!(
        backend.started(&request, 1, "h").unwrap(),
        Stored::SuccessKept
    );
    assert_eq!(stored(id).unwrap(), success);
}

#[test]
fn errored_results_show_as_errored() {
    let backend = backend();
    let request = TaskRequest::new(unique_id("errored"));
    let result = add_artifacts_result(Some("No 'artifacts' in the payload"));
    backend.success(&request, &result).unwrap();
    assert_eq!(
        stored(&request.id).unwrap(),
        expected(&request, State::Success, &result, None)
    );
    let view = api_view(&request.id);
    assert_eq!(view["state"], "ERRORED");
    assert_eq!(view["result"]["error"], "No 'artifacts' in the payload");
    assert_eq!(view["result"]["details"], Value::Null);
}

#[test]
fn failures_show_their_message() {
    let backend = backend();
    let cases = [
        Failure::new(
            "builtins",
            "ValueError",
            "metadata delegation supports 'add', 'update', 'remove'",
        ),
        Failure::new(
            "celery.exceptions",
            "ChordError",
            "Failed to execute publish_artifacts-abc: KeyError ['x']",
        ),
        Failure::new(
            "redis.exceptions",
            "LockError",
            "RSTUF: Task exceed `LOCK_TIMEOUT` (60 seconds)",
        ),
        Failure {
            traceback: Some("Traceback (most recent call last):\nRuntimeError: boom\n".into()),
            ..Failure::new("builtins", "RuntimeError", "boom")
        },
    ];
    for failure in cases {
        let request = TaskRequest::new(unique_id("failure"));
        backend.started(&request, 1, "h").unwrap();
        assert_eq!(
            backend.failure(&request, &failure).unwrap(),
            Stored::Written
        );
        let result = record::failure_result(&failure);
        let tb = failure.traceback.as_deref();
        assert_eq!(
            stored(&request.id).unwrap(),
            expected(&request, State::Failure, &result, tb)
        );
        let view = api_view(&request.id);
        assert_eq!(view["state"], "FAILURE");
        assert_eq!(view["result"], json!({"message": failure.exc_message[0]}));
    }
}

#[test]
fn unknown_task_failure_reads_as_not_registered() {
    let backend = backend();
    let request = TaskRequest::new(unique_id("unknown"));
    let failure = Failure::not_registered(&TaskName::new("app.no_such_task"));
    backend.failure(&request, &failure).unwrap();
    let view = api_view(&request.id);
    assert_eq!(view["state"], "FAILURE");
    // str(NotRegistered(name)) is KeyError's quoted form.
    assert_eq!(view["result"], json!({"message": "'app.no_such_task'"}));
}

#[test]
fn a_subtask_and_its_parent_link_up() {
    let backend = backend();
    let mut parent = TaskRequest::new(unique_id("parent"));
    let mut child = TaskRequest::new(TaskId::new(format!("publish_artifacts-{}", parent.id)));
    child.parent_id = Some(parent.id.clone());
    parent.children.push(child.id.clone());

    backend
        .running(&parent, &json!({"message": "Publishing"}))
        .unwrap();
    let running = stored(&parent.id).unwrap();
    assert!(
        running.contains(&format!(r#""children": [[["{}", null], null]]"#, child.id)),
        "{running}"
    );

    let roles = json!(["bins-e"]);
    backend.success(&child, &roles).unwrap();
    let value = stored(&child.id).unwrap();
    assert_eq!(value, expected(&child, State::Success, &roles, None));
    assert!(value.ends_with(&format!(
        r#", "parent_id": "{}", "task_id": "{}"}}"#,
        parent.id, child.id
    )));
    assert_eq!(api_view(&parent.id)["state"], "RUNNING");
}

#[test]
fn writes_are_published_on_the_key_channel() {
    let backend = backend();
    let request = TaskRequest::new(unique_id("publish"));
    let mut subscriber = redis_conn();
    subscriber
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut pubsub = subscriber.as_pubsub();
    pubsub.subscribe(key_for(&request.id)).unwrap();
    backend.started(&request, 7, "h").unwrap();
    let message = pubsub.get_message().unwrap();
    assert_eq!(message.get_channel_name(), key_for(&request.id));
    assert_eq!(
        message.get_payload::<String>().unwrap(),
        stored(&request.id).unwrap()
    );
}

#[test]
fn expiry_is_configurable() {
    let short = BackendConfig {
        expires: Some(Duration::from_secs(60)),
        ..BackendConfig::new(REDIS_URL)
    };
    let request = TaskRequest::new(unique_id("ttl60"));
    ResultBackend::new(&short)
        .unwrap()
        .started(&request, 1, "h")
        .unwrap();
    assert!((50..=60).contains(&ttl(&request.id)));

    let forever = BackendConfig {
        expires: None,
        ..BackendConfig::new(REDIS_URL)
    };
    let request = TaskRequest::new(unique_id("ttlnone"));
    ResultBackend::new(&forever)
        .unwrap()
        .started(&request, 1, "h")
        .unwrap();
    assert_eq!(ttl(&request.id), -1);
    redis::cmd("DEL")
        .arg(key_for(&request.id))
        .query::<()>(&mut redis_conn())
        .unwrap();

    let zero = BackendConfig {
        expires: Some(Duration::from_millis(500)),
        ..BackendConfig::new(REDIS_URL)
    };
    let err = ResultBackend::new(&zero).err().unwrap();
    assert!(err.to_string().contains("under one second"), "{err}");
}

#[test]
fn unreachable_or_misconfigured_redis_is_a_clear_error() {
    let config = BackendConfig {
        timeout: Duration::from_secs(2),
        ..BackendConfig::new("redis://:secret@127.0.0.1:1/0")
    };
    let backend = ResultBackend::new(&config).unwrap();
    let err = backend
        .started(&TaskRequest::new(unique_id("down")), 1, "h")
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(!format!("{backend:?}").contains("secret"));
    assert!(
        text.starts_with("cannot connect to the Redis result backend at 127.0.0.1:1 db 0: "),
        "{text}"
    );
    assert!(!text.contains("secret"), "{text}");
    assert!(backend.ping().is_err());

    let err = ResultBackend::new(&BackendConfig::new("http://127.0.0.1/0"))
        .err()
        .unwrap();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(ResultBackend::new(&BackendConfig::new("rediss://127.0.0.1/0")).is_ok());
}

/// A TCP relay in front of Redis that can drop every connection (as a
/// Redis restart does) and refuse service for a while.
struct Relay {
    port: u16,
    refusing: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start() -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let refusing = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (flag, streams) = (refusing.clone(), open.clone());
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if flag.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let server = TcpStream::connect("127.0.0.1:6379").unwrap();
                let mut all = streams.lock().unwrap();
                all.push(client.try_clone().unwrap());
                all.push(server.try_clone().unwrap());
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Relay {
            port,
            refusing,
            open,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn drop_connections(&self) {
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

#[test]
fn a_redis_restart_does_not_wedge_the_backend() {
    let relay = Relay::start();
    let config = BackendConfig {
        timeout: Duration::from_secs(3),
        ..BackendConfig::new(relay.url())
    };
    let backend = ResultBackend::new(&config).unwrap();
    let request = TaskRequest::new(unique_id("restart"));
    backend.started(&request, 1, "h").unwrap();

    // Restart while the connection sits idle: the next write reconnects.
    relay.drop_connections();
    assert_eq!(
        backend.running(&request, &json!({"n": 1})).unwrap(),
        Stored::Written
    );
    assert!(stored(&request.id)
        .unwrap()
        .contains(r#""result": {"n": 1}"#));

    // Down: writes fail with an error naming the server, and do not hang.
    relay.refusing.store(true, Ordering::SeqCst);
    relay.drop_connections();
    let err = backend.running(&request, &json!({"n": 2})).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("127.0.0.1:{} db 0", relay.port)),
        "{err}"
    );

    // Back up: the very next write works.
    relay.refusing.store(false, Ordering::SeqCst);
    assert_eq!(
        backend.running(&request, &json!({"n": 3})).unwrap(),
        Stored::Written
    );
    assert!(stored(&request.id)
        .unwrap()
        .contains(r#""result": {"n": 3}"#));
    backend.ping().unwrap();
}

#[test]
fn threads_share_one_backend() {
    let backend = Arc::new(backend());
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let backend = backend.clone();
            thread::spawn(move || {
                let request = TaskRequest::new(unique_id(&format!("thread{i}")));
                for pid in 0..20 {
                    backend.started(&request, pid, "h").unwrap();
                }
                request.id
            })
        })
        .collect();
    let workers: Vec<TaskId> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for id in &workers {
        assert!(stored(id).unwrap().contains(r#""pid": 19"#));
    }
    let idle = backend.idle.lock().unwrap().len();
    assert!((1..=8).contains(&idle), "{idle} idle connections");
}
