//! `make bench`: the release worker against the local services, driven the
//! way the RSTUF API drives it (Celery's own message layout, published to
//! RabbitMQ; results read from the Redis result backend), each figure the
//! median of repeated runs with min and max. Writes BENCH.md. It asserts
//! that every task succeeded and that python-tuf's client finds a sample
//! of what was added, but never a duration: benchmarks do not gate CI.
#[path = "../actions_support/mod.rs"]
mod actions_support;
#[path = "../common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actions_support::{
    api_pre_lock, payload_vector, root_with_online_key, root_with_online_key_dict, RSA_ONLINE,
};
use common::command_output;
use common::fixtures::install_generated_bins;
use common::moto::{Moto, ECDSA_P256};
use common::services::Deployment;
use crossbeam_channel::Receiver;
use rstuf_worker::broker::{self, QueueName};
use rstuf_worker::celery::{self, OutgoingMessage, Task, TaskId};
use rstuf_worker::tuf::hashbins::HashBins;
use rstuf_worker::tuf::metadata::{MetaFile, Snapshot};
use rstuf_worker::tuf::{Metadata, PemSigner, PrivateKey, Signer, UtcTime, Version};
use serde_json::{json, Value};

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672";
const LIMIT: Duration = Duration::from_secs(600);

/// Publishes API-shaped task messages and waits for their results.
struct Api<'a> {
    dep: &'a Deployment,
    broker: broker::Publisher,
    celery: celery::Publisher,
    results: Receiver<Outcome>,
    /// Final states that arrived while waiting for another task.
    early: HashMap<String, Outcome>,
}

/// Task ids stay unique across measures: deployments share Redis DB 0.
static SENT: AtomicU64 = AtomicU64::new(0);

/// A task's final state as the result backend announced it, and when.
struct Outcome {
    id: String,
    at: Instant,
    record: Value,
}

impl<'a> Api<'a> {
    fn new(dep: &'a Deployment) -> Api<'a> {
        let url = broker::parse_broker_url(AMQP).unwrap().into_amqp().unwrap();
        Api {
            dep,
            broker: broker::Publisher::new(url, Duration::from_secs(10)),
            celery: celery::Publisher::new(std::process::id(), "bench", "bench-reply"),
            results: subscribe_results(dep),
            early: HashMap::new(),
        }
    }

    /// Publishes one action; returns its task id.
    fn send(&mut self, action: &str, payload: Value) -> String {
        let n = SENT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}{n}", task_prefix());
        let task = Task::Repository {
            action: action.into(),
            payload: Some(payload),
        };
        let message = OutgoingMessage::new(&task, &TaskId::new(id.as_str()), None, &self.celery)
            .unwrap()
            .to_raw();
        let queue = QueueName::new(&self.dep.queue).unwrap();
        self.broker
            .publish(&queue, &message, Some("bench-reply"))
            .unwrap();
        id
    }

    /// Waits for SUCCESS without an error; returns when it was announced.
    fn succeeded(&mut self, id: &str) -> Instant {
        let outcome = match self.early.remove(id) {
            Some(outcome) => outcome,
            None => loop {
                let outcome = self
                    .results
                    .recv_timeout(LIMIT)
                    .unwrap_or_else(|_| panic!("{id} never finished"));
                if outcome.id == id {
                    break outcome;
                }
                self.early.insert(outcome.id.clone(), outcome);
            },
        };
        let record = &outcome.record;
        assert_eq!(record["status"], "SUCCESS", "{id}: {record}");
        assert!(record["result"]["error"].is_null(), "{record}");
        outcome.at
    }

    /// Seconds from publishing `action` to its SUCCESS.
    fn timed(&mut self, action: &str, payload: Value) -> f64 {
        let start = Instant::now();
        let id = self.send(action, payload);
        (self.succeeded(&id) - start).as_secs_f64()
    }

