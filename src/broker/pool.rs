//! The consumer pool: N OS threads, each with its own connection, channel
//! and one consumer per queue, running one handler at a time.
//!
//! Each thread owns a whole connection so that it reconnects on its own: a
//! thread busy with a long task when RabbitMQ goes away finishes it (its ack
//! then fails and RabbitMQ redelivers the message), while idle threads are
//! already back. amiquip has no reconnection, so every thread loops over
//! connect → declare → consume, waiting (doubling, capped) between failures.
use std::panic::{catch_unwind, AssertUnwindSafe};

use amiquip::{Channel, Connection, Consumer, ConsumerMessage, ConsumerOptions};
use crossbeam_channel::Select;
use log::{debug, error, info, warn};

use super::shutdown::POLL;
use super::topology::{connect, declare_queue, open_channel};
use super::{quarantine, BrokerConfig, Delivery, Disposition, Error, QueueName, Shutdown};

/// Why a connection's session ended.
enum SessionEnd {
    /// A stop was requested and every consumer was cancelled.
    Stopped,
    Lost {
        /// The session got as far as consuming, so the broker was fine for a while.
        consumed: bool,
        reason: String,
    },
}

/// Consumes from `config.queues` on `config.threads` threads until
/// `shutdown` is requested, handing every message to `handler` and settling
/// it with the returned [`Disposition`] once the handler returns. Then it
/// cancels the consumers, lets running handlers finish and settle, closes
/// the connections and returns. Messages prefetched but not started go back
/// to their queue.
///
/// Never gives up on the broker: connection failures are logged and retried.
/// A handler that panics has its message rejected; a thread that panics
/// elsewhere is restarted. Errs only when there is nothing to consume or
/// a thread cannot be started (the others are then stopped).
pub fn run<H>(config: &BrokerConfig, shutdown: &Shutdown, handler: H) -> Result<(), Error>
where
    H: Fn(Delivery) -> Disposition + Sync,
{
    if config.queues.is_empty() {
        return Err(Error::NoQueues);
    }
    let handler = &handler;
    std::thread::scope(|scope| {
        for slot in 0..config.threads.get() {
            let spawned = std::thread::Builder::new()
                .name(format!("broker-{slot}"))
                .spawn_scoped(scope, move || supervise(slot, config, shutdown, handler));
            if let Err(e) = spawned {
                shutdown.request();
                return Err(Error::Thread(e));
            }
        }
        Ok(())
    })
}

/// Runs sessions one after another until a stop; restarts after a panic.
fn supervise<H>(slot: usize, config: &BrokerConfig, shutdown: &Shutdown, handler: &H)
where
    H: Fn(Delivery) -> Disposition + Sync,
{
    let mut failures = 0;
    while !shutdown.is_requested() {
        let end = catch_unwind(AssertUnwindSafe(|| {
            session(slot, config, shutdown, handler)
        }))
        .unwrap_or_else(|panic| {
            error!(
                "broker thread {slot}: crashed ({}); starting it again",
                panic_text(&*panic)
            );
            lost(false, "recovering from a crash".into())
        });
        let (consumed, reason) = match end {
            SessionEnd::Stopped => break,
            SessionEnd::Lost { consumed, reason } => (consumed, reason),
        };
        if shutdown.is_requested() {
            warn!("broker thread {slot}: {reason}");
            break;
        }
        if consumed {
            failures = 0;
        }
        let wait = config.reconnect.delay(failures);
        failures = failures.saturating_add(1);
        crate::metrics::broker_reconnect();
        warn!(
            "broker thread {slot}: {reason}; reconnecting to {} in {wait:?} (attempt {failures})",
            config.url
        );
        shutdown.sleep(wait);
    }
    let queues: Vec<&str> = config.queues.iter().map(QueueName::as_str).collect();
    info!("broker thread {slot} ({}): stopped", queues.join(", "));
}

/// One connection, from connect to close.
fn session<H>(slot: usize, config: &BrokerConfig, shutdown: &Shutdown, handler: &H) -> SessionEnd
where
    H: Fn(Delivery) -> Disposition + Sync,
{
    let mut connection = match connect(&config.url, config.connect_timeout) {
        Ok(connection) => connection,
        Err(e) => return lost(false, e.to_string()),
    };
    let end = match open_and_declare(config, &mut connection) {
        Ok(channel) => serve_channel(slot, config, channel, shutdown, handler),
        Err(e) => lost(false, e.to_string()),
    };
    match connection.close() {
        Err(amiquip::Error::MalformedFrame) => {
            quarantine_unparsable(slot, config);
            lost(true, "a message could not be parsed".into())
        }
        Err(e) if matches!(end, SessionEnd::Stopped) => {
            debug!("broker thread {slot}: closing the connection: {e}");
            end
        }
        _ => end,
    }
}

fn open_and_declare(config: &BrokerConfig, connection: &mut Connection) -> Result<Channel, Error> {
    let channel = open_channel(&config.url, connection)?;
    for queue in &config.queues {
        declare_queue(&config.url, &channel, queue)?;
    }
    // global=false: a limit per consumer. RabbitMQ 4 refuses global QoS,
    // and per-consumer is what RabbitMQ documents for new clients.
    channel
        .qos(0, config.prefetch.get(), false)
        .map_err(|e| Error::broker(&config.url, "setting the prefetch count (basic.qos)", "", e))?;
    Ok(channel)
}

