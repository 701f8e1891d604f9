//! Removing messages amiquip cannot parse.
//!
//! amq-protocol (amiquip's parser) skips a property it cannot decode, such
//! as a `content_type` that is not UTF-8 (py-amqp sends bytes as they are),
//! and misreads the fields after it. When that makes the content header
//! unparsable, amiquip treats it as a broken connection: its I/O thread ends
//! with `MalformedFrame`, RabbitMQ requeues the message, and the next
//! connection receives it again, for ever. After such a failure the pool
//! looks at the head of its queues over a bare AMQP connection, with the
//! same parser (so the verdicts agree), and rejects (requeue=false) every
//! message it cannot parse. The others stay unacknowledged until the
//! connection closes, which puts them back in place (marked redelivered).
//!
//! `basic.get` only sees a message no consumer holds, and RabbitMQ pushes a
//! requeued message straight to any consumer with room. So while one thread
//! sweeps, the pool's [`Gate`] keeps every thread from reconnecting: the
//! poison kills the pool's remaining consumers one by one and then waits in
//! the queue, where the sweep finds it.
use std::io::{Read, Write};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use amq_protocol::frame::{gen_frame, parse_frame, AMQPFrame};
use amq_protocol::protocol::{basic, channel, connection, AMQPClass};
use amq_protocol::types::FieldTable;
use log::error;

use super::{AmqpUrl, Error, QueueName};

/// How much of a rejected message goes into the log.
const LOGGED_BYTES: usize = 64;
const FRAME_HEADER_LEN: usize = 7;
const CHANNEL: u16 = 1;
/// Large enough for any method frame we send: short strings are at most 255
/// bytes, and the login (user and password) is the only long string.
const SEND_BUFFER: usize = 16 * 1024;

/// How long a sweep that finds nothing retries, so that a poison message
/// held by another consumer (about to die of it) reaches the queue.
const SWEEP_PATIENCE: Duration = Duration::from_secs(10);
const SWEEP_RETRY: Duration = Duration::from_millis(100);

/// Shared by the threads of one pool: sweeps run one at a time, and no
/// thread connects while one runs.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// When a sweep last rejected something.
    last_rejection: Mutex<Option<Instant>>,
}

impl Gate {
    /// Waits while a sweep runs.
    pub(crate) fn pass(&self) {
        drop(self.lock());
    }

