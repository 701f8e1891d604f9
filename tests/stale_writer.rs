//! A worker whose `LOCK_TARGETS` expired mid-publish never overwrites what
//! the worker that took the lock over published: versioned files are never
//! replaced, timestamp.json never goes back, nothing reported added is lost
//! (tests/common/stale.rs; `make chaos` runs it longer). Needs strace.
mod common;

#[test]
fn a_publisher_whose_lock_expired_never_overwrites_newer_metadata() {
    let row = common::stale::lock_expiry(4);
    assert!(row.count > 0, "the lock never expired mid-publish: {row:?}");
    assert_eq!(
        (row.lost, row.inconsistent, row.recovered_without_restart),
        (0, 0, true),
        "{row:?}"
    );
}
