//! The one publisher of the process: a dedicated thread that runs
//! publication rounds ([`super::round`]) for every task that changes online
//! metadata.
//!
//! Tasks do not publish themselves. They record their change (database
//! rows) and submit a [`Plan`]; plans submitted while a round runs are
//! merged into the next one (group commit), so fifty concurrent additions
//! cost a couple of rounds, each touching every changed role once, with one
//! snapshot and one timestamp. Because it is not a pool thread, the rounds
//! go on while every pool thread waits for them, even with `--threads 1`.
use std::collections::{BTreeSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use log::{info, warn};

use super::context::{Context, Result};
use super::{round, Error};
use crate::backend::Failure;
use crate::lock;

/// What a round must re-sign and publish. Merging is a union: a merged
/// round does everything any of its plans asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Every role with unpublished artifact rows.
    pub unpublished: bool,
    /// These delegated roles, changed or not (unknown names are ignored).
    pub roles: BTreeSet<String>,
    /// Every active delegated role.
    pub all_roles: bool,
    /// Top-level targets.
    pub targets: bool,
    /// A new snapshot even when no role changed.
    pub snapshot: bool,
    /// A new timestamp even when snapshot did not change.
    pub timestamp: bool,
    /// The bump: every role (delegated, targets, snapshot, timestamp) that
    /// expires within this window.
    pub expiring_within: Option<Duration>,
}

impl Plan {
    /// Publish whatever is waiting.
    pub fn unpublished() -> Plan {
        Plan {
            unpublished: true,
            ..Plan::default()
        }
    }

    fn merge(&mut self, other: Plan) {
        self.unpublished |= other.unpublished;
        self.roles.extend(other.roles);
        self.all_roles |= other.all_roles;
        self.targets |= other.targets;
        self.snapshot |= other.snapshot;
        self.timestamp |= other.timestamp;
        self.expiring_within = self.expiring_within.max(other.expiring_within);
    }
}

/// What a round did, for the tasks that waited on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Roles that had unpublished artifact rows, alphabetical (what
    /// publish_artifacts reports).
    pub unpublished_roles: Vec<String>,
    /// What the bump found expiring and re-signed: delegated roles by name,
    /// then `targets`, `snapshot`, `timestamp` when they themselves expired.
    pub expired: Vec<String>,
    /// Every delegated role re-signed, by name.
    pub resigned: Vec<String>,
}

/// Why a round failed, as each waiting task reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundError {
    pub failure: Failure,
    /// LOCK_TARGETS expired while the round held it.
    pub lock_lost: bool,
}

pub type Outcome = std::result::Result<Arc<Report>, Arc<RoundError>>;

/// Identifies a submitted plan; answered by the first round that covers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

/// Rounds remembered for waiters that have not looked yet; a waiter wakes
/// as soon as its round ends, so this only needs to outlast a burst.
const REMEMBERED_ROUNDS: usize = 1024;
/// Runs of a round after a database error that a retry can cure.
const TRANSIENT_RETRIES: u32 = 3;
/// Runs of a round after storage refused a stale write. Each refusal means
/// another worker published meanwhile, so redoing at once is progress; the
/// bound only keeps a repository that keeps moving from holding the
/// waiters forever.
const SUPERSEDED_REDOS: u32 = 20;

#[derive(Default)]
struct State {
    pending: Option<Plan>,
    last_ticket: u64,
    /// (last ticket a round covered, its outcome), oldest first.
    outcomes: VecDeque<(u64, Outcome)>,
    rounds: u64,
}

pub struct Publisher {
    state: Mutex<State>,
    work: Condvar,
    done: Condvar,
}

static PUBLISHER: OnceLock<Publisher> = OnceLock::new();

/// Starts the publisher thread of this process (once; later calls do
/// nothing).
pub fn start(ctx: Arc<Context>) -> std::io::Result<()> {
    if PUBLISHER.set(Publisher::new()).is_err() {
        return Ok(());
    }
    let publisher = publisher_or_none().ok_or_else(|| std::io::Error::other("publisher lost"))?;
    thread::Builder::new()
        .name("publisher".into())
        .spawn(move || publisher.serve(&ctx))?;
    Ok(())
}

fn publisher_or_none() -> Option<&'static Publisher> {
    PUBLISHER.get()
}

/// The running publisher.
pub fn publisher() -> Result<&'static Publisher> {
    publisher_or_none().ok_or_else(|| {
        Error::Repository(
            "the publisher thread is not running; start it with tasks::start_publisher".into(),
        )
    })
}

