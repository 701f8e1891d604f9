//! Celery's Redis transport (kombu's `redis://`), consumer side: what a
//! Celery worker does with a Redis broker, so the RSTUF API's Celery client
//! can publish to it unchanged and Python and Rust workers can share it.
//!
//! How kombu lays a queue out in Redis, and why this module follows it to
//! the command (facts from `shared/spec/celery-wire.md` §4 and kombu 5.6.2):
//! - A queue is a Redis list (plus `<queue>\x06\x16<3|6|9>` lists for
//!   priorities); publishers `LPUSH` a JSON envelope whose body is base64,
//!   consumers `BRPOP` every list of their queues with a one-second timeout.
//! - Redis has no acknowledgements, so right after popping a message the
//!   consumer records it in `unacked`/`unacked_index` and removes it once
//!   the handler is done (`unacked`). A requeue pushes it back behind the
//!   waiting messages. Between the pop and that record a crash loses the
//!   message; kombu accepts that window and so do we.
//! - A consumer that dies leaves its messages recorded. Every consumer looks
//!   for records older than the visibility timeout (under `unacked_mutex`,
//!   redis-py's lock protocol, so one consumer at a time, Python or Rust)
//!   and puts those messages back at the head of their list, marked
//!   redelivered. A task running longer than the visibility timeout is
//!   therefore delivered twice: keep the timeout above the longest task.
//! - Bindings (`_kombu.binding.<queue>`) are declared as Celery declares
//!   them; they route restored messages that came through a named exchange.
//!
//! Threads, reconnection with backoff, crash isolation and the handler
//! contract are the AMQP pool's (`supervise`): each thread has its own
//! connection and one message at a time (Redis has no prefetch; a message
//! stays in its list until a free thread pops it).
mod consumer;
mod envelope;
mod unacked;

use std::time::Duration;

use super::supervise::run_sessions;
use super::{BrokerConfig, Delivery, Disposition, Error, RedisUrl, Shutdown};

/// Consumes `config.queues` from the Redis broker at `url` until `shutdown`;
/// see [`crate::broker::run`].
pub(crate) fn run<H>(
    url: &RedisUrl,
    config: &BrokerConfig,
    shutdown: &Shutdown,
    handler: H,
) -> Result<(), Error>
where
    H: Fn(Delivery) -> Disposition + Sync,
{
    let info = url.connection_info();
    run_sessions(config, shutdown, |slot| {
        consumer::session(slot, &info, config, shutdown, &handler)
    })
}

/// Connects and pings: what `rstuf-worker check` reports.
pub(crate) fn check(url: &RedisUrl, timeout: Duration) -> Result<(), Error> {
    let client = redis::Client::open(url.connection_info())
        .map_err(|e| Error::redis(url, "opening a connection", e))?;
    let mut connection = client
        .get_connection_with_timeout(timeout)
        .map_err(|e| Error::redis(url, "connecting", e))?;
    redis::cmd("PING")
        .query::<String>(&mut connection)
        .map(drop)
        .map_err(|e| Error::redis(url, "PING", e))
}
