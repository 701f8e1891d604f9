//! Artifact traffic for the chaos scenarios, a watcher of the storage
//! directory while it flows, and the judgement of what a TUF client sees
//! afterwards: the parts every scenario of `make chaos` shares.
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::faults::storage_problems;
use super::services::Deployment;
use super::unique;

/// A small seeded generator (xorshift64*): the same seed gives the same
/// kill points and choices, so a run can be repeated.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// `RSTUF_CHAOS_SEED` when set, else the clock.
    pub fn from_env() -> (Rng, u64) {
        let seed = std::env::var("RSTUF_CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        (Rng::new(seed), seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-enough in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What one task asked for.
#[derive(Debug, Clone)]
enum Change {
    Add(String),
    Remove(String),
}

/// Additions and removals sent to a deployment, remembered for judging.
pub struct Load<'a> {
    dep: &'a Deployment,
    prefix: String,
    sent: Vec<(String, Change)>,
}

/// How long every task together may take to reach a final state.
const SETTLE_WITHIN: Duration = Duration::from_secs(240);

impl<'a> Load<'a> {
    pub fn new(dep: &'a Deployment, prefix: &str) -> Load<'a> {
        Load {
            dep,
            prefix: prefix.to_owned(),
            sent: Vec::new(),
        }
    }

    /// Whether the last task sent ended in anything but SUCCESS.
    pub fn last_failed(&self) -> bool {
        self.sent
            .last()
            .is_some_and(|(id, _)| self.dep.record(id)["status"] != "SUCCESS")
    }

    pub fn tasks(&self) -> u32 {
        u32::try_from(self.sent.len()).unwrap_or(u32::MAX)
    }

    /// Sends `count` additions of one new artifact each, in one batch.
    pub fn add(&mut self, count: usize) {
        let tasks: Vec<Value> = (0..count)
            .map(|_| {
                let path = format!("{}/{}.tar.gz", self.prefix, unique("a"));
                self.task("add_artifacts", Change::Add(path))
            })
            .collect();
        self.dep.send(&self.dep.queue, &Value::Array(tasks));
    }

    /// Sends removals of up to `count` artifacts whose addition already
    /// succeeded (a removal racing its own addition has no defined end).
    pub fn remove_some(&mut self, count: usize) {
        let removed: Vec<String> = self.removed_paths();
        let candidates: Vec<String> = self
            .sent
            .iter()
            .filter_map(|(id, change)| match change {
                Change::Add(path) if !removed.contains(path) => Some((id, path)),
                _ => None,
            })
            .filter(|(id, _)| self.dep.record(id)["status"] == "SUCCESS")
            .map(|(_, path)| path.clone())
            .take(count)
            .collect();
        if candidates.is_empty() {
            return;
        }
        let tasks: Vec<Value> = candidates
            .into_iter()
            .map(|path| self.task("remove_artifacts", Change::Remove(path)))
            .collect();
        self.dep.send(&self.dep.queue, &Value::Array(tasks));
    }

    fn removed_paths(&self) -> Vec<String> {
        self.sent
            .iter()
            .filter_map(|(_, change)| match change {
                Change::Remove(path) => Some(path.clone()),
                Change::Add(_) => None,
            })
            .collect()
    }

    fn task(&mut self, action: &str, change: Change) -> Value {
        let id = unique("chaos");
        let payload = match &change {
            Change::Add(path) => json!({"artifacts": [{
                "path": path,
                "info": {"length": 7, "hashes": {"sha256": "ab".repeat(32)}},
            }]}),
            Change::Remove(path) => json!({"artifacts": [path]}),
        };
        self.sent.push((id.clone(), change));
        json!({
            "name": "app.repository_service_tuf_worker",
            "id": id,
            "kwargs": {"action": action, "payload": payload},
        })
    }

    /// Waits for every task's final state and asks python-tuf's client for
    /// every path a SUCCESS says was added and not removed since, and for
    /// every path a SUCCESS says was removed.
    pub fn judge(&self) -> Judged {
        let deadline = Instant::now() + SETTLE_WITHIN;
        let mut judged = Judged::default();
        let mut present: BTreeMap<String, bool> = BTreeMap::new();
        for (id, change) in &self.sent {
            let Some(record) = final_record(self.dep, id, deadline) else {
                judged
                    .lost
                    .push(format!("task {id} never reached a final state"));
                continue;
            };
            if record["status"] != "SUCCESS" {
                judged.failed.push(format!("{id}: {}", record["result"]));
                continue;
            }
            match change {
                Change::Add(path) => {
                    present.entry(path.clone()).or_insert(true);
                }
                Change::Remove(path) => {
                    let deleted = &record["result"]["details"]["deleted_artifacts"];
                    if deleted.as_array().is_some_and(|d| d.contains(&json!(path))) {
                        present.insert(path.clone(), false);
                    }
                }
            }
        }
        let paths: Vec<&str> = present.keys().map(String::as_str).collect();
        match client_view(self.dep.storage.path(), &paths) {
            Ok(found) => {
                for (path, expected) in &present {
                    match (*expected, found.contains(path)) {
                        (true, false) => judged.lost.push(format!("{path} added but not found")),
                        (false, true) => judged
                            .inconsistent
                            .push(format!("{path} removed but still found")),
                        _ => {}
                    }
                }
            }
            Err(output) => judged
                .inconsistent
                .push(format!("the client cannot refresh: {output}")),
        }
        judged
            .inconsistent
            .extend(storage_problems(self.dep.storage.path()));
        judged.inconsistent.extend(duplicate_rows(self.dep));
        judged
    }
}

/// What [`Load::judge`] found, each entry a sentence for the log.
#[derive(Debug, Default)]
pub struct Judged {
    pub lost: Vec<String>,
    pub inconsistent: Vec<String>,
    /// Tasks that ended FAILURE (allowed by some scenarios, not lost).
    pub failed: Vec<String>,
}

impl Judged {
    /// Prints every finding, so a row that is not 0/0 can be explained.
    pub fn report(&self) {
        for line in &self.lost {
            eprintln!("lost: {line}");
        }
        for line in &self.inconsistent {
            eprintln!("inconsistent: {line}");
        }
        for line in &self.failed {
            eprintln!("failed: {line}");
        }
    }
}

fn final_record(dep: &Deployment, id: &str, deadline: Instant) -> Option<Value> {
    loop {
        let record = dep.record(id);
        if matches!(record["status"].as_str(), Some("SUCCESS" | "FAILURE")) {
            return Some(record);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An artifact recorded twice in the database would be listed twice.
fn duplicate_rows(dep: &Deployment) -> Vec<String> {
    let mut seen: HashMap<String, u32> = HashMap::new();
    for (path, _, _) in dep.artifact_rows() {
        *seen.entry(path).or_default() += 1;
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(path, n)| format!("{path} has {n} database rows"))
        .collect()
}

/// python-tuf's client on `dir` (a fresh client trusting `1.root.json`):
/// the paths it finds, or its output when it cannot refresh.
pub fn client_view(dir: &Path, paths: &[&str]) -> Result<Vec<String>, String> {
    let script = super::shared("vectors/tuf/check_with_ngclient.py");
    let mut args = vec![dir.to_str().unwrap_or_default()];
    args.extend_from_slice(paths);
    let out = super::run_python(&script, &args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !stdout.starts_with("refresh OK") {
        return Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(paths
        .iter()
        .filter(|p| stdout.contains(&format!("found '{p}':")))
        .map(|p| p.to_string())
        .collect())
}

/// Watches a LocalStorage directory while a scenario runs: a versioned
/// file that gets another inode was replaced (a version repeated with other
/// content), and `timestamp.json` must never go back to an older version.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<String>>>,
}

impl Watcher {
    pub fn start(dir: &Path) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let dir = dir.to_owned();
        let thread = std::thread::spawn(move || watch(&dir, &flag));
        Watcher {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops watching; what it saw go wrong.
    pub fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn watch(dir: &Path, stop: &AtomicBool) -> Vec<String> {
    let mut problems = Vec::new();
    let mut inodes: HashMap<String, u64> = HashMap::new();
    let mut last_timestamp = 0;
    while !stop.load(Ordering::Relaxed) {
        if let Some(version) = timestamp_version(dir) {
            if version < last_timestamp {
                problems.push(format!(
                    "timestamp.json went back from version {last_timestamp} to {version}"
                ));
            }
            last_timestamp = last_timestamp.max(version);
        }
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let versioned = name.ends_with(".json")
                && name
                    .split('.')
                    .next()
                    .is_some_and(|v| v.parse::<u64>().is_ok());
            let Ok(meta) = entry.metadata() else { continue };
            if !versioned {
                continue;
            }
            let ino = meta.ino();
            if let Some(previous) = inodes.insert(name.clone(), ino) {
                if previous != ino {
                    problems.push(format!("{name} was replaced by another file"));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    problems
}

fn timestamp_version(dir: &Path) -> Option<u64> {
    let bytes = std::fs::read(dir.join("timestamp.json")).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value["signed"]["version"].as_u64()
}
