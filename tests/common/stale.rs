//! A publisher whose `LOCK_TARGETS` expires while it writes: two worker
//! processes with a tiny `RSTUF_LOCK_TIMEOUT`, each with the calls that
//! move files into place slowed by strace's fault injection so every publication outlives the
//! lock and the other process takes it meanwhile. The storage watcher and
//! python-tuf's client judge the result: no version repeats with other
//! content, timestamp.json never goes back, every reported addition is
//! visible.
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::chaos::Row;
use super::fixtures::install_bins_after_bootstrap;
use super::load::{Load, Watcher};
use super::services::{Deployment, WorkerProcess};

/// Lock lifetime (seconds) shorter than one slowed publication.
const LOCK_TIMEOUT: &str = "0.5";
/// The calls that move a written file into place (linked or renamed).
const PLACING: &str = "linkat,rename,renameat,renameat2";
/// How long each of them is held.
const PLACE_DELAY_US: u32 = 700_000;

/// strace attached to a running worker, delaying one system call in every
/// thread; detached (the worker runs on) on drop.
pub struct Slowed(Child);

impl Slowed {
    pub fn attach(worker: &WorkerProcess, syscall: &str, delay_us: u32) -> Slowed {
        let child = Command::new("strace")
            .args(["-f", "-qq", "-o", "/dev/null", "-e"])
            .arg(format!("trace={syscall}"))
            .arg("-e")
            .arg(format!("inject={syscall}:delay_enter={delay_us}"))
            .arg("-p")
            .arg(worker.pid().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("strace runs (the lock-expiry scenario needs it, and ptrace rights)");
        // Attaching takes a moment; writes before it are merely not slowed.
        std::thread::sleep(Duration::from_millis(500));
        Slowed(child)
    }
}

impl Drop for Slowed {
    fn drop(&mut self) {
        // SIGINT makes strace detach cleanly; SIGKILL could leave a thread stopped.
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

/// `batches` of eight additions, one a second, against the two slowed
/// workers; then one addition after strace let go, which must succeed.
pub fn lock_expiry(batches: u32) -> Row {
    let dep = Deployment::new();
    install_bins_after_bootstrap(&dep);
    let env = [("RSTUF_LOCK_TIMEOUT", LOCK_TIMEOUT)];
    let workers = [dep.start_worker(&env), dep.start_worker(&env)];
    let watcher = Watcher::start(dep.storage.path());
    let mut load = Load::new(&dep, "stale");
    {
        let _slowed: Vec<Slowed> = workers
            .iter()
            .map(|w| Slowed::attach(w, PLACING, PLACE_DELAY_US))
            .collect();
        for _ in 0..batches {
            load.add(8);
            std::thread::sleep(Duration::from_secs(1));
        }
        // Every task settles while still slowed; judged below, with the last.
        let _ = load.judge();
    }
    load.add(1);
    let mut judged = load.judge();
    judged.inconsistent.extend(watcher.finish());
    judged.report();
    let logs: String = workers.iter().map(WorkerProcess::log_text).collect();
    let expired = logs.matches("is no longer held by this worker").count()
        + logs.matches("redone from the stored state").count();
    let last_failed = load.last_failed();
    Row {
        fault: format!(
            "LOCK_TARGETS expiry mid-publish (2 processes, RSTUF_LOCK_TIMEOUT={LOCK_TIMEOUT}, \
             every file link or rename delayed {} ms)",
            PLACE_DELAY_US / 1000
        ),
        count: u32::try_from(expired).unwrap_or(u32::MAX),
        tasks: load.tasks(),
        lost: count(&judged.lost),
        inconsistent: count(&judged.inconsistent),
        recovered_without_restart: !last_failed,
    }
}

pub fn count(lines: &[String]) -> u32 {
    u32::try_from(lines.len()).unwrap_or(u32::MAX)
}
