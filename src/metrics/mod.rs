//! What the process has done so far, for operators: task outcomes and
//! durations, lock waits and holds, publication batches, broker consumers
//! and reconnects.
//!
//! One process-wide registry, like Prometheus clients keep, because the
//! events happen deep in modules (the lock, the broker pool, the
//! publisher) that should not carry a handle around for the sake of
//! counting. Recording costs one uncontended mutex; reading happens only
//! when the optional endpoint ([`http`]) is scraped or the heartbeat
//! ([`crate::health`]) is written.
pub mod http;
mod registry;

use std::time::Duration;

use registry::{with, Histogram, Registry, DURATION_BUCKETS};

/// How a task ended, as the API would classify it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// SUCCESS with no `error` in the result.
    Success,
    /// SUCCESS whose result carries an `error` (upstream's "errored").
    Errored,
    /// FAILURE: an exception, an unknown task or action.
    Failure,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Errored => "errored",
            Outcome::Failure => "failure",
        }
    }
}

/// A task finished. `action` must come from a fixed set (the caller maps
/// anything a message made up to one label) so labels stay bounded.
pub fn task_finished(action: &'static str, outcome: Outcome, took: Duration) {
    with(|r| {
        *r.tasks.entry((action, outcome)).or_default() += 1;
        r.task_seconds
            .entry(action)
            .or_insert_with(|| Histogram::new(&DURATION_BUCKETS))
            .observe(took.as_secs_f64());
    });
}

/// Time spent waiting for a lock before holding it.
pub fn lock_waited(took: Duration) {
    with(|r| r.lock_wait.observe(took.as_secs_f64()));
}

/// Time a lock was held, from taking to releasing it.
pub fn lock_held(took: Duration) {
    with(|r| r.lock_hold.observe(took.as_secs_f64()));
}

/// A publication round ended, covering `tasks` submitted plans.
pub fn publish_round(tasks: u64, took: Duration) {
    with(|r| {
        r.publish_batch.observe(tasks as f64);
        r.publish_seconds.observe(took.as_secs_f64());
    });
}

/// One more on a gauge until dropped, so a panic cannot leave it high.
struct Raised(fn(&mut Registry) -> &mut i64);

impl Raised {
    fn start(gauge: fn(&mut Registry) -> &mut i64) -> Raised {
        with(|r| *gauge(r) += 1);
        Raised(gauge)
    }
}

impl Drop for Raised {
    fn drop(&mut self) {
        let gauge = self.0;
        with(|r| *gauge(r) -= 1);
    }
}

/// A delivered message not yet settled.
pub struct InUse {
    _raised: Raised,
}

impl InUse {
    pub fn start() -> InUse {
        fn gauge(r: &mut Registry) -> &mut i64 {
            &mut r.deliveries_in_use
        }
        InUse {
            _raised: Raised::start(gauge),
        }
    }
}

/// A thread running a task, counted until it ends: one the time limit
/// abandoned stays counted while it is still blocked.
pub struct TaskThread {
    _raised: Raised,
}

impl TaskThread {
    pub fn start() -> TaskThread {
        fn gauge(r: &mut Registry) -> &mut i64 {
            &mut r.task_threads
        }
        TaskThread {
            _raised: Raised::start(gauge),
        }
    }
}

/// `n` consumers consuming until dropped.
pub struct Consuming(i64);

impl Consuming {
    pub fn start(n: usize) -> Consuming {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        with(|r| r.consumers += n);
        Consuming(n)
    }
}

impl Drop for Consuming {
    fn drop(&mut self) {
        with(|r| r.consumers -= self.0);
    }
}

/// Consumers currently consuming, for the heartbeat.
pub fn consumers() -> i64 {
    with(|r| r.consumers)
}

/// A broker connection is being tried again after it failed or broke.
pub fn broker_reconnect() {
    with(|r| r.reconnects += 1);
}

/// Everything in the Prometheus text exposition format (version 0.0.4).
pub fn render() -> String {
    with(|r| r.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_events_show_up_in_the_exposition() {
        task_finished("add_artifacts", Outcome::Success, Duration::from_millis(12));
        task_finished("add_artifacts", Outcome::Errored, Duration::from_millis(3));
        publish_round(7, Duration::from_millis(40));
        let text = render();
        assert!(text
            .contains("rstuf_worker_tasks_total{action=\"add_artifacts\",outcome=\"success\"} "));
        assert!(text
            .contains("rstuf_worker_tasks_total{action=\"add_artifacts\",outcome=\"errored\"} "));
        assert!(text.contains("# TYPE rstuf_worker_task_duration_seconds histogram"));
        assert!(text.contains(
            "rstuf_worker_task_duration_seconds_bucket{action=\"add_artifacts\",le=\"+Inf\"} "
        ));
        assert!(text.contains("rstuf_worker_publish_batch_tasks_bucket{le=\"8\"} "));
    }

    #[test]
    fn task_threads_are_counted_until_they_end() {
        let gauge = || with(|r| r.task_threads);
        let before = gauge();
        let thread = TaskThread::start();
        assert_eq!(gauge(), before + 1);
        drop(thread);
        assert_eq!(gauge(), before);
    }
}
