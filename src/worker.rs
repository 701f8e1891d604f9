//! One delivery, start to finish: decode the Celery message, record the
//! states the API polls (PRE_RUN, STARTED), run the action, record SUCCESS or
//! FAILURE, and tell the broker what to do with the message.
//!
//! The message is acknowledged only after its result is stored (Celery's
//! acks-late), so a worker that dies mid-task leaves it to be redelivered.
//! A result that cannot be stored (Redis down) is retried for a while; if
//! Redis stays away the message is requeued rather than acked, because an
//! acked task with no result would leave the API waiting forever.
//!
//! Each task runs on a thread of its own while the pool thread that took
//! the message waits at most `RSTUF_TASK_TIME_LIMIT` for it. Past that the
//! pool thread does what Celery's hard time limit does (FAILURE with
//! `TimeLimitExceeded`, then ack: acks_late with acks_on_failure_or_timeout)
//! and takes the next message; the task's thread, which may be blocked in
//! I/O and cannot be stopped, is abandoned behind its [`Fence`]: whenever it
//! wakes it publishes nothing, stores no state and its answer is dropped.
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use log::{error, info, warn};

use crate::backend::{self, Failure, Progress, ResultBackend, Stored, TaskRequest};
use crate::broker::delivery::preview;
use crate::broker::{Delivery, Disposition};
use crate::celery::{self, Task, TaskHeaders, TaskMessage};
use crate::metrics::{self, Outcome};
use crate::tasks::fence::Fence;
use crate::tasks::{self, Action};

/// How long a result write is retried before the message goes back.
const RESULT_RETRIES: u32 = 8;
const RESULT_RETRY_PAUSE: Duration = Duration::from_millis(500);

pub struct Worker {
    runner: Arc<Runner>,
    /// `RSTUF_TASK_TIME_LIMIT`.
    time_limit: Duration,
}

/// What runs one task, on the task's own thread (and refuses messages).
struct Runner {
    ctx: Arc<tasks::Context>,
    /// `RSTUF_BUMP_ONLINE_ROLES_TTL`: how long a bump may hold `BOR`.
    bump_ttl: Duration,
    backend: ResultBackend,
    /// Celery's node name (`rstuf@<RSTUF_WORKER_ID>`), shown in STARTED.
    node_name: String,
}

impl Worker {
    pub fn new(
        ctx: Arc<tasks::Context>,
        bump_ttl: Duration,
        backend: ResultBackend,
        worker_id: &str,
        time_limit: Duration,
    ) -> Worker {
        let runner = Runner {
            ctx,
            bump_ttl,
            backend,
            node_name: format!("rstuf@{worker_id}"),
        };
        Worker {
            runner: Arc::new(runner),
            time_limit,
        }
    }

    /// The broker pool's handler.
    pub fn handle(&self, delivery: Delivery) -> Disposition {
        let tag = delivery.delivery_tag;
        let raw = delivery.message;
        // Headers first: with an id, even an unreadable body gets a result.
        let headers = match TaskHeaders::decode(&raw.headers) {
            Ok(headers) => headers,
            Err(e) => {
                warn!(
                    "rejecting message {tag}: {e}; body starts {}",
                    preview(&raw.body)
                );
                return Disposition::Reject;
            }
        };
        let request = TaskRequest::from_headers(&headers);
        let task = match delivery.defect {
            Some(defect) => Err(celery::Error::Body(defect)),
            None => TaskMessage::decode(&raw).and_then(|msg| Task::from_message(&msg)),
        };
        match task {
            Ok(task) => self.run_within_limit(request, task),
            Err(e) => self.runner.refuse(&request, &headers, e, &raw.body),
        }
    }

    /// Runs the task on a fresh thread and waits for it at most the time
    /// limit; past it, ends the task and leaves the thread behind.
    fn run_within_limit(&self, request: TaskRequest, task: Task) -> Disposition {
        let label = task_label(&task);
        let fence = Fence::default();
        let (thread, outcome) = match self.spawn(&request, task, &fence) {
            Ok(spawned) => spawned,
            Err(e) => {
                let id = request.id.as_str();
                error!("task {id} not started, cannot start a thread for it: {e}; requeued");
                thread::sleep(RESULT_RETRY_PAUSE * 4);
                return Disposition::Requeue;
            }
        };
        match outcome.recv_timeout(self.time_limit) {
            Ok(disposition) => disposition,
            Err(RecvTimeoutError::Timeout) if fence.abandon() => {
                self.runner
                    .time_limit_exceeded(&request, label, self.time_limit)
            }
            // The task was already storing its own final state.
            Err(RecvTimeoutError::Timeout) => outcome.recv().unwrap_or_else(|_| rethrow(thread)),
            Err(RecvTimeoutError::Disconnected) => rethrow(thread),
        }
    }

