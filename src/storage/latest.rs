//! Finding the newest version of a role without listing every file.
//!
//! Other workers (on other hosts too) write new versions at any time, so a
//! remembered version is only a lower bound: it is known to exist, and the
//! answer is found by probing for files above it. RSTUF writes the versions
//! of a role one after another and never deletes any, so the versions that
//! exist are `1..=latest` without gaps; "exists" is therefore monotone and
//! the boundary can be searched for:
//!
//! - probe `known+1`, `known+2`, `known+4`, ... until one is missing,
//! - then binary-search between the last hit and that miss.
//!
//! When the lower bound is current (the usual case) that is one probe; when
//! `n` versions were written behind our back it is about `2·log2(n)` probes,
//! where probing one by one would cost `n`.
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::Result;
use crate::tuf::{RoleName, Version};

/// Newest version `>= known` for which `exists` holds, None when `known` is
/// None and version 1 does not exist.
pub(crate) fn probe_latest(
    known: Option<Version>,
    mut exists: impl FnMut(Version) -> Result<bool>,
) -> Result<Option<Version>> {
    let base = known.map_or(0, |v| v.0);
    let mut hit = base;
    let mut miss = u64::MAX;
    let mut step = 1u64;
    while let Some(candidate) = base.checked_add(step) {
        if !exists(Version(candidate))? {
            miss = candidate;
            break;
        }
        hit = candidate;
        step = step.saturating_mul(2);
    }
    while miss - hit > 1 {
        let mid = hit + (miss - hit) / 2;
        if exists(Version(mid))? {
            hit = mid;
        } else {
            miss = mid;
        }
    }
    Ok((hit > 0).then_some(Version(hit)))
}

/// Per-process lower bounds of the latest version of each role.
#[derive(Debug, Default)]
pub(crate) struct LatestCache {
    known: Mutex<HashMap<RoleName, Version>>,
}

impl LatestCache {
    /// Remember that `version` of `role` exists.
    pub(crate) fn record(&self, role: &RoleName, version: Version) {
        let mut known = self.lock();
        let entry = known.entry(role.clone()).or_insert(version);
        *entry = (*entry).max(version);
    }

    /// Latest version of `role`, probing upward from what is known. The lock
    /// is not held while probing so slow I/O does not serialise other roles.
    pub(crate) fn latest(
        &self,
        role: &RoleName,
        exists: impl FnMut(Version) -> Result<bool>,
    ) -> Result<Option<Version>> {
        let known = self.lock().get(role).copied();
        let latest = probe_latest(known, exists)?;
        if let Some(version) = latest {
            self.record(role, version);
        }
        Ok(latest)
    }

    // A panic while holding the lock cannot leave the map half-updated (each
    // update is a single insert), so a poisoned map is still valid.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoleName, Version>> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Error;

    /// Runs the probe over versions `1..=latest` and returns the answer with
    /// the versions probed, in order.
    fn probe(known: Option<u64>, latest: u64) -> (Option<u64>, Vec<u64>) {
        let mut probed = Vec::new();
        let found = probe_latest(known.map(Version), |v| {
            probed.push(v.0);
            Ok(v.0 <= latest)
        })
        .unwrap();
        (found.map(|v| v.0), probed)
    }

    #[test]
    fn current_lower_bound_costs_one_probe() {
        assert_eq!(probe(Some(7), 7), (Some(7), vec![8]));
    }

    #[test]
    fn nothing_stored_is_none_not_version_one() {
        assert_eq!(probe(None, 0), (None, vec![1]));
    }

    #[test]
    fn cold_search_is_exponential_then_binary() {
        assert_eq!(
            probe(None, 13),
            (Some(13), vec![1, 2, 4, 8, 16, 12, 14, 13])
        );
    }

    #[test]
    fn versions_written_behind_the_cache_are_found() {
        assert_eq!(probe(Some(3), 4), (Some(4), vec![4, 5]));
        assert_eq!(probe(Some(3), 6), (Some(6), vec![4, 5, 7, 6]));
    }

    #[test]
    fn every_latest_up_to_300_is_found_from_every_bound() {
        for latest in 0..300 {
            for known in (1..=latest).map(Some).chain([None]) {
                let (found, probed) = probe(known, latest);
                assert_eq!(found, (latest > 0).then_some(latest), "{known:?} {latest}");
                let gap = latest - known.unwrap_or(0) + 1;
                let bound = 2 * (64 - gap.leading_zeros()) as usize;
                assert!(probed.len() <= bound, "{known:?} {latest}: {probed:?}");
            }
        }
    }

    #[test]
    fn huge_versions_do_not_overflow() {
        let (found, _) = probe(Some(u64::MAX - 1), u64::MAX);
        assert_eq!(found, Some(u64::MAX));
    }

    #[test]
    fn probe_errors_are_returned() {
        let err = probe_latest(None, |_| {
            Err(Error::NotFound {
                location: "x".into(),
            })
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "x does not exist");
    }

    #[test]
    fn cache_keeps_the_highest_version_seen() {
        let role = crate::testutil::role_name("targets");
        let cache = LatestCache::default();
        cache.record(&role, Version(5));
        cache.record(&role, Version(3));
        let mut probed = Vec::new();
        let latest = cache
            .latest(&role, |v| {
                probed.push(v.0);
                Ok(v.0 <= 6)
            })
            .unwrap();
        assert_eq!((latest, probed), (Some(Version(6)), vec![6, 7]));
        let again = cache.latest(&role, |v| Ok(v.0 <= 6)).unwrap();
        assert_eq!(again, Some(Version(6)));
    }
}
