//! Incoming Celery protocol 2 task messages, transport-neutral.
//!
//! The broker module turns an AMQP delivery (or a Redis envelope) into a
//! [`RawMessage`]; everything here is pure. Decoding is lenient where other
//! producers legitimately differ (header set, integer widths, JSON layout)
//! and strict where guessing would run the wrong thing (content type, body
//! shape, ids).
use serde_json::{Map, Value};

use super::{Error, TaskId, TaskName};

/// What a transport delivers, before any Celery interpretation. AMQP table
/// values map to JSON: integers to numbers, void to null, arrays and tables
/// to arrays and objects, UTF-8 byte strings to strings. The broker hands
/// one to its handler and publishes one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawMessage {
    pub headers: Map<String, Value>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub correlation_id: Option<String>,
    pub body: Vec<u8>,
}

/// The protocol 2 headers a worker uses. Unknown headers are ignored and
/// missing optional ones read as absent, as Celery itself does.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskHeaders {
    pub task: TaskName,
    pub id: TaskId,
    /// How often the task was retried before (0 on first delivery).
    pub retries: u64,
    /// ISO-8601 time before which the task must not run.
    pub eta: Option<String>,
    /// ISO-8601 time after which the task must not run.
    pub expires: Option<String>,
    pub root_id: Option<TaskId>,
    pub parent_id: Option<TaskId>,
    pub group: Option<String>,
    pub origin: Option<String>,
    pub ignore_result: bool,
}

/// Workflow links carried in the body's third element; RSTUF never sets
/// them, a worker that cannot honour them should say so.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Embed {
    pub callbacks: Option<Value>,
    pub errbacks: Option<Value>,
    pub chain: Option<Value>,
    pub chord: Option<Value>,
}

/// A decoded task message of any task name.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskMessage {
    pub headers: TaskHeaders,
    pub args: Vec<Value>,
    pub kwargs: Map<String, Value>,
    pub embed: Embed,
}

/// The running task a sub-task is sent from; Celery links the two through
/// the sub-task's `root_id` and `parent_id` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    pub id: TaskId,
    pub root_id: TaskId,
}

impl TaskMessage {
    pub fn decode(raw: &RawMessage) -> Result<TaskMessage, Error> {
        check_content(raw)?;
        let headers = TaskHeaders::decode(&raw.headers)?;
        let (args, kwargs, embed) = decode_body(&raw.body)?;
        Ok(TaskMessage {
            headers,
            args,
            kwargs,
            embed,
        })
    }
}

impl TaskHeaders {
    pub fn decode(headers: &Map<String, Value>) -> Result<TaskHeaders, Error> {
        let task = optional_str(headers, "task")?.ok_or(Error::Header {
            name: "task",
            reason: "missing: not a Celery protocol 2 task message".into(),
        })?;
        let id = optional_str(headers, "id")?.ok_or(Error::Header {
            name: "id",
            reason: "missing: a task message needs a task id".into(),
        })?;
        Ok(TaskHeaders {
            task: TaskName::new(task),
            id: TaskId::new(id),
            retries: optional_count(headers, "retries")?,
            eta: optional_str(headers, "eta")?,
            expires: optional_str(headers, "expires")?,
            root_id: optional_str(headers, "root_id")?.map(TaskId::new),
            parent_id: optional_str(headers, "parent_id")?.map(TaskId::new),
            group: optional_str(headers, "group")?,
            origin: optional_str(headers, "origin")?,
            ignore_result: optional_bool(headers, "ignore_result")?,
        })
    }

    /// This task as the parent of a sub-task it sends: the root stays the
    /// root of the whole tree (this task's own id when it is the root).
    pub fn as_parent(&self) -> Parent {
        Parent {
            id: self.id.clone(),
            root_id: self.root_id.clone().unwrap_or_else(|| self.id.clone()),
        }
    }
}

fn check_content(raw: &RawMessage) -> Result<(), Error> {
    match raw.content_type.as_deref() {
        Some(t) if t.eq_ignore_ascii_case("application/json") => {}
        other => return Err(Error::ContentType(other.map(str::to_owned))),
    }
    // kombu reads a missing encoding as UTF-8.
    match raw.content_encoding.as_deref() {
        None => Ok(()),
        Some(e) if e.eq_ignore_ascii_case("utf-8") || e.eq_ignore_ascii_case("utf8") => Ok(()),
        Some(e) => Err(Error::ContentEncoding(e.to_owned())),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(name: &'static str, expected: &str, got: &Value) -> Error {
    Error::Header {
        name,
        reason: format!("expected {expected}, got {}", json_type(got)),
    }
}

fn optional_str(headers: &Map<String, Value>, name: &'static str) -> Result<Option<String>, Error> {
    match headers.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(wrong_type(name, "a string", other)),
    }
}

fn optional_count(headers: &Map<String, Value>, name: &'static str) -> Result<u64, Error> {
    match headers.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(value) => value
            .as_u64()
            .ok_or_else(|| wrong_type(name, "a non-negative integer", value)),
    }
}

fn optional_bool(headers: &Map<String, Value>, name: &'static str) -> Result<bool, Error> {
    match headers.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(wrong_type(name, "a boolean", other)),
    }
}

