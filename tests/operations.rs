//! What an operator runs the worker with: the `health` command, the
//! metrics endpoint, the static binary of the image, and supervisord with
//! the shipped supervisor.conf.
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::rabbitmq::Vhost;
use common::services::{health, Deployment, WorkerProcess};
use common::{free_port, python, unique, TempDir};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(60);

/// Polls `health` until its verdict is `healthy` and its output contains
/// `needle`; returns that output.
fn wait_for_health(worker: &WorkerProcess, healthy: bool, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let (ok, out) = worker.health();
        if ok == healthy && out.contains(needle) {
            return out;
        }
        assert!(
            start.elapsed() < LIMIT,
            "health never became {healthy} with {needle:?}; last: {out}\n{}",
            worker.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn health_follows_the_worker_up_cut_off_from_the_broker_back_and_stopped() {
    let vhost = Vhost::new();
    let dep = Deployment::new();
    let data_dir = TempDir::new("rstuf-data");
    let (ok, out) = health(data_dir.path());
    assert!(!ok && out.contains("not running"), "{out}");

    let worker = dep.start_worker(&[("RSTUF_BROKER_SERVER", &vhost.url())]);
    // 2 threads on each of the 2 queues.
    let out = wait_for_health(&worker, true, "consuming with 4 consumers");
    assert!(out.starts_with("healthy: "), "{out}");

    vhost.delete();
    let out = wait_for_health(&worker, false, "0 of 4 consumers");
    assert!(out.contains("broker"), "{out}");
    vhost.create();
    wait_for_health(&worker, true, "consuming with 4 consumers");

    let data_dir = worker.data_dir.clone();
    let status = worker.signal_and_wait("TERM");
    assert!(status.success(), "{status:?}");
    let (ok, out) = health(&data_dir);
    assert!(!ok && out.contains("not running"), "{out}");
}

fn scrape(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    response
}

/// The value of one sample line, `name{labels} value`.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_count_tasks_by_action_and_outcome_and_show_consumers() {
    let dep = Deployment::new();
    let port = free_port();
    let worker = dep.start_worker(&[("RSTUF_METRICS_ADDR", &format!("127.0.0.1:{port}"))]);
    let unknown = dep.send_action("no_such_action", json!({}));
    assert_eq!(dep.wait_for_final(&unknown, LIMIT)["status"], "FAILURE");
    // Before bootstrap an add is refused with an error in a SUCCESS result.
    let add = dep.send_action("add_artifacts", json!({"artifacts": []}));
    let record = dep.wait_for_final(&add, LIMIT);
    let outcome = match (
        record["status"].as_str(),
        record["result"]["error"].is_null(),
    ) {
        (Some("SUCCESS"), true) => "success",
        (Some("SUCCESS"), false) => "errored",
        _ => "failure",
    };

    let text = scrape(port);
    let count = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}:\n{text}"));
    assert_eq!(
        count("rstuf_worker_tasks_total{action=\"unknown\",outcome=\"failure\"}"),
        1.0
    );
    let add_series =
        format!("rstuf_worker_tasks_total{{action=\"add_artifacts\",outcome=\"{outcome}\"}}");
    assert_eq!(count(&add_series), 1.0);
    assert_eq!(
        count("rstuf_worker_task_duration_seconds_count{action=\"add_artifacts\"}"),
        1.0
    );
    assert_eq!(count("rstuf_worker_consumers"), 4.0);
    assert_eq!(count("rstuf_worker_prefetch_in_use"), 0.0);
    assert_eq!(count("rstuf_worker_broker_reconnects_total"), 0.0);
    drop(worker);
}

/// `make static`'s binary (`RSTUF_STATIC_BINARY`, set by the Makefile).
fn static_binary() -> PathBuf {
    common::built_tool("RSTUF_STATIC_BINARY", "target/image/rstuf-worker", "static")
}

/// A root holding only what the image holds: the binary and CA bundle.
fn image_root() -> TempDir {
    let root = TempDir::new("rstuf-root");
    std::fs::copy(static_binary(), root.path().join("rstuf-worker")).unwrap();
    let certs = root.path().join("etc/ssl/certs");
    std::fs::create_dir_all(&certs).unwrap();
    let bundle = static_binary().with_file_name("ca-certificates.crt");
    std::fs::copy(bundle, certs.join("ca-certificates.crt")).unwrap();
    std::fs::create_dir_all(root.path().join("storage")).unwrap();
    root
}

