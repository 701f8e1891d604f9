//! Storage faults as scenarios, for the behaviour tests and `make chaos`: a
//! full disk and a read-only file system under LocalStorage, an S3 endpoint
//! that goes down and one that hangs. Each scenario runs a worker on a
//! deployment of its own (16-bin repository), injects the fault `count`
//! times around artifact additions, mends it, and judges what the storage
//! and python-tuf's client show. The `observe_*` forms also hand back the
//! FAILURE records of the tasks sent while the fault was in place, so the
//! tests can check their messages.
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use rstuf_worker::storage::local::TIMESTAMP_LOCK;

use super::chaos::Row;
use super::fixtures::{bin_of, install_bins_after_bootstrap};
use super::proxy::StallingProxy;
use super::services::{Deployment, WorkerProcess};
use super::{run_python, shared};

/// Every artifact goes to this bin, so a round changes one delegated role
/// and the first file it writes is that role's next version.
pub const BIN: &str = "bins-0";
/// How long any task may take to reach a final state before it counts as lost.
const FINAL_WITHIN: Duration = Duration::from_secs(60);
/// The `RSTUF_TASK_TIME_LIMIT` of the hanging-S3 scenario.
pub const HANG_TIME_LIMIT: &str = "2";

/// A task that failed while the fault was in place.
#[derive(Debug, Clone)]
pub struct Failed {
    pub task_id: String,
    pub exc_type: String,
    pub message: String,
    /// The newest version of [`BIN`] in storage right after the failure.
    pub bin_version: u64,
}

/// What a scenario saw.
#[derive(Debug, Clone)]
pub struct Observed {
    pub row: Row,
    pub failures: Vec<Failed>,
    /// The LocalStorage directory, or the local copy of the bucket.
    pub storage: PathBuf,
}

/// LocalStorage on a full disk: the storage directory is a 64 MiB tmpfs
/// filled to the last byte while tasks arrive, then emptied again.
pub fn disk_full(count: u32) -> Row {
    observe_disk_full(count).row
}

pub fn observe_disk_full(count: u32) -> Observed {
    local_scenario(
        "LocalStorage disk full (tmpfs, no space left on device)",
        count,
        Tmpfs::fill,
        Tmpfs::empty,
    )
}

/// LocalStorage on a file system remounted read-only, then read-write.
pub fn read_only(count: u32) -> Row {
    observe_read_only(count).row
}

pub fn observe_read_only(count: u32) -> Observed {
    local_scenario(
        "LocalStorage read-only file system (remount ro)",
        count,
        |fs| fs.remount("ro"),
        |fs| fs.remount("rw"),
    )
}

fn local_scenario(fault: &str, count: u32, inject: fn(&Tmpfs), heal: fn(&Tmpfs)) -> Observed {
    let dep = Deployment::new();
    let tmpfs = Tmpfs::mount(dep.storage.path(), "64m");
    install_bins_after_bootstrap(&dep);
    let worker = dep.start_worker(&[]);
    let observed = drive(&dep, fault, count, &|| inject(&tmpfs), &|| heal(&tmpfs));
    drop(worker);
    observed
}

/// S3 behind a proxy that cuts every connection and closes new ones while
/// tasks are in flight, then passes them again.
pub fn s3_down(count: u32) -> Row {
    observe_s3_down(count).row
}

pub fn observe_s3_down(count: u32) -> Observed {
    let (dep, proxy) = s3_deployment();
    let worker = dep.start_worker(&[("RSTUF_AWS_ENDPOINT_URL", &proxy_url(&proxy))]);
    let observed = drive(
        &dep,
        "S3 endpoint down (connections cut, new ones closed)",
        count,
        &|| proxy.go_down(),
        &|| proxy.recover(),
    );
    drop(worker);
    observed
}

/// S3 behind a proxy that accepts and never answers: the task waiting for
/// the stuck publication is ended by `RSTUF_TASK_TIME_LIMIT`, the single
/// pool thread takes the next task while the request is still hung, and
/// once the hung requests fail the next addition is published. The
/// abandoned thread must leave the FAILURE record as the watchdog wrote it.
pub fn s3_hang(count: u32) -> Row {
    observe_s3_hang(count).row
}

