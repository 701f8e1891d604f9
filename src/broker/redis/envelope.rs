//! kombu's Redis message envelope and key names, pure.
//!
//! A message waits in a list as one JSON object: the body (base64), content
//! type and encoding, the Celery headers, and properties that carry the
//! `delivery_tag` (a UUID) and `delivery_info` (exchange, routing key).
//! kombu re-serialises envelopes with `json.dumps` whenever it moves them
//! (into `unacked`, back into a list), so this module does the same with
//! [`pyjson`] and an order-keeping map: what a Python worker would write is
//! what we write, byte for byte.
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{Map, Value};

use crate::broker::{Delivery, QueueName};
use crate::celery::{pyjson, RawMessage};

/// kombu's separator inside list names and binding members.
const SEP: &str = "\x06\x16";
/// kombu's priority steps: priority `p` waits in the list of the highest
/// step not above `p`; step 0 is the queue's own list.
const PRIORITY_STEPS: [u8; 4] = [0, 3, 6, 9];

/// The lists `queues`' messages wait in, in the order kombu's `BRPOP`
/// names them: step by step across all queues. Redis pops from the first
/// non-empty one, so a step-0 message of any queue goes before a step-3 one.
pub(crate) fn pop_order(queues: &[&QueueName]) -> Vec<String> {
    PRIORITY_STEPS
        .iter()
        .flat_map(|step| queues.iter().map(|q| list_for(q.as_str(), *step)))
        .collect()
}

/// The list of `queue` that a message of `priority` waits in.
pub(crate) fn list_for(queue: &str, priority: u8) -> String {
    let step = PRIORITY_STEPS
        .iter()
        .rev()
        .find(|step| **step <= priority)
        .copied()
        .unwrap_or(0);
    if step == 0 {
        queue.to_owned()
    } else {
        format!("{queue}{SEP}{step}")
    }
}

/// The queue a list belongs to (kombu: `dest.rsplit(sep, 1)[0]`).
pub(crate) fn queue_of_list(list: &str) -> &str {
    list.rsplit_once(SEP).map_or(list, |(queue, _)| queue)
}

/// The set that records an exchange's bindings.
pub(crate) fn binding_key(exchange: &str) -> String {
    format!("_kombu.binding.{exchange}")
}

/// Celery binds each queue to the direct exchange of the same name with the
/// queue name as routing key: `routing_key SEP pattern SEP queue`.
pub(crate) fn binding_member(queue: &str) -> String {
    format!("{queue}{SEP}{SEP}{queue}")
}

/// The queues a binding member routes `routing_key` to, direct-exchange style.
pub(crate) fn bound_queue<'a>(member: &'a str, routing_key: &str) -> Option<&'a str> {
    let mut parts = member.splitn(3, SEP);
    let (key, _pattern, queue) = (parts.next()?, parts.next()?, parts.next()?);
    (key == routing_key).then_some(queue)
}

/// One envelope, every field kept in its original order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Envelope(Map<String, Value>);

/// Where a message came from, as kombu keeps it next to the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub exchange: String,
    pub routing_key: String,
}

impl Envelope {
    /// Fails only when nothing at all can be read (not a JSON object).
    pub fn parse(bytes: &[u8]) -> Result<Envelope, String> {
        match serde_json::from_slice(bytes) {
            Ok(Value::Object(fields)) => Ok(Envelope(fields)),
            Ok(_) => Err("the envelope is JSON but not an object".into()),
            Err(e) => Err(format!("the envelope is not JSON ({e})")),
        }
    }

    fn properties(&self) -> Option<&Map<String, Value>> {
        self.0.get("properties")?.as_object()
    }

    fn property(&self, name: &str) -> Option<&Value> {
        self.properties()?.get(name)
    }

    fn delivery_info(&self) -> Option<&Map<String, Value>> {
        self.property("delivery_info")?.as_object()
    }

    /// kombu acknowledges by this tag; an envelope without one cannot be tracked.
    pub fn tag(&self) -> Option<&str> {
        self.property("delivery_tag")?.as_str()
    }

