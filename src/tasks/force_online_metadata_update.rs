//! `force_online_metadata_update`: re-sign the online roles asked for now,
//! and whatever must follow them (targets and delegated roles → snapshot →
//! timestamp).
//!
//! Upstream crashes (TypeError) whenever no delegated role actually gets
//! re-signed, e.g. `["snapshot"]` or `["targets"]` alone, after having
//! written part of the change, and never points snapshot at a re-signed
//! targets. Here every accepted request ends with a new snapshot (when
//! anything above it changed or it was asked for) that lists the new
//! targets version, and a new timestamp; the result is upstream's.
use serde_json::{json, Value};

use super::context::{Context, Result};
use super::input::role_names;
use super::publisher::{publisher, Plan};
use super::result::{done, failed};
use super::{Action, Error};
use crate::backend::TaskResult;
use crate::settings::BootstrapState;

const FAILED: &str = "Force new online metadata update failed";
const TOP_LEVEL: [&str; 4] = ["root", "targets", "snapshot", "timestamp"];
const BINS: &str = "bins";

pub fn run(ctx: &Context, payload: &Value) -> Result<TaskResult> {
    if !matches!(ctx.bootstrap_state()?, BootstrapState::Finished(_)) {
        return failed(
            Action::ForceOnlineMetadataUpdate,
            FAILED,
            "New metadata updates requre completed bootstrap",
        );
    }
    let roles = requested_roles(payload)?;
    let (plan, updated) = plan_for(&roles);
    if let Some(plan) = plan {
        if let Err(failed_round) = publisher()?.run(plan) {
            if failed_round.lock_lost {
                return failed(
                    Action::ForceOnlineMetadataUpdate,
                    FAILED,
                    format!(
                        "The task to update online roles exceeded the timeout of {} seconds.",
                        ctx.lock_timeout.as_secs()
                    ),
                );
            }
            return Err(Error::Raised(failed_round.failure.clone()));
        }
    }
    done(
        Action::ForceOnlineMetadataUpdate,
        "Force new online metadata update succeeded",
        json!({"updated_roles": updated}),
    )
}

fn requested_roles(payload: &Value) -> Result<Vec<String>> {
    let items = match payload.get("roles") {
        None => return Err(Error::payload("roles", "is missing")),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(Error::payload("roles", "must be a list of role names")),
    };
    role_names(items, "roles")
}

/// What to re-sign for the requested roles, and upstream's `updated_roles`.
fn plan_for(roles: &[String]) -> (Option<Plan>, Vec<String>) {
    let asked = |name: &str| roles.iter().any(|r| r == name);
    let delegated: Vec<String> = match asked(BINS) {
        true => vec![BINS.to_owned()],
        false => roles
            .iter()
            .filter(|r| !TOP_LEVEL.contains(&r.as_str()))
            .cloned()
            .collect(),
    };
    let everything_below = Plan {
        snapshot: true,
        timestamp: true,
        ..Plan::default()
    };
    if asked("targets") || !delegated.is_empty() {
        let mut updated = vec!["snapshot".to_owned(), "timestamp".to_owned()];
        if asked("targets") {
            updated.push("targets".to_owned());
        }
        let plan = Plan {
            targets: asked("targets"),
            all_roles: asked(BINS),
            roles: match asked(BINS) {
                true => Default::default(),
                false => delegated.iter().cloned().collect(),
            },
            ..everything_below
        };
        updated.extend(delegated);
        (Some(plan), updated)
    } else if asked("snapshot") {
        (
            Some(everything_below),
            vec!["snapshot".into(), "timestamp".into()],
        )
    } else if asked("timestamp") {
        let plan = Plan {
            timestamp: true,
            ..Plan::default()
        };
        (Some(plan), vec!["timestamp".into()])
    } else {
        (None, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(roles: &[&str]) -> (Option<Plan>, Vec<String>) {
        plan_for(&roles.iter().map(|r| r.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn updated_roles_follow_upstreams_rules() {
        let updated = |roles: &[&str]| plan(roles).1;
        assert_eq!(
            updated(&["targets", "snapshot", "timestamp", "bins"]),
            ["snapshot", "timestamp", "targets", "bins"]
        );
        assert_eq!(updated(&["bins", "dev"]), ["snapshot", "timestamp", "bins"]);
        assert_eq!(
            updated(&["dev", "root", "prod"]),
            ["snapshot", "timestamp", "dev", "prod"]
        );
        assert_eq!(updated(&["targets"]), ["snapshot", "timestamp", "targets"]);
        assert_eq!(
            updated(&["timestamp", "snapshot"]),
            ["snapshot", "timestamp"]
        );
        assert_eq!(updated(&["timestamp"]), ["timestamp"]);
        assert!(updated(&["root"]).is_empty());
        assert!(updated(&[]).is_empty());
    }

    #[test]
    fn plans_always_end_in_a_new_timestamp() {
        let all = plan(&["targets", "bins"]).0.unwrap();
        assert!(all.targets && all.all_roles && all.snapshot && all.timestamp);
        assert!(all.roles.is_empty() && !all.unpublished);
        let named = plan(&["dev"]).0.unwrap();
        assert_eq!(named.roles.into_iter().collect::<Vec<_>>(), ["dev"]);
        assert!(!named.targets && named.snapshot && named.timestamp);
        let snapshot = plan(&["snapshot"]).0.unwrap();
        assert!(snapshot.snapshot && snapshot.timestamp && !snapshot.targets);
        let timestamp = plan(&["timestamp"]).0.unwrap();
        assert!(!timestamp.snapshot && timestamp.timestamp);
        assert_eq!(plan(&["root"]).0, None);
    }
}
