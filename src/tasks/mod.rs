//! The repository actions the RSTUF API can ask for, one file each.
//!
//! A task arrives as `app.repository_service_tuf_worker(action, payload)`;
//! [`Action`] is the closed list of names the API sends. Upstream calls any
//! public method named by `action`, so a typo or a hostile message could run
//! internals; here anything else fails with a message naming the action.
use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::backend::{Failure, TaskResult};
use crate::celery::TaskId;

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

/// Runs one repository task.
pub fn run(task_id: &TaskId, action: &str, payload: Option<Value>) -> Outcome {
    let action = action.parse::<Action>().map_err(|unknown| {
        // Upstream raises AttributeError from getattr(); keep the type so the
        // API presents it the same way, with a message that helps.
        Failure::new("builtins", "AttributeError", unknown.to_string())
    })?;
    let _ = (task_id, payload);
    Err(Failure::new(
        "builtins",
        "NotImplementedError",
        format!("action {action} is not implemented by this worker yet"),
    ))
}

/// The periodic and forced refresh of online roles before they expire;
/// returns the roles it re-signed.
pub fn bump_online_roles() -> Result<Vec<String>, Failure> {
    Err(Failure::new(
        "builtins",
        "NotImplementedError",
        "bump_online_roles is not implemented by this worker yet",
    ))
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
        let failure = run(&TaskId::new("t"), "_persist", None).unwrap_err();
        assert_eq!(failure.exc_type, "AttributeError");
        assert!(failure.exc_message[0].contains("\"_persist\""));
    }
}