#[test]
fn the_static_binary_checks_every_service_from_an_empty_root() {
    let dep = Deployment::new();
    let root = image_root();
    let chrooted = |args: &[&str]| {
        // The environment is cleared, so no PATH lookup.
        Command::new("/usr/sbin/chroot")
            .arg(root.path())
            .arg("/rstuf-worker")
            .args(args)
            .env_clear()
            .envs(dep.env())
            .env("RSTUF_LOCAL_STORAGE_BACKEND_PATH", "/storage")
            .output()
            .unwrap()
    };
    let version = chrooted(&["--version"]);
    let text = String::from_utf8_lossy(&version.stdout);
    assert!(version.status.success(), "{version:?}");
    assert_eq!(
        text.trim(),
        format!("rstuf-worker {}", env!("CARGO_PKG_VERSION"))
    );

    let check = chrooted(&["check"]);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{report}\n{check:?}");
    for component in [
        "broker",
        "redis results",
        "redis settings",
        "postgresql",
        "storage",
    ] {
        assert!(report.contains(&format!("{component}: ok")), "{report}");
    }
}

/// supervisord from the test venv, on supervisor.conf as shipped but for
/// the command line (this build's binary, this test's queues).
struct Supervisord {
    child: Child,
    output: PathBuf,
    _dir: TempDir,
}

impl Supervisord {
    fn start(dep: &Deployment) -> Supervisord {
        let dir = TempDir::new("rstuf-supervisord");
        let shipped =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("supervisor.conf"))
                .unwrap();
        let ours: Vec<String> = shipped
            .lines()
            .map(|line| match line.strip_prefix("command=") {
                Some(command) => format!(
                    "command={}",
                    command
                        .replace(
                            "/usr/local/bin/rstuf-worker",
                            env!("CARGO_BIN_EXE_rstuf-worker")
                        )
                        .replace(
                            "--queues metadata_repository",
                            &format!("--queues {}", dep.queue)
                        )
                        .replace(
                            "--queues rstuf_internals",
                            &format!("--queues {}", dep.internals)
                        )
                ),
                None => line.to_owned(),
            })
            .collect();
        let changed = shipped.lines().zip(&ours).filter(|(a, b)| a != b).count();
        assert_eq!(
            changed, 2,
            "supervisor.conf should run one program per queue set"
        );
        let conf = dir.path().join("supervisor.conf");
        std::fs::write(&conf, ours.join("\n")).unwrap();
        let output = dir.path().join("output.log");
        let supervisord = python().with_file_name("supervisord");
        let child = Command::new(supervisord)
            .arg("-c")
            .arg(&conf)
            .arg("--logfile")
            .arg(dir.path().join("supervisord.log"))
            .arg("--pidfile")
            .arg(dir.path().join("supervisord.pid"))
            .envs(dep.env())
            .env("DATA_DIR", dir.path())
            .stdout(std::fs::File::create(&output).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Supervisord {
            child,
            output,
            _dir: dir,
        }
    }

    fn log(&self, name: &str) -> String {
        let path = if name == "output" {
            self.output.clone()
        } else {
            self.output.with_file_name(name)
        };
        std::fs::read_to_string(path).unwrap_or_default()
    }

    fn wait_for(&self, log: &str, needle: &str) {
        let start = Instant::now();
        while !self.log(log).contains(needle) {
            assert!(
                start.elapsed() < LIMIT,
                "{log} never said {needle:?}:\n{}",
                self.log(log)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Supervisord {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn supervisord_runs_the_shipped_config_and_stops_the_worker_warm() {
    let dep = Deployment::new();
    common::fixtures::install_bins_after_bootstrap(&dep);
    let mut supervisor = Supervisord::start(&dep);
    supervisor.wait_for("output", &format!("consuming {}", dep.queue));
    supervisor.wait_for("output", &format!("consuming {}", dep.internals));

    // Another holder has the repository lock, so the add stays in flight.
    let _: () = redis::cmd("SET")
        .arg("LOCK_TARGETS")
        .arg(unique("holder"))
        .arg("PX")
        .arg(120_000)
        .query(&mut dep.redis())
        .unwrap();
    let info = json!({"length": 1, "hashes": {"sha256": "ab"}});
    let add = dep.send_action(
        "add_artifacts",
        json!({"artifacts": [{"path": "warm-stop.bin", "info": info}]}),
    );
    supervisor.wait_for("output", &format!("task {add} add_artifacts started"));

    let term = Command::new("kill")
        .arg("-TERM")
        .arg(supervisor.child.id().to_string())
        .status()
        .unwrap();
    assert!(term.success());
    // Idle threads stop at once; the busy one is still finishing the add.
    supervisor.wait_for("output", &format!("({}): stopped", dep.queue));
    let _: () = redis::cmd("DEL")
        .arg("LOCK_TARGETS")
        .query(&mut dep.redis())
        .unwrap();

    let record = dep.wait_for_final(&add, LIMIT);
    assert_eq!(record["result"]["message"], "Artifact(s) Added", "{record}");
    let status = supervisor.child.wait().unwrap();
    assert!(status.success(), "supervisord: {status:?}");
    let log = supervisor.log("supervisord.log");
    for program in ["rstuf-worker", "rstuf-worker-jobs"] {
        assert!(
            log.contains(&format!("stopped: {program} (exit status 0)")),
            "{log}"
        );
    }
}
