//! Outgoing task messages, byte-compatible with what Celery publishes from
//! inside a running task (the worker's `publish_artifacts-<id>` sub-task).
//!
//! Python consumers do not care about header order or JSON spacing, but
//! matching Celery exactly lets the vectors pin the format and keeps mixed
//! Python/Rust fleets indistinguishable on the wire.
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use super::{pyjson, saferepr, Error, Parent, RawMessage, Task, TaskId};

const CONTENT_TYPE: &str = "application/json";
const CONTENT_ENCODING: &str = "utf-8";
/// AMQP persistent delivery, as Celery always requests.
const PERSISTENT: u8 = 2;

/// The publishing process as Celery names it in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publisher {
    /// `gen<pid>@<hostname>`.
    pub origin: String,
    /// Celery sends its app's reply queue id (a UUID); workers never use it.
    pub reply_to: String,
}

impl Publisher {
    pub fn new(pid: u32, hostname: &str, reply_to: impl Into<String>) -> Self {
        Publisher {
            origin: format!("gen{pid}@{hostname}"),
            reply_to: reply_to.into(),
        }
    }
}

/// Message properties (AMQP basic properties; the Redis transport's
/// envelope carries the same values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Properties {
    pub content_type: &'static str,
    pub content_encoding: &'static str,
    pub delivery_mode: u8,
    pub correlation_id: String,
    pub reply_to: String,
}

