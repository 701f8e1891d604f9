//! Connecting, and declaring queues exactly as Celery does.
use std::time::Duration;

use amiquip::{
    Channel, Connection, ExchangeDeclareOptions, ExchangeType, FieldTable, QueueDeclareOptions,
};

use super::{AmqpUrl, Error, QueueName};

pub(crate) fn connect(url: &AmqpUrl, timeout: Duration) -> Result<Connection, Error> {
    if url.tls() {
        return super::tls::connect(url, timeout);
    }
    Connection::insecure_open(&url.amiquip_url(timeout)).map_err(|e| {
        Error::broker(
            url,
            "connecting",
            "check that RabbitMQ is running and that the URL's user, password and vhost are right",
            e,
        )
    })
}

pub(crate) fn open_channel(url: &AmqpUrl, connection: &mut Connection) -> Result<Channel, Error> {
    connection
        .open_channel(None)
        .map_err(|e| Error::broker(url, "opening a channel", "", e))
}

/// Celery's three declarations for a task queue: a durable direct exchange
/// named like the queue, the durable queue, and the binding with the queue
/// name as routing key, all without arguments. RabbitMQ closes the channel
/// (PRECONDITION_FAILED) of whoever declares second with any other
/// attribute, so the Python API's publishes depend on these matching.
pub(crate) fn declare_queue(
    url: &AmqpUrl,
    channel: &Channel,
    queue: &QueueName,
) -> Result<(), Error> {
    let name = queue.as_str();
    let action = format!("declaring queue \"{name}\" like Celery (durable, no arguments)");
    let failed = |e| {
        Error::broker(
            url,
            &action,
            "if the queue or exchange already exists with other attributes (not durable, \
             arguments such as x-queue-type), delete it; Celery declares it the same way",
            e,
        )
    };
    channel
        .exchange_declare(
            ExchangeType::Direct,
            name,
            ExchangeDeclareOptions {
                durable: true,
                auto_delete: false,
                internal: false,
                arguments: FieldTable::new(),
            },
        )
        .map_err(failed)?;
    channel
        .queue_declare(
            name,
            QueueDeclareOptions {
                durable: true,
                exclusive: false,
                auto_delete: false,
                arguments: FieldTable::new(),
            },
        )
        .map_err(failed)?;
    channel
        .queue_bind(name, name, name, FieldTable::new())
        .map_err(failed)
}

/// Opens and closes one connection: what `rstuf-worker check` reports.
pub(crate) fn check(url: &AmqpUrl, timeout: Duration) -> Result<(), Error> {
    let connection = connect(url, timeout)?;
    connection
        .close()
        .map_err(|e| Error::broker(url, "closing the check connection", "", e))
}
