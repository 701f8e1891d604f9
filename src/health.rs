//! `rstuf-worker health`: is the worker consuming and are its services
//! answering? Without opening a network port (the image's HEALTHCHECK runs
//! the binary inside the container), the running worker rewrites a
//! heartbeat file under `DATA_DIR` every few seconds with what it sees, and
//! `health` judges that file: missing (stopped, or never started), stale
//! (hung, or killed), short of consumers (broker unreachable) or listing a
//! service that did not answer.
//!
//! Each process names its file after the queues it consumes, because
//! supervisord runs one process per queue set with one `DATA_DIR`; `health`
//! judges every heartbeat there and is healthy only if all of them are.
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log::warn;
use serde::{Deserialize, Serialize};

use crate::broker::Shutdown;

const PREFIX: &str = "rstuf-worker";
const SUFFIX: &str = ".heartbeat";

/// The heartbeat file's name under `DATA_DIR` for a process consuming
/// `queues` (queue names are plain words, safe in a file name).
pub fn file_name(queues: &[String]) -> String {
    format!("{PREFIX}@{}{SUFFIX}", queues.join("+"))
}
/// How often the heartbeat is written.
pub const INTERVAL: Duration = Duration::from_secs(5);
/// A heartbeat older than this means the worker stopped writing it: a few
/// intervals, so a slow service probe alone does not make it stale.
const STALE_AFTER: Duration = Duration::from_secs(4 * INTERVAL.as_secs());

/// One heartbeat, as written to the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beat {
    pub pid: u32,
    /// Seconds since the Unix epoch.
    pub written: u64,
    /// Consumers consuming now, and how many the configuration asks for.
    pub consumers: i64,
    pub expected_consumers: i64,
    /// One line per service that did not answer.
    pub problems: Vec<String>,
}

impl Beat {
    /// Healthy, with a one-line summary; or why not.
    pub fn judge(&self, now: u64) -> Result<String, String> {
        let age = now.saturating_sub(self.written);
        if age > STALE_AFTER.as_secs() {
            return Err(format!(
                "the heartbeat of process {} is {age}s old: the worker is hung or was killed",
                self.pid
            ));
        }
        let mut problems = self.problems.clone();
        if self.consumers < self.expected_consumers {
            problems.insert(
                0,
                format!(
                    "consuming with {} of {} consumers: is the broker reachable? (see the log)",
                    self.consumers, self.expected_consumers
                ),
            );
        }
        if problems.is_empty() {
            Ok(format!(
                "process {} consuming with {} consumers, services answering ({age}s ago)",
                self.pid, self.consumers
            ))
        } else {
            Err(problems.join("; "))
        }
    }
}

/// Reads and judges every heartbeat in `data_dir`: one line per process,
/// healthy only if there is at least one and every one is healthy.
pub fn check(data_dir: &Path) -> Result<String, String> {
    let files = heartbeat_files(data_dir)?;
    if files.is_empty() {
        return Err(format!(
            "no heartbeat in {}: the worker is not running (or runs with another DATA_DIR)",
            data_dir.display()
        ));
    }
    let now = unix_now();
    let verdicts: Vec<(String, Result<String, String>)> = files
        .into_iter()
        .map(|(name, path)| (name, read_beat(&path).and_then(|beat| beat.judge(now))))
        .collect();
    let lines = verdicts
        .iter()
        .map(|(name, verdict)| match verdict {
            Ok(text) | Err(text) => format!("{name}: {text}"),
        })
        .collect::<Vec<_>>()
        .join("\n");
    if verdicts.iter().all(|(_, verdict)| verdict.is_ok()) {
        Ok(lines)
    } else {
        Err(lines)
    }
}