impl Publisher {
    fn new() -> Publisher {
        Publisher {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            done: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Rounds run outside the lock; a panic cannot leave it half-updated.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `plan` for the next round.
    pub fn submit(&self, plan: Plan) -> Ticket {
        let mut state = self.state();
        state.last_ticket += 1;
        match &mut state.pending {
            Some(pending) => pending.merge(plan),
            None => state.pending = Some(plan),
        }
        self.work.notify_one();
        Ticket(state.last_ticket)
    }

    /// Submits `plan` and waits for the round that carries it out.
    pub fn run(&self, plan: Plan) -> Outcome {
        let ticket = self.submit(plan);
        loop {
            if let Some(outcome) = self.wait(ticket, Duration::from_secs(3600)) {
                return outcome;
            }
        }
    }

    /// The outcome of the round that covered `ticket`, waiting at most
    /// `limit` for it.
    pub fn wait(&self, ticket: Ticket, limit: Duration) -> Option<Outcome> {
        let deadline = Instant::now() + limit;
        let mut state = self.state();
        loop {
            if let Some((_, outcome)) = state.outcomes.iter().find(|(last, _)| *last >= ticket.0) {
                return Some(outcome.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            state = self
                .done
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// How many rounds have ended.
    pub fn rounds(&self) -> u64 {
        self.state().rounds
    }

    /// Waits until more than `seen` rounds have ended, or `limit` passed.
    pub fn wait_for_round(&self, seen: u64, limit: Duration) {
        let state = self.state();
        let _ = self
            .done
            .wait_timeout_while(state, limit, |s| s.rounds <= seen)
            .unwrap_or_else(|p| p.into_inner());
    }

    fn serve(&self, ctx: &Context) {
        info!("publisher: ready");
        let mut covered = 0;
        loop {
            let (plan, covers) = {
                let mut state = self.state();
                loop {
                    if let Some(plan) = state.pending.take() {
                        break (plan, state.last_ticket);
                    }
                    state = self.work.wait(state).unwrap_or_else(|p| p.into_inner());
                }
            };
            let started = Instant::now();
            let outcome = run_round(ctx, &plan);
            crate::metrics::publish_round(covers - covered, started.elapsed());
            covered = covers;
            let mut state = self.state();
            state.outcomes.push_back((covers, outcome));
            while state.outcomes.len() > REMEMBERED_ROUNDS {
                state.outcomes.pop_front();
            }
            state.rounds += 1;
            self.done.notify_all();
        }
    }
}

/// One round with retries of transient database errors, redone at once
/// when storage refused it as stale; a panic becomes a failure for the
/// waiters instead of leaving them waiting forever.
fn run_round(ctx: &Context, plan: &Plan) -> Outcome {
    let mut attempt = 0;
    let mut redone = 0;
    loop {
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| round::run(ctx, plan)))
            .unwrap_or_else(|panic| Err(Error::Repository(panic_text(&*panic))));
        match result {
            Ok(report) => {
                log::debug!("publisher: round done in {:?}", started.elapsed());
                return Ok(Arc::new(report));
            }
            Err(e) if e.is_superseded() && redone < SUPERSEDED_REDOS => {
                redone += 1;
                warn!(
                    "publisher: {e}; redone from the stored state ({redone} of {SUPERSEDED_REDOS})"
                );
            }
            Err(e) if e.is_transient() && attempt < TRANSIENT_RETRIES => {
                attempt += 1;
                warn!("publisher: {e}; retry {attempt} of {TRANSIENT_RETRIES}");
                thread::sleep(Duration::from_secs(1 << attempt));
            }
            Err(e) => {
                warn!("publisher: round failed: {e}");
                let lock_lost = matches!(e, Error::Lock(lock::Error::Lost { .. }));
                return Err(Arc::new(RoundError {
                    failure: e.into_failure(ctx.lock_timeout.as_secs()),
                    lock_lost,
                }));
            }
        }
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("the publication round crashed: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_plans_ask_for_everything_either_asked_for() {
        let mut plan = Plan::unpublished();
        plan.merge(Plan {
            roles: BTreeSet::from(["bins-3".to_owned()]),
            timestamp: true,
            expiring_within: Some(Duration::from_secs(3600)),
            ..Plan::default()
        });
        plan.merge(Plan {
            roles: BTreeSet::from(["bins-1".to_owned()]),
            expiring_within: Some(Duration::from_secs(60)),
            ..Plan::default()
        });
        assert_eq!(
            plan,
            Plan {
                unpublished: true,
                roles: BTreeSet::from(["bins-1".to_owned(), "bins-3".to_owned()]),
                timestamp: true,
                expiring_within: Some(Duration::from_secs(3600)),
                ..Plan::default()
            }
        );
    }

    #[test]
    fn waiters_get_the_first_round_covering_their_ticket() {
        let publisher = Publisher::new();
        let first = publisher.submit(Plan::unpublished());
        let second = publisher.submit(Plan::unpublished());
        assert_eq!((first, second), (Ticket(1), Ticket(2)));
        assert!(publisher.wait(first, Duration::from_millis(10)).is_none());
        let report = |role: &str| Report {
            unpublished_roles: vec![role.to_owned()],
            ..Report::default()
        };
        {
            let mut state = publisher.state();
            state
                .outcomes
                .push_back((1, Ok(Arc::new(report("bins-1")))));
            state
                .outcomes
                .push_back((2, Ok(Arc::new(report("bins-2")))));
        }
        let seen = |t| publisher.wait(t, Duration::ZERO).unwrap().unwrap();
        assert_eq!(seen(first).unpublished_roles, ["bins-1"]);
        assert_eq!(seen(second).unpublished_roles, ["bins-2"]);
        assert!(publisher.wait(Ticket(3), Duration::ZERO).is_none());
    }
}