    /// Seconds from publishing the first of `payloads` at once to the
    /// last SUCCESS.
    fn timed_batch(&mut self, action: &str, payloads: Vec<Value>) -> f64 {
        let start = Instant::now();
        let ids: Vec<String> = payloads.into_iter().map(|p| self.send(action, p)).collect();
        let done = ids.iter().map(|id| self.succeeded(id)).max().unwrap();
        (done - start).as_secs_f64()
    }
}

fn task_prefix() -> String {
    format!("bench-{}-", std::process::id())
}

/// Final task states, as Celery's Redis result backend PUBLISHes them. The
/// bench waits on them instead of polling, which would take CPU from the
/// worker on a 2-core machine.
fn subscribe_results(dep: &Deployment) -> Receiver<Outcome> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let (ready_tx, ready_rx) = crossbeam_channel::bounded(0);
    let mut conn = dep.redis();
    std::thread::spawn(move || {
        let mut pubsub = conn.as_pubsub();
        let channel = "celery-task-meta-";
        pubsub
            .psubscribe(format!("{channel}{}*", task_prefix()))
            .unwrap();
        ready_tx.send(()).unwrap();
        loop {
            let message = pubsub.get_message().unwrap();
            let record: Value = serde_json::from_str(&message.get_payload::<String>().unwrap())
                .unwrap_or(Value::Null);
            if !matches!(record["status"].as_str(), Some("SUCCESS" | "FAILURE")) {
                continue;
            }
            let id = message.get_channel_name()[channel.len()..].to_owned();
            let outcome = Outcome {
                id,
                at: Instant::now(),
                record,
            };
            if tx.send(outcome).is_err() {
                return;
            }
        }
    });
    ready_rx.recv().unwrap();
    rx
}

fn artifact(path: &str) -> Value {
    json!({"path": path, "info": {"length": 1, "hashes": {"sha256": "ab"}}})
}

fn add_payload(paths: &[String]) -> Value {
    let artifacts: Vec<Value> = paths.iter().map(|p| artifact(p)).collect();
    json!({ "artifacts": artifacts })
}

/// Median, min and max of repeated measurements.
struct Figures(Vec<f64>);

impl Figures {
    fn sorted(mut values: Vec<f64>) -> Figures {
        values.sort_by(f64::total_cmp);
        Figures(values)
    }
    fn quantile(&self, q: f64) -> f64 {
        let i = ((self.0.len() - 1) as f64 * q).round() as usize;
        self.0[i]
    }
    fn median(&self) -> f64 {
        self.quantile(0.5)
    }
    fn range(&self, unit: &str, scale: f64) -> String {
        format!(
            "{:.1} {unit} (min {:.1}, max {:.1}, n={})",
            self.median() * scale,
            self.0[0] * scale,
            self.0[self.0.len() - 1] * scale,
            self.0.len()
        )
    }
}

/// A fresh deployment whose repository has `bins` hash bins.
fn repository(bins: u64) -> Deployment {
    let dep = Deployment::new();
    install_generated_bins(&dep, bins);
    dep
}

/// Client check: python-tuf finds every sampled path.
fn visible(dep: &Deployment, sample: &[String]) -> String {
    let paths: Vec<&str> = sample.iter().map(String::as_str).collect();
    let view = dep.ngclient(&paths);
    assert!(view.not_found.is_empty(), "{view:?}");
    format!("{}/{}", view.found.len(), sample.len())
}

/// Add-one latency on a `bins`-bin repository: `runs` sequential adds.
fn add_one(bins: u64, runs: usize) -> (Figures, String) {
    let dep = repository(bins);
    let _worker = dep.start_worker_with_threads(4, &[]);
    let mut api = Api::new(&dep);
    let mut latencies = Vec::new();
    let mut paths = Vec::new();
    for n in 0..runs + 5 {
        let path = format!("one/{bins}/{n}.bin");
        let seconds = api.timed("add_artifacts", add_payload(std::slice::from_ref(&path)));
        if n >= 5 {
            latencies.push(seconds);
        }
        paths.push(path);
    }
    let sample: Vec<String> = paths.iter().step_by(runs / 5).cloned().collect();
    (Figures::sorted(latencies), visible(&dep, &sample))
}