/// (queue set, path) of each heartbeat file, in name order.
fn heartbeat_files(data_dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let entries = fs::read_dir(data_dir)
        .map_err(|e| format!("cannot list DATA_DIR {}: {e}", data_dir.display()))?;
    let mut files: Vec<(String, PathBuf)> = entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_str()?;
            let queues = name
                .strip_prefix(PREFIX)?
                .strip_prefix('@')?
                .strip_suffix(SUFFIX)?;
            Some((queues.to_owned(), path))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn read_beat(path: &Path) -> Result<Beat, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not a heartbeat: {e}", path.display()))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Asks one service whether it answers.
pub type Probe = Box<dyn FnMut() -> Result<(), String> + Send>;

/// The thread writing the heartbeat. Dropping it stops the thread and
/// removes the file, so a stopped worker is reported as stopped at once.
pub struct Heartbeat {
    path: PathBuf,
    stop: Shutdown,
    thread: Option<JoinHandle<()>>,
}

/// Starts writing `data_dir/`[`file_name`]`(queues)` every [`INTERVAL`]
/// until the returned [`Heartbeat`] is dropped. `consumers` reads how many
/// consumers consume now.
pub fn spawn(
    data_dir: &Path,
    queues: &[String],
    expected_consumers: usize,
    consumers: fn() -> i64,
    mut probes: Vec<(&'static str, Probe)>,
) -> io::Result<Heartbeat> {
    let path = data_dir.join(file_name(queues));
    let target = path.clone();
    let stop = Shutdown::new();
    let shutdown = stop.clone();
    let expected_consumers = i64::try_from(expected_consumers).unwrap_or(i64::MAX);
    let thread = thread::Builder::new()
        .name("heartbeat".into())
        .spawn(move || {
            let mut failing = false;
            while !shutdown.is_requested() {
                let beat = Beat {
                    pid: std::process::id(),
                    written: unix_now(),
                    consumers: consumers(),
                    expected_consumers,
                    problems: run_probes(&mut probes),
                };
                match write(&target, &beat) {
                    Ok(()) => failing = false,
                    Err(e) if !failing => {
                        failing = true;
                        warn!("cannot write the heartbeat {}: {e}; `health` will report the worker down", target.display());
                    }
                    Err(_) => {}
                }
                shutdown.sleep(INTERVAL);
            }
        })?;
    Ok(Heartbeat {
        path,
        stop,
        thread: Some(thread),
    })
}

fn run_probes(probes: &mut [(&'static str, Probe)]) -> Vec<String> {
    probes
        .iter_mut()
        .filter_map(|(name, probe)| probe().err().map(|e| format!("{name}: {e}")))
        .collect()
}

/// Replaces the file in one rename, so `health` never reads half a beat.
fn write(path: &Path, beat: &Beat) -> io::Result<()> {
    let json = serde_json::to_vec(beat).map_err(io::Error::other)?;
    let partial = path.with_extension("partial");
    fs::write(&partial, json)?;
    fs::rename(&partial, path)
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.request();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Err(e) = fs::remove_file(&self.path) {
            if e.kind() != io::ErrorKind::NotFound {
                warn!("cannot remove the heartbeat {}: {e}", self.path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn every_heartbeat_in_data_dir_is_judged() {
        let dir = TempDir::new("health-many");
        let now = unix_now();
        let write_beat = |queues: &str, consumers| {
            let path = dir.path().join(format!("rstuf-worker@{queues}.heartbeat"));
            write(&path, &beat(now, consumers, &[])).unwrap();
        };
        write_beat("metadata_repository", 4);
        write_beat("rstuf_internals", 4);
        std::fs::write(dir.path().join("unrelated.txt"), "x").unwrap();
        let healthy = check(dir.path()).unwrap();
        assert_eq!(healthy.lines().count(), 2, "{healthy}");
        write_beat("rstuf_internals", 1);
        let sick = check(dir.path()).unwrap_err();
        assert!(
            sick.contains("metadata_repository: process 42 consuming"),
            "{sick}"
        );
        assert!(
            sick.contains("rstuf_internals: consuming with 1 of 4"),
            "{sick}"
        );
    }

    fn beat(written: u64, consumers: i64, problems: &[&str]) -> Beat {
        Beat {
            pid: 42,
            written,
            consumers,
            expected_consumers: 4,
            problems: problems.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn a_fresh_beat_with_every_consumer_and_no_problem_is_healthy() {
        assert!(beat(1000, 4, &[]).judge(1003).is_ok());
    }

    #[test]
    fn stale_short_of_consumers_or_with_problems_is_not() {
        let stale = beat(1000, 4, &[]).judge(1000 + 21).unwrap_err();
        assert!(stale.contains("21s old"), "{stale}");
        let short = beat(1000, 2, &[]).judge(1000).unwrap_err();
        assert!(short.contains("2 of 4 consumers"), "{short}");
        let down = beat(1000, 4, &["postgresql: refused"]).judge(1000);
        assert_eq!(down.unwrap_err(), "postgresql: refused");
    }

    #[test]
    fn the_file_lives_from_the_first_beat_until_the_heartbeat_is_dropped() {
        let dir = TempDir::new("health");
        let failing: Probe = Box::new(|| Err("no answer".into()));
        let queues = ["q1".to_owned(), "q2".to_owned()];
        let heartbeat = spawn(dir.path(), &queues, 1, || 1, vec![("redis", failing)]).unwrap();
        let path = dir.path().join("rstuf-worker@q1+q2.heartbeat");
        let start = std::time::Instant::now();
        while !path.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no heartbeat written"
            );
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(check(dir.path()).unwrap_err(), "q1+q2: redis: no answer");
        drop(heartbeat);
        assert!(check(dir.path()).unwrap_err().contains("not running"));
    }
}
