//! Publishing task messages the way Celery does: to the default exchange
//! with the queue name as routing key, persistent, typed headers.
use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use amiquip::{AmqpProperties, Channel, Confirm, Connection, Publish};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use log::warn;

use super::fields::json_to_table;
use super::topology::{connect, declare_queue, open_channel};
use super::{AmqpUrl, Error, QueueName};
use crate::celery::RawMessage;

/// Celery's `delivery_mode`: persistent, so tasks survive a broker restart.
const PERSISTENT: u8 = 2;

/// A connection for publishing, shared by all pool threads (one publish at a
/// time). It connects on first use and again after the broker went away, and
/// waits for RabbitMQ's publisher confirm, so `Ok` means the broker has the
/// message.
pub struct Publisher {
    url: AmqpUrl,
    timeout: Duration,
    link: Mutex<Option<Link>>,
}

/// A live connection with confirms enabled.
struct Link {
    // Field order: the channel closes before its connection.
    channel: Channel,
    _connection: Connection,
    confirms: Receiver<Confirm>,
    /// RabbitMQ numbers confirmed publishes 1, 2, … per channel.
    published: u64,
    /// Celery declares a queue once per connection before publishing to it.
    declared: HashSet<QueueName>,
}

impl Publisher {
    /// `timeout` bounds both connecting and waiting for the confirm.
    pub fn new(url: AmqpUrl, timeout: Duration) -> Publisher {
        Publisher {
            url,
            timeout,
            link: Mutex::new(None),
        }
    }

    /// Publishes `message` to `queue` (declared first, like Celery). When a
    /// connection kept from an earlier publish turns out to be dead, it
    /// publishes once more on a new one; a missing confirm is not retried, as
    /// the message may have arrived.
    pub fn publish(
        &self,
        queue: &QueueName,
        message: &RawMessage,
        reply_to: Option<&str>,
    ) -> Result<(), Error> {
        let properties = properties(message, reply_to)?;
        let mut link = self.link.lock().unwrap_or_else(PoisonError::into_inner);
        let reused = link.is_some();
        let result = match self.send(&mut link, queue, message, &properties) {
            Err(e @ Error::Broker { .. }) if reused => {
                warn!("{e}; publishing again on a new connection");
                *link = None;
                self.send(&mut link, queue, message, &properties)
            }
            other => other,
        };
        if result.is_err() {
            *link = None;
        }
        result
    }

    fn send(
        &self,
        link: &mut Option<Link>,
        queue: &QueueName,
        message: &RawMessage,
        properties: &AmqpProperties,
    ) -> Result<(), Error> {
        let live = match link {
            Some(live) => live,
            None => link.insert(self.connect()?),
        };
        if !live.declared.contains(queue) {
            declare_queue(&self.url, &live.channel, queue)?;
            live.declared.insert(queue.clone());
        }
        live.channel
            .basic_publish(
                "",
                Publish::with_properties(&message.body, queue.as_str(), properties.clone()),
            )
            .map_err(|e| {
                Error::broker(
                    &self.url,
                    &format!("publishing to queue \"{queue}\""),
                    "",
                    e,
                )
            })?;
        live.published += 1;
        wait_for_confirm(live, queue, self.timeout)
    }

    fn connect(&self) -> Result<Link, Error> {
        let mut connection = connect(&self.url, self.timeout)?;
        let channel = open_channel(&self.url, &mut connection)?;
        let confirms = channel
            .listen_for_publisher_confirms()
            .and_then(|confirms| channel.enable_publisher_confirms().map(|()| confirms))
            .map_err(|e| Error::broker(&self.url, "enabling publisher confirms", "", e))?;
        Ok(Link {
            channel,
            _connection: connection,
            confirms,
            published: 0,
            declared: HashSet::new(),
        })
    }
}

/// Confirms may cover several publishes (`multiple`); ours is the newest.
fn wait_for_confirm(link: &Link, queue: &QueueName, timeout: Duration) -> Result<(), Error> {
    let not_confirmed = |reason: &str| Error::NotConfirmed {
        queue: queue.to_string(),
        reason: reason.to_owned(),
    };
    loop {
        let confirm = link.confirms.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => not_confirmed(&format!("no confirm within {timeout:?}")),
            RecvTimeoutError::Disconnected => not_confirmed("the connection was lost"),
        })?;
        match confirm {
            Confirm::Ack(p) if covers(p.delivery_tag, p.multiple, link.published) => return Ok(()),
            Confirm::Nack(p) if covers(p.delivery_tag, p.multiple, link.published) => {
                return Err(not_confirmed("RabbitMQ refused it (nack)"))
            }
            // A late confirm of an earlier publish.
            _ => continue,
        }
    }
}

