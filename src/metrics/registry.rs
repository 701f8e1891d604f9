//! The values behind [`super`] and their text exposition.
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use super::Outcome;

/// Seconds: from a quick add (milliseconds) to a 16384-bin bootstrap.
pub(super) const DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];
/// Counts: plans merged into one publication round.
pub(super) const SIZE_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// Cumulative-on-render histogram: `counts[i]` counts observations in
/// (bounds[i-1], bounds[i]]; the last slot holds the rest.
pub(super) struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    pub(super) fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    pub(super) fn observe(&mut self, value: f64) {
        let slot = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        self.counts[slot] += 1;
        self.sum += value;
    }

    /// The `_bucket`, `_sum` and `_count` lines; `labels` is either empty
    /// or `name="value",` ready to be followed by `le`.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}");
        }
        let total: u64 = self.counts.iter().sum();
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {total}");
        let plain = labels.trim_end_matches(',');
        let braces = if plain.is_empty() {
            String::new()
        } else {
            format!("{{{plain}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {total}");
    }
}

pub(super) struct Registry {
    pub(super) tasks: BTreeMap<(&'static str, Outcome), u64>,
    pub(super) task_seconds: BTreeMap<&'static str, Histogram>,
    pub(super) lock_wait: Histogram,
    pub(super) lock_hold: Histogram,
    pub(super) publish_batch: Histogram,
    pub(super) publish_seconds: Histogram,
    pub(super) deliveries_in_use: i64,
    pub(super) task_threads: i64,
    pub(super) consumers: i64,
    pub(super) reconnects: u64,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

/// Runs `f` on the registry, creating it on first use. Recording never
/// fails: a panic elsewhere while it was held leaves plain numbers behind.
pub(super) fn with<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    let mut guard = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.get_or_insert_with(Registry::new))
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

impl Registry {
    fn new() -> Registry {
        Registry {
            tasks: BTreeMap::new(),
            task_seconds: BTreeMap::new(),
            lock_wait: Histogram::new(&DURATION_BUCKETS),
            lock_hold: Histogram::new(&DURATION_BUCKETS),
            publish_batch: Histogram::new(&SIZE_BUCKETS),
            publish_seconds: Histogram::new(&DURATION_BUCKETS),
            deliveries_in_use: 0,
            task_threads: 0,
            consumers: 0,
            reconnects: 0,
        }
    }

    pub(super) fn render(&self) -> String {
        let mut out = String::new();
        const TASKS: &str = "rstuf_worker_tasks_total";
        header(
            &mut out,
            TASKS,
            "counter",
            "Tasks finished, by action and outcome.",
        );
        for ((action, outcome), n) in &self.tasks {
            let outcome = outcome.as_str();
            let _ = writeln!(
                out,
                "{TASKS}{{action=\"{action}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        const DURATION: &str = "rstuf_worker_task_duration_seconds";
        header(&mut out, DURATION, "histogram", "Task run time, by action.");
        for (action, histogram) in &self.task_seconds {
            histogram.render(&mut out, DURATION, &format!("action=\"{action}\","));
        }
        let histograms = [
            (
                "rstuf_worker_lock_wait_seconds",
                "Waiting for a repository lock.",
                &self.lock_wait,
            ),
            (
                "rstuf_worker_lock_hold_seconds",
                "Holding a repository lock.",
                &self.lock_hold,
            ),
            (
                "rstuf_worker_publish_batch_tasks",
                "Task plans published together in one round (group commit).",
                &self.publish_batch,
            ),
            (
                "rstuf_worker_publish_round_seconds",
                "One publication round, lock to timestamp.",
                &self.publish_seconds,
            ),
        ];
        for (name, help, histogram) in histograms {
            header(&mut out, name, "histogram", help);
            histogram.render(&mut out, name, "");
        }
        let gauges = [
            (
                "rstuf_worker_prefetch_in_use",
                "gauge",
                "Messages delivered to a thread and not yet acknowledged.",
                self.deliveries_in_use,
            ),
            (
                "rstuf_worker_task_threads",
                "gauge",
                "Threads running a task, with those abandoned at RSTUF_TASK_TIME_LIMIT that are \
                 still blocked (above prefetch_in_use).",
                self.task_threads,
            ),
            (
                "rstuf_worker_consumers",
                "gauge",
                "Broker consumers currently consuming.",
                self.consumers,
            ),
            (
                "rstuf_worker_broker_reconnects_total",
                "counter",
                "Broker connections tried again after a failure.",
                i64::try_from(self.reconnects).unwrap_or(i64::MAX),
            ),
        ];
        for (name, kind, help, value) in gauges {
            header(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_bounds_inclusive() {
        let mut h = Histogram::new(&SIZE_BUCKETS);
        for v in [1.0, 2.0, 3.0, 500.0] {
            h.observe(v);
        }
        let mut out = String::new();
        h.render(&mut out, "x", "");
        assert!(out.contains("x_bucket{le=\"1\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"2\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"4\"} 3\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"128\"} 3\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("x_sum 506\nx_count 4\n"), "{out}");
    }

    #[test]
    fn labelled_histograms_put_le_last() {
        let mut h = Histogram::new(&SIZE_BUCKETS);
        h.observe(1.0);
        let mut out = String::new();
        h.render(&mut out, "x", "action=\"a\",");
        assert!(out.contains("x_bucket{action=\"a\",le=\"1\"} 1\n"), "{out}");
        assert!(out.contains("x_count{action=\"a\"} 1\n"), "{out}");
    }
}
