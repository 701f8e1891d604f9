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
/// re-signed (empty when skipped). With `expired` (what the beat sends)
/// only what expires soon: delegated roles by name, then `targets`,
/// `snapshot`, `timestamp` when they themselves were expiring. Without it,
/// like upstream's default, every delegated role and targets.
pub fn bump_online_roles(
    ctx: &Context,
    bor_ttl: Duration,
    expired: bool,
) -> std::result::Result<Vec<String>, Failure> {
    bump(ctx, bor_ttl, expired).map_err(|e| e.into_failure(ctx.lock_timeout.as_secs()))
}

fn bump(ctx: &Context, bor_ttl: Duration, expired: bool) -> Result<Vec<String>> {
    let Some(bor) = ctx.try_lock(BOR, bor_ttl)? else {
        info!("bump: skipped, another bump is running ({BOR} is held)");
        return Ok(Vec::new());
    };
    if !matches!(ctx.bootstrap_state()?, BootstrapState::Finished(_)) {
        info!("bump: skipped, the repository is not bootstrapped");
        bor.release()?;
        return Ok(Vec::new());
    }
    let plan = match expired {
        true => Plan {
            expiring_within: Some(window(ctx)?),
            ..Plan::default()
        },
        false => Plan {
            all_roles: true,
            targets: true,
            snapshot: true,
            timestamp: true,
            ..Plan::default()
        },
    };
    let report = publisher()?
        .run(plan)
        .map_err(|failed| Error::Raised(failed.failure.clone()))?;
    if let Err(e) = bor.release() {
        warn!("bump: {e}");
    }
    Ok(match expired {
        true => report.expired.clone(),
        false => [report.resigned.as_slice(), &["targets".to_owned()]].concat(),
    })
}

/// `HOURS_BEFORE_EXPIRE`, read on every run: an operator's change applies
/// without a restart (upstream reads it once at start).
fn window(ctx: &Context) -> Result<Duration> {
    let hours = ctx
        .setting_int("HOURS_BEFORE_EXPIRE")?
        .unwrap_or(DEFAULT_HOURS_BEFORE_EXPIRE)
        .max(0);
    Ok(Duration::from_secs(
        u64::try_from(hours).unwrap_or(0).saturating_mul(3600),
    ))
}