    /// Starts the task's own thread; its answer arrives on the receiver.
    fn spawn(
        &self,
        request: &TaskRequest,
        task: Task,
        fence: &Fence,
    ) -> std::io::Result<(JoinHandle<()>, Receiver<Disposition>)> {
        let (done, outcome) = mpsc::sync_channel(1);
        let (runner, fence, request) = (self.runner.clone(), fence.clone(), request.clone());
        let thread = thread::Builder::new().name("task".into()).spawn(move || {
            let _counted = metrics::TaskThread::start();
            fence.enter();
            let disposition = runner.run(&request, task, &fence);
            if fence.is_abandoned() {
                warn!(
                    "task {}: its thread ended after the time limit; what it did since is discarded",
                    request.id.as_str()
                );
            }
            let _ = done.send(disposition);
        })?;
        Ok((thread, outcome))
    }
}

/// The task's thread panicked: carry the panic to the pool thread, which
/// treats it as a panicking handler (the message is rejected).
fn rethrow(thread: JoinHandle<()>) -> ! {
    match thread.join() {
        Err(panic) => std::panic::resume_unwind(panic),
        Ok(()) => panic!("the task thread ended without an outcome"),
    }
}

/// Celery's hard time limit raises billiard's `TimeLimitExceeded`; the
/// message names the setting to raise.
fn time_limit_failure(limit: Duration) -> Failure {
    Failure::new(
        "billiard.exceptions",
        "TimeLimitExceeded",
        format!(
            "RSTUF: task exceeded `RSTUF_TASK_TIME_LIMIT` ({} seconds) and was ended by the worker",
            limit.as_secs_f64()
        ),
    )
}

impl Runner {
    fn time_limit_exceeded(
        &self,
        request: &TaskRequest,
        label: &'static str,
        limit: Duration,
    ) -> Disposition {
        error!(
            "task {} {label} exceeded RSTUF_TASK_TIME_LIMIT ({}s): recording FAILURE, \
             acknowledging it and abandoning its thread",
            request.id.as_str(),
            limit.as_secs_f64()
        );
        metrics::task_finished(label, Outcome::Failure, limit);
        let failure = time_limit_failure(limit);
        settle(self.store_final(request, |b| b.failure(request, &failure)))
    }

    /// A message we will not run: record why under its id, then drop it.
    fn refuse(
        &self,
        request: &TaskRequest,
        headers: &TaskHeaders,
        e: celery::Error,
        body: &[u8],
    ) -> Disposition {
        warn!(
            "rejecting task {} ({}): {e}; body starts {}",
            request.id.as_str(),
            headers.task.as_str(),
            preview(body)
        );
        let failure = match &e {
            celery::Error::NotRegistered { name } => Failure::not_registered(name),
            celery::Error::Argument { .. } => Failure::new("builtins", "TypeError", e.to_string()),
            _ => Failure::new("builtins", "ValueError", e.to_string()),
        };
        metrics::task_finished("unreadable", Outcome::Failure, Duration::ZERO);
        match self.store_final(request, |b| b.failure(request, &failure)) {
            Ok(()) => Disposition::Reject,
            Err(()) => Disposition::Requeue,
        }
    }

    /// Every state write goes through `fence`: once the task is abandoned
    /// its thread writes nothing, and what it answers is dropped.
    fn run(&self, request: &TaskRequest, task: Task, fence: &Fence) -> Disposition {
        let id = request.id.as_str();
        let started = std::time::Instant::now();
        let states = fence.while_running(|| {
            if let Task::Repository { .. } = task {
                self.backend.pre_run(&request.id)?;
            }
            self.backend
                .started(request, std::process::id(), &self.node_name)
        });
        match states {
            None => return Disposition::Ack,
            Some(Ok(Stored::SuccessKept)) => {
                info!("task {id} already succeeded (redelivered); not running it again");
                return Disposition::Ack;
            }
            Some(Ok(Stored::Written)) => {}
            Some(Err(e)) => return self.backend_down(id, e),
        }
        match task {
            Task::Repository { action, payload } => {
                info!("task {id} {action} started");
                let report = |progress: &Progress| {
                    if let Some(Err(e)) =
                        fence.while_running(|| self.backend.running(request, progress))
                    {
                        warn!("task {id}: cannot record progress: {e}");
                    }
                };
                let req = tasks::Request {
                    id: &request.id,
                    report: &report,
                };
                let outcome = tasks::run(&self.ctx, &req, &action, payload);
                let label = action_label(&action);
                self.finish(request, fence, label, outcome, started, |result| {
                    if result.error.is_none() {
                        (Outcome::Success, format!("succeeded: {}", result.message))
                    } else {
                        (Outcome::Errored, format!("errored: {}", result.message))
                    }
                })
            }
            // A Python beat's message; its result is a bare list of roles.
            Task::BumpOnlineRoles { expired } => {
                info!("task {id} bump_online_roles started");
                let outcome = tasks::bump_online_roles(&self.ctx, self.bump_ttl, expired);
                self.finish(request, fence, BUMP_LABEL, outcome, started, |roles| {
                    (Outcome::Success, format!("bumped {roles:?}"))
                })
            }
        }
    }

