//! A message as the broker hands it over: headers (JSON, as the AMQP layer
//! converts them), content type and body. Decoding must answer with a task
//! or an error, never panic, whatever the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rstuf_worker::celery::{RawMessage, Task, TaskMessage};
use serde_json::{Map, Value};

const CONTENT_TYPES: [&str; 3] = [
    "application/json",
    "application/x-python-serialize",
    "text/plain",
];

fuzz_target!(|data: &[u8]| {
    // [selector][headers length u16][headers JSON][body]
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (len, rest) = match rest {
        [a, b, rest @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), rest),
        _ => return,
    };
    let (headers, body) = rest.split_at(len.min(rest.len()));
    let headers: Map<String, Value> = serde_json::from_slice(headers).unwrap_or_default();
    let raw = RawMessage {
        headers,
        content_type: Some(CONTENT_TYPES[usize::from(selector) % 3].to_owned()),
        content_encoding: (selector & 0x80 == 0).then(|| "utf-8".to_owned()),
        correlation_id: None,
        body: body.to_vec(),
    };
    if let Ok(message) = TaskMessage::decode(&raw) {
        let _ = Task::from_message(&message);
    }
});
