//! The result dict every action returns, with upstream's exact texts.
use serde_json::Value;

use super::{Action, Error};
use crate::backend::{TaskResult, Timestamp};

/// A result: `error` None means success (`status: true`).
pub fn result(
    action: Action,
    message: &str,
    error: Option<String>,
    details: Option<Value>,
) -> Result<TaskResult, Error> {
    let last_update = Timestamp::now().map_err(|e| Error::Repository(e.to_string()))?;
    Ok(TaskResult {
        task: action.as_str().to_owned(),
        last_update,
        message: message.to_owned(),
        error,
        details,
    })
}

/// Success with details.
pub fn done(action: Action, message: &str, details: Value) -> Result<TaskResult, Error> {
    result(action, message, None, Some(details))
}

/// An error result (the API shows ERRORED) with null details.
pub fn failed(
    action: Action,
    message: &str,
    error: impl Into<String>,
) -> Result<TaskResult, Error> {
    result(action, message, Some(error.into()), None)
}
