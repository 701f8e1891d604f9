//! The one error type of the Redis result backend. Messages name the server
//! (host:port and db, never the password) and the key, and say what to check.
use std::fmt;

use crate::celery::TaskId;

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The backend settings cannot work (bad URL, zero expiry).
    Config(String),
    /// No connection to Redis could be opened.
    Connect { server: String, reason: String },
    /// A command on an open connection failed.
    Command {
        server: String,
        key: String,
        reason: String,
    },
    /// A result could not be turned into JSON.
    Encode { task_id: TaskId, reason: String },
    /// The system clock or a given time cannot be expressed as a Python datetime.
    Time(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(reason) => write!(
                f,
                "Redis result backend settings: {reason}; check RSTUF_REDIS_SERVER, \
                 RSTUF_REDIS_SERVER_PORT and RSTUF_REDIS_SERVER_DB_RESULT"
            ),
            Error::Connect { server, reason } => write!(
                f,
                "cannot connect to the Redis result backend at {server}: {reason}; \
                 check that Redis is running and RSTUF_REDIS_SERVER points at it"
            ),
            Error::Command {
                server,
                key,
                reason,
            } => write!(
                f,
                "Redis result backend at {server}: writing {key} failed: {reason}"
            ),
            Error::Encode { task_id, reason } => write!(
                f,
                "cannot encode the result of task {task_id} as JSON: {reason}"
            ),
            Error::Time(reason) => write!(f, "cannot timestamp a task result: {reason}"),
        }
    }
}

impl std::error::Error for Error {}
