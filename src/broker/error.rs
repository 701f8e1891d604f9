//! The one error type of the broker boundary. Messages name the broker
//! (with the password hidden), the queue or header at fault, and what to do.
use std::fmt;

use super::AmqpUrl;

#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The broker URL cannot be understood.
    InvalidUrl {
        url: String,
        reason: String,
        /// The form the transport's URLs take.
        expected: &'static str,
    },
    /// The URL names a transport this worker does not speak (yet).
    UnsupportedBroker { url: String, reason: String },
    /// A queue name RabbitMQ would refuse.
    InvalidQueueName { name: String, reason: String },
    /// The pool was given no queue to consume from.
    NoQueues,
    /// A header that cannot be put into an AMQP field table.
    InvalidHeader { header: String, reason: String },
    /// Connecting, declaring or publishing failed at the broker.
    Broker {
        broker: String,
        action: String,
        /// What to check, when the failure points somewhere specific.
        hint: &'static str,
        /// amiquip's message with the password taken out (amiquip prints URLs whole).
        detail: String,
    },
    /// A command to a Redis broker failed (connection, consuming, settling).
    Redis {
        broker: String,
        action: String,
        detail: String,
    },
    /// The broker did not confirm a published message (nack or timeout).
    NotConfirmed { queue: String, reason: String },
    /// The raw connection used to quarantine unparsable deliveries failed.
    Quarantine { broker: String, reason: String },
    /// SIGTERM/SIGINT handlers could not be installed.
    Signals(std::io::Error),
    /// The operating system would not start a pool thread.
    Thread(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl {
                url,
                reason,
                expected,
            } => write!(
                f,
                "broker URL {url:?} is invalid: {reason}; expected {expected}"
            ),
            Error::UnsupportedBroker { url, reason } => {
                write!(f, "broker URL {url:?} is not supported: {reason}")
            }
            Error::InvalidQueueName { name, reason } => {
                write!(f, "queue name {name:?} is invalid: {reason}")
            }
            Error::NoQueues => write!(
                f,
                "no queues to consume from; configure at least one (upstream uses \
                 metadata_repository and rstuf_internals)"
            ),
            Error::InvalidHeader { header, reason } => {
                write!(
                    f,
                    "message header {header:?} cannot be sent over AMQP: {reason}"
                )
            }
            Error::Broker {
                broker,
                action,
                hint,
                detail,
            } => {
                write!(f, "RabbitMQ at {broker}: {action} failed: {detail}")?;
                if !hint.is_empty() {
                    write!(f, "; {hint}")?;
                }
                Ok(())
            }
            Error::Redis {
                broker,
                action,
                detail,
            } => write!(f, "Redis broker at {broker}: {action} failed: {detail}"),
            Error::NotConfirmed { queue, reason } => write!(
                f,
                "RabbitMQ did not confirm the message published to queue {queue:?}: {reason}; \
                 it may not have been stored"
            ),
            Error::Quarantine { broker, reason } => write!(
                f,
                "RabbitMQ at {broker}: cannot look for unparsable messages: {reason}"
            ),
            Error::Signals(e) => write!(f, "cannot install SIGTERM/SIGINT handlers: {e}"),
            Error::Thread(e) => write!(f, "cannot start a broker consumer thread: {e}"),
        }
    }
}

impl Error {
    pub(crate) fn broker(
        url: &AmqpUrl,
        action: &str,
        hint: &'static str,
        source: amiquip::Error,
    ) -> Error {
        Error::Broker {
            broker: url.to_string(),
            action: action.to_owned(),
            hint,
            detail: url.redact(&source.to_string()),
        }
    }
}

impl Error {
    pub(crate) fn redis(
        broker: &impl fmt::Display,
        action: &str,
        source: redis::RedisError,
    ) -> Error {
        Error::Redis {
            broker: broker.to_string(),
            action: action.to_owned(),
            detail: source.to_string(),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Signals(e) | Error::Thread(e) => Some(e),
            _ => None,
        }
    }
}