    /// `delivery_info`'s exchange and routing key; a message that lacks
    /// them goes back to the queue it was taken from.
    pub fn route(&self, queue: &str) -> Route {
        let info = |name: &str| {
            self.delivery_info()
                .and_then(|info| info.get(name))
                .and_then(Value::as_str)
        };
        Route {
            exchange: info("exchange").unwrap_or("").to_owned(),
            routing_key: info("routing_key").unwrap_or(queue).to_owned(),
        }
    }

    /// kombu's `int(properties["priority"])` clamped to 0..=9, 0 when unreadable.
    pub fn priority(&self) -> u8 {
        let priority = match self.property("priority") {
            Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        priority.map_or(0, |p| p.clamp(0, 9) as u8)
    }

    /// What kombu adds before putting a message back: both flags, where
    /// their objects exist.
    pub fn mark_redelivered(&mut self) {
        if let Some(Value::Object(headers)) = self.0.get_mut("headers") {
            headers.insert("redelivered".into(), Value::Bool(true));
        }
        let info = self
            .0
            .get_mut("properties")
            .and_then(Value::as_object_mut)
            .and_then(|props| props.get_mut("delivery_info"))
            .and_then(Value::as_object_mut);
        if let Some(info) = info {
            info.insert("redelivered".into(), Value::Bool(true));
        }
    }

    /// `json.dumps(envelope)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(&self.0)
    }

    /// The `unacked` hash value: `json.dumps([envelope, exchange, routing_key])`.
    pub fn unacked_entry(&self, route: &Route) -> Vec<u8> {
        encode(&(&self.0, &route.exchange, &route.routing_key))
    }

    /// The message for the handler. Envelope problems the headers survive
    /// become the delivery's `defect`, so the task's failure can be recorded.
    pub fn delivery(&self, queue: &QueueName) -> Delivery {
        let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
        let (body, defect) = match self.body() {
            Ok(body) => (body, self.tag().is_none().then(|| NO_TAG.to_owned())),
            Err(defect) => (Vec::new(), Some(defect)),
        };
        Delivery {
            queue: queue.clone(),
            delivery_tag: self.tag().unwrap_or("-").to_owned(),
            redelivered: self
                .delivery_info()
                .and_then(|info| info.get("redelivered"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            message: RawMessage {
                headers: self
                    .0
                    .get("headers")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
                content_type: text(self.0.get("content-type")),
                content_encoding: text(self.0.get("content-encoding")),
                correlation_id: text(self.property("correlation_id")),
                body,
            },
            defect,
        }
    }

    /// kombu's `decode_body`: base64, or the text itself without an encoding.
    fn body(&self) -> Result<Vec<u8>, String> {
        let body = match self.0.get("body") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::String(body)) => body,
            Some(_) => return Err("the Redis envelope's body is not a string".into()),
        };
        match self.property("body_encoding") {
            None | Some(Value::Null) => Ok(body.as_bytes().to_vec()),
            Some(Value::String(e)) if e == "base64" => STANDARD
                .decode(body)
                .map_err(|e| format!("the Redis envelope's body is not valid base64 ({e})")),
            Some(other) => Err(format!(
                "the Redis envelope's body_encoding {other} is unknown (kombu writes \"base64\")"
            )),
        }
    }
}

const NO_TAG: &str =
    "the Redis envelope has no properties.delivery_tag, so it cannot be acknowledged";

/// An `unacked` hash value read back: the envelope and where it came from.
pub(crate) fn parse_unacked(bytes: &[u8]) -> Result<(Envelope, Route), String> {
    let not_entry = || "not a [envelope, exchange, routing_key] array".to_owned();
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e}): {}", not_entry()))?;
    let Value::Array(parts) = value else {
        return Err(not_entry());
    };
    match <[Value; 3]>::try_from(parts) {
        Ok([Value::Object(fields), Value::String(exchange), Value::String(routing_key)]) => Ok((
            Envelope(fields),
            Route {
                exchange,
                routing_key,
            },
        )),
        _ => Err(not_entry()),
    }
}

