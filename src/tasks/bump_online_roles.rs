//! The periodic bump (`app.bump_online_roles`, and the beat of this
//! worker): re-sign every online role about to expire, so that clients
//! never see expired metadata.
//!
//! Upstream re-signs delegated roles and targets inside the window, and
//! snapshot/timestamp only along with them; with long-lived delegated
//! roles its timestamp (often one day) simply expired. Here snapshot and
//! timestamp are checked on their own as well. One snapshot and one
//! timestamp per bump, as for every publication.
use std::time::Duration;

use log::{info, warn};

use super::context::{Context, Result};
use super::publisher::{publisher, Plan};
use super::Error;
use crate::backend::Failure;
use crate::lock::BOR;
use crate::settings::BootstrapState;

/// `HOURS_BEFORE_EXPIRE` when unset (or 0, which dynaconf reads as unset).
const DEFAULT_HOURS_BEFORE_EXPIRE: i64 = 1;

/// Runs one bump unless another is running (lock `BOR`, held at most
/// `bor_ttl`) or the repository is not bootstrapped; returns the roles it
/// re-signed (empty when skipped): delegated roles by name, then
/// `targets`, `snapshot`, `timestamp` when they themselves were expiring.
pub fn bump_online_roles(
    ctx: &Context,
    bor_ttl: Duration,
) -> std::result::Result<Vec<String>, Failure> {
    bump(ctx, bor_ttl).map_err(|e| e.into_failure(ctx.lock_timeout.as_secs()))
}

fn bump(ctx: &Context, bor_ttl: Duration) -> Result<Vec<String>> {
    let Some(bor) = ctx.try_lock(BOR, bor_ttl)? else {
        info!("bump: skipped, another bump is running ({BOR} is held)");
        return Ok(Vec::new());
    };
    if !matches!(ctx.bootstrap_state()?, BootstrapState::Finished(_)) {
        info!("bump: skipped, the repository is not bootstrapped");
        bor.release()?;
        return Ok(Vec::new());
    }
    // Read on every run: an operator's change applies without a restart.
    let hours = ctx
        .setting_int("HOURS_BEFORE_EXPIRE")?
        .unwrap_or(DEFAULT_HOURS_BEFORE_EXPIRE)
        .max(0);
    let window = Duration::from_secs(u64::try_from(hours).unwrap_or(0).saturating_mul(3600));
    let plan = Plan {
        expiring_within: Some(window),
        ..Plan::default()
    };
    let report = publisher()?
        .run(plan)
        .map_err(|failed| Error::Raised(failed.failure.clone()))?;
    if let Err(e) = bor.release() {
        warn!("bump: {e}");
    }
    Ok(report.expired.clone())
}
