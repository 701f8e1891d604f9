//! One delivery, start to finish: decode the Celery message, record the
//! states the API polls (PRE_RUN, STARTED), run the action, record SUCCESS or
//! FAILURE, and tell the broker what to do with the message.
//!
//! The message is acknowledged only after its result is stored (Celery's
//! acks-late), so a worker that dies mid-task leaves it to be redelivered.
//! A result that cannot be stored (Redis down) is retried for a while; if
//! Redis stays away the message is requeued rather than acked, because an
//! acked task with no result would leave the API waiting forever.
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use log::{error, info, warn};

use crate::backend::{self, Failure, Progress, ResultBackend, Stored, TaskRequest};
use crate::broker::delivery::preview;
use crate::broker::{Delivery, Disposition};
use crate::celery::{self, Task, TaskHeaders, TaskMessage};
use crate::metrics::{self, Outcome};
use crate::tasks::{self, Action};

/// How long a result write is retried before the message goes back.
const RESULT_RETRIES: u32 = 8;
const RESULT_RETRY_PAUSE: Duration = Duration::from_millis(500);

pub struct Worker {
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
    ) -> Worker {
        Worker {
            ctx,
            bump_ttl,
            backend,
            node_name: format!("rstuf@{worker_id}"),
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
            Ok(task) => self.run(&request, task),
            Err(e) => self.refuse(&request, &headers, e, &raw.body),
        }
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

    fn run(&self, request: &TaskRequest, task: Task) -> Disposition {
        let id = request.id.as_str();
        let started = std::time::Instant::now();
        if let Task::Repository { .. } = task {
            if let Err(e) = self.backend.pre_run(&request.id) {
                return self.backend_down(id, e);
            }
        }
        match self
            .backend
            .started(request, std::process::id(), &self.node_name)
        {
            Ok(Stored::SuccessKept) => {
                info!("task {id} already succeeded (redelivered); not running it again");
                return Disposition::Ack;
            }
            Ok(Stored::Written) => {}
            Err(e) => return self.backend_down(id, e),
        }
        match task {
            Task::Repository { action, payload } => {
                info!("task {id} {action} started");
                let report = |progress: &Progress| {
                    if let Err(e) = self.backend.running(request, progress) {
                        warn!("task {id}: cannot record progress: {e}");
                    }
                };
                let req = tasks::Request {
                    id: &request.id,
                    report: &report,
                };
                let outcome = tasks::run(&self.ctx, &req, &action, payload);
                let label = action_label(&action);
                self.finish(request, label, outcome, started, |result| {
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
                self.finish(request, "bump_online_roles", outcome, started, |roles| {
                    (Outcome::Success, format!("bumped {roles:?}"))
                })
            }
        }
    }

    /// Logs one line for the finished task and stores its final state.
    fn finish<R: serde::Serialize>(
        &self,
        request: &TaskRequest,
        label: &'static str,
        outcome: Result<R, Failure>,
        started: std::time::Instant,
        describe: impl Fn(&R) -> (Outcome, String),
    ) -> Disposition {
        let id = request.id.as_str();
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
        match stored {
            Ok(()) => Disposition::Ack,
            Err(()) => Disposition::Requeue,
        }
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

/// The action as a metrics label: names a message made up share one label,
/// so a flood of bad messages cannot grow the label set.
fn action_label(action: &str) -> &'static str {
    action.parse::<Action>().map_or("unknown", Action::as_str)
}
