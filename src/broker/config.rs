//! What the consumer pool needs to know, with upstream's defaults.
use std::fmt;
use std::num::{NonZeroU16, NonZeroUsize};
use std::time::Duration;

use super::{BrokerUrl, Error};

/// A queue name RabbitMQ accepts for declaring (also used as the routing
/// key and, like Celery, as the name of the queue's direct exchange).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueName(String);

impl QueueName {
    /// The queue the API sends every task but publishing to.
    pub const METADATA_REPOSITORY: &'static str = "metadata_repository";
    /// The queue of publish_artifacts and of celery beat's bump task.
    pub const RSTUF_INTERNALS: &'static str = "rstuf_internals";

    pub fn new(name: &str) -> Result<QueueName, Error> {
        let reason = if name.is_empty() {
            Some("it is empty")
        } else if name.len() > 255 {
            Some("it is longer than 255 bytes")
        } else if name.starts_with("amq.") {
            Some("names starting with \"amq.\" are reserved by RabbitMQ")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidQueueName {
                name: name.to_owned(),
                reason: reason.to_owned(),
            }),
            None => Ok(QueueName(name.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Waits between reconnection attempts: `initial`, doubled each failure, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl ReconnectPolicy {
    /// The wait before attempt `failures + 1`.
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.min(31));
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// kombu's Redis transport default: a message unacknowledged this long
/// is given to another consumer.
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(3600);

/// Configuration of the consumer pool.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Which transport, and where.
    pub url: BrokerUrl,
    /// Every pool thread consumes from all of these.
    pub queues: Vec<QueueName>,
    /// Pool threads; each runs one task at a time (upstream: CPU count).
    pub threads: NonZeroUsize,
    /// Unacknowledged messages per consumer (Celery's prefetch multiplier, 4).
    pub prefetch: NonZeroU16,
    pub reconnect: ReconnectPolicy,
    /// For the TCP connect and the AMQP handshake.
    pub connect_timeout: Duration,
    /// Redis transport only (kombu's `visibility_timeout`): how long after
    /// its delivery an unacknowledged message counts as abandoned by a dead
    /// consumer and goes back to its queue. Must exceed the longest task.
    pub visibility_timeout: Duration,
}

impl BrokerConfig {
    /// Upstream's defaults: both RSTUF queues, one thread per CPU, prefetch
    /// 4, kombu's visibility timeout.
    pub fn new(url: impl Into<BrokerUrl>) -> BrokerConfig {
        BrokerConfig {
            url: url.into(),
            queues: [QueueName::METADATA_REPOSITORY, QueueName::RSTUF_INTERNALS]
                .map(|q| QueueName(q.to_owned()))
                .to_vec(),
            threads: std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            prefetch: NonZeroU16::MIN.saturating_add(3), // 4, Celery's default multiplier
            reconnect: ReconnectPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::parse_broker_url;

    #[test]
    fn queue_names() {
        assert_eq!(
            QueueName::new("rstuf_internals").unwrap().as_str(),
            "rstuf_internals"
        );
        assert_eq!(
            QueueName::new(&"q".repeat(255)).unwrap().as_str().len(),
            255
        );
        let reason = |name: &str| QueueName::new(name).unwrap_err().to_string();
        assert_eq!(reason(""), "queue name \"\" is invalid: it is empty");
        assert_eq!(
            reason(&"q".repeat(256)),
            format!(
                "queue name {:?} is invalid: it is longer than 255 bytes",
                "q".repeat(256)
            )
        );
        assert_eq!(
            reason("amq.gen-1"),
            "queue name \"amq.gen-1\" is invalid: names starting with \"amq.\" are reserved by RabbitMQ"
        );
    }

    #[test]
    fn reconnect_delays_double_up_to_the_cap() {
        let policy = ReconnectPolicy {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        };
        let delays: Vec<u64> = (0..9).map(|n| policy.delay(n).as_millis() as u64).collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(policy.delay(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn defaults_are_upstreams() {
        let url = parse_broker_url("amqp://guest:guest@rabbitmq:5672//").unwrap();
        let config = BrokerConfig::new(url);
        assert_eq!(config.visibility_timeout, Duration::from_secs(3600));
        let queues: Vec<&str> = config.queues.iter().map(QueueName::as_str).collect();
        assert_eq!(queues, ["metadata_repository", "rstuf_internals"]);
        assert_eq!(config.prefetch.get(), 4);
        assert_eq!(
            config.threads,
            std::thread::available_parallelism().unwrap()
        );
    }
}
