//! The one error type of the lock module.
use std::fmt;
use std::time::Duration;

#[derive(Debug)]
pub enum Error {
    /// `RSTUF_REDIS_SERVER` cannot be used for the lock client.
    Config { url: String, reason: String },
    /// Redis did not answer or refused a command.
    Redis {
        server: String,
        key: String,
        action: &'static str,
        source: redis::RedisError,
    },
    /// Another worker still held the lock when the caller's deadline passed.
    Timeout { key: String, waited: Duration },
    /// The lock expired (or was deleted) and may belong to someone else now:
    /// whatever the holder was about to write must not be written.
    Lost { key: String, ttl: Duration },
    /// A lock time-to-live Redis cannot express.
    Ttl { key: String, ttl: Duration },
    /// A `*/n` minute schedule that is not a crontab-equivalent slot grid.
    Schedule { minutes: u32 },
    /// The system clock reads before 1970.
    Clock,
    /// The operating system gave no random bytes for a lock token.
    Random,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config { url, reason } => write!(
                f,
                "lock client: RSTUF_REDIS_SERVER {url:?} is not usable ({reason}); use \
                 redis://[[user]:password@]host[:port][/db]"
            ),
            Error::Redis {
                server,
                key,
                action,
                source,
            } => write!(
                f,
                "lock {key} on {server}: {action} failed: {source}; check that Redis is \
                 reachable at RSTUF_REDIS_SERVER"
            ),
            Error::Timeout { key, waited } => write!(
                f,
                "lock {key} is still held by another worker after waiting {:.1} s; retry \
                 later or look for a stuck task",
                waited.as_secs_f64()
            ),
            Error::Lost { key, ttl } => write!(
                f,
                "lock {key} is no longer held by this worker: it outlived its {} s timeout \
                 and may belong to another worker now, so nothing more was written; raise \
                 RSTUF_LOCK_TIMEOUT if this work legitimately takes longer",
                ttl.as_secs_f64()
            ),
            Error::Ttl { key, ttl } => {
                write!(
                    f,
                    "lock {key}: a timeout of {ttl:?} is too short; use at least 1 ms"
                )
            }
            Error::Schedule { minutes } => write!(
                f,
                "a schedule every {minutes} minutes does not divide the hour evenly; use one \
                 of 1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60"
            ),
            Error::Clock => f.write_str("the system clock is before 1970; fix the time"),
            Error::Random => {
                f.write_str("the operating system provided no random bytes for a lock token")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Redis { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_names_the_key_the_timeout_and_the_setting() {
        let err = Error::Lost {
            key: "LOCK_TARGETS".into(),
            ttl: Duration::from_secs(60),
        };
        assert_eq!(
            err.to_string(),
            "lock LOCK_TARGETS is no longer held by this worker: it outlived its 60 s timeout \
             and may belong to another worker now, so nothing more was written; raise \
             RSTUF_LOCK_TIMEOUT if this work legitimately takes longer"
        );
    }
}
