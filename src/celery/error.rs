//! The one error type of the Celery message codec.
//!
//! Three families, because the worker treats them differently:
//! - the message cannot be understood at all (content type, headers, body):
//!   reject it, nothing can be recorded;
//! - [`Error::NotRegistered`]: a well-formed message for a task this worker
//!   does not run: reject it and store Celery's `NotRegistered` FAILURE under
//!   the message's id;
//! - [`Error::Argument`]: a known task called with arguments Python would
//!   refuse with `TypeError`: the task fails under its id.
use std::fmt;

use super::TaskName;

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Not `application/json` (or no content type at all).
    ContentType(Option<String>),
    /// A body encoding other than UTF-8.
    ContentEncoding(String),
    /// A header is missing or has the wrong type.
    Header { name: &'static str, reason: String },
    /// The body is not `[args, kwargs, embed]` JSON.
    Body(String),
    /// A task name this worker does not implement.
    NotRegistered { name: TaskName },
    /// A known task got arguments it cannot take.
    Argument {
        task: TaskName,
        field: String,
        reason: String,
    },
    /// A message could not be serialized (a value serde_json refuses).
    Encode(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ContentType(Some(got)) => write!(
                f,
                "message content type is {got:?}, only \"application/json\" is accepted; \
                 publish with Celery's json serializer"
            ),
            Error::ContentType(None) => write!(
                f,
                "message has no content type, only \"application/json\" is accepted; \
                 publish with Celery's json serializer"
            ),
            Error::ContentEncoding(got) => write!(
                f,
                "message content encoding is {got:?}, only \"utf-8\" is accepted"
            ),
            Error::Header { name, reason } => {
                write!(f, "Celery message header {name:?}: {reason}")
            }
            Error::Body(reason) => write!(
                f,
                "Celery message body is not protocol 2 [args, kwargs, embed] JSON: {reason}"
            ),
            Error::NotRegistered { name } => write!(
                f,
                "task \"{name}\" is not registered with this worker (it runs {:?} and {:?})",
                TaskName::REPOSITORY,
                TaskName::BUMP_ONLINE_ROLES
            ),
            Error::Argument {
                task,
                field,
                reason,
            } => write!(f, "task {task}: argument {field:?} {reason}"),
            Error::Encode(reason) => write!(f, "cannot encode Celery message: {reason}"),
        }
    }
}

impl std::error::Error for Error {}
