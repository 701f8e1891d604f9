//! The one error type of the actions, and how each error is shown to the
//! API: as the Celery FAILURE upstream would produce for the same problem
//! (exception module, type and a message that says what to do).
use std::fmt;

use crate::backend::Failure;
use crate::{db, lock, settings, storage, tuf};

#[derive(Debug)]
pub enum Error {
    /// The payload lacks a field or has one of the wrong type.
    Payload {
        field: String,
        reason: String,
    },
    Settings(settings::Error),
    Db(db::Error),
    Storage(storage::Error),
    Lock(lock::Error),
    Tuf(tuf::Error),
    /// The repository is not in a state the action can work with.
    Repository(String),
    // --- artifact actions (issue 5, helper B) ---
    /// An exception already in the form the API shows, e.g. a publication
    /// round's failure handed to every task that waited for it.
    Raised(Failure),
    /// The task passed its time limit and was ended by the watchdog; its
    /// thread stops here (nothing stores this error).
    Abandoned,
}

impl Error {
    pub fn payload(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Payload {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The FAILURE record the API shows for this error.
    pub fn into_failure(self, lock_timeout_seconds: u64) -> Failure {
        let message = self.to_string();
        match self {
            Error::Payload { .. } => Failure::new("builtins", "ValueError", message),
            Error::Storage(_) => {
                Failure::new("securesystemslib.exceptions", "StorageError", message)
            }
            // Upstream's words when its lock expired mid-task.
            Error::Lock(lock::Error::Lost { .. }) => Failure::new(
                "redis.exceptions",
                "LockError",
                format!("RSTUF: Task exceed `LOCK_TIMEOUT` ({lock_timeout_seconds} seconds)"),
            ),
            Error::Lock(_) => Failure::new("redis.exceptions", "LockError", message),
            Error::Db(_) => Failure::new("sqlalchemy.exc", "OperationalError", message),
            Error::Raised(failure) => failure,
            Error::Settings(_) | Error::Tuf(_) | Error::Repository(_) | Error::Abandoned => {
                Failure::new("builtins", "RuntimeError", message)
            }
        }
    }

    /// Worth running the task again (a service blinked).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Db(e) if e.is_transient())
    }

    /// Another worker published first while this one's lock had expired:
    /// what it built is stale, and starting over from storage cures it.
    pub fn is_superseded(&self) -> bool {
        matches!(self, Error::Storage(e) if e.is_superseded())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Payload { field, reason } => write!(f, "payload field '{field}': {reason}"),
            Error::Settings(e) => write!(f, "repository settings: {e}"),
            Error::Db(e) => write!(f, "{e}"),
            Error::Storage(e) => write!(f, "metadata storage: {e}"),
            Error::Lock(e) => write!(f, "{e}"),
            Error::Tuf(e) => write!(f, "{e}"),
            Error::Repository(reason) => f.write_str(reason),
            Error::Raised(failure) => write!(
                f,
                "{}: {}",
                failure.exc_type,
                failure.exc_message.join("; ")
            ),
            Error::Abandoned => f.write_str(
                "the task passed RSTUF_TASK_TIME_LIMIT and was ended; its thread changes nothing more",
            ),
        }
    }
}

impl std::error::Error for Error {}

macro_rules! from_module_error {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for Error {
            fn from(e: $ty) -> Error {
                Error::$variant(e)
            }
        }
    )*};
}

from_module_error!(
    Settings(settings::Error),
    Db(db::Error),
    Storage(storage::Error),
    Lock(lock::Error),
    Tuf(tuf::Error)
);

impl From<super::fence::Abandoned> for Error {
    fn from(_: super::fence::Abandoned) -> Error {
        Error::Abandoned
    }
}

impl From<tuf::InvalidRoleName> for Error {
    fn from(e: tuf::InvalidRoleName) -> Error {
        Error::Repository(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lost_lock_reads_like_upstream() {
        let e = Error::Lock(lock::Error::Lost {
            key: "LOCK_TARGETS".into(),
            ttl: Duration::from_secs(60),
        });
        let f = e.into_failure(60);
        assert_eq!(
            (f.exc_module.as_str(), f.exc_type.as_str()),
            ("redis.exceptions", "LockError")
        );
        assert_eq!(
            f.exc_message,
            vec!["RSTUF: Task exceed `LOCK_TIMEOUT` (60 seconds)"]
        );
    }

    #[test]
    fn payload_errors_name_the_field() {
        let f = Error::payload("artifacts[2].path", "missing").into_failure(60);
        assert_eq!(
            f.exc_message,
            vec!["payload field 'artifacts[2].path': missing"]
        );
    }
}
