//! The periodic bump of online roles: every five wall-clock minutes (like
//! upstream's `crontab(minute="*/5")` beat), exactly one worker of the whole
//! deployment runs it. Each worker runs this loop; the slot is claimed in
//! Redis ([`SlotClaimer`]), so adding workers adds no duplicate bumps and
//! losing the worker that had been winning loses no bump.
use std::thread;
use std::time::{Duration, SystemTime};

use log::{info, warn};

use crate::broker::Shutdown;
use crate::lock::schedule::{EveryMinutes, Slot, SlotClaimer};
use crate::lock::Error;

/// What the loop needs from the outside world, so tests can run it on a
/// simulated clock.
pub trait Clock {
    fn now(&self) -> SystemTime;
    /// Sleeps up to `limit`; false when the worker is shutting down.
    fn sleep(&self, limit: Duration) -> bool;
}

/// The real clock, waking at least every second to notice a shutdown.
pub struct WallClock(pub Shutdown);

impl Clock for WallClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, limit: Duration) -> bool {
        if self.0.is_requested() {
            return false;
        }
        thread::sleep(limit.min(Duration::from_secs(1)));
        !self.0.is_requested()
    }
}

/// Runs `job` in every slot this worker wins, until the clock says stop.
pub fn run(
    every: &EveryMinutes,
    clock: &dyn Clock,
    claim: &mut dyn FnMut(Slot) -> Result<bool, Error>,
    job: &mut dyn FnMut(),
) {
    let mut last: Option<Slot> = None;
    loop {
        let now = clock.now();
        let slot = match every.slot_at(now) {
            Ok(slot) => slot,
            Err(e) => {
                warn!("periodic bump: {e}");
                if !clock.sleep(Duration::from_secs(60)) {
                    return;
                }
                continue;
            }
        };
        if last != Some(slot) {
            last = Some(slot);
            match claim(slot) {
                Ok(true) => job(),
                Ok(false) => {}
                Err(e) => warn!("periodic bump: cannot claim the slot: {e}"),
            }
        }
        let wait = every
            .next_slot(now)
            .ok()
            .and_then(|next| next.start().duration_since(now).ok())
            .unwrap_or(Duration::from_secs(1));
        if !clock.sleep(wait.max(Duration::from_millis(10))) {
            return;
        }
    }
}

/// Starts the loop on its own thread (not a pool thread: a bump must never
/// wait for, or block, the tasks).
pub fn spawn(
    mut claimer: SlotClaimer,
    shutdown: Shutdown,
    mut job: impl FnMut() + Send + 'static,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().name("beat".into()).spawn(move || {
        let every = match EveryMinutes::new(crate::lock::schedule::BUMP_EVERY_MINUTES) {
            Ok(every) => every,
            Err(e) => return warn!("periodic bump disabled: {e}"),
        };
        info!(
            "periodic bump: every {} minutes, one worker per slot",
            crate::lock::schedule::BUMP_EVERY_MINUTES
        );
        run(
            &every,
            &WallClock(shutdown),
            &mut |slot| claimer.claim(slot),
            &mut job,
        );
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeSet;

    /// A clock that jumps to the end of each sleep, and stops at `end`.
    struct Simulated {
        now: Cell<SystemTime>,
        end: SystemTime,
    }

    impl Clock for Simulated {
        fn now(&self) -> SystemTime {
            self.now.get()
        }
        fn sleep(&self, limit: Duration) -> bool {
            self.now.set(self.now.get() + limit);
            self.now.get() < self.end
        }
    }

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn one_job_per_slot_across_workers() {
        let every = EveryMinutes::new(5).unwrap();
        let claimed = RefCell::new(BTreeSet::new());
        let runs = Cell::new(0);
        // Two workers over the same simulated hour share one claim set.
        for _ in 0..2 {
            let clock = Simulated {
                now: Cell::new(at(1_800_000_030)),
                end: at(1_800_003_600),
            };
            run(
                &every,
                &clock,
                &mut |slot| Ok(claimed.borrow_mut().insert(format!("{slot:?}"))),
                &mut || runs.set(runs.get() + 1),
            );
        }
        // Started 30 s into a slot, then 11 more slot starts before the end
        // (the end itself is a slot start and is not reached).
        assert_eq!(runs.get(), 12);
        assert_eq!(claimed.borrow().len(), 12);
    }

    #[test]
    fn a_failed_claim_skips_the_slot_but_not_the_next() {
        let every = EveryMinutes::new(5).unwrap();
        let clock = Simulated {
            now: Cell::new(at(1_800_000_000)),
            end: at(1_800_000_600),
        };
        let calls = Cell::new(0);
        let runs = Cell::new(0);
        run(
            &every,
            &clock,
            &mut |_| {
                calls.set(calls.get() + 1);
                if calls.get() == 1 {
                    Err(Error::Random)
                } else {
                    Ok(true)
                }
            },
            &mut || runs.set(runs.get() + 1),
        );
        assert_eq!((calls.get(), runs.get()), (2, 1));
    }
}