pub fn observe_s3_hang(count: u32) -> Observed {
    let (dep, proxy) = s3_deployment();
    let worker = dep.start_worker_on(
        &[&dep.queue],
        1,
        &[
            ("RSTUF_AWS_ENDPOINT_URL", &proxy_url(&proxy)),
            ("RSTUF_TASK_TIME_LIMIT", HANG_TIME_LIMIT),
        ],
    );
    let mut tally = Tally::new(&dep);
    for i in 0..count {
        proxy.stall();
        let (id, path) = add(&dep, &format!("hung-{i}"));
        let faulted = tally.faulted(&id, &path);
        // One pool thread: the probe runs only if the hung task let go of it.
        let probe = dep.send_action("no_such_action", json!({}));
        let probe_done = final_record(&dep, &probe).is_some();
        let still_hung = proxy.waiting_clients() > 0;
        proxy.recover();
        proxy.release_held();
        tally.recovered &= probe_done && still_hung;
        tally.must_succeed(&format!("after-{i}"));
        let abandoned_ended = wait_for_count(
            &worker,
            "its thread ended after the time limit",
            i as usize + 1,
        );
        let record = dep.record(&id);
        if faulted && !(abandoned_ended && record["result"]["exc_type"] == "TimeLimitExceeded") {
            tally.problem(format!(
                "the record of {id} changed after its thread was abandoned: {record}"
            ));
        }
    }
    let observed = tally.judge(&format!(
        "S3 endpoint hangs (requests never answered), RSTUF_TASK_TIME_LIMIT={HANG_TIME_LIMIT}"
    ));
    drop(worker);
    observed
}

/// After one addition without fault, for each of `count` rounds: one
/// addition in flight as the fault strikes, one sent during the fault (it
/// must fail), one after mending (it must succeed on the same worker).
fn drive(
    dep: &Deployment,
    fault: &str,
    count: u32,
    inject: &dyn Fn(),
    heal: &dyn Fn(),
) -> Observed {
    let mut tally = Tally::new(dep);
    // The worker has read the repository once, as in service: what the
    // faulted task touches first does not depend on the task in flight.
    tally.must_succeed("warm-up");
    for i in 0..count {
        let (load_id, load_path) = add(dep, &format!("load-{i}"));
        inject();
        let (id, path) = add(dep, &format!("faulted-{i}"));
        tally.settled(&load_id, &load_path);
        tally.faulted(&id, &path);
        tally.check_storage();
        heal();
        tally.must_succeed(&format!("after-{i}"));
    }
    tally.judge(fault)
}

/// What the scenario has counted so far.
struct Tally<'a> {
    dep: &'a Deployment,
    tasks: u32,
    lost: u32,
    problems: Vec<String>,
    recovered: bool,
    /// Paths of the additions reported SUCCESS: a client must find them.
    visible: Vec<String>,
    failures: Vec<Failed>,
}

