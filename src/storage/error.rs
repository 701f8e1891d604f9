//! The one error type of the storage boundary. Every message names the file
//! path or `s3://bucket/key` involved and what was being done, so an operator
//! can tell a missing file from a permission problem or a full disk.
use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::tuf::InvalidRoleName;

#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A role name that cannot be part of a file name or object key.
    RoleName { name: String, reason: &'static str },
    /// Version 0 of a role: TUF versions start at 1, and "latest" treats 0
    /// as "nothing stored", so storing it would hide the file.
    VersionZero { role: String },
    /// The file or object does not exist. Callers match on this (through
    /// [`Error::is_not_found`]) to fall back, e.g. to a pending `<R>_SIGNING`.
    NotFound { location: String },
    /// A local file system operation failed.
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    /// The S3 settings cannot be turned into a client.
    S3Config { bucket: String, reason: String },
    /// The bucket does not exist at the configured endpoint.
    BucketMissing { bucket: String, endpoint: String },
    /// Another writer got there first: the file of this version holds other
    /// bytes, or `timestamp.json` is already at this version or newer. The
    /// writer's view of the repository is stale (its lock expired while it
    /// worked); it must start over from what is stored now.
    Superseded { path: PathBuf, stored: String },
    /// An S3 request failed in transport or answered with an unexpected status.
    S3 {
        bucket: String,
        key: String,
        action: &'static str,
        detail: String,
    },
}

impl Error {
    /// True when the requested file or object simply does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// True when a newer publication made this write stale.
    pub fn is_superseded(&self) -> bool {
        matches!(self, Error::Superseded { .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>, action: &'static str, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            action,
            source,
        }
    }
}

fn io_hint(source: &io::Error) -> &'static str {
    match source.kind() {
        io::ErrorKind::PermissionDenied => {
            " (check that the worker's user may read and write the storage directory)"
        }
        _ => "",
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::RoleName { name, reason } => write!(
                f,
                "role name {name:?} cannot be stored: {reason} \
                 (metadata file names are <version>.<role>.json)"
            ),
            Error::VersionZero { role } => write!(
                f,
                "refusing to store version 0 of role '{role}': TUF versions start at 1"
            ),
            Error::NotFound { location } => write!(f, "{location} does not exist"),
            Error::Io {
                path,
                action,
                source,
            } => write!(
                f,
                "{}: cannot {action}: {source}{}",
                path.display(),
                io_hint(source)
            ),
            Error::Superseded { path, stored } => write!(
                f,
                "{}: not replaced, another writer stored {stored} first; \
                 this publication was built from an older state and is redone",
                path.display()
            ),
            Error::S3Config { bucket, reason } => {
                write!(
                    f,
                    "S3 storage for bucket '{bucket}' is misconfigured: {reason}"
                )
            }
            Error::BucketMissing { bucket, endpoint } => write!(
                f,
                "S3 bucket '{bucket}' not found at {endpoint}; create it or fix the bucket name"
            ),
            Error::S3 {
                bucket,
                key,
                action,
                detail,
            } => write!(f, "cannot {action} s3://{bucket}/{key}: {detail}"),
        }
    }
}

impl From<InvalidRoleName> for Error {
    fn from(e: InvalidRoleName) -> Self {
        Error::RoleName {
            name: e.name,
            reason: e.reason,
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
