//! `publish_artifacts`: publish the roles with unpublished artifacts (or
//! the roles named in `delegated_targets`) through the process's publisher.
//!
//! Like upstream, `delegated_artifacts` (what upstream's own sub-task
//! sends) is ignored, and a payload of null (what the API sends) publishes
//! everything pending.
use serde_json::{json, Value};

use super::artifacts::MAX_ARTIFACTS;
use super::context::Result;
use super::input::role_names;
use super::publisher::{publisher, Plan};
use super::result::done;
use super::{Action, Error};
use crate::backend::TaskResult;

const PROCESSED: &str = "Publish Artifacts Processed";

pub fn run(payload: &Value) -> Result<TaskResult> {
    let named = delegated_targets(payload)?;
    if named.as_ref().is_some_and(Vec::is_empty) {
        return done(
            Action::PublishArtifacts,
            PROCESSED,
            json!({"artifact_roles": null}),
        );
    }
    let plan = match &named {
        None => Plan::unpublished(),
        Some(roles) => Plan {
            roles: roles.iter().cloned().collect(),
            ..Plan::default()
        },
    };
    let report = publisher()?
        .run(plan)
        .map_err(|failed| Error::Raised(failed.failure.clone()))?;
    let roles = match named {
        Some(roles) => json!(roles),
        None if report.unpublished_roles.is_empty() => Value::Null,
        None => json!(report.unpublished_roles),
    };
    done(
        Action::PublishArtifacts,
        PROCESSED,
        json!({"artifact_roles": roles}),
    )
}

/// `payload.delegated_targets`: None when absent or null.
fn delegated_targets(payload: &Value) -> Result<Option<Vec<String>>> {
    let field = "delegated_targets";
    let items = match payload.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) if items.len() <= MAX_ARTIFACTS => items,
        Some(Value::Array(_)) => {
            return Err(Error::payload(
                field,
                format!("lists more than {MAX_ARTIFACTS} roles"),
            ))
        }
        Some(_) => return Err(Error::payload(field, "must be a list of role names")),
    };
    role_names(items, field).map(Some)
}
