//! AMQP field tables (message headers) to and from JSON maps, typed the way
//! py-amqp types them so Celery reads what we send exactly as its own.
use amiquip::{AmqpValue, FieldTable};
use serde_json::{Map, Number, Value};

use super::Error;

/// Every AMQP type has a JSON reading, so this cannot fail.
pub(crate) fn table_to_json(table: &FieldTable) -> Map<String, Value> {
    table
        .iter()
        .map(|(key, value)| (key.clone(), value_to_json(value)))
        .collect()
}

fn value_to_json(value: &AmqpValue) -> Value {
    match value {
        AmqpValue::Void => Value::Null,
        AmqpValue::Boolean(b) => Value::Bool(*b),
        AmqpValue::ShortShortInt(n) => Value::from(*n),
        AmqpValue::ShortShortUInt(n) => Value::from(*n),
        AmqpValue::ShortInt(n) => Value::from(*n),
        AmqpValue::ShortUInt(n) => Value::from(*n),
        AmqpValue::LongInt(n) => Value::from(*n),
        AmqpValue::LongUInt(n) => Value::from(*n),
        AmqpValue::LongLongInt(n) => Value::from(*n),
        // Seconds since the epoch, as py-amqp's datetime would be in JSON.
        AmqpValue::Timestamp(secs) => Value::from(*secs),
        AmqpValue::Float(x) => float(f64::from(*x)),
        AmqpValue::Double(x) => float(*x),
        AmqpValue::DecimalValue(d) if d.scale == 0 => Value::from(d.value),
        AmqpValue::DecimalValue(d) => float(f64::from(d.value) / 10f64.powi(i32::from(d.scale))),
        AmqpValue::LongString(s) => Value::String(s.clone()),
        AmqpValue::ByteArray(bytes) => match std::str::from_utf8(bytes) {
            Ok(s) => Value::String(s.to_owned()),
            // Binary stays recognisable (and lossless) as a list of byte values.
            Err(_) => Value::Array(bytes.iter().map(|b| Value::from(*b)).collect()),
        },
        AmqpValue::FieldArray(items) => Value::Array(items.iter().map(value_to_json).collect()),
        AmqpValue::FieldTable(table) => Value::Object(table_to_json(table)),
    }
}

