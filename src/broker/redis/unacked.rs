//! kombu's acknowledgement emulation, command for command, so Python and
//! Rust consumers of one Redis database can settle and rescue each other's
//! messages.
//!
//! Redis lists have no acknowledgements: `BRPOP` removes a message for
//! good. kombu therefore records every delivered message in the `unacked`
//! hash (tag → `[envelope, exchange, routing_key]`) and the `unacked_index`
//! sorted set (tag → delivery time) right after popping it, and removes
//! both entries on ack or reject. Whatever stays there longer than the
//! visibility timeout belonged to a consumer that died, and any consumer
//! that holds the `unacked_mutex` puts it back into its list.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::{Connection, RedisResult, Script};

use super::envelope::{binding_key, bound_queue, list_for, parse_unacked, Envelope, Route};
use crate::celery::pyjson::float_repr;
use crate::lock::RELEASE_SCRIPT;

const UNACKED: &str = "unacked";
const UNACKED_INDEX: &str = "unacked_index";
const UNACKED_MUTEX: &str = "unacked_mutex";
/// kombu's `unacked_mutex_expire`: a restorer that dies frees the mutex after this.
const MUTEX_EXPIRE: Duration = Duration::from_secs(300);

/// Where a restored message goes in its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// `RPUSH`: popped next (kombu's restore of abandoned messages).
    Next,
    /// `LPUSH`: behind everything waiting (kombu's requeue, `leftmost=True`).
    Last,
}

/// What restoring one tag did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Restored {
    /// Pushed to these lists (one per queue its route leads to).
    To(Vec<String>),
    /// Nothing recorded under the tag any more: acknowledged meanwhile.
    Gone,
    /// The recorded entry was unreadable or routes nowhere; it was removed.
    Dropped(String),
}

/// Records a message just popped, in one MULTI/EXEC as kombu does.
pub(crate) fn register(c: &mut Connection, tag: &str, entry: &[u8]) -> RedisResult<()> {
    redis::pipe()
        .atomic()
        .cmd("ZADD")
        .arg(UNACKED_INDEX)
        .arg(float_repr(unix_now()))
        .arg(tag)
        .ignore()
        .cmd("HSET")
        .arg(UNACKED)
        .arg(tag)
        .arg(entry)
        .ignore()
        .query(c)
}

/// Ack, and reject without requeue: forget the message.
pub(crate) fn remove(c: &mut Connection, tag: &str) -> RedisResult<()> {
    redis::pipe()
        .atomic()
        .cmd("ZREM")
        .arg(UNACKED_INDEX)
        .arg(tag)
        .ignore()
        .cmd("HDEL")
        .arg(UNACKED)
        .arg(tag)
        .ignore()
        .query(c)
}

/// kombu's `restore_by_tag`: in one transaction watching `unacked`, remove
/// both entries and push the envelope, marked redelivered, back to the
/// list its route and priority lead to. Safe to repeat: a second run finds
/// nothing recorded.
pub(crate) fn restore(c: &mut Connection, tag: &str, place: Place) -> RedisResult<Restored> {
    redis::transaction(c, &[UNACKED], |c, pipe| {
        let entry: Option<Vec<u8>> = redis::cmd("HGET").arg(UNACKED).arg(tag).query(c)?;
        pipe.cmd("ZREM").arg(UNACKED_INDEX).arg(tag).ignore();
        pipe.cmd("HDEL").arg(UNACKED).arg(tag).ignore();
        let restored = match entry.map(|bytes| parse_unacked(&bytes)) {
            None => Restored::Gone,
            Some(Err(reason)) => Restored::Dropped(format!("its unacked entry is {reason}")),
            Some(Ok((mut envelope, route))) => {
                envelope.mark_redelivered();
                push_back(c, pipe, &envelope, &route, place)?
            }
        };
        let done: Option<()> = pipe.query(c)?;
        Ok(done.map(|()| restored))
    })
}

/// Queues the pushes on `pipe`; a route that reaches no queue is kombu's
/// undeliverable message, dropped.
fn push_back(
    c: &mut Connection,
    pipe: &mut redis::Pipeline,
    envelope: &Envelope,
    route: &Route,
    place: Place,
) -> RedisResult<Restored> {
    let queues = destinations(c, route)?;
    if queues.is_empty() {
        return Ok(Restored::Dropped(format!(
            "exchange {:?} routes {:?} to no queue",
            route.exchange, route.routing_key
        )));
    }
    let bytes = envelope.to_bytes();
    let lists: Vec<String> = queues
        .iter()
        .map(|queue| list_for(queue, envelope.priority()))
        .collect();
    for list in &lists {
        let push = match place {
            Place::Next => "RPUSH",
            Place::Last => "LPUSH",
        };
        pipe.cmd(push).arg(list).arg(&bytes).ignore();
    }
    Ok(Restored::To(lists))
}

/// kombu's `_lookup`: the default exchange routes to the queue named by
/// the routing key; a named one through its recorded bindings (Celery's are
/// direct).
fn destinations(c: &mut Connection, route: &Route) -> RedisResult<Vec<String>> {
    if route.exchange.is_empty() {
        return Ok(vec![route.routing_key.clone()]);
    }
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(binding_key(&route.exchange))
        .query(c)?;
    Ok(members
        .iter()
        .filter_map(|member| bound_queue(member, &route.routing_key))
        .map(str::to_owned)
        .collect())
}

/// kombu's `restore_visible`: if no other consumer is at it (`unacked_mutex`,
/// redis-py's lock protocol), restores every message delivered longer than
/// `visibility_timeout` ago. `None` when another consumer holds the mutex.
pub(crate) fn restore_visible(
    c: &mut Connection,
    visibility_timeout: Duration,
    token: &str,
) -> RedisResult<Option<Vec<(String, Restored)>>> {
    let taken: Option<String> = redis::cmd("SET")
        .arg(UNACKED_MUTEX)
        .arg(token)
        .arg("NX")
        .arg("PX")
        .arg(MUTEX_EXPIRE.as_millis().to_string())
        .query(c)?;
    if taken.is_none() {
        return Ok(None);
    }
    let restored = restore_older_than(c, unix_now() - visibility_timeout.as_secs_f64());
    let released: RedisResult<i64> = Script::new(RELEASE_SCRIPT)
        .key(UNACKED_MUTEX)
        .arg(token)
        .invoke(c);
    let restored = restored?;
    released?;
    Ok(Some(restored))
}

fn restore_older_than(c: &mut Connection, ceiling: f64) -> RedisResult<Vec<(String, Restored)>> {
    let due: Vec<(String, f64)> = redis::cmd("ZREVRANGEBYSCORE")
        .arg(UNACKED_INDEX)
        .arg(float_repr(ceiling))
        .arg(0)
        .arg("WITHSCORES")
        .query(c)?;
    due.into_iter()
        .map(|(tag, _)| {
            let restored = restore(c, &tag, Place::Next)?;
            Ok((tag, restored))
        })
        .collect()
}

/// Python's `time.time()`.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