/// Headers in Celery's wire order. JSON integers are meant as AMQP signed
/// 32-bit (`I`), null as void (`V`), arrays as `A`, objects as tables (`F`).
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingHeaders(Vec<(&'static str, Value)>);

impl OutgoingHeaders {
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.0.iter().map(|(name, value)| (*name, value))
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The headers as a (sorted) JSON map, e.g. to build a [`RawMessage`].
    pub fn to_map(&self) -> Map<String, Value> {
        self.iter()
            .map(|(n, v)| (n.to_owned(), v.clone()))
            .collect()
    }
}

impl Serialize for OutgoingHeaders {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.iter() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// A message ready for a transport.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    pub headers: OutgoingHeaders,
    pub properties: Properties,
    pub body: Vec<u8>,
}

/// The body's third element: no callbacks, errbacks, chain or chord.
#[derive(serde::Serialize)]
struct NoLinks {
    callbacks: Option<()>,
    errbacks: Option<()>,
    chain: Option<()>,
    chord: Option<()>,
}

const NO_LINKS: NoLinks = NoLinks {
    callbacks: None,
    errbacks: None,
    chain: None,
    chord: None,
};

impl OutgoingMessage {
    /// `task` published under `id`, sent from inside `parent` (or from
    /// outside any task, like beat, when `parent` is `None`).
    pub fn new(
        task: &Task,
        id: &TaskId,
        parent: Option<&Parent>,
        publisher: &Publisher,
    ) -> Result<OutgoingMessage, Error> {
        let args: [Value; 0] = [];
        let kwargs = Value::Object(task.kwargs());
        let body = pyjson::to_vec(&(&args, &kwargs, &NO_LINKS))
            .map_err(|e| Error::Encode(e.to_string()))?;
        let id_value = || Value::String(id.to_string());
        let root_id = parent.map_or_else(id_value, |p| Value::String(p.root_id.to_string()));
        let parent_id = parent.map_or(Value::Null, |p| Value::String(p.id.to_string()));
        let headers = vec![
            ("lang", Value::from("py")),
            ("task", Value::String(task.name().to_string())),
            ("id", id_value()),
            ("shadow", Value::Null),
            ("eta", Value::Null),
            ("expires", Value::Null),
            ("group", Value::Null),
            ("group_index", Value::Null),
            ("retries", Value::from(0)),
            ("timelimit", Value::Array(vec![Value::Null, Value::Null])),
            ("root_id", root_id),
            ("parent_id", parent_id),
            (
                "argsrepr",
                Value::String(saferepr::args_repr(&args, saferepr::MAX_SIZE)),
            ),
            (
                "kwargsrepr",
                Value::String(saferepr::value_repr(&kwargs, saferepr::MAX_SIZE)),
            ),
            ("origin", Value::String(publisher.origin.clone())),
            ("ignore_result", Value::Bool(false)),
            ("replaced_task_nesting", Value::from(0)),
            ("stamped_headers", Value::Null),
            ("stamps", Value::Object(Map::new())),
        ];
        Ok(OutgoingMessage {
            headers: OutgoingHeaders(headers),
            properties: Properties {
                content_type: CONTENT_TYPE,
                content_encoding: CONTENT_ENCODING,
                delivery_mode: PERSISTENT,
                correlation_id: id.to_string(),
                reply_to: publisher.reply_to.clone(),
            },
            body,
        })
    }

    /// The message as a consumer would receive it.
    pub fn to_raw(&self) -> RawMessage {
        RawMessage {
            headers: self.headers.to_map(),
            content_type: Some(self.properties.content_type.to_owned()),
            content_encoding: Some(self.properties.content_encoding.to_owned()),
            correlation_id: Some(self.properties.correlation_id.clone()),
            body: self.body.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::celery::message::tests::raw_from_vector;
    use crate::celery::TaskMessage;
    use crate::tuf::testdata;
    use serde_json::json;

    /// A JSON object's entries in file order (serde_json's Map would sort).
    struct Ordered(Vec<(String, Value)>);

    impl<'de> serde::Deserialize<'de> for Ordered {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Ordered;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Ordered, A::Error> {
                    let mut entries = Vec::new();
                    while let Some(entry) = map.next_entry()? {
                        entries.push(entry);
                    }
                    Ok(Ordered(entries))
                }
            }
            d.deserialize_map(Visit)
        }
    }

    #[derive(serde::Deserialize)]
    struct Capture {
        content_header: Frame,
    }

    #[derive(serde::Deserialize)]
    struct Frame {
        headers: Ordered,
    }

    /// The vector's AMQP value without its type tags.
    fn untag(tagged: &Value) -> Value {
        match &tagged["value"] {
            Value::Array(items) => Value::Array(items.iter().map(untag).collect()),
            other => other.clone(),
        }
    }

    /// Checks every header (names, order, values), property and body byte.
    fn assert_matches_vector(msg: &OutgoingMessage, name: &str) {
        let doc = testdata::json(&format!("vectors/celery/{name}"));
        let frame = &doc["content_header"];
        let capture: Capture =
            serde_json::from_slice(&testdata::bytes(&format!("vectors/celery/{name}"))).unwrap();
        let want: Vec<(&str, Value)> = capture
            .content_header
            .headers
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), untag(v)))
            .collect();
        let got: Vec<(&str, Value)> = msg.headers.iter().map(|(k, v)| (k, v.clone())).collect();
        assert_eq!(got, want, "{name}");
        let p = &msg.properties;
        assert_eq!(p.content_type, frame["content_type"]);
        assert_eq!(p.content_encoding, frame["content_encoding"]);
        assert_eq!(Value::from(p.delivery_mode), frame["delivery_mode"]);
        assert_eq!(p.correlation_id, frame["correlation_id"].as_str().unwrap());
        assert_eq!(p.reply_to, frame["reply_to"].as_str().unwrap());
        assert_eq!(
            String::from_utf8(msg.body.clone()).unwrap(),
            doc["body"].as_str().unwrap()
        );
        assert_eq!(Value::from(msg.body.len()), frame["body_size"]);
    }

    #[test]
    fn worker_subtask_is_byte_equal_to_celery() {
        // The running task of the capture: its own root, id parent-task-0001.
        let parent = Parent {
            id: TaskId::new("parent-task-0001"),
            root_id: TaskId::new("parent-task-0001"),
        };
        let task = Task::Repository {
            action: "publish_artifacts".into(),
            payload: Some(
                json!({"delegated_artifacts": ["bins-e"], "mode": "errored", "sleep": 0}),
            ),
        };
        let publisher = Publisher::new(15012, "vm", "32aeb9af-a806-31fb-967c-dd976ef37913");
        let id = TaskId::new("publish_artifacts-parent-task-0001");
        let msg = OutgoingMessage::new(&task, &id, Some(&parent), &publisher).unwrap();
        assert_matches_vector(&msg, "amqp-wire-subtask-from-worker.json");
    }

    #[test]
    fn beat_message_is_byte_equal_to_celery() {
        let task = Task::BumpOnlineRoles { expired: true };
        let publisher = Publisher::new(15230, "vm", "3be1c168-fdf5-3b17-90b5-a1d62266e054");
        let msg = OutgoingMessage::new(&task, &TaskId::new("bump_online_roles"), None, &publisher)
            .unwrap();
        assert_matches_vector(&msg, "amqp-wire-beat-bump_online_roles.json");
    }

    #[test]
    fn encoded_messages_decode_back() {
        let vector = TaskMessage::decode(&raw_from_vector(
            "amqp-metadata_repository-7a634b556f784ae88785d36425f9a218.json",
        ))
        .unwrap();
        let task = Task::from_message(&vector).unwrap();
        let publisher = Publisher::new(1, "host", "r");
        let parent = vector.headers.as_parent();
        let id = TaskId::new("publish_artifacts-7a634b556f784ae88785d36425f9a218");
        let msg = OutgoingMessage::new(&task, &id, Some(&parent), &publisher).unwrap();
        let back = TaskMessage::decode(&msg.to_raw()).unwrap();
        assert_eq!(Task::from_message(&back).unwrap(), task);
        assert_eq!(back.headers.id, id);
        assert_eq!(back.headers.parent_id.as_ref(), Some(&vector.headers.id));
        assert_eq!(back.headers.root_id.as_ref(), Some(&vector.headers.id));
        assert_eq!(back.headers.origin.as_deref(), Some("gen1@host"));
        // The body differs from the API's only in key order (serde_json maps
        // sort, the API's dicts keep insertion order), which the elided
        // kwargsrepr does not show.
        let raw = raw_from_vector("amqp-metadata_repository-7a634b556f784ae88785d36425f9a218.json");
        assert_eq!(msg.headers.get("kwargsrepr"), raw.headers.get("kwargsrepr"));
    }

    #[test]
    fn headers_serialize_in_wire_order() {
        let msg = OutgoingMessage::new(
            &Task::BumpOnlineRoles { expired: false },
            &TaskId::new("b"),
            None,
            &Publisher::new(7, "h", "r"),
        )
        .unwrap();
        let text = pyjson::to_string(&msg.headers).unwrap();
        assert!(
            text.starts_with(
                r#"{"lang": "py", "task": "app.bump_online_roles", "id": "b", "shadow": null,"#
            ),
            "{text}"
        );
        assert!(
            text.ends_with(r#""stamped_headers": null, "stamps": {}}"#),
            "{text}"
        );
        assert_eq!(
            msg.headers.get("kwargsrepr"),
            Some(&json!("{'expired': False}"))
        );
    }
}
