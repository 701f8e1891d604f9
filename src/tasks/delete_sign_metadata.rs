//! `delete_sign_metadata`: abandon a signing event. Abandoning the root of
//! a bootstrap that waits for signatures also resets the bootstrap, so the
//! API accepts a new one.
use serde_json::{json, Value};

use super::context::{Context, Result};
use super::input::{check_signing_role, member};
use super::result::{failed, result};
use super::signing::{clear_pending, pending};
use super::{Action, Error};
use crate::backend::TaskResult;
use crate::settings::BootstrapState;

pub fn run(ctx: &Context, payload: &Value) -> Result<TaskResult> {
    let Some(role) = member(payload, "role") else {
        return failed(
            Action::DeleteSignMetadata,
            "Deletion of metadata pending signatures failed",
            "No role provided for deletion.",
        );
    };
    let role = role
        .as_str()
        .ok_or_else(|| Error::payload("role", "must be a string"))?;
    check_signing_role(role, "role")?;
    if pending(ctx, role)?.is_none() {
        return failed(
            Action::DeleteSignMetadata,
            &format!("Deletion of {role} metadata failed."),
            format!("The {role} role is not in a signing process."),
        );
    }
    clear_pending(ctx, role)?;
    let message = format!("Deletion of {role} metadata successful, signing process stopped");
    let bootstrap_signing = matches!(ctx.bootstrap_state()?, BootstrapState::Signing(_));
    let details = if role == "root" && bootstrap_signing {
        ctx.settings().set_bootstrap_state(&BootstrapState::None)?;
        Some(json!({"bootstrap": "Bootstrap process has been stopped"}))
    } else {
        None
    };
    result(Action::DeleteSignMetadata, &message, None, details)
}
