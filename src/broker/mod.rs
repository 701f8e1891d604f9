//! RabbitMQ for the worker: the consumer pool that takes Celery task
//! messages off the queues, and the publisher that sends sub-tasks.
//!
//! Everything is blocking and thread-based (amiquip), with no async runtime.
//! The module knows AMQP, not Celery: it delivers bytes, properties and
//! headers as JSON (a [`crate::celery::RawMessage`] in a [`Delivery`]), and
//! the caller decides what they mean and whether to ack ([`Disposition`]).
//! What it guarantees for interoperability with the Python API and workers
//! sharing the broker:
//! - queues, exchanges and bindings are declared with Celery's exact
//!   attributes (see `topology`), so neither side trips PRECONDITION_FAILED;
//! - messages are acknowledged after the handler returns (acks_late);
//! - published messages carry Celery's properties and header types.
//!
//! Typical wiring in `main`:
//! ```no_run
//! use rstuf_worker::broker::{self, BrokerConfig, Disposition, Shutdown};
//! # fn main() -> Result<(), broker::Error> {
//! let url = broker::parse_broker_url("guest:guest@rabbitmq:5672")?.into_amqp()?;
//! let shutdown = Shutdown::new();
//! shutdown.install_signal_handlers()?;
//! broker::run(&BrokerConfig::new(url), &shutdown, |delivery| {
//!     let _message = delivery.message; // headers, content type/encoding, correlation id, body
//!     Disposition::Ack
//! })
//! # }
//! ```

mod config;
mod delivery;
pub mod error;
mod fields;
mod pool;
mod publisher;
mod quarantine;
mod shutdown;
mod topology;
mod url;

pub use config::{BrokerConfig, QueueName, ReconnectPolicy};
pub use delivery::{Delivery, Disposition};
pub use error::Error;
pub use pool::run;
pub use publisher::Publisher;
pub use shutdown::Shutdown;
pub use topology::check;
pub use url::{parse_broker_url, AmqpUrl, BrokerUrl};
