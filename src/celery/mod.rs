//! Celery protocol 2 task messages, transport-neutral and pure: decoding
//! what the API and beat publish, the two typed tasks this worker runs, and
//! encoding the sub-task a running task publishes.
//!
//! Facts come from `shared/spec/celery-wire.md` §1–§3 and the captured
//! `vectors/celery/amqp-*.json`; every encoder here is byte-compared with
//! those captures. The JSON writer ([`pyjson`]) is shared with the result
//! backend, which must also write exactly what Python writes.

pub mod error;
pub mod message;
pub mod publish;
pub mod pyjson;
pub mod saferepr;
pub mod task;
pub mod types;

pub use error::Error;
pub use message::{Embed, Parent, RawMessage, TaskHeaders, TaskMessage};
pub use publish::{OutgoingHeaders, OutgoingMessage, Properties, Publisher};
pub use task::Task;
pub use types::{TaskId, TaskName};