    /// Sweeps for the poison that broke a connection at `broke_at`, unless
    /// another thread has rejected one since; retries while nothing is found.
    /// Returns how many messages were rejected.
    pub(crate) fn sweep(
        &self,
        broke_at: Instant,
        url: &AmqpUrl,
        queues: &[QueueName],
        per_queue: u32,
        timeout: Duration,
    ) -> Result<usize, Error> {
        let mut last_rejection = self.lock();
        if last_rejection.is_some_and(|at| at >= broke_at) {
            return Ok(0);
        }
        let deadline = Instant::now() + SWEEP_PATIENCE;
        loop {
            let rejected = sweep(url, queues, per_queue, timeout)?;
            if rejected > 0 {
                *last_rejection = Some(Instant::now());
                return Ok(rejected);
            }
            if Instant::now() >= deadline {
                return Ok(0);
            }
            std::thread::sleep(SWEEP_RETRY);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Instant>> {
        // An Instant cannot be left half-written by a panic.
        self.last_rejection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Looks at up to `per_queue` messages at the head of each queue; returns how
/// many were rejected.
fn sweep(
    url: &AmqpUrl,
    queues: &[QueueName],
    per_queue: u32,
    timeout: Duration,
) -> Result<usize, Error> {
    let failed = |reason: String| Error::Quarantine {
        broker: url.to_string(),
        reason,
    };
    let mut conn = RawConnection::open(url, timeout).map_err(failed)?;
    let mut rejected = 0;
    for queue in queues {
        rejected += sweep_queue(&mut conn, queue, per_queue).map_err(failed)?;
    }
    conn.close();
    Ok(rejected)
}

fn sweep_queue(conn: &mut RawConnection, queue: &QueueName, limit: u32) -> Result<usize, String> {
    let mut rejected = 0;
    for _ in 0..limit {
        let Some(message) = conn.get(queue)? else {
            break;
        };
        if message.parsable {
            continue;
        }
        conn.send(AMQPClass::Basic(basic::AMQPMethod::Reject(basic::Reject {
            delivery_tag: message.delivery_tag,
            requeue: false,
        })))?;
        error!(
            "queue {queue}: rejected delivery {} (dropped, not requeued): its AMQP properties \
             cannot be parsed (a property that is not UTF-8?); properties start with \"{}\", \
             body starts with \"{}\"",
            message.delivery_tag,
            message.properties_start.escape_ascii(),
            message.body_start.escape_ascii()
        );
        rejected += 1;
    }
    Ok(rejected)
}

struct Fetched {
    delivery_tag: u64,
    parsable: bool,
    properties_start: Vec<u8>,
    body_start: Vec<u8>,
}

/// Just enough AMQP 0-9-1 to log in, `basic.get`, `basic.reject` and close.
struct RawConnection {
    stream: Box<dyn Stream>,
}

/// TCP, or TLS over TCP (`amqps://`).
trait Stream: Read + Write {}
impl<S: Read + Write> Stream for S {}

impl RawConnection {
    fn open(url: &AmqpUrl, timeout: Duration) -> Result<RawConnection, String> {
        let tcp = super::topology::tcp_connect(url, timeout).map_err(|e| e.to_string())?;
        let stream: Box<dyn Stream> = if url.tls() {
            Box::new(super::tls::blocking(url, tcp).map_err(|e| e.to_string())?)
        } else {
            Box::new(tcp)
        };
        let mut conn = RawConnection { stream };
        conn.handshake(url)?;
        Ok(conn)
    }

    fn handshake(&mut self, url: &AmqpUrl) -> Result<(), String> {
        self.write(&AMQPFrame::ProtocolHeader)?;
        self.expect(0, |m| {
            matches!(m, AMQPClass::Connection(connection::AMQPMethod::Start(_)))
        })?;
        self.send_on(
            0,
            AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
                client_properties: FieldTable::new(),
                mechanism: "PLAIN".into(),
                response: format!("\0{}\0{}", url.user(), url.password()),
                locale: "en_US".into(),
            })),
        )?;
        let tune = match self.next_method()? {
            (_, AMQPClass::Connection(connection::AMQPMethod::Tune(tune))) => tune,
            (_, other) => return Err(unexpected("connection.tune", &other)),
        };
        self.send_on(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: tune.channel_max,
                frame_max: tune.frame_max,
                // The sweep is short; without heartbeats nothing runs in the background.
                heartbeat: 0,
            })),
        )?;
        self.send_on(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
                virtual_host: url.vhost().into(),
                capabilities: String::new(),
                insist: false,
            })),
        )?;
        self.expect(0, |m| {
            matches!(m, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_)))
        })?;
        self.send(AMQPClass::Channel(channel::AMQPMethod::Open(
            channel::Open {
                out_of_band: String::new(),
            },
        )))?;
        self.expect(CHANNEL, |m| {
            matches!(m, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_)))
        })
    }

    /// One unacknowledged message from `queue`, or None when it is empty.
    fn get(&mut self, queue: &QueueName) -> Result<Option<Fetched>, String> {
        self.send(AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get {
            ticket: 0,
            queue: queue.as_str().into(),
            no_ack: false,
        })))?;
        let delivery_tag = match self.next_method()? {
            (_, AMQPClass::Basic(basic::AMQPMethod::GetEmpty(_))) => return Ok(None),
            (_, AMQPClass::Basic(basic::AMQPMethod::GetOk(ok))) => ok.delivery_tag,
            (_, other) => return Err(unexpected("basic.get-ok", &other)),
        };
        let header = self.read_frame()?;
        let content = ContentHeader::read(&header)?;
        Ok(Some(Fetched {
            delivery_tag,
            parsable: content.parsable,
            properties_start: content.properties_start,
            body_start: self.read_body(content.body_size)?,
        }))
    }

    /// Reads the body frames; keeps only the start, for the log.
    fn read_body(&mut self, size: u64) -> Result<Vec<u8>, String> {
        let mut start = Vec::new();
        let mut read = 0u64;
        while read < size {
            let frame = self.read_frame()?;
            let payload = payload(&frame);
            let room = LOGGED_BYTES.saturating_sub(start.len());
            start.extend_from_slice(&payload[..room.min(payload.len())]);
            read += payload.len() as u64;
        }
        Ok(start)
    }

    fn close(mut self) {
        // Best effort: RabbitMQ requeues what we hold however the socket ends.
        let _ = self.send_on(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
                reply_code: 200,
                reply_text: "quarantine sweep done".into(),
                class_id: 0,
                method_id: 0,
            })),
        );
        let _ = self.expect(0, |m| {
            matches!(m, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_)))
        });
    }

    fn send(&mut self, method: AMQPClass) -> Result<(), String> {
        self.send_on(CHANNEL, method)
    }

    fn send_on(&mut self, channel: u16, method: AMQPClass) -> Result<(), String> {
        self.write(&AMQPFrame::Method(channel, method))
    }

    fn write(&mut self, frame: &AMQPFrame) -> Result<(), String> {
        let mut buf = vec![0u8; SEND_BUFFER];
        let (_, len) = gen_frame((&mut buf, 0), frame).map_err(|e| format!("encoding: {e:?}"))?;
        self.stream
            .write_all(&buf[..len])
            .map_err(|e| format!("write: {e}"))
    }

    fn expect(&mut self, channel: u16, wanted: impl Fn(&AMQPClass) -> bool) -> Result<(), String> {
        match self.next_method()? {
            (c, method) if c == channel && wanted(&method) => Ok(()),
            (_, other) => Err(unexpected("the handshake's next step", &other)),
        }
    }

    /// The next method frame, skipping heartbeats; a close becomes an error.
    fn next_method(&mut self) -> Result<(u16, AMQPClass), String> {
        loop {
            let frame = self.read_frame()?;
            match parse_frame(&frame) {
                Ok((_, AMQPFrame::Heartbeat(_))) => continue,
                Ok((
                    _,
                    AMQPFrame::Method(_, AMQPClass::Connection(connection::AMQPMethod::Close(c))),
                )) => {
                    return Err(format!(
                        "RabbitMQ closed the connection: {} {}",
                        c.reply_code, c.reply_text
                    ))
                }
                Ok((
                    _,
                    AMQPFrame::Method(_, AMQPClass::Channel(channel::AMQPMethod::Close(c))),
                )) => {
                    return Err(format!(
                        "RabbitMQ closed the channel: {} {}",
                        c.reply_code, c.reply_text
                    ))
                }
                Ok((_, AMQPFrame::Method(ch, method))) => return Ok((ch, method)),
                Ok((_, other)) => return Err(format!("expected a method frame, got {other:?}")),
                Err(_) => return Err("unparsable method frame".into()),
            }
        }
    }

    /// One whole frame: 7-byte header, payload, frame-end byte.
    fn read_frame(&mut self) -> Result<Vec<u8>, String> {
        let mut frame = vec![0u8; FRAME_HEADER_LEN];
        self.stream
            .read_exact(&mut frame)
            .map_err(|e| format!("read: {e}"))?;
        let size = u32::from_be_bytes([frame[3], frame[4], frame[5], frame[6]]) as usize;
        frame.resize(FRAME_HEADER_LEN + size + 1, 0);
        self.stream
            .read_exact(&mut frame[FRAME_HEADER_LEN..])
            .map_err(|e| format!("read: {e}"))?;
        Ok(frame)
    }
}