fn serve_channel<H>(
    slot: usize,
    config: &BrokerConfig,
    channel: Channel,
    shutdown: &Shutdown,
    handler: &H,
) -> SessionEnd
where
    H: Fn(Delivery) -> Disposition + Sync,
{
    let end = consume(slot, config, &channel, shutdown, handler);
    if let Err(e) = channel.close() {
        debug!("broker thread {slot}: closing the channel: {e}");
    }
    end
}

fn consume<H>(
    slot: usize,
    config: &BrokerConfig,
    channel: &Channel,
    shutdown: &Shutdown,
    handler: &H,
) -> SessionEnd
where
    H: Fn(Delivery) -> Disposition + Sync,
{
    let mut consumers = Vec::with_capacity(config.queues.len());
    for queue in &config.queues {
        match channel.basic_consume(queue.as_str(), ConsumerOptions::default()) {
            Ok(consumer) => consumers.push((queue, consumer)),
            Err(e) => return lost(false, format!("cannot consume from queue {queue}: {e}")),
        }
    }
    info!(
        "broker thread {slot}: consuming {} from {} (prefetch {} per queue)",
        config
            .queues
            .iter()
            .map(QueueName::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        config.url,
        config.prefetch
    );
    let consuming = crate::metrics::Consuming::start(consumers.len());
    let end = match deliver_until_stop(channel, &consumers, shutdown, handler) {
        Ok(()) => SessionEnd::Stopped,
        Err(reason) => lost(true, reason),
    };
    drop(consuming);
    for (queue, consumer) in &consumers {
        if let Err(e) = consumer.cancel() {
            debug!("broker thread {slot}: cancelling the consumer of {queue}: {e}");
        }
    }
    end
}

/// Ok when a stop was requested; Err(reason) when the channel or connection went away.
fn deliver_until_stop<H>(
    channel: &Channel,
    consumers: &[(&QueueName, Consumer)],
    shutdown: &Shutdown,
    handler: &H,
) -> Result<(), String>
where
    H: Fn(Delivery) -> Disposition + Sync,
{
    let mut select = Select::new();
    for (_, consumer) in consumers {
        select.recv(consumer.receiver());
    }
    while !shutdown.is_requested() {
        // A timeout lets the loop notice a stop request while idle.
        let Ok(ready) = select.select_timeout(POLL) else {
            continue;
        };
        let (queue, consumer) = &consumers[ready.index()];
        match ready.recv(consumer.receiver()) {
            Ok(ConsumerMessage::Delivery(delivery)) => handle(channel, queue, delivery, handler)?,
            Ok(other) => return Err(consumer_ended(queue, other)),
            Err(_) => return Err("the connection broke".into()),
        }
    }
    Ok(())
}

fn consumer_ended(queue: &QueueName, message: ConsumerMessage) -> String {
    match message {
        ConsumerMessage::ServerClosedConnection(e) => {
            format!("RabbitMQ closed the connection: {e}")
        }
        ConsumerMessage::ServerClosedChannel(e) => format!("RabbitMQ closed the channel: {e}"),
        ConsumerMessage::ServerCancelled => {
            format!("RabbitMQ cancelled the consumer of queue {queue} (queue deleted?)")
        }
        other => format!("the consumer of queue {queue} ended ({other:?})"),
    }
}

/// Runs the handler, then settles the delivery as it says. A failed settle
/// means the channel is gone: RabbitMQ will redeliver, and the caller reconnects.
fn handle<H>(
    channel: &Channel,
    queue: &QueueName,
    mut raw: amiquip::Delivery,
    handler: &H,
) -> Result<(), String>
where
    H: Fn(Delivery) -> Disposition + Sync,
{
    let _in_use = crate::metrics::InUse::start();
    let delivery = Delivery::take_from(queue, &mut raw);
    let tag = delivery.delivery_tag;
    debug!(
        "queue {queue}: delivery {tag}{}",
        if delivery.redelivered {
            " (redelivered)"
        } else {
            ""
        }
    );
    let disposition =
        catch_unwind(AssertUnwindSafe(|| handler(delivery))).unwrap_or_else(|panic| {
            error!(
                "queue {queue}: the handler panicked on delivery {tag} ({}); rejecting the message",
                panic_text(&*panic)
            );
            Disposition::Reject
        });
    let settled = match disposition {
        Disposition::Ack => raw.ack(channel),
        Disposition::Reject => raw.reject(channel, false),
        Disposition::Requeue => raw.reject(channel, true),
    };
    settled.map_err(|e| {
        format!(
            "could not {disposition:?} delivery {tag} of queue {queue} ({e}); RabbitMQ will \
             deliver it again"
        )
    })
}

/// The connection died on a message amiquip cannot parse; drop such
/// messages so the next connection does not die the same way.
fn quarantine_unparsable(slot: usize, config: &BrokerConfig) {
    // Deep enough to reach a message that was in flight on any thread.
    let per_queue = u32::try_from(config.threads.get())
        .unwrap_or(u32::MAX)
        .saturating_mul(u32::from(config.prefetch.get()))
        .saturating_add(1);
    warn!(
        "broker thread {slot}: a message could not be parsed; checking the first {per_queue} \
         messages of each queue"
    );
    match quarantine::sweep(
        &config.url,
        &config.queues,
        per_queue,
        config.connect_timeout,
    ) {
        Ok(n) => info!("broker thread {slot}: rejected {n} unparsable message(s)"),
        Err(e) => error!("broker thread {slot}: {e}"),
    }
}

fn lost(consumed: bool, reason: String) -> SessionEnd {
    SessionEnd::Lost { consumed, reason }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}
