//! One consumer thread's session on a Redis broker: declare the bindings,
//! then pop, record, hand over and settle one message at a time.
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use redis::ConnectionInfo;

use super::envelope::{binding_key, binding_member, pop_order, queue_of_list, Envelope};
use super::unacked::{self, Place, Restored};
use crate::broker::delivery::preview;
use crate::broker::supervise::{dispatch, lost, queue_list, SessionEnd};
use crate::broker::{BrokerConfig, Delivery, Disposition, Error, QueueName, Shutdown};
use crate::redis_link::{random_token, RedisLink};

/// kombu's `BRPOP` timeout: how long an idle thread takes to notice a stop.
const POP_TIMEOUT_SECS: u32 = 1;
/// kombu looks for abandoned messages every 100 s (a 10 s timer, every
/// tenth tick); a shorter visibility timeout is checked as often as it lasts.
const RESTORE_EVERY: Duration = Duration::from_secs(100);

/// One connection's life. Thread 0 of each pool also brings back the
/// messages of dead consumers, between pops, as kombu's event loop does.
pub(crate) fn session<H>(
    slot: usize,
    info: &ConnectionInfo,
    config: &BrokerConfig,
    shutdown: &Shutdown,
    handler: &H,
) -> SessionEnd
where
    H: Fn(Delivery) -> Disposition + Sync,
{
    let mut link = match RedisLink::new(info.clone()) {
        Ok(link) => link,
        Err(e) => return lost(false, failed(config, "opening a connection", e)),
    };
    if let Err(e) = link.run(|c| declare(c, &config.queues)) {
        return lost(false, failed(config, "declaring the queues' bindings", e));
    }
    info!(
        "broker thread {slot}: consuming {} from {} (visibility timeout {:?})",
        queue_list(&config.queues),
        config.url,
        config.visibility_timeout
    );
    let mut restorer = (slot == 0).then(|| Restorer::new(config.visibility_timeout));
    let consuming = crate::metrics::Consuming::start(config.queues.len());
    let mut order: Vec<&QueueName> = config.queues.iter().collect();
    let mut end = SessionEnd::Stopped;
    while !shutdown.is_requested() {
        if let Some(restorer) = restorer.as_mut() {
            restorer.when_due(&mut link, config);
        }
        if let Err(reason) = next(&mut link, config, &mut order, handler) {
            end = lost(true, reason);
            break;
        }
    }
    drop(consuming);
    end
}

/// kombu's `queue_bind` for Celery's per-queue direct exchange: publishers
/// do it too, and restoring through a named exchange needs it.
fn declare(c: &mut redis::Connection, queues: &[QueueName]) -> redis::RedisResult<()> {
    for queue in queues {
        redis::cmd("SADD")
            .arg(binding_key(queue.as_str()))
            .arg(binding_member(queue.as_str()))
            .exec(c)?;
    }
    Ok(())
}

/// Waits up to a second for a message and, if one comes, runs it to the end.
/// Err when Redis failed, after the retry on a new connection.
fn next<H>(
    link: &mut RedisLink,
    config: &BrokerConfig,
    order: &mut Vec<&QueueName>,
    handler: &H,
) -> Result<(), String>
where
    H: Fn(Delivery) -> Disposition + Sync,
{
    let keys = pop_order(order);
    let popped: Option<(String, Vec<u8>)> = link
        .run(|c| {
            redis::cmd("BRPOP")
                .arg(&keys)
                .arg(POP_TIMEOUT_SECS)
                .query(c)
        })
        .map_err(|e| failed(config, "waiting for messages (BRPOP)", e))?;
    let Some((list, bytes)) = popped else {
        return Ok(());
    };
    let queue = rotate(order, queue_of_list(&list));
    take(link, config, queue, &bytes, handler)
}

/// kombu's queue cycle: the queue just served goes last, so a busy queue
/// does not starve the others. Returns that queue.
fn rotate<'a>(order: &mut Vec<&'a QueueName>, name: &str) -> &'a QueueName {
    let at = order.iter().position(|q| q.as_str() == name).unwrap_or(0);
    let queue = order.remove(at);
    order.push(queue);
    queue
}

