//! The periodic bump, without celery beat: every worker keeps the same
//! wall-clock schedule, and for each slot exactly one of them claims it in
//! Redis and runs the job.
//!
//! Upstream's beat entry is `crontab(minute="*/5")`: minutes 0, 5, ..., 55 of
//! every hour (UTC). Because 5 divides 60, those are exactly the Unix times
//! that are multiples of 300 s, so a slot is `floor(unix_time / period)`.
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Error, Holder, LockClient, LockKey, ACQUIRE_SCRIPT};
use crate::redis_link::random_token;

/// Key prefix of the per-slot claims of the bump-online-roles job.
pub const BUMP_ONLINE_ROLES_CLAIM: &str = "RSTUF_BEAT_BUMP_ONLINE_ROLES";
/// Upstream's bump period.
pub const BUMP_EVERY_MINUTES: u32 = 5;
/// How long a claim outlives its slot start: long enough that a worker
/// whose clock lags a little still finds the claim, short enough to leave
/// no litter.
pub const DEFAULT_CLAIM_TTL: Duration = Duration::from_secs(600);

/// A crontab `*/n` minute schedule, `n` dividing 60.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EveryMinutes(u32);

/// One firing time of a schedule, identified by its Unix start second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot(u64);

impl EveryMinutes {
    pub fn new(minutes: u32) -> Result<Self, Error> {
        // `*/7` fires at :56 and again at :00, which is no fixed period.
        if minutes == 0 || 60 % minutes != 0 {
            return Err(Error::Schedule { minutes });
        }
        Ok(EveryMinutes(minutes))
    }

    /// The slot `now` falls in (the latest firing time at or before it).
    pub fn slot_at(&self, now: SystemTime) -> Result<Slot, Error> {
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::Clock)?
            .as_secs();
        Ok(Slot(secs - secs % self.period_secs()))
    }

    /// The first firing time strictly after `now`.
    pub fn next_slot(&self, now: SystemTime) -> Result<Slot, Error> {
        Ok(Slot(self.slot_at(now)?.0 + self.period_secs()))
    }

    fn period_secs(&self) -> u64 {
        u64::from(self.0) * 60
    }
}

impl Slot {
    pub fn start(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0)
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Claims slots for one worker: `SET <prefix>:<slot> <identity> NX EX ttl`.
pub struct SlotClaimer {
    holder: Holder,
    prefix: LockKey,
    ttl: Duration,
}

impl SlotClaimer {
    /// `worker` names the claimer in Redis for operators; a random suffix
    /// keeps two claimers with the same name apart.
    pub fn new(
        client: &LockClient,
        prefix: LockKey,
        worker: &str,
        ttl: Duration,
    ) -> Result<Self, Error> {
        let identity = format!("{worker}/{}", random_token().map_err(|_| Error::Random)?);
        Ok(SlotClaimer {
            holder: client.holder(&prefix, identity)?,
            prefix,
            ttl,
        })
    }

    /// True for exactly one claimer per slot (asking again gives the same
    /// answer while the claim lives).
    pub fn claim(&mut self, slot: Slot) -> Result<bool, Error> {
        self.holder.key = LockKey::new(format!("{}:{slot}", self.prefix));
        self.holder
            .run("claiming a schedule slot", ACQUIRE_SCRIPT, self.ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::tests::client;
    use crate::testutil;
    use std::collections::BTreeSet;
    use std::thread;

    fn at(unix: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix)
    }

    /// 2026-01-01T00:00:00Z
    const NEW_YEAR: u64 = 1_767_225_600;

    #[test]
    fn slots_start_at_crontab_minutes() {
        let every5 = EveryMinutes::new(BUMP_EVERY_MINUTES).unwrap();
        assert_eq!(every5.slot_at(at(NEW_YEAR + 299)).unwrap(), Slot(NEW_YEAR));
        assert_eq!(
            every5.slot_at(at(NEW_YEAR + 300)).unwrap(),
            Slot(NEW_YEAR + 300)
        );
        assert_eq!(
            every5.next_slot(at(NEW_YEAR + 300)).unwrap(),
            Slot(NEW_YEAR + 600)
        );
        let just_before = at(NEW_YEAR + 299) + Duration::from_millis(999);
        assert_eq!(
            every5.next_slot(just_before).unwrap().start(),
            at(NEW_YEAR + 300)
        );
        // One day of firings: 288, at minutes 0, 5, ..., 55 of every hour.
        let mut minutes = BTreeSet::new();
        let mut slot = every5.slot_at(at(NEW_YEAR)).unwrap();
        let mut count = 0;
        while slot.0 < NEW_YEAR + 86_400 {
            minutes.insert(slot.0 % 3600 / 60);
            count += 1;
            slot = every5.next_slot(slot.start()).unwrap();
        }
        assert_eq!(count, 288);
        assert_eq!(minutes, (0..60).step_by(5).collect());
    }

    #[test]
    fn only_periods_that_divide_the_hour_are_accepted() {
        assert!(EveryMinutes::new(60).is_ok());
        for minutes in [0, 7, 45, 90] {
            assert!(
                matches!(EveryMinutes::new(minutes), Err(Error::Schedule { .. })),
                "{minutes}"
            );
        }
        let before_1970 = UNIX_EPOCH - Duration::from_secs(1);
        assert!(matches!(
            EveryMinutes::new(5).unwrap().slot_at(before_1970),
            Err(Error::Clock)
        ));
    }

    fn claimer(prefix: &LockKey, worker: &str) -> SlotClaimer {
        SlotClaimer::new(&client(), prefix.clone(), worker, DEFAULT_CLAIM_TTL).unwrap()
    }

    #[test]
    fn two_claimers_of_one_slot_one_wins() {
        let prefix = LockKey::new(testutil::unique_name("rstuf-test-claim-"));
        let (mut a, mut b) = (claimer(&prefix, "rstuf@a"), claimer(&prefix, "rstuf@a"));
        let slot = Slot(NEW_YEAR);
        assert!(a.claim(slot).unwrap());
        assert!(!b.claim(slot).unwrap());
        assert!(a.claim(slot).unwrap(), "asking again keeps the answer");
        assert!(
            b.claim(Slot(NEW_YEAR + 300)).unwrap(),
            "the next slot is free again"
        );
        assert!(!a.claim(Slot(NEW_YEAR + 300)).unwrap());
    }

    #[test]
    fn of_many_racing_threads_exactly_one_wins() {
        let prefix = LockKey::new(testutil::unique_name("rstuf-test-claim-"));
        let racers: Vec<_> = (0..8)
            .map(|i| {
                let prefix = prefix.clone();
                thread::spawn(move || claimer(&prefix, &format!("rstuf@{i}")).claim(Slot(NEW_YEAR)))
            })
            .collect();
        let wins = racers
            .into_iter()
            .map(|r| r.join().unwrap().unwrap())
            .filter(|won| *won)
            .count();
        assert_eq!(wins, 1);
    }
}
