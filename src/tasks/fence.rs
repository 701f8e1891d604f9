//! What keeps a task that passed its time limit from acting afterwards.
//!
//! A thread blocked in I/O cannot be stopped in Rust, so the worker's
//! watchdog does what Celery's hard time limit does from the outside (record
//! FAILURE, ack the message) and then abandons the thread: it may go on
//! waiting, but once it wakes it must not publish metadata, write task
//! states or answer the broker. Each task runs on a thread of its own with
//! its [`Fence`], which the thread consults before each of those.
//!
//! The fence is also kept per thread ([`Fence::enter`], [`check`]) because
//! the storage commit, the one point where an abandoned thread could still
//! change what clients see, sits deep below the actions' entry points. A
//! commit already under way when the limit passes cannot be recalled; the
//! LOCK_TARGETS re-check right before it bounds how stale it can be.
use std::cell::RefCell;
use std::sync::{Arc, Mutex, MutexGuard};

/// Where a task is in its life, as far as the watchdog cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// The task is storing its final state; the watchdog waits for it.
    Finishing,
    /// The watchdog ended the task; its thread's outcome is discarded.
    Abandoned,
}

/// Shared by a task's thread and the watchdog that may abandon it.
#[derive(Debug, Clone)]
pub struct Fence(Arc<Mutex<Phase>>);

impl Default for Fence {
    fn default() -> Fence {
        Fence(Arc::new(Mutex::new(Phase::Running)))
    }
}

impl Fence {
    fn phase(&self) -> MutexGuard<'_, Phase> {
        // Every critical section leaves a valid phase even if it panics.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `write` unless the task was abandoned, holding the fence so the
    /// watchdog cannot abandon the task halfway through it (a progress
    /// write landing after the watchdog's FAILURE would hide it). Only for
    /// writes with a timeout of their own: the watchdog waits for them.
    pub fn while_running<T>(&self, write: impl FnOnce() -> T) -> Option<T> {
        let phase = self.phase();
        (*phase == Phase::Running).then(write)
    }

    /// The task claims its end before storing its final state; false when
    /// the watchdog has already ended it.
    pub fn finish(&self) -> bool {
        self.move_from_running(Phase::Finishing)
    }

    /// The watchdog ends the task; false when the task is already storing
    /// its own final state, which then wins.
    pub fn abandon(&self) -> bool {
        self.move_from_running(Phase::Abandoned)
    }

    pub fn is_abandoned(&self) -> bool {
        *self.phase() == Phase::Abandoned
    }

    fn move_from_running(&self, to: Phase) -> bool {
        let mut phase = self.phase();
        let moved = *phase == Phase::Running;
        if moved {
            *phase = to;
        }
        moved
    }

    /// Makes this the fence of the calling thread (a task's own thread).
    pub fn enter(&self) {
        CURRENT.with(|current| *current.borrow_mut() = Some(self.clone()));
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Fence>> = const { RefCell::new(None) };
}

/// The calling thread's task was ended by its time limit: it must stop
/// before changing anything. Threads without a fence (the publisher) pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abandoned;

/// Errs when the calling thread runs a task the watchdog has abandoned.
pub fn check() -> Result<(), Abandoned> {
    let abandoned =
        CURRENT.with(|current| current.borrow().as_ref().is_some_and(Fence::is_abandoned));
    match abandoned {
        true => Err(Abandoned),
        false => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_of_task_and_watchdog_to_claim_the_end_wins() {
        let finished = Fence::default();
        assert!(finished.finish());
        assert!(!finished.abandon(), "a finishing task keeps its result");
        assert!(!finished.is_abandoned());

        let abandoned = Fence::default();
        assert!(abandoned.abandon());
        assert!(!abandoned.finish(), "an abandoned task stores nothing");
        assert!(abandoned.is_abandoned());
    }

    #[test]
    fn an_abandoned_task_writes_nothing_more() {
        let fence = Fence::default();
        assert_eq!(fence.while_running(|| 1), Some(1));
        fence.abandon();
        assert_eq!(fence.while_running(|| 2), None);
    }

    #[test]
    fn only_the_thread_of_an_abandoned_task_is_stopped() {
        assert_eq!(check(), Ok(()), "a thread without a task passes");
        let fence = Fence::default();
        let task = fence.clone();
        let checks = std::thread::spawn(move || {
            task.enter();
            let before = check();
            task.abandon();
            (before, check())
        })
        .join()
        .unwrap();
        assert_eq!(checks, (Ok(()), Err(Abandoned)));
        assert_eq!(check(), Ok(()), "the fence is the other thread's");
    }
}