/// What the sweep needs from a content header frame (7-byte frame header,
/// payload, frame-end byte), even one amiquip would choke on.
#[derive(Debug, PartialEq)]
struct ContentHeader {
    body_size: u64,
    /// The very check amiquip makes before giving up on a connection.
    parsable: bool,
    properties_start: Vec<u8>,
}

impl ContentHeader {
    fn read(frame: &[u8]) -> Result<ContentHeader, String> {
        let payload = payload(frame);
        // class (2 bytes), weight (2), body size (8), then the properties.
        let body_size = payload
            .get(4..12)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or("content header frame too short")?;
        let properties = payload.get(12..).unwrap_or_default();
        Ok(ContentHeader {
            body_size,
            parsable: matches!(parse_frame(frame), Ok((rest, AMQPFrame::Header(..))) if rest.is_empty()),
            properties_start: properties[..properties.len().min(LOGGED_BYTES)].to_vec(),
        })
    }
}

/// A frame from `read_frame` minus its header and frame-end byte.
fn payload(frame: &[u8]) -> &[u8] {
    &frame[FRAME_HEADER_LEN..frame.len() - 1]
}

fn unexpected(wanted: &str, got: &AMQPClass) -> String {
    format!("expected {wanted}, got {got:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::frame::AMQPContentHeader;
    use amq_protocol::types::AMQPValue;

    fn header_frame(content_type: &str, body_size: u64) -> Vec<u8> {
        let headers: FieldTable = [("x".to_owned(), AMQPValue::LongString("y".into()))].into();
        let properties = basic::AMQPProperties::default()
            .with_content_type(content_type.into())
            .with_headers(headers)
            .with_delivery_mode(2);
        let frame = AMQPFrame::Header(
            1,
            60,
            Box::new(AMQPContentHeader {
                class_id: 60,
                weight: 0,
                body_size,
                properties,
            }),
        );
        let mut buf = vec![0u8; SEND_BUFFER];
        let (_, len) = gen_frame((&mut buf, 0), &frame).unwrap();
        buf.truncate(len);
        buf
    }

    /// Flags 0xb000 (content_type, headers, delivery_mode), then those three.
    fn properties(content_type: &[u8]) -> Vec<u8> {
        let mut props = vec![0xb0, 0x00, content_type.len() as u8];
        props.extend_from_slice(content_type);
        props.extend_from_slice(&[0, 0, 0, 8, 1, b'x', b'S', 0, 0, 0, 1, b'y', 2]);
        props
    }

    #[test]
    fn well_formed_header_is_parsable() {
        let frame = header_frame("application/json", 163);
        let header = ContentHeader::read(&frame).unwrap();
        assert_eq!(header.body_size, 163);
        assert!(header.parsable);
        assert_eq!(header.properties_start, properties(b"application/json"));
    }

    #[test]
    fn content_type_that_is_not_utf8_is_not_parsable() {
        // What py-amqp sends for content_type=b"\xff\xfe": raw bytes, and
        // amq-protocol then misreads the headers table after it.
        let mut frame = header_frame("ab", 3);
        let at = frame.windows(2).position(|w| w == b"ab").unwrap();
        frame[at..at + 2].copy_from_slice(&[0xff, 0xfe]);
        let header = ContentHeader::read(&frame).unwrap();
        assert_eq!(header.body_size, 3);
        assert!(!header.parsable);
        assert_eq!(header.properties_start, properties(&[0xff, 0xfe]));
    }

    #[test]
    fn truncated_header_is_an_error() {
        let frame = [2u8, 0, 1, 0, 0, 0, 3, 0, 60, 0, 0xce];
        assert_eq!(
            ContentHeader::read(&frame).unwrap_err(),
            "content header frame too short"
        );
    }
}
