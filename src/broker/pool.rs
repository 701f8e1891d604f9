//! The consumer pool: N OS threads, each with its own connection, channel
//! and one consumer per queue, running one handler at a time.
//!
//! Each thread owns a whole connection so that it reconnects on its own: a
//! thread busy with a long task when RabbitMQ goes away finishes it (its ack
//! then fails and RabbitMQ redelivers the message), while idle threads are
//! already back. amiquip has no reconnection, so every thread loops over
//! connect → declare → consume, waiting (doubling, capped) between failures.
use amiquip::{Channel, Connection, Consumer, ConsumerMessage, ConsumerOptions};
use crossbeam_channel::Select;
use log::{debug, error, info, warn};

use super::shutdown::POLL;
use super::supervise::{dispatch, lost, queue_list, run_sessions, SessionEnd};
use super::topology::{connect, declare_queue, open_channel};
use super::{quarantine, AmqpUrl, BrokerConfig, Delivery, Disposition, Error, QueueName, Shutdown};

/// The AMQP side of [`crate::broker::run`].
pub(crate) fn run<H>(
    url: &AmqpUrl,
    config: &BrokerConfig,
    shutdown: &Shutdown,
    handler: H,
) -> Result<(), Error>
where
    H: Fn(Delivery) -> Disposition + Sync,
{
    let gate = quarantine::Gate::default();
    run_sessions(config, shutdown, |slot| {
        session(slot, url, config, shutdown, &gate, &handler)
    })
}

/// One connection, from connect to close.
fn session<H>(
    slot: usize,
    url: &AmqpUrl,
    config: &BrokerConfig,
    shutdown: &Shutdown,
    gate: &quarantine::Gate,
    handler: &H,
) -> SessionEnd
where
    H: Fn(Delivery) -> Disposition + Sync,
{
    gate.pass();
    let mut connection = match connect(url, config.connect_timeout) {
        Ok(connection) => connection,
        Err(e) => return lost(false, e.to_string()),
    };
    let end = match open_and_declare(url, config, &mut connection) {
        Ok(channel) => serve_channel(slot, config, channel, shutdown, handler),
        Err(e) => lost(false, e.to_string()),
    };
    match connection.close() {
        Err(amiquip::Error::MalformedFrame) => {
            quarantine_unparsable(slot, url, config, gate);
            lost(true, "a message could not be parsed".into())
        }
        Err(e) if matches!(end, SessionEnd::Stopped) => {
            debug!("broker thread {slot}: closing the connection: {e}");
            end
        }
        _ => end,
    }
}

fn open_and_declare(
    url: &AmqpUrl,
    config: &BrokerConfig,
    connection: &mut Connection,
) -> Result<Channel, Error> {
    let channel = open_channel(url, connection)?;
    for queue in &config.queues {
        declare_queue(url, &channel, queue)?;
    }
    // global=false: a limit per consumer. RabbitMQ 4 refuses global QoS,
    // and per-consumer is what RabbitMQ documents for new clients.
    channel
        .qos(0, config.prefetch.get(), false)
        .map_err(|e| Error::broker(url, "setting the prefetch count (basic.qos)", "", e))?;
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
        queue_list(&config.queues),
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
    let delivery = Delivery::take_from(queue, &mut raw);
    let tag = delivery.delivery_tag.clone();
    debug!(
        "queue {queue}: delivery {tag}{}",
        if delivery.redelivered {
            " (redelivered)"
        } else {
            ""
        }
    );
    let disposition = dispatch(delivery, handler);
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
fn quarantine_unparsable(
    slot: usize,
    url: &AmqpUrl,
    config: &BrokerConfig,
    gate: &quarantine::Gate,
) {
    let broke_at = std::time::Instant::now();
    // Deep enough to reach a message that was in flight on any thread.
    let per_queue = u32::try_from(config.threads.get())
        .unwrap_or(u32::MAX)
        .saturating_mul(u32::from(config.prefetch.get()))
        .saturating_add(1);
    warn!(
        "broker thread {slot}: a message could not be parsed; checking the first {per_queue} \
         messages of each queue"
    );
    match gate.sweep(
        broke_at,
        url,
        &config.queues,
        per_queue,
        config.connect_timeout,
    ) {
        Ok(n) => info!("broker thread {slot}: rejected {n} unparsable message(s)"),
        Err(e) => error!("broker thread {slot}: {e}"),
    }
}