/// Records the message as unacknowledged, runs the handler, settles.
fn take<H>(
    link: &mut RedisLink,
    config: &BrokerConfig,
    queue: &QueueName,
    bytes: &[u8],
    handler: &H,
) -> Result<(), String>
where
    H: Fn(Delivery) -> Disposition + Sync,
{
    let envelope = match Envelope::parse(bytes) {
        Ok(envelope) => envelope,
        Err(reason) => {
            error!(
                "queue {queue}: dropped a message that cannot be read: {reason}; it starts {}",
                preview(bytes)
            );
            return Ok(());
        }
    };
    let tag = envelope.tag().map(str::to_owned);
    if let Some(tag) = &tag {
        let entry = envelope.unacked_entry(&envelope.route(queue.as_str()));
        if let Err(e) = link.run(|c| unacked::register(c, tag, &entry)) {
            // Off the list already: running it beats losing it outright.
            warn!(
                "queue {queue}: delivery {tag} could not be recorded as unacknowledged ({e}); \
                 running it anyway, but it is lost if this worker dies before it finishes"
            );
        }
    }
    let delivery = envelope.delivery(queue);
    debug!(
        "queue {queue}: delivery {}{}",
        delivery.delivery_tag,
        if delivery.redelivered {
            " (redelivered)"
        } else {
            ""
        }
    );
    let disposition = dispatch(delivery, handler);
    match tag {
        Some(tag) => settle(link, config, queue, &tag, disposition),
        None => Ok(()),
    }
}

/// kombu's ack, reject and requeue. A failure leaves the message recorded,
/// so after the visibility timeout it is delivered again.
fn settle(
    link: &mut RedisLink,
    config: &BrokerConfig,
    queue: &QueueName,
    tag: &str,
    disposition: Disposition,
) -> Result<(), String> {
    let settled = match disposition {
        Disposition::Ack | Disposition::Reject => link.run(|c| unacked::remove(c, tag)),
        Disposition::Requeue => link
            .run(|c| unacked::restore(c, tag, Place::Last))
            .map(|restored| log_restored(tag, &restored)),
    };
    settled.map_err(|e| {
        format!(
            "{}; delivery {tag} of queue {queue} stays unacknowledged and is delivered again \
             after the visibility timeout ({:?})",
            failed(config, &format!("settling ({disposition:?})"), e),
            config.visibility_timeout
        )
    })
}

fn log_restored(tag: &str, restored: &Restored) {
    match restored {
        Restored::To(lists) => {
            let lists: Vec<String> = lists.iter().map(|l| l.escape_debug().to_string()).collect();
            info!("delivery {tag} put back into {}", lists.join(", "));
        }
        Restored::Gone => debug!("delivery {tag} was settled already"),
        Restored::Dropped(reason) => error!("delivery {tag} dropped: {reason}"),
    }
}

/// Brings back messages whose consumer died, when due.
struct Restorer {
    visibility_timeout: Duration,
    every: Duration,
    due: Instant,
}

impl Restorer {
    fn new(visibility_timeout: Duration) -> Restorer {
        Restorer {
            visibility_timeout,
            every: visibility_timeout.min(RESTORE_EVERY),
            due: Instant::now(),
        }
    }

    /// Never ends the session: a Redis failure here shows up at the next pop.
    fn when_due(&mut self, link: &mut RedisLink, config: &BrokerConfig) {
        if Instant::now() < self.due {
            return;
        }
        self.due = Instant::now() + self.every;
        let Ok(token) = random_token() else {
            warn!("no randomness for the unacked_mutex token; not restoring this time");
            return;
        };
        let restored = link.run(|c| unacked::restore_visible(c, self.visibility_timeout, &token));
        match restored {
            Ok(Some(restored)) => {
                for (tag, restored) in &restored {
                    log_restored(tag, restored);
                }
            }
            Ok(None) => debug!("another consumer is restoring unacknowledged messages"),
            Err(e) => warn!("{}", failed(config, "restoring unacknowledged messages", e)),
        }
    }
}

fn failed(config: &BrokerConfig, action: &str, e: redis::RedisError) -> String {
    Error::redis(&config.url, action, e).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<QueueName> {
        names.iter().map(|n| QueueName::new(n).unwrap()).collect()
    }

    #[test]
    fn the_queue_served_goes_last() {
        let queues = names(&["a", "b", "c"]);
        let mut order: Vec<&QueueName> = queues.iter().collect();
        assert_eq!(rotate(&mut order, "a").as_str(), "a");
        let now: Vec<&str> = order.iter().map(|q| q.as_str()).collect();
        assert_eq!(now, ["b", "c", "a"]);
        rotate(&mut order, "c");
        let now: Vec<&str> = order.iter().map(|q| q.as_str()).collect();
        assert_eq!(now, ["b", "a", "c"]);
    }

    #[test]
    fn short_visibility_timeouts_are_checked_as_often_as_they_last() {
        assert_eq!(
            Restorer::new(Duration::from_secs(3)).every,
            Duration::from_secs(3)
        );
        assert_eq!(
            Restorer::new(Duration::from_secs(3600)).every,
            RESTORE_EVERY
        );
    }
}