/// `tasks` tasks of `per_task` artifacts each, published at once.
/// `runs` rounds of `tasks` concurrent additions of `per_task` artifacts:
/// the time each round takes, what the client saw, and how many metadata
/// files each round created (new files are the floor on some disks).
fn concurrent(bins: u64, tasks: usize, per_task: usize, runs: usize) -> (Figures, String, Figures) {
    let dep = repository(bins);
    let _worker = dep.start_worker_with_threads(8, &[]);
    let mut api = Api::new(&dep);
    let mut totals = Vec::new();
    let mut created = Vec::new();
    let mut sample = Vec::new();
    for run in 0..runs {
        let payloads: Vec<Value> = (0..tasks)
            .map(|t| {
                let paths: Vec<String> = (0..per_task)
                    .map(|a| format!("c/{run}/{t}/{a}.bin"))
                    .collect();
                if t % 10 == 0 {
                    sample.push(paths[0].clone());
                }
                add_payload(&paths)
            })
            .collect();
        let before = dep.stored_file_count();
        totals.push(api.timed_batch("add_artifacts", payloads));
        created.push((dep.stored_file_count() - before) as f64);
    }
    (
        Figures::sorted(totals),
        visible(&dep, &sample),
        Figures::sorted(created),
    )
}

fn bootstrap_payload(bins: u64, rsa: bool) -> Value {
    let mut payload = payload_vector("bootstrap-bins");
    payload["settings"]["roles"]["bins"]["number_of_delegated_bins"] = json!(bins);
    if rsa {
        let signed = payload["metadata"]["root"]["signed"].clone();
        payload["metadata"]["root"] = root_with_online_key(signed, RSA_ONLINE, "Online Key RSA");
    }
    payload
}

/// A bootstrap of `bins` bins on a fresh deployment, `runs` times.
fn bootstrap(bins: u64, rsa: bool, runs: usize) -> Figures {
    let payload = bootstrap_payload(bins, rsa);
    let times = (0..runs)
        .map(|_| {
            let dep = Deployment::new();
            let _worker = dep.start_worker_with_threads(4, &[]);
            api_pre_lock(&dep);
            Api::new(&dep).timed("bootstrap", payload.clone())
        })
        .collect();
    Figures::sorted(times)
}

/// A forced bump of every bin of a `bins`-bin repository, `runs` times.
fn forced_bump(bins: u64, runs: usize) -> Figures {
    let dep = repository(bins);
    let _worker = dep.start_worker_with_threads(4, &[]);
    let mut api = Api::new(&dep);
    let times = (0..runs)
        .map(|_| api.timed("force_online_metadata_update", json!({"roles": ["bins"]})))
        .collect();
    dep.ngclient(&[]);
    Figures::sorted(times)
}

/// Signatures per second of forced bumps of every bin of a `bins`-bin
/// repository whose online key is an ECDSA P-256 key in KMS (moto's local
/// server, each signature `latency_ms` slower), `runs` times.
fn kms_bump(bins: u64, latency_ms: u64, runs: usize) -> Figures {
    let moto = Moto::start_kms_with_latency(latency_ms);
    let (keyid, key) = moto.create_online_key(ECDSA_P256);
    let dep = Deployment::new();
    let _worker = moto.kms_worker(&dep, 4);
    let mut payload = bootstrap_payload(bins, false);
    let signed = payload["metadata"]["root"]["signed"].clone();
    payload["metadata"]["root"] = root_with_online_key_dict(signed, &keyid, key);
    api_pre_lock(&dep);
    let mut api = Api::new(&dep);
    api.timed("bootstrap", payload);
    let rates = (0..runs)
        .map(|_| {
            let seconds = api.timed("force_online_metadata_update", json!({"roles": ["bins"]}));
            bins as f64 / seconds
        })
        .collect();
    dep.ngclient(&[]);
    Figures::sorted(rates)
}