/// Python's `json.dumps` of JSON values cannot fail: serde_json values hold
/// no NaN and only string keys.
fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    pyjson::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::celery::{Task, TaskMessage};
    use crate::tuf::testdata;

    const QUEUED: &str = "vectors/celery/redis-broker-queued-messages.json";
    const ACKS: &str = "vectors/celery/redis-broker-ack-observation.json";

    fn queue(name: &str) -> QueueName {
        QueueName::new(name).unwrap()
    }

    /// (raw list item, kombu's decoding of it) for every queued message.
    fn queued() -> Vec<(String, Value)> {
        let doc = testdata::json(QUEUED);
        let mut items = Vec::new();
        for queue in ["metadata_repository", "rstuf_internals"] {
            let list = &doc["keys"][queue];
            let raws = list["items_raw"].as_array().unwrap();
            let decoded = list["items_decoded"].as_array().unwrap();
            for (raw, decoded) in raws.iter().zip(decoded) {
                items.push((raw.as_str().unwrap().to_owned(), decoded.clone()));
            }
        }
        assert_eq!(items.len(), 3);
        items
    }

    /// The state `label` of the ack observation.
    fn observed(label: &str) -> Value {
        let doc = testdata::json(ACKS);
        let states = doc.as_array().unwrap();
        let state = states
            .iter()
            .find(|s| s["label"].as_str().unwrap().starts_with(label));
        state.unwrap()["keys"].clone()
    }

    #[test]
    fn queued_messages_decode_as_kombu_decodes_them() {
        for (raw, kombu) in queued() {
            let envelope = Envelope::parse(raw.as_bytes()).unwrap();
            let want = &kombu["envelope"];
            let routing_key = want["properties"]["delivery_info"]["routing_key"]
                .as_str()
                .unwrap();
            let delivery = envelope.delivery(&queue(routing_key));
            assert_eq!(delivery.defect, None);
            assert!(!delivery.redelivered);
            assert_eq!(delivery.delivery_tag, want["properties"]["delivery_tag"]);
            let message = &delivery.message;
            assert_eq!(
                message.body,
                kombu["body_base64_decoded"].as_str().unwrap().as_bytes()
            );
            assert_eq!(Value::Object(message.headers.clone()), want["headers"]);
            assert_eq!(message.content_type.as_deref(), Some("application/json"));
            assert_eq!(message.content_encoding.as_deref(), Some("utf-8"));
            assert_eq!(
                message.correlation_id.as_deref(),
                want["headers"]["id"].as_str()
            );
            let task = TaskMessage::decode(message).and_then(|m| Task::from_message(&m));
            assert!(task.is_ok(), "{task:?}");
            assert_eq!(envelope.priority(), 0);
            assert_eq!(
                envelope.to_bytes(),
                raw.as_bytes(),
                "re-encoding is json.dumps"
            );
        }
    }

    #[test]
    fn the_unacked_entry_is_byte_equal_to_kombus() {
        let published = &observed("A1")["metadata_repository"]["value"][0];
        let envelope = Envelope::parse(published.as_str().unwrap().as_bytes()).unwrap();
        let unacked = &observed("A2")["unacked"]["value"];
        let (tag, want) = unacked.as_object().unwrap().iter().next().unwrap();
        assert_eq!(envelope.tag(), Some(tag.as_str()));
        let route = envelope.route("ignored");
        assert_eq!(
            route,
            Route {
                exchange: String::new(),
                routing_key: "metadata_repository".into()
            }
        );
        let entry = envelope.unacked_entry(&route);
        assert_eq!(String::from_utf8(entry).unwrap(), want.as_str().unwrap());
        assert_eq!(observed("A2")["unacked_index"]["value"][0][0], tag.as_str());
    }

    #[test]
    fn a_restored_message_is_marked_redelivered_where_kombu_marks_it() {
        let unacked = &observed("B1")["unacked"]["value"];
        let entry = unacked.as_object().unwrap().values().next().unwrap();
        let (mut envelope, route) = parse_unacked(entry.as_str().unwrap().as_bytes()).unwrap();
        assert_eq!(route.routing_key, "metadata_repository");
        envelope.mark_redelivered();
        let text = String::from_utf8(envelope.to_bytes()).unwrap();
        assert!(
            text.contains(r#""stamps": {}, "redelivered": true}, "properties""#),
            "{text}"
        );
        assert!(
            text.contains(r#""routing_key": "metadata_repository", "redelivered": true}"#),
            "{text}"
        );
        let again = Envelope::parse(text.as_bytes()).unwrap();
        assert!(again.delivery(&queue("metadata_repository")).redelivered);
        envelope.mark_redelivered();
        assert_eq!(
            envelope.to_bytes(),
            text.as_bytes(),
            "marking twice changes nothing"
        );
    }

    #[test]
    fn priority_lists_follow_kombus_steps() {
        let names: Vec<String> = (0..=9).map(|p| list_for("q", p)).collect();
        let want = [
            "q",
            "q",
            "q",
            "q\x06\x163",
            "q\x06\x163",
            "q\x06\x163",
            "q\x06\x166",
        ];
        assert_eq!(&names[..7], want);
        assert_eq!(names[8], "q\x06\x166");
        assert_eq!(names[9], "q\x06\x169");
        let (a, b) = (queue("a"), queue("b"));
        assert_eq!(
            pop_order(&[&a, &b]),
            [
                "a",
                "b",
                "a\x06\x163",
                "b\x06\x163",
                "a\x06\x166",
                "b\x06\x166",
                "a\x06\x169",
                "b\x06\x169"
            ]
        );
        assert_eq!(queue_of_list("q\x06\x166"), "q");
        assert_eq!(queue_of_list("q"), "q");
        let envelope = |priority: Value| {
            Envelope::parse(
                &serde_json::to_vec(&serde_json::json!({"properties": {"priority": priority}}))
                    .unwrap(),
            )
            .unwrap()
            .priority()
        };
        assert_eq!(envelope(5.into()), 5);
        assert_eq!(envelope(42.into()), 9);
        assert_eq!(envelope((-1).into()), 0);
        assert_eq!(envelope("7".into()), 7);
        assert_eq!(envelope(Value::Null), 0);
    }

    #[test]
    fn bindings_match_what_celery_declares() {
        let doc = testdata::json(QUEUED);
        for queue in ["metadata_repository", "rstuf_internals"] {
            let set = &doc["keys"][binding_key(queue).as_str()];
            assert_eq!(set["members_raw"][0], binding_member(queue));
            assert_eq!(bound_queue(&binding_member(queue), queue), Some(queue));
            assert_eq!(bound_queue(&binding_member(queue), "other"), None);
        }
        assert_eq!(bound_queue("no separators", "no separators"), None);
    }

    #[test]
    fn undecodable_bodies_become_defects_with_the_headers_kept() {
        let with = |body: Value, encoding: Value, tag: Value| {
            let value = serde_json::json!({
                "body": body,
                "content-type": "application/json",
                "headers": {"id": "t1", "task": "app.repository_service_tuf_worker"},
                "properties": {"body_encoding": encoding, "delivery_tag": tag},
            });
            Envelope::parse(&serde_json::to_vec(&value).unwrap())
                .unwrap()
                .delivery(&queue("q"))
        };
        let bad = with("not base64!".into(), "base64".into(), "t".into());
        assert_eq!(bad.message.headers["id"], "t1");
        assert!(bad.defect.unwrap().contains("not valid base64"));
        let bad = with("x".into(), "rot13".into(), "t".into());
        assert!(bad
            .defect
            .unwrap()
            .contains("body_encoding \"rot13\" is unknown"));
        let bad = with(7.into(), "base64".into(), "t".into());
        assert!(bad.defect.unwrap().contains("not a string"));
        let bad = with("W10=".into(), "base64".into(), Value::Null);
        assert_eq!(bad.defect.as_deref(), Some(NO_TAG));
        assert_eq!(bad.delivery_tag, "-");
        let plain = with("[]".into(), Value::Null, "t".into());
        assert_eq!((plain.message.body, plain.defect), (b"[]".to_vec(), None));
    }

    #[test]
    fn unreadable_envelopes_and_entries_are_named() {
        assert!(Envelope::parse(b"{not json")
            .unwrap_err()
            .starts_with("the envelope is not JSON"));
        assert_eq!(
            Envelope::parse(b"[1]").unwrap_err(),
            "the envelope is JSON but not an object"
        );
        assert!(parse_unacked(b"[{}, \"\"]")
            .unwrap_err()
            .contains("not a [envelope"));
        assert!(parse_unacked(b"nope").unwrap_err().starts_with("not JSON"));
    }
}