/// JSON has no NaN or infinity; null is the closest a reader can handle.
fn float(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// Types as py-amqp chooses them: str `S`, int `I` (or `l` past 32 bits),
/// float `d`, bool `t`, None `V`, list `A`, dict `F`.
pub(crate) fn json_to_table(map: &Map<String, Value>) -> Result<FieldTable, Error> {
    map_to_table("", map)
}

fn map_to_table(prefix: &str, map: &Map<String, Value>) -> Result<FieldTable, Error> {
    map.iter()
        .map(|(key, value)| {
            let path = format!("{prefix}{key}");
            // Field names are AMQP short strings (one length byte).
            if key.len() > 255 {
                return Err(invalid(&path, "its name is longer than 255 bytes"));
            }
            Ok((key.clone(), json_to_value(&path, value)?))
        })
        .collect()
}

fn json_to_value(path: &str, value: &Value) -> Result<AmqpValue, Error> {
    Ok(match value {
        Value::Null => AmqpValue::Void,
        Value::Bool(b) => AmqpValue::Boolean(*b),
        Value::String(s) => AmqpValue::LongString(s.clone()),
        Value::Number(n) => number(path, n)?,
        Value::Array(items) => AmqpValue::FieldArray(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| json_to_value(&format!("{path}[{i}]"), item))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => AmqpValue::FieldTable(map_to_table(&format!("{path}."), map)?),
    })
}

fn number(path: &str, n: &Number) -> Result<AmqpValue, Error> {
    match (n.as_i64(), n.as_f64()) {
        (Some(i), _) => Ok(i32::try_from(i).map_or(AmqpValue::LongLongInt(i), AmqpValue::LongInt)),
        (None, Some(x)) if !n.is_u64() => Ok(AmqpValue::Double(x)),
        _ => Err(invalid(
            path,
            &format!("{n} does not fit in a signed 64-bit integer"),
        )),
    }
}

fn invalid(path: &str, reason: &str) -> Error {
    Error::InvalidHeader {
        header: path.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tuf::testdata::json;
    use amq_protocol::types::DecimalValue;
    use serde_json::json;

    pub(crate) const VECTORS: [&str; 5] = [
        "vectors/celery/amqp-metadata_repository-11111111111111111111111111111111.json",
        "vectors/celery/amqp-metadata_repository-7a634b556f784ae88785d36425f9a218.json",
        "vectors/celery/amqp-rstuf_internals-0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e.json",
        "vectors/celery/amqp-wire-subtask-from-worker.json",
        "vectors/celery/amqp-wire-beat-bump_online_roles.json",
    ];

    /// The captured content header of a vector (two layouts exist).
    pub(crate) fn content_header(vector: &Value) -> &Value {
        vector
            .get("wire")
            .map_or(&vector["content_header"], |w| &w["content_header"])
    }

    /// A vector's decoded `{"type": "S(longstr)", "value": ...}` tree as the
    /// FieldTable amiquip would hand us for those wire bytes.
    pub(crate) fn typed_table(typed: &Value) -> FieldTable {
        typed
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), typed_value(v)))
            .collect()
    }

    fn typed_value(typed: &Value) -> AmqpValue {
        let value = &typed["value"];
        match &typed["type"].as_str().unwrap()[..1] {
            "S" => AmqpValue::LongString(value.as_str().unwrap().to_owned()),
            "V" => AmqpValue::Void,
            "I" => AmqpValue::LongInt(value.as_i64().unwrap().try_into().unwrap()),
            "t" => AmqpValue::Boolean(value.as_bool().unwrap()),
            "A" => {
                AmqpValue::FieldArray(value.as_array().unwrap().iter().map(typed_value).collect())
            }
            "F" => AmqpValue::FieldTable(typed_table(value)),
            other => panic!("vector uses type {other} the test does not know"),
        }
    }

    fn type_tags(table: &FieldTable) -> Value {
        fn tag(v: &AmqpValue) -> Value {
            match v {
                AmqpValue::FieldArray(items) => json!([
                    v.get_type().get_id().to_string(),
                    items.iter().map(tag).collect::<Vec<_>>()
                ]),
                AmqpValue::FieldTable(t) => json!(["F", type_tags(t)]),
                _ => Value::String(v.get_type().get_id().to_string()),
            }
        }
        Value::Object(table.iter().map(|(k, v)| (k.clone(), tag(v))).collect())
    }

    fn typed_tags(typed: &Value) -> Value {
        fn tag(t: &Value) -> Value {
            let id = t["type"].as_str().unwrap()[..1].to_owned();
            match id.as_str() {
                "A" => json!([
                    id,
                    t["value"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(tag)
                        .collect::<Vec<_>>()
                ]),
                "F" => json!([id, typed_tags(&t["value"])]),
                _ => Value::String(id),
            }
        }
        Value::Object(
            typed
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), tag(v)))
                .collect(),
        )
    }

    #[test]
    fn celery_headers_read_as_the_vectors_json() {
        for rel in &VECTORS[..3] {
            let vector = json(rel);
            let table = typed_table(&content_header(&vector)["headers"]);
            assert_eq!(
                Value::Object(table_to_json(&table)),
                vector["headers"],
                "{rel}"
            );
        }
    }

    #[test]
    fn json_headers_get_celerys_wire_types() {
        for rel in VECTORS {
            let vector = json(rel);
            let typed = &content_header(&vector)["headers"];
            let expected = typed_table(typed);
            let plain = table_to_json(&expected);
            let table = json_to_table(&plain).unwrap();
            assert_eq!(table, expected, "{rel}");
            assert_eq!(type_tags(&table), typed_tags(typed), "{rel}");
        }
    }

    #[test]
    fn integer_widths() {
        let map = json!({"a": 2147483647, "b": -2147483648, "c": 2147483648i64, "d": -9223372036854775808i64, "e": 1.5});
        let table = json_to_table(map.as_object().unwrap()).unwrap();
        assert_eq!(table["a"], AmqpValue::LongInt(i32::MAX));
        assert_eq!(table["b"], AmqpValue::LongInt(i32::MIN));
        assert_eq!(table["c"], AmqpValue::LongLongInt(2147483648));
        assert_eq!(table["d"], AmqpValue::LongLongInt(i64::MIN));
        assert_eq!(table["e"], AmqpValue::Double(1.5));
    }

    #[test]
    fn unrepresentable_headers_are_named() {
        let err = |v: Value| {
            json_to_table(v.as_object().unwrap())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(json!({"stamps": {"n": [1, 18446744073709551615u64]}})),
            "message header \"stamps.n[1]\" cannot be sent over AMQP: 18446744073709551615 does \
             not fit in a signed 64-bit integer"
        );
        let long = "k".repeat(256);
        assert_eq!(
            err(json!({ long.clone(): 1 })),
            format!("message header {long:?} cannot be sent over AMQP: its name is longer than 255 bytes")
        );
    }

    #[test]
    fn every_amqp_type_has_a_json_reading() {
        let table: FieldTable = [
            ("b", AmqpValue::ShortShortInt(-8)),
            ("B", AmqpValue::ShortShortUInt(250)),
            ("s", AmqpValue::ShortInt(-300)),
            ("u", AmqpValue::ShortUInt(65000)),
            ("i", AmqpValue::LongUInt(4_000_000_000)),
            ("l", AmqpValue::LongLongInt(-5_000_000_000)),
            ("T", AmqpValue::Timestamp(1_764_000_000)),
            ("f", AmqpValue::Float(0.5)),
            ("nan", AmqpValue::Double(f64::NAN)),
            (
                "D",
                AmqpValue::DecimalValue(DecimalValue {
                    scale: 2,
                    value: 12345,
                }),
            ),
            (
                "D0",
                AmqpValue::DecimalValue(DecimalValue { scale: 0, value: 7 }),
            ),
            ("x", AmqpValue::ByteArray(b"text".to_vec())),
            ("xbin", AmqpValue::ByteArray(vec![0xff, 0x00])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(
            Value::Object(table_to_json(&table)),
            json!({
                "b": -8, "B": 250, "s": -300, "u": 65000, "i": 4000000000u64,
                "l": -5000000000i64, "T": 1764000000, "f": 0.5, "nan": null,
                "D": 123.45, "D0": 7, "x": "text", "xbin": [255, 0]
            })
        );
    }
}
