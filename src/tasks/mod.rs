//! The repository actions the RSTUF API can ask for, one file each.
//!
//! A task arrives as `app.repository_service_tuf_worker(action, payload)`;
//! [`Action`] is the closed list of names the API sends. Upstream calls any
//! public method named by `action`, so a typo or a hostile message could run
//! internals; here anything else fails with a message naming the action.
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;

use crate::backend::{Failure, Progress, TaskResult};
use crate::celery::TaskId;

mod add_artifacts;
mod artifacts;
mod bootstrap;
mod bump_online_roles;
pub mod context;
mod delegations;
mod delete_sign_metadata;
mod error;
pub mod fence;
mod force_online_metadata_update;
mod input;
mod metadata_delegation;
mod metadata_update;
mod publish_artifacts;
mod publisher;
mod pyrepr;
mod remove_artifacts;
mod resign;
mod result;
mod round;
mod routing;
mod sign_metadata;
mod signing;
mod update_settings;
mod waiting;

pub use bump_online_roles::bump_online_roles;
pub use context::Context;
pub use error::Error;
pub use publisher::start as start_publisher;

/// Every action the API (or our own worker) sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Bootstrap,
    UpdateSettings,
    AddArtifacts,
    RemoveArtifacts,
    PublishArtifacts,
    MetadataUpdate,
    MetadataDelegation,
    SignMetadata,
    DeleteSignMetadata,
    ForceOnlineMetadataUpdate,
}

impl Action {
    pub const ALL: [Action; 10] = [
        Action::Bootstrap,
        Action::UpdateSettings,
        Action::AddArtifacts,
        Action::RemoveArtifacts,
        Action::PublishArtifacts,
        Action::MetadataUpdate,
        Action::MetadataDelegation,
        Action::SignMetadata,
        Action::DeleteSignMetadata,
        Action::ForceOnlineMetadataUpdate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Bootstrap => "bootstrap",
            Action::UpdateSettings => "update_settings",
            Action::AddArtifacts => "add_artifacts",
            Action::RemoveArtifacts => "remove_artifacts",
            Action::PublishArtifacts => "publish_artifacts",
            Action::MetadataUpdate => "metadata_update",
            Action::MetadataDelegation => "metadata_delegation",
            Action::SignMetadata => "sign_metadata",
            Action::DeleteSignMetadata => "delete_sign_metadata",
            Action::ForceOnlineMetadataUpdate => "force_online_metadata_update",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An action name that is not one of [`Action::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAction(pub String);

impl fmt::Display for UnknownAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        write!(
            f,
            "unknown action {:?}; this worker runs {}",
            self.0,
            known.join(", ")
        )
    }
}

impl FromStr for Action {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Action, UnknownAction> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAction(s.to_owned()))
    }
}

/// What a finished action hands back: a result dict (Celery SUCCESS, which
/// the API shows as ERRORED when `error` is set) or an exception (FAILURE).
pub type Outcome = Result<TaskResult, Failure>;

/// The task being run, and a way to show progress (the RUNNING state).
pub struct Request<'a> {
    pub id: &'a TaskId,
    pub report: &'a dyn Fn(&Progress),
}

/// How often a task is run again after a database error that a restart or
/// fail-over explains (upstream: Celery autoretry, 3 retries, backoff).
const TRANSIENT_RETRIES: u32 = 3;

/// Runs one repository task.
pub fn run(ctx: &Context, req: &Request, action: &str, payload: Option<Value>) -> Outcome {
    let action = action.parse::<Action>().map_err(|unknown| {
        // Upstream raises AttributeError from getattr(); keep the type so the
        // API presents it the same way, with a message that helps.
        Failure::new("builtins", "AttributeError", unknown.to_string())
    })?;
    let mut attempt = 0;
    loop {
        match dispatch(ctx, req, action, payload.as_ref()) {
            Err(e) if e.is_transient() && attempt < TRANSIENT_RETRIES => {
                attempt += 1;
                log::warn!(
                    "task {}: {e}; retry {attempt} of {TRANSIENT_RETRIES}",
                    req.id.as_str()
                );
                std::thread::sleep(Duration::from_secs(1 << attempt));
            }
            other => return other.map_err(|e| e.into_failure(ctx.lock_timeout.as_secs())),
        }
    }
}

fn dispatch(
    ctx: &Context,
    req: &Request,
    action: Action,
    payload: Option<&Value>,
) -> Result<TaskResult, Error> {
    // Only publish_artifacts may be sent without a payload (the API does).
    let payload = match (action, payload) {
        (_, Some(Value::Object(_))) => payload.unwrap_or(&Value::Null),
        (Action::PublishArtifacts, None | Some(Value::Null)) => &Value::Null,
        (_, None | Some(Value::Null)) => {
            return Err(Error::payload(
                "payload",
                "is null; this action needs an object",
            ))
        }
        (_, Some(_)) => return Err(Error::payload("payload", "must be a JSON object")),
    };
    match action {
        Action::UpdateSettings => update_settings::run(ctx, payload),
        Action::Bootstrap => bootstrap::run(ctx, req.id, payload),
        Action::SignMetadata => sign_metadata::run(ctx, payload),
        Action::DeleteSignMetadata => delete_sign_metadata::run(ctx, payload),
        Action::MetadataUpdate => metadata_update::run(ctx, payload),
        Action::MetadataDelegation => metadata_delegation::run(ctx, payload),
        Action::AddArtifacts => add_artifacts::run(ctx, req, payload),
        Action::RemoveArtifacts => remove_artifacts::run(ctx, req, payload),
        Action::PublishArtifacts => publish_artifacts::run(payload),
        Action::ForceOnlineMetadataUpdate => force_online_metadata_update::run(ctx, payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for action in Action::ALL {
            assert_eq!(action.as_str().parse::<Action>(), Ok(action));
        }
    }

    #[test]
    fn internal_methods_are_not_actions() {
        for name in [
            "bump_online_roles",
            "_persist",
            "bump_snapshot",
            "",
            "Bootstrap",
        ] {
            let err = name.parse::<Action>().unwrap_err();
            assert!(err
                .to_string()
                .starts_with(&format!("unknown action {name:?}")));
        }
    }
}