fn covers(tag: u64, multiple: bool, ours: u64) -> bool {
    tag == ours || (multiple && tag > ours)
}

/// Celery's properties: content type and encoding, persistent, correlation
/// id (the task id), reply_to; no priority.
fn properties(message: &RawMessage, reply_to: Option<&str>) -> Result<AmqpProperties, Error> {
    let mut props = AmqpProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_headers(json_to_table(&message.headers)?);
    if let Some(v) = short_string("content_type", message.content_type.as_deref())? {
        props = props.with_content_type(v);
    }
    if let Some(v) = short_string("content_encoding", message.content_encoding.as_deref())? {
        props = props.with_content_encoding(v);
    }
    if let Some(v) = short_string("correlation_id", message.correlation_id.as_deref())? {
        props = props.with_correlation_id(v);
    }
    if let Some(v) = short_string("reply_to", reply_to)? {
        props = props.with_reply_to(v);
    }
    Ok(props)
}

/// Properties are short strings with a one-byte length, which amq-protocol
/// would silently truncate.
fn short_string(name: &str, value: Option<&str>) -> Result<Option<String>, Error> {
    match value {
        Some(v) if v.len() > 255 => Err(Error::InvalidHeader {
            header: name.to_owned(),
            reason: "AMQP properties are limited to 255 bytes".into(),
        }),
        other => Ok(other.map(str::to_owned)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::fields::tests::{content_header, typed_table, VECTORS};
    use crate::tuf::testdata::json;
    use amiquip::AmqpValue;

    fn vector_message(vector: &serde_json::Value) -> (RawMessage, String) {
        let header = content_header(vector);
        let text = |k: &str| header[k].as_str().map(str::to_owned);
        let message = RawMessage {
            headers: super::super::fields::table_to_json(&typed_table(&header["headers"])),
            content_type: text("content_type"),
            content_encoding: text("content_encoding"),
            correlation_id: text("correlation_id"),
            body: vector["body"]
                .as_str()
                .or(vector["wire"]["body"].as_str())
                .unwrap()
                .as_bytes()
                .to_vec(),
        };
        (message, header["reply_to"].as_str().unwrap().to_owned())
    }

    #[test]
    fn properties_match_celerys() {
        // The apply_async captures: flags 0xf600 = the five properties we set.
        for rel in [VECTORS[1], VECTORS[2], VECTORS[3], VECTORS[4]] {
            let vector = json(rel);
            let header = content_header(&vector);
            assert_eq!(header["property_flags"], "0xf600", "{rel}");
            let (message, reply_to) = vector_message(&vector);
            let props = properties(&message, Some(&reply_to)).unwrap();
            assert_eq!(props.content_type().as_deref(), Some("application/json"));
            assert_eq!(props.content_encoding().as_deref(), Some("utf-8"));
            assert_eq!(*props.delivery_mode(), Some(2));
            assert_eq!(*props.priority(), None);
            assert_eq!(
                props.correlation_id().as_deref(),
                header["correlation_id"].as_str()
            );
            assert_eq!(props.reply_to().as_deref(), Some(reply_to.as_str()));
            assert_eq!(
                props.headers().as_ref(),
                Some(&typed_table(&header["headers"]))
            );
            assert_eq!(*props.message_id(), None);
            assert_eq!(*props.timestamp(), None);
        }
    }

    #[test]
    fn long_property_is_refused() {
        let message = RawMessage {
            correlation_id: Some("x".repeat(256)),
            ..RawMessage::default()
        };
        assert_eq!(
            properties(&message, None).unwrap_err().to_string(),
            "message header \"correlation_id\" cannot be sent over AMQP: AMQP properties are \
             limited to 255 bytes"
        );
    }

    #[test]
    fn headers_keep_their_types() {
        let (message, _) = vector_message(&json(VECTORS[3]));
        let props = properties(&message, None).unwrap();
        let headers = props.headers().as_ref().unwrap();
        assert_eq!(
            headers["parent_id"],
            AmqpValue::LongString("parent-task-0001".into())
        );
        assert_eq!(headers["retries"], AmqpValue::LongInt(0));
    }

    #[test]
    fn confirm_coverage() {
        assert!(covers(3, false, 3));
        assert!(!covers(2, false, 3));
        assert!(covers(5, true, 3));
        assert!(!covers(2, true, 3));
    }
}
