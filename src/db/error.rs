//! The one error type of the database module. Every message names the
//! operation (and role or path where there is one) and what to check, because
//! the operator reading a task's FAILURE has nothing else to go on.
use std::fmt;

/// SQLSTATEs after which running the same operation again can succeed: the
/// connection went away (class 08, server shutdown or restart, our backend
/// terminated), the server was briefly full, or a transaction lost a race.
const TRANSIENT_SQLSTATES: &[&str] = &["57P01", "57P02", "57P03", "53300", "40001", "40P01"];
const TRANSIENT_SQLSTATE_CLASSES: &[&str] = &["08"];

/// SQLSTATE classes meaning the server refused who we are or what we asked
/// for at connect time (bad password, unknown role, unknown database).
/// Retrying cannot help until the settings change.
const REFUSED_CONNECT_CLASSES: &[&str] = &["28", "3D"];

#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A connection setting (RSTUF_DB_SERVER, RSTUF_DB_USER, ...) cannot be used.
    Config {
        setting: &'static str,
        reason: String,
    },
    /// Opening the first connection failed.
    Connect {
        server: String,
        source: postgres::Error,
    },
    /// No pooled connection became available within the pool's timeout.
    Pool {
        server: String,
        operation: String,
        source: r2d2::Error,
    },
    /// A statement failed.
    Query {
        operation: String,
        source: postgres::Error,
    },
    /// A value does not fit the other side (a version beyond the INTEGER
    /// column, an unknown `targetaction`, a negative version in a row).
    Value { operation: String, reason: String },
    /// The database carries an alembic revision this worker does not know.
    UnknownRevision {
        revision: String,
        known: &'static str,
    },
    /// The tables are in a state migrate() cannot explain.
    Schema { reason: String },
}

impl Error {
    /// True when the same operation may succeed if run again: the server was
    /// unreachable or restarted, our connection was terminated, or the pool
    /// had no connection in time. Tasks retry these (upstream retries
    /// SQLAlchemy's OperationalError the same way).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { source, .. } => !refused_at_connect(source),
            Error::Pool { .. } => true,
            Error::Query { source, .. } => connection_lost_or_busy(source),
            Error::Config { .. }
            | Error::Value { .. }
            | Error::UnknownRevision { .. }
            | Error::Schema { .. } => false,
        }
    }
}

fn sqlstate(e: &postgres::Error) -> Option<&str> {
    e.code().map(|c| c.code())
}

fn in_class(code: &str, classes: &[&str]) -> bool {
    classes.iter().any(|class| code.starts_with(class))
}

fn refused_at_connect(e: &postgres::Error) -> bool {
    sqlstate(e).is_some_and(|code| in_class(code, REFUSED_CONNECT_CLASSES))
}

fn connection_lost_or_busy(e: &postgres::Error) -> bool {
    let io_failure = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    let transient_state = sqlstate(e).is_some_and(|code| {
        TRANSIENT_SQLSTATES.contains(&code) || in_class(code, TRANSIENT_SQLSTATE_CLASSES)
    });
    e.is_closed() || io_failure || transient_state
}

/// The server's own words when it sent an error (the driver's Display says
/// only "db error"), else the driver's message and its cause.
fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let detail = db.detail().map(|d| format!(" ({d})")).unwrap_or_default();
        return format!(
            "{} {}: {}{detail}",
            db.severity(),
            db.code().code(),
            db.message()
        );
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config { setting, reason } => write!(f, "database setting {setting}: {reason}"),
            Error::Connect { server, source } => match crate::tls::certificate_hint(source) {
                Some(hint) => write!(
                    f,
                    "cannot connect to PostgreSQL at {server}: {}; {hint} (for the database \
                     also sslrootcert or PGSSLROOTCERT)",
                    describe(source)
                ),
                None => write!(
                    f,
                    "cannot connect to PostgreSQL at {server}: {}; check RSTUF_DB_SERVER, \
                     RSTUF_DB_USER, RSTUF_DB_PASSWORD and that the server is running",
                    describe(source)
                ),
            },
            Error::Pool {
                server,
                operation,
                source,
            } => write!(
                f,
                "cannot {operation}: no connection to PostgreSQL at {server} became available \
                 ({source}); is the server running and reachable?"
            ),
            Error::Query { operation, source } => {
                write!(f, "database: cannot {operation}: {}", describe(source))
            }
            Error::Value { operation, reason } => {
                write!(f, "database: cannot {operation}: {reason}")
            }
            Error::UnknownRevision { revision, known } => write!(
                f,
                "database has alembic revision '{revision}', which this worker does not know \
                 (it knows {known}); the schema was changed by another RSTUF worker version, \
                 so run a worker version that matches it"
            ),
            Error::Schema { reason } => write!(f, "database schema is not usable: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect { source, .. } | Error::Query { source, .. } => Some(source),
            Error::Pool { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_outside_failures_are_transient() {
        let value = Error::Value {
            operation: "store role 'bins-0'".into(),
            reason: "version 4294967296 does not fit".into(),
        };
        assert!(!value.is_transient());
        let revision = Error::UnknownRevision {
            revision: "abc".into(),
            known: "1effe827d0cd",
        };
        assert!(!revision.is_transient());
        assert_eq!(
            revision.to_string(),
            "database has alembic revision 'abc', which this worker does not know (it knows \
             1effe827d0cd); the schema was changed by another RSTUF worker version, so run a \
             worker version that matches it"
        );
    }

    #[test]
    fn sqlstate_classes_match_by_prefix() {
        assert!(in_class("08006", TRANSIENT_SQLSTATE_CLASSES));
        assert!(!in_class("23505", TRANSIENT_SQLSTATE_CLASSES));
        assert!(in_class("28P01", REFUSED_CONNECT_CLASSES));
        assert!(in_class("3D000", REFUSED_CONNECT_CLASSES));
    }
}