    /// Logs one line for the finished task and stores its final state,
    /// unless the watchdog ended the task first.
    fn finish<R: serde::Serialize>(
        &self,
        request: &TaskRequest,
        fence: &Fence,
        label: &'static str,
        outcome: Result<R, Failure>,
        started: std::time::Instant,
        describe: impl Fn(&R) -> (Outcome, String),
    ) -> Disposition {
        let id = request.id.as_str();
        if !fence.finish() {
            return Disposition::Ack;
        }
        let took = started.elapsed();
        let elapsed = took.as_secs_f64();
        let stored = match &outcome {
            Ok(result) => {
                let (verdict, text) = describe(result);
                metrics::task_finished(label, verdict, took);
                info!("task {id} {label} in {elapsed:.3}s {text}");
                self.store_final(request, |b| b.success(request, result))
            }
            Err(failure) => {
                metrics::task_finished(label, Outcome::Failure, took);
                info!(
                    "task {id} {label} failed in {elapsed:.3}s: {}: {}",
                    failure.exc_type,
                    failure.exc_message.join("; ")
                );
                self.store_final(request, |b| b.failure(request, failure))
            }
        };
        settle(stored)
    }

    /// Stores a final state, retrying while Redis is unreachable.
    fn store_final(
        &self,
        request: &TaskRequest,
        write: impl Fn(&ResultBackend) -> Result<Stored, backend::Error>,
    ) -> Result<(), ()> {
        for attempt in 1..=RESULT_RETRIES {
            match write(&self.backend) {
                Ok(_) => return Ok(()),
                Err(e) if attempt < RESULT_RETRIES => {
                    warn!(
                        "task {}: cannot store result (try {attempt}): {e}",
                        request.id.as_str()
                    );
                    thread::sleep(RESULT_RETRY_PAUSE * attempt);
                }
                Err(e) => {
                    error!(
                        "task {}: result not stored, message requeued: {e}",
                        request.id.as_str()
                    );
                }
            }
        }
        Err(())
    }

    /// The result backend is unreachable before the task ran: give the
    /// message back and pause this thread so it does not spin on it.
    fn backend_down(&self, id: &str, e: backend::Error) -> Disposition {
        error!("task {id} not started, result backend unavailable: {e}; requeued");
        thread::sleep(RESULT_RETRY_PAUSE * 4);
        Disposition::Requeue
    }
}

/// A task whose final state is stored is done; one whose state could not be
/// stored goes back to the queue.
fn settle(stored: Result<(), ()>) -> Disposition {
    match stored {
        Ok(()) => Disposition::Ack,
        Err(()) => Disposition::Requeue,
    }
}

const BUMP_LABEL: &str = "bump_online_roles";

/// The action as a metrics label: names a message made up share one label,
/// so a flood of bad messages cannot grow the label set.
fn action_label(action: &str) -> &'static str {
    action.parse::<Action>().map_or("unknown", Action::as_str)
}

fn task_label(task: &Task) -> &'static str {
    match task {
        Task::Repository { action, .. } => action_label(action),
        Task::BumpOnlineRoles { .. } => BUMP_LABEL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_limit_failure_names_the_setting_and_its_value() {
        let failure = time_limit_failure(Duration::from_millis(2500));
        assert_eq!(
            (failure.exc_module.as_str(), failure.exc_type.as_str()),
            ("billiard.exceptions", "TimeLimitExceeded")
        );
        assert_eq!(
            failure.exc_message,
            ["RSTUF: task exceeded `RSTUF_TASK_TIME_LIMIT` (2.5 seconds) and was ended by the worker"]
        );
    }
}
