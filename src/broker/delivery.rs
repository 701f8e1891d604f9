//! The transport-neutral message the pool hands to its handler, and what the
//! handler answers.
use super::fields::table_to_json;
use super::QueueName;
use crate::celery::RawMessage;

/// One message taken from a queue, not yet acknowledged.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub queue: QueueName,
    /// For logs: AMQP's channel-scoped number, or the Redis envelope's
    /// `delivery_tag` (a UUID, `-` when the envelope has none).
    pub delivery_tag: String,
    /// The broker delivered it before and it was not acknowledged (crash,
    /// lost connection or `Requeue`).
    pub redelivered: bool,
    pub message: RawMessage,
    /// Why the transport could not decode the body (a Redis envelope whose
    /// body is not base64, say). The headers may still name the task, so the
    /// handler can record the failure; it must not run the task.
    pub defect: Option<String>,
}

/// The handler's verdict, carried out after it returns (Celery's acks_late).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Done (successfully or not): remove it from the queue.
    Ack,
    /// Cannot ever be handled: drop it (`basic.reject`, requeue=false).
    Reject,
    /// Try again later: put it back at the head of its queue.
    Requeue,
}

impl Delivery {
    /// Moves the body out of amiquip's delivery, which stays usable for the ack.
    pub(crate) fn take_from(queue: &QueueName, raw: &mut amiquip::Delivery) -> Delivery {
        let props = &raw.properties;
        Delivery {
            queue: queue.clone(),
            delivery_tag: raw.delivery_tag().to_string(),
            redelivered: raw.redelivered,
            message: RawMessage {
                headers: props
                    .headers()
                    .as_ref()
                    .map(table_to_json)
                    .unwrap_or_default(),
                content_type: props.content_type().clone(),
                content_encoding: props.content_encoding().clone(),
                correlation_id: props.correlation_id().clone(),
                body: std::mem::take(&mut raw.body),
            },
            defect: None,
        }
    }
}

/// The first bytes of a body for a log line, never the whole payload.
pub(crate) fn preview(body: &[u8]) -> String {
    let head = &body[..body.len().min(64)];
    format!("{:?}", String::from_utf8_lossy(head))
}