type Body = (Vec<Value>, Map<String, Value>, Embed);

fn decode_body(bytes: &[u8]) -> Result<Body, Error> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| Error::Body(format!("not UTF-8 JSON: {e}")))?;
    let Value::Array(parts) = value else {
        return Err(Error::Body(format!(
            "expected an array, got {}",
            json_type(&value)
        )));
    };
    let [args, kwargs, embed] = <[Value; 3]>::try_from(parts)
        .map_err(|parts| Error::Body(format!("expected 3 elements, got {}", parts.len())))?;
    let args = match args {
        Value::Array(args) => args,
        other => {
            return Err(Error::Body(format!(
                "args: expected an array, got {}",
                json_type(&other)
            )))
        }
    };
    let kwargs = match kwargs {
        Value::Object(kwargs) => kwargs,
        other => {
            return Err(Error::Body(format!(
                "kwargs: expected an object, got {}",
                json_type(&other)
            )))
        }
    };
    Ok((args, kwargs, decode_embed(embed)?))
}

fn decode_embed(embed: Value) -> Result<Embed, Error> {
    let mut map = match embed {
        Value::Null => return Ok(Embed::default()),
        Value::Object(map) => map,
        other => {
            return Err(Error::Body(format!(
                "embed: expected an object, got {}",
                json_type(&other)
            )))
        }
    };
    let mut take = |name: &str| map.remove(name).filter(|v| !v.is_null());
    Ok(Embed {
        callbacks: take("callbacks"),
        errbacks: take("errbacks"),
        chain: take("chain"),
        chord: take("chord"),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tuf::testdata;
    use serde_json::json;

    /// A vector's message as the broker module would hand it over.
    pub(crate) fn raw_from_vector(name: &str) -> RawMessage {
        let doc = testdata::json(&format!("vectors/celery/{name}"));
        let (props, headers, body) = match doc.get("content_header") {
            // Captured frames: headers carry their AMQP type tags.
            Some(frame) => {
                let headers = frame["headers"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), untag(v)))
                    .collect();
                (
                    frame.clone(),
                    headers,
                    doc["body"].as_str().unwrap().to_owned(),
                )
            }
            None => (
                doc["properties"].clone(),
                doc["headers"].as_object().unwrap().clone(),
                doc["body_text"].as_str().unwrap().to_owned(),
            ),
        };
        let text = |v: &Value| v.as_str().map(str::to_owned);
        RawMessage {
            headers,
            content_type: text(&props["content_type"]),
            content_encoding: text(&props["content_encoding"]),
            correlation_id: text(&props["correlation_id"]),
            body: body.into_bytes(),
        }
    }

    fn untag(tagged: &Value) -> Value {
        match &tagged["value"] {
            Value::Array(items) => Value::Array(items.iter().map(untag).collect()),
            other => other.clone(),
        }
    }

    pub(crate) const VECTORS: [&str; 5] = [
        "amqp-metadata_repository-11111111111111111111111111111111.json",
        "amqp-metadata_repository-7a634b556f784ae88785d36425f9a218.json",
        "amqp-rstuf_internals-0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e.json",
        "amqp-wire-subtask-from-worker.json",
        "amqp-wire-beat-bump_online_roles.json",
    ];

    #[test]
    fn every_amqp_vector_decodes() {
        for name in VECTORS {
            let raw = raw_from_vector(name);
            let msg = TaskMessage::decode(&raw).unwrap();
            let h = &msg.headers;
            assert_eq!(Some(h.id.as_str()), raw.correlation_id.as_deref(), "{name}");
            assert_eq!(h.retries, 0);
            assert_eq!(
                (h.eta.as_deref(), h.expires.as_deref(), h.group.as_deref()),
                (None, None, None)
            );
            assert!(!h.ignore_result);
            assert!(h.origin.as_deref().unwrap().starts_with("gen"));
            assert!(msg.args.is_empty());
            assert_eq!(msg.embed, Embed::default());
            let body: Value = serde_json::from_slice(&raw.body).unwrap();
            assert_eq!(Value::Object(msg.kwargs.clone()), body[1], "{name}");
        }
    }

    #[test]
    fn api_message_is_its_own_root() {
        let raw = raw_from_vector(VECTORS[1]);
        let h = TaskMessage::decode(&raw).unwrap().headers;
        assert_eq!(h.task.as_str(), TaskName::REPOSITORY);
        assert_eq!(h.id.as_str(), "7a634b556f784ae88785d36425f9a218");
        assert_eq!(h.root_id.as_ref(), Some(&h.id));
        assert_eq!(h.parent_id, None);
        assert_eq!(h.origin.as_deref(), Some("gen14746@vm"));
        assert_eq!(
            h.as_parent(),
            Parent {
                id: h.id.clone(),
                root_id: h.id.clone()
            }
        );
    }

    #[test]
    fn subtask_carries_parent_and_root() {
        let h = TaskMessage::decode(&raw_from_vector(VECTORS[3]))
            .unwrap()
            .headers;
        assert_eq!(h.id.as_str(), "publish_artifacts-parent-task-0001");
        assert_eq!(
            h.root_id.as_ref().map(TaskId::as_str),
            Some("parent-task-0001")
        );
        assert_eq!(
            h.parent_id.as_ref().map(TaskId::as_str),
            Some("parent-task-0001")
        );
        assert_eq!(h.as_parent().root_id.as_str(), "parent-task-0001");
    }

    fn minimal(headers: Value, body: &str) -> RawMessage {
        RawMessage {
            headers: headers.as_object().unwrap().clone(),
            content_type: Some("application/json".into()),
            content_encoding: None,
            correlation_id: None,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn other_producers_are_accepted() {
        // Compact unescaped JSON, a 64-bit retries value, extra headers, a
        // null embed and only the two required headers.
        let raw = minimal(
            json!({"task": "app.bump_online_roles", "id": "x", "retries": 4294967296u64, "x-extra": [1]}),
            "[[],{\"expired\":true,\"note\":\"é\"},null]",
        );
        let msg = TaskMessage::decode(&raw).unwrap();
        assert_eq!(msg.headers.retries, 4_294_967_296);
        assert_eq!(msg.headers.root_id, None);
        assert_eq!(msg.headers.as_parent().root_id.as_str(), "x");
        assert_eq!(msg.kwargs["note"], "é");
        let mut raw = raw;
        raw.content_encoding = Some("UTF8".into());
        assert!(TaskMessage::decode(&raw).is_ok());
    }

    #[test]
    fn undecodable_messages_name_the_problem() {
        let ok_headers = json!({"task": "t", "id": "x"});
        let ok_body = "[[], {}, {}]";
        let mut raw = minimal(ok_headers.clone(), ok_body);
        raw.content_type = Some("application/x-python-serialize".into());
        let err = TaskMessage::decode(&raw).unwrap_err();
        assert_eq!(
            err,
            Error::ContentType(Some("application/x-python-serialize".into()))
        );
        assert!(
            err.to_string().contains("only \"application/json\""),
            "{err}"
        );
        raw.content_type = None;
        assert_eq!(
            TaskMessage::decode(&raw).unwrap_err(),
            Error::ContentType(None)
        );

        let mut raw = minimal(ok_headers.clone(), ok_body);
        raw.content_encoding = Some("latin-1".into());
        assert_eq!(
            TaskMessage::decode(&raw).unwrap_err(),
            Error::ContentEncoding("latin-1".into())
        );

        let header_cases = [
            (
                json!({"id": "x"}),
                "task",
                "missing: not a Celery protocol 2 task message",
            ),
            (
                json!({"task": "t"}),
                "id",
                "missing: a task message needs a task id",
            ),
            (
                json!({"task": 5, "id": "x"}),
                "task",
                "expected a string, got a number",
            ),
            (
                json!({"task": "t", "id": "x", "retries": -1}),
                "retries",
                "expected a non-negative integer, got a number",
            ),
            (
                json!({"task": "t", "id": "x", "retries": "1"}),
                "retries",
                "expected a non-negative integer, got a string",
            ),
            (
                json!({"task": "t", "id": "x", "parent_id": []}),
                "parent_id",
                "expected a string, got an array",
            ),
            (
                json!({"task": "t", "id": "x", "ignore_result": 0}),
                "ignore_result",
                "expected a boolean, got a number",
            ),
        ];
        for (headers, name, reason) in header_cases {
            let err = TaskMessage::decode(&minimal(headers, ok_body)).unwrap_err();
            assert_eq!(
                err,
                Error::Header {
                    name,
                    reason: reason.into()
                }
            );
        }

        let body_cases = [
            ("{\"args\": []}", "expected an array, got an object"),
            ("[[], {}]", "expected 3 elements, got 2"),
            ("[{}, {}, {}]", "args: expected an array, got an object"),
            ("[[], [], {}]", "kwargs: expected an object, got an array"),
            ("[[], {}, 1]", "embed: expected an object, got a number"),
        ];
        for (body, reason) in body_cases {
            let err = TaskMessage::decode(&minimal(ok_headers.clone(), body)).unwrap_err();
            assert_eq!(err, Error::Body(reason.into()), "{body}");
        }
        let err =
            TaskMessage::decode(&minimal(ok_headers.clone(), "[[], {\"a\": \"\u{0}")).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "Celery message body is not protocol 2 [args, kwargs, embed] JSON: not UTF-8 JSON"
            ),
            "{err}"
        );
        let mut raw = minimal(ok_headers, ok_body);
        raw.body = b"[[], {\"a\": \"\xff\"}, {}]".to_vec();
        assert!(matches!(TaskMessage::decode(&raw), Err(Error::Body(_))));
    }

    #[test]
    fn embed_links_are_kept() {
        let raw = minimal(
            json!({"task": "t", "id": "x"}),
            r#"[[], {}, {"callbacks": [{"task": "cb"}], "errbacks": null, "chain": null, "chord": null}]"#,
        );
        let msg = TaskMessage::decode(&raw).unwrap();
        assert_eq!(msg.embed.callbacks, Some(json!([{"task": "cb"}])));
        assert_eq!(msg.embed.chain, None);
    }
}