impl<'a> Tally<'a> {
    fn new(dep: &'a Deployment) -> Tally<'a> {
        Tally {
            dep,
            tasks: 0,
            lost: 0,
            problems: Vec::new(),
            recovered: true,
            visible: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn problem(&mut self, text: String) {
        eprintln!("inconsistent: {text}");
        self.problems.push(text);
    }

    /// A task that may succeed or fail; its final record, if it has one.
    fn settled(&mut self, id: &str, path: &str) -> Option<Value> {
        self.tasks += 1;
        let Some(record) = final_record(self.dep, id) else {
            eprintln!("lost: task {id} never reached a final state");
            self.lost += 1;
            return None;
        };
        if record["status"] == "SUCCESS" {
            self.visible.push(path.to_owned());
        }
        Some(record)
    }

    /// A task sent while the fault was in place; true when it failed.
    fn faulted(&mut self, id: &str, path: &str) -> bool {
        let Some(record) = self.settled(id, path) else {
            return false;
        };
        if record["status"] != "FAILURE" {
            return false;
        }
        self.dep.sync_storage();
        self.failures.push(Failed {
            task_id: id.to_owned(),
            exc_type: text(&record["result"]["exc_type"]),
            message: text(&record["result"]["exc_message"][0]),
            bin_version: self.dep.latest_version(BIN),
        });
        true
    }

    /// An addition with no fault in place (first, or after mending) must
    /// succeed.
    fn must_succeed(&mut self, label: &str) {
        let (id, path) = add(self.dep, label);
        let succeeded = self
            .settled(&id, &path)
            .is_some_and(|r| r["status"] == "SUCCESS");
        if !succeeded {
            eprintln!("not recovered: {label} ({id}) did not succeed");
        }
        self.recovered &= succeeded;
    }

    fn check_storage(&mut self) {
        self.dep.sync_storage();
        for problem in storage_problems(self.dep.storage.path()) {
            self.problem(problem);
        }
    }

    /// Storage once more, then what a client finds of the successes.
    fn judge(mut self, fault: &str) -> Observed {
        self.check_storage();
        let paths: Vec<&str> = self.visible.iter().map(String::as_str).collect();
        match client_finds(self.dep.storage.path(), &paths) {
            Ok(missing) => {
                for path in &missing {
                    eprintln!("lost: {path} was reported added but the client cannot find it");
                }
                self.lost += u32::try_from(missing.len()).unwrap_or(u32::MAX);
            }
            Err(output) => self.problem(format!("the client cannot refresh: {output}")),
        }
        Observed {
            row: Row {
                fault: fault.to_owned(),
                count: u32::try_from(self.failures.len()).unwrap_or(u32::MAX),
                tasks: self.tasks,
                lost: self.lost,
                inconsistent: u32::try_from(self.problems.len()).unwrap_or(u32::MAX),
                recovered_without_restart: self.recovered,
            },
            failures: self.failures,
            storage: self.dep.storage.path().to_owned(),
        }
    }
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

/// Sends an addition of one artifact in [`BIN`]; (task id, path).
fn add(dep: &Deployment, label: &str) -> (String, String) {
    let path = (0..)
        .map(|k| format!("faults/{label}-{k}.tar.gz"))
        .find(|p| bin_of(p) == BIN)
        .unwrap_or_default();
    let artifact = json!({
        "path": path,
        "info": {"length": 7, "hashes": {"sha256": "ab".repeat(32)}},
    });
    let id = dep.send_action("add_artifacts", json!({"artifacts": [artifact]}));
    (id, path)
}

/// The final record of a task, None if it has none within [`FINAL_WITHIN`].
fn final_record(dep: &Deployment, id: &str) -> Option<Value> {
    let start = Instant::now();
    while start.elapsed() < FINAL_WITHIN {
        let record = dep.record(id);
        if matches!(record["status"].as_str(), Some("SUCCESS" | "FAILURE")) {
            return Some(record);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    None
}

/// Waits until the worker's log says `needle` `count` times.
fn wait_for_count(worker: &WorkerProcess, needle: &str, count: usize) -> bool {
    let start = Instant::now();
    while start.elapsed() < FINAL_WITHIN {
        if worker.log_text().matches(needle).count() >= count {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// What a reader of the storage directory could trip over (the writers' lock
/// file is none of it): temporary files,
/// files that are not whole JSON, and a timestamp or snapshot naming a file
/// that is not there.
pub fn storage_problems(dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for name in names.iter().filter(|n| *n != TIMESTAMP_LOCK) {
        if name.starts_with('.') || name.ends_with(".tmp") {
            problems.push(format!("temporary file {name} left in storage"));
        } else if name.ends_with(".json") && read_json(&dir.join(name)).is_none() {
            problems.push(format!("{name} is not whole JSON"));
        }
    }
    let Some(timestamp) = read_json(&dir.join("timestamp.json")) else {
        problems.push("timestamp.json is missing or unreadable".into());
        return problems;
    };
    let snapshot_version = &timestamp["signed"]["meta"]["snapshot.json"]["version"];
    let snapshot_file = format!("{snapshot_version}.snapshot.json");
    let Some(snapshot) = read_json(&dir.join(&snapshot_file)) else {
        problems.push(format!(
            "timestamp.json names {snapshot_file}, which is missing"
        ));
        return problems;
    };
    if let Some(meta) = snapshot["signed"]["meta"].as_object() {
        for (role_file, info) in meta {
            let file = format!("{}.{role_file}", info["version"]);
            if !dir.join(&file).exists() {
                problems.push(format!("{snapshot_file} names {file}, which is missing"));
            }
        }
    }
    problems
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// python-tuf's client on `dir`: the paths it cannot find, or its output
/// when it cannot even refresh.
fn client_finds(dir: &Path, paths: &[&str]) -> Result<Vec<String>, String> {
    let script = shared("vectors/tuf/check_with_ngclient.py");
    let mut args = vec![dir.to_str().unwrap_or_default()];
    args.extend_from_slice(paths);
    let out = run_python(&script, &args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !stdout.starts_with("refresh OK") {
        return Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(paths
        .iter()
        .filter(|p| !stdout.contains(&format!("found '{p}'")))
        .map(|p| p.to_string())
        .collect())
}

/// A deployment whose bucket holds `repo-bins/1-after-bootstrap`, and a
/// proxy in front of its moto server for the worker to go through.
pub fn s3_deployment() -> (Deployment, StallingProxy) {
    let dep = Deployment::new_s3();
    install_bins_after_bootstrap(&dep);
    let bucket = dep
        .bucket()
        .unwrap_or_else(|| unreachable!("an S3 deployment"));
    for (name, bytes) in dep.stored_files() {
        let put = bucket.put_object(&name, &bytes).unwrap();
        assert_eq!(put.status_code(), 200, "uploading {name} to moto");
    }
    let endpoint = dep
        .s3
        .as_ref()
        .map(|(moto, _)| moto.endpoint())
        .unwrap_or_default();
    let port = endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in the moto endpoint {endpoint}"));
    let proxy = StallingProxy::to(port);
    (dep, proxy)
}

pub fn proxy_url(proxy: &StallingProxy) -> String {
    format!("http://127.0.0.1:{}", proxy.port)
}

/// A size-limited tmpfs mounted over a directory (as root), unmounted on
/// drop. Without the right to mount, the scenario fails rather than pass
/// without its fault.
pub struct Tmpfs {
    dir: PathBuf,
}

/// The file that fills the tmpfs; not hidden, not metadata, so it is no
/// temporary file of the worker's.
const FILLER: &str = "disk-filler";

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        let options = format!("size={size}");
        mount(&["-t", "tmpfs", "-o", &options, "tmpfs"], dir).unwrap_or_else(|e| {
            panic!(
                "cannot mount a {size} tmpfs on {}: {e}; the storage fault tests need root \
                 (CAP_SYS_ADMIN) to make a small file system",
                dir.display()
            )
        });
        Tmpfs {
            dir: dir.to_owned(),
        }
    }

    /// Writes until the file system has no byte left.
    pub fn fill(&self) {
        let path = self.dir.join(FILLER);
        let mut file = File::create(&path).unwrap();
        let chunk = vec![0u8; 1 << 16];
        loop {
            if let Err(e) = file.write_all(&chunk).and_then(|()| file.sync_all()) {
                assert_eq!(
                    e.raw_os_error(),
                    Some(28),
                    "filling {}: {e}",
                    path.display()
                );
                return;
            }
        }
    }

    pub fn empty(&self) {
        fs::remove_file(self.dir.join(FILLER)).unwrap();
    }

    /// `mode` is `ro` or `rw`.
    pub fn remount(&self, mode: &str) {
        let options = format!("remount,{mode}");
        mount(&["-o", &options], &self.dir).unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if umount(&["-l"], &self.dir).is_err() {
            eprintln!("cannot unmount the tmpfs on {}", self.dir.display());
        }
    }
}

fn mount(args: &[&str], dir: &Path) -> Result<(), String> {
    run_tool("mount", args, dir)
}

fn umount(args: &[&str], dir: &Path) -> Result<(), String> {
    run_tool("umount", args, dir)
}

fn run_tool(tool: &str, args: &[&str], dir: &Path) -> Result<(), String> {
    let out = Command::new(tool)
        .args(args)
        .arg(dir)
        .output()
        .map_err(|e| format!("cannot run {tool}: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "{tool} {} {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}
