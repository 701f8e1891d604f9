//! The broker for the worker: the consumer pool that takes Celery task
//! messages off the queues (RabbitMQ, or Celery's Redis transport in
//! `redis`), and the RabbitMQ publisher that sends sub-tasks.
//!
//! Everything is blocking and thread-based (amiquip, the redis crate), with
//! no async runtime. The module knows transports, not Celery: it delivers
//! bytes, properties and headers as JSON (a [`crate::celery::RawMessage`] in
//! a [`Delivery`]), and the caller decides what they mean and whether to ack
//! ([`Disposition`]). Both transports share the thread pool, reconnection
//! and crash isolation (`supervise`). What they guarantee for
//! interoperability with the Python API and workers sharing the broker:
//! - queues, exchanges and bindings are declared with Celery's exact
//!   attributes (see `topology`), so neither side trips PRECONDITION_FAILED;
//!   on Redis, kombu's keys and envelope are used command for command;
//! - messages are acknowledged after the handler returns (acks_late);
//! - published messages carry Celery's properties and header types.
//!
//! Typical wiring in `main`:
//! ```no_run
//! use rstuf_worker::broker::{self, BrokerConfig, Disposition, Shutdown};
//! # fn main() -> Result<(), broker::Error> {
//! let url = broker::parse_broker_url("guest:guest@rabbitmq:5672")?;
//! let shutdown = Shutdown::new();
//! shutdown.install_signal_handlers()?;
//! broker::run(&BrokerConfig::new(url), &shutdown, |delivery| {
//!     let _message = delivery.message; // headers, content type/encoding, correlation id, body
//!     Disposition::Ack
//! })
//! # }
//! ```

mod config;
pub(crate) mod delivery;
pub mod error;
mod fields;
mod pool;
mod publisher;
mod quarantine;
mod redis;
mod shutdown;
mod supervise;
mod tls;
mod topology;
mod url;

use std::time::Duration;

pub use config::{BrokerConfig, QueueName, ReconnectPolicy, DEFAULT_VISIBILITY_TIMEOUT};
pub use delivery::{Delivery, Disposition};
pub use error::Error;
pub use publisher::Publisher;
pub use shutdown::Shutdown;
pub use url::{parse_broker_url, AmqpUrl, BrokerUrl, RedisUrl};

/// Consumes from `config.queues` on `config.threads` threads until
/// `shutdown` is requested, handing every message to `handler` and settling
/// it with the returned [`Disposition`] once the handler returns. Then it
/// lets running handlers finish and settle, closes the connections and
/// returns; messages taken but not started go back to their queue.
///
/// Never gives up on the broker: connection failures are logged and retried.
/// A handler that panics has its message rejected; a thread that panics
/// elsewhere is restarted. Errs only when there is nothing to consume, the
/// URL cannot be used, or a thread cannot be started (the others are then
/// stopped).
pub fn run<H>(config: &BrokerConfig, shutdown: &Shutdown, handler: H) -> Result<(), Error>
where
    H: Fn(Delivery) -> Disposition + Sync,
{
    match &config.url {
        BrokerUrl::Amqp(url) => pool::run(url, config, shutdown, handler),
        BrokerUrl::Redis(url) => redis::run(url, config, shutdown, handler),
    }
}

/// Opens and closes one connection: what `rstuf-worker check` reports.
pub fn check(url: &BrokerUrl, timeout: Duration) -> Result<(), Error> {
    match url {
        BrokerUrl::Amqp(url) => topology::check(url, timeout),
        BrokerUrl::Redis(url) => redis::check(url, timeout),
    }
}