fn rss_kib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Seconds from spawning the worker to every consumer consuming, and its
/// resident memory once idle, `runs` times.
fn start_and_idle(threads: usize, runs: usize) -> (Figures, Figures) {
    let dep = Deployment::new();
    let consumers = threads * 2;
    let mut starts = Vec::new();
    let mut rss = Vec::new();
    for run in 0..runs {
        let log =
            std::env::temp_dir().join(format!("rstuf-bench-{}-{run}.log", std::process::id()));
        let start = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_rstuf-worker"))
            .args(["run", "--threads", &threads.to_string(), "--queues"])
            .arg(format!("{},{}", dep.queue, dep.internals))
            .envs(dep.env())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.matches(": consuming ").count() >= consumers {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "{text}");
            std::thread::sleep(Duration::from_micros(500));
        }
        starts.push(start.elapsed().as_secs_f64());
        std::thread::sleep(Duration::from_secs(2));
        rss.push(rss_kib(child.id()) / 1024.0);
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_file(&log);
    }
    (Figures::sorted(starts), Figures::sorted(rss))
}

/// One RSA-2048 PSS signature, in seconds (best of a few hundred).
fn rsa_signature() -> f64 {
    let path = common::shared("vectors/tuf/keys/umbrella").join(RSA_ONLINE);
    let private = PrivateKey::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap();
    let key = private.key_dict();
    let signer = PemSigner::new(private, &key.keyid().unwrap(), &key).unwrap();
    (0..300)
        .map(|_| {
            let start = Instant::now();
            signer.sign(b"a canonical bin of some length").unwrap();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores ({cpu})")
}

type Row = [String; 4];

fn row(measure: &str, target: &str, result: String, note: String) -> Row {
    eprintln!("bench: {measure}: {result} {note}");
    [measure.into(), target.into(), result, note]
}

/// Milliseconds every publication on a 16384-bin repository pays whatever
/// it changes, because TUF's snapshot lists every role: a 16384-entry
/// snapshot signed, encoded as a file, written and fsynced where the
/// deployments keep their storage (median of 20).
fn snapshot_floor_ms() -> f64 {
    let path = common::shared("vectors/tuf/keys/generated/online-ed25519.pem");
    let private = PrivateKey::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap();
    let key = private.key_dict();
    let signer = PemSigner::new(private, &key.keyid().unwrap(), &key).unwrap();
    let expires = UtcTime::parse("2036-01-01T00:00:00Z").unwrap();
    let mut snapshot = Metadata::new(Snapshot::new(Version(1), expires));
    for (_, name) in HashBins::from_count(16384).unwrap().roles() {
        let entry = MetaFile::new(Version(3));
        snapshot.signed.meta.insert(format!("{name}.json"), entry);
    }
    let dir = common::TempDir::new("rstuf-bench-snapshot");
    let times = (0..20)
        .map(|n| {
            let start = Instant::now();
            snapshot.sign(&signer).unwrap();
            let bytes = snapshot.to_file_bytes().unwrap();
            let mut file = std::fs::File::create(dir.path().join(format!("{n}.json"))).unwrap();
            std::io::Write::write_all(&mut file, &bytes).unwrap();
            file.sync_all().unwrap();
            start.elapsed().as_secs_f64()
        })
        .collect();
    Figures::sorted(times).median() * 1e3
}

fn add_one_rows() -> Vec<Row> {
    let (lat, seen) = add_one(256, 200);
    let (small, small_seen) = add_one(16, 50);
    vec![
        row(
            "add 1 artifact, send → SUCCESS, p50 / p99 (256 bins)",
            "≤ 30 ms / ≤ 100 ms",
            format!(
                "{:.1} ms / {:.1} ms (min {:.1}, max {:.1}, n={})",
                lat.median() * 1e3,
                lat.quantile(0.99) * 1e3,
                lat.0[0] * 1e3,
                lat.0[lat.0.len() - 1] * 1e3,
                lat.0.len()
            ),
            format!("client found {seen} sampled artifacts"),
        ),
        row(
            "add 1 artifact, p50 (16 bins)",
            "same as 256 bins",
            small.range("ms", 1e3),
            format!("client found {small_seen}"),
        ),
    ]
}

fn add_one_large_rows() -> Vec<Row> {
    let (lat, seen) = add_one(16384, 50);
    vec![row(
        "add 1 artifact, p50 (16384 bins)",
        "same as 256 bins",
        lat.range("ms", 1e3),
        format!(
            "client found {seen}; floor: every round re-signs and rewrites the snapshot, which \
             lists all 16384 roles — signing, encoding, writing and fsyncing it alone takes \
             {:.1} ms here",
            snapshot_floor_ms()
        ),
    )]
}

fn concurrent_rows() -> Vec<Row> {
    let (total, seen, created) = concurrent(256, 50, 50, 5);
    vec![row(
        "50 concurrent requests × 50 artifacts, all SUCCESS (256 bins)",
        "≤ 2 s",
        total.range("s", 1.0),
        format!(
            "client found {seen} sampled artifacts; each run created {:.0} metadata files",
            created.median()
        ),
    )]
}

fn sustained_rows() -> Vec<Row> {
    let (total, seen, created) = concurrent(16384, 100, 100, 3);
    let rates = Figures::sorted(total.0.iter().map(|t| 10_000.0 / t).collect());
    let per_file = file_creation_floor() / 16384.0;
    let files = created.median();
    vec![row(
        "sustained adds, 16384 bins, ed25519 (100 tasks × 100 artifacts at once)",
        "≥ 2,000 artifacts/s",
        rates.range("artifacts/s", 1.0),
        format!(
            "client found {seen} sampled artifacts; each run created {files:.0} metadata \
             files, and creating that many files in {} took {:.1} s when measured",
            std::env::temp_dir().display(),
            files * per_file,
        ),
    )]
}

/// Seconds to create, write and close 16384 small files in a fresh
/// directory where the deployments keep their storage: what any writer of
/// 16384 new metadata files pays on this file system, before any fsync.
fn file_creation_floor() -> f64 {
    let dir = common::TempDir::new("rstuf-bench-files");
    let start = Instant::now();
    for n in 0..16384 {
        std::fs::write(dir.path().join(format!("{n}.json")), [b'x'; 600]).unwrap();
    }
    start.elapsed().as_secs_f64()
}

fn floor_note() -> String {
    format!(
        "floor here: creating 16384 files in {} takes {:.1} s",
        std::env::temp_dir().display(),
        file_creation_floor()
    )
}

fn bootstrap_rows() -> Vec<Row> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let rsa = rsa_signature();
    let floor = 16384.0 * rsa / cores;
    vec![
        row(
            "bootstrap 16384 bins, ed25519 key",
            "≤ 1 s",
            bootstrap(16384, false, 3).range("s", 1.0),
            floor_note(),
        ),
        row(
            "bootstrap 16384 bins, RSA-2048 key",
            &format!("≤ 1.2 × {floor:.1} s = {:.1} s", 1.2 * floor),
            bootstrap(16384, true, 3).range("s", 1.0),
            format!(
                "target's floor: 16384 × {:.2} ms per RSA signature ÷ {cores} cores (empty bins share one signature); {}",
                rsa * 1e3,
                floor_note()
            ),
        ),
    ]
}

fn bump_rows() -> Vec<Row> {
    vec![row(
        "forced bump of all online roles, 16384 bins, ed25519",
        "≤ 2 s",
        forced_bump(16384, 3).range("s", 1.0),
        format!("client refreshes after the bumps; {}", floor_note()),
    )]
}

fn kms_rows() -> Vec<Row> {
    [
        (0, "ms (local)"),
        (20, "ms added per signature, as a round trip to KMS"),
    ]
    .into_iter()
    .map(|(latency, what)| {
        row(
            &format!(
                "KMS signing: forced bump of 1024 bins, ECDSA P-256 key in AWS KMS, \
                     {latency} {what}"
            ),
            "not sequential round trips",
            kms_bump(1024, latency, 3).range("signatures/s", 1.0),
            "local moto server (one Python process on the same cores); at most 8 \
                 signatures in flight; client refreshes after the bumps"
                .into(),
        )
    })
    .collect()
}

fn process_rows() -> Vec<Row> {
    let (start, rss) = start_and_idle(8, 10);
    vec![
        row(
            "idle RSS of the whole worker (8 threads per queue, 16 consumers)",
            "≤ 15 MB",
            rss.range("MB", 1.0),
            String::new(),
        ),
        row(
            "process start → consuming (all 16 consumers)",
            "≤ 100 ms",
            start.range("ms", 1e3),
            "includes the schema check in PostgreSQL".into(),
        ),
    ]
}

/// The disk-bound measures again with `TMPDIR` on tmpfs: results by
/// measure name.
fn tmpfs_results(selected: &[&(&str, Measure)]) -> std::collections::HashMap<String, String> {
    if std::env::temp_dir().starts_with(TMPFS) || !std::path::Path::new(TMPFS).is_dir() {
        return Default::default();
    }
    let disk = std::env::temp_dir();
    // Between measures this is the only thread, and every deployment reads
    // TMPDIR when it is created.
    std::env::set_var("TMPDIR", TMPFS);
    let results = selected
        .iter()
        .filter(|(name, _)| DISK_BOUND.contains(name))
        .flat_map(|(_, measure)| measure())
        .map(|[measure, _, result, _]| (measure, result))
        .collect();
    std::env::set_var("TMPDIR", disk);
    results
}

/// Every measure by name; `RSTUF_BENCH_ONLY=<name>` runs one (to profile
/// it) and then BENCH.md is left alone.
type Measure = fn() -> Vec<Row>;

/// Measures bound by the storage file system, run a second time with the
/// storage on tmpfs to show the worker's own cost beside the disk's.
const DISK_BOUND: [&str; 5] = [
    "add-one-16384",
    "concurrent",
    "sustained",
    "bootstrap",
    "bump",
];
const TMPFS: &str = "/dev/shm";

const MEASURES: [(&str, Measure); 8] = [
    ("add-one", add_one_rows),
    ("add-one-16384", add_one_large_rows),
    ("concurrent", concurrent_rows),
    ("sustained", sustained_rows),
    ("bootstrap", bootstrap_rows),
    ("bump", bump_rows),
    ("kms", kms_rows),
    ("process", process_rows),
];

fn main() {
    let only = std::env::var("RSTUF_BENCH_ONLY").ok();
    let selected: Vec<&(&str, Measure)> = MEASURES
        .iter()
        .filter(|(name, _)| only.as_deref().map_or(true, |o| o == *name))
        .collect();
    let rows: Vec<Row> = selected.iter().flat_map(|(_, measure)| measure()).collect();
    if only.is_some() {
        return;
    }
    let on_tmpfs = tmpfs_results(&selected);
    let mut out = String::new();
    let commit = command_output("git", &["rev-parse", "--short", "HEAD"]);
    let dirty =
        !command_output("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
    let date = command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let _ = writeln!(out, "# Benchmarks (`make bench`)\n");
    let _ = writeln!(
        out,
        "Generated {date} on {} at commit {commit}{}. Release build, local \
         PostgreSQL, Redis and RabbitMQ, LocalStorage on the local disk. Each \
         figure: median (min, max, number of runs); latency is from publishing \
         the task to seeing SUCCESS in the result backend. Storage lives under \
         `TMPDIR` ({}); the disk-bound measures run a second time with storage \
         on tmpfs ({TMPFS}), which shows the worker's own cost without the disk's.\n",
        machine(),
        if dirty { " (with local changes)" } else { "" },
        std::env::temp_dir().display()
    );
    let _ = writeln!(
        out,
        "| measure | target | result | on tmpfs | note |\n|---|---|---|---|---|"
    );
    for [measure, target, result, note] in &rows {
        let tmpfs = on_tmpfs.get(measure).map_or("", String::as_str);
        let _ = writeln!(
            out,
            "| {measure} | {target} | {result} | {tmpfs} | {note} |"
        );
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCH.md");
    std::fs::write(&path, out).unwrap();
    eprintln!("bench: wrote {}", path.display());
}
