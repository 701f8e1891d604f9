//! Connecting, and declaring queues exactly as Celery does.
//!
//! The socket is always opened here, not by amiquip: its own connect has
//! no timeout, and its errors carry the whole URL, password included.
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use amiquip::{
    Channel, Connection, ConnectionTuning, ExchangeDeclareOptions, ExchangeType, FieldTable,
    IoStream, QueueDeclareOptions,
};

use super::{AmqpUrl, Error, QueueName};

/// Opens an AMQP connection, over TLS for `amqps://`.
pub(crate) fn connect(url: &AmqpUrl, timeout: Duration) -> Result<Connection, Error> {
    let tcp = tcp_connect(url, timeout)?;
    match url.tls() {
        true => super::tls::connect(url, tcp, timeout),
        false => login(url, nonblocking(url, tcp)?, timeout),
    }
}

/// A TCP connection with `timeout` for connecting, reading and writing.
pub(crate) fn tcp_connect(url: &AmqpUrl, timeout: Duration) -> Result<TcpStream, Error> {
    let addrs = (url.host(), url.port())
        .to_socket_addrs()
        .map_err(|e| unreachable(url, "resolving the host", e.to_string()))?;
    let mut last = format!("{} has no address", url.host());
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(tcp) => {
                tcp.set_read_timeout(Some(timeout))
                    .and_then(|()| tcp.set_write_timeout(Some(timeout)))
                    // A task's few small frames each wait for an ACK
                    // otherwise: Nagle's algorithm meets delayed ACKs, 40 ms.
                    .and_then(|()| tcp.set_nodelay(true))
                    .map_err(|e| unreachable(url, "connecting", e.to_string()))?;
                return Ok(tcp);
            }
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(unreachable(url, "connecting", last))
}

/// The socket as amiquip's event loop needs it: non-blocking, for mio.
pub(crate) fn nonblocking(url: &AmqpUrl, tcp: TcpStream) -> Result<mio::net::TcpStream, Error> {
    tcp.set_nonblocking(true)
        .and_then(|()| mio::net::TcpStream::from_stream(tcp))
        .map_err(|e| unreachable(url, "connecting", e.to_string()))
}

/// AMQP's handshake and login on an open stream.
pub(crate) fn login<S: IoStream>(
    url: &AmqpUrl,
    stream: S,
    timeout: Duration,
) -> Result<Connection, Error> {
    Connection::insecure_open_stream(stream, url.options(timeout), ConnectionTuning::default())
        .map_err(|e| {
            Error::broker(
                url,
                "logging in",
                "check that the URL's user, password and vhost are right",
                e,
            )
        })
}

fn unreachable(url: &AmqpUrl, action: &str, detail: String) -> Error {
    Error::Broker {
        broker: url.to_string(),
        action: action.to_owned(),
        hint: "check that RabbitMQ is running and reachable at this address",
        detail,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::parse_broker_url;

    #[test]
    fn sockets_send_small_frames_at_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = parse_broker_url(&format!("amqp://127.0.0.1:{port}"))
            .unwrap()
            .into_amqp()
            .unwrap();
        let tcp = tcp_connect(&url, Duration::from_secs(5)).unwrap();
        assert!(tcp.nodelay().unwrap());
    }
}
