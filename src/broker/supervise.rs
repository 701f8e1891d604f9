//! What every transport's consumer pool shares: a fixed set of OS threads,
//! each running one session (a connection, from connect to close) after
//! another until a stop, and the call of the handler.
//!
//! Each thread owns its connection so that it reconnects on its own: a
//! thread busy with a long task when the broker goes away finishes it while
//! idle threads are already back. Between failed sessions a thread waits
//! (doubling, capped; reset once a session got as far as consuming). A
//! handler that panics has its message rejected, and a session that panics
//! elsewhere is started again, so one bad message never costs a thread.
use std::panic::{catch_unwind, AssertUnwindSafe};

use log::{error, info, warn};

use super::{BrokerConfig, Delivery, Disposition, Error, QueueName, Shutdown};

/// Why a session ended.
pub(crate) enum SessionEnd {
    /// A stop was requested and the session let go of its queues.
    Stopped,
    Lost {
        /// The session got as far as consuming, so the broker was fine for a while.
        consumed: bool,
        reason: String,
    },
}

pub(crate) fn lost(consumed: bool, reason: String) -> SessionEnd {
    SessionEnd::Lost { consumed, reason }
}

/// Runs `session(slot)` on `config.threads` threads until `shutdown` is
/// requested and every session has stopped. Errs only when there is nothing
/// to consume or a thread cannot be started (the others are then stopped).
pub(crate) fn run_sessions<S>(
    config: &BrokerConfig,
    shutdown: &Shutdown,
    session: S,
) -> Result<(), Error>
where
    S: Fn(usize) -> SessionEnd + Sync,
{
    if config.queues.is_empty() {
        return Err(Error::NoQueues);
    }
    let session = &session;
    std::thread::scope(|scope| {
        for slot in 0..config.threads.get() {
            let spawned = std::thread::Builder::new()
                .name(format!("broker-{slot}"))
                .spawn_scoped(scope, move || supervise(slot, config, shutdown, session));
            if let Err(e) = spawned {
                shutdown.request();
                return Err(Error::Thread(e));
            }
        }
        Ok(())
    })
}

/// Runs sessions one after another until a stop; restarts after a panic.
fn supervise<S>(slot: usize, config: &BrokerConfig, shutdown: &Shutdown, session: &S)
where
    S: Fn(usize) -> SessionEnd + Sync,
{
    let mut failures = 0;
    while !shutdown.is_requested() {
        let end = catch_unwind(AssertUnwindSafe(|| session(slot))).unwrap_or_else(|panic| {
            error!(
                "broker thread {slot}: crashed ({}); starting it again",
                panic_text(&*panic)
            );
            lost(false, "recovering from a crash".into())
        });
        let (consumed, reason) = match end {
            SessionEnd::Stopped => break,
            SessionEnd::Lost { consumed, reason } => (consumed, reason),
        };
        if shutdown.is_requested() {
            warn!("broker thread {slot}: {reason}");
            break;
        }
        if consumed {
            failures = 0;
        }
        let wait = config.reconnect.delay(failures);
        failures = failures.saturating_add(1);
        crate::metrics::broker_reconnect();
        warn!(
            "broker thread {slot}: {reason}; reconnecting to {} in {wait:?} (attempt {failures})",
            config.url
        );
        shutdown.sleep(wait);
    }
    info!(
        "broker thread {slot} ({}): stopped",
        queue_list(&config.queues)
    );
}

/// Runs the handler on one delivery; a panic is logged and rejects the message.
pub(crate) fn dispatch<H>(delivery: Delivery, handler: &H) -> Disposition
where
    H: Fn(Delivery) -> Disposition + Sync,
{
    let _in_use = crate::metrics::InUse::start();
    let queue = delivery.queue.clone();
    let tag = delivery.delivery_tag.clone();
    catch_unwind(AssertUnwindSafe(|| handler(delivery))).unwrap_or_else(|panic| {
        error!(
            "queue {queue}: the handler panicked on delivery {tag} ({}); rejecting the message",
            panic_text(&*panic)
        );
        Disposition::Reject
    })
}

/// `a, b` for log lines.
pub(crate) fn queue_list(queues: &[QueueName]) -> String {
    queues
        .iter()
        .map(QueueName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}
