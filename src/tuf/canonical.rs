//! Canonical JSON as securesystemslib's `encode_canonical` writes it: the
//! bytes every TUF signature covers.
//!
//! It is not RFC 8785: only `"` and `\` are escaped, everything else (control
//! characters, non-ASCII) is copied raw and the result is UTF-8. Keys sort by
//! code point, which for Rust `String`s is plain byte order; maps are sorted
//! here because serde_json keeps insertion order in this build.
use serde::Serialize;
use serde_json::Value;

use super::jsonwrite::{to_bytes, Format};
use super::{Error, Result};

struct Canonical;

impl Format for Canonical {
    const PRETTY: bool = false;
    fn write_string(s: &str, out: &mut Vec<u8>) {
        write_string(s, out);
    }
    fn error(message: String) -> Error {
        Error::CanonicalJson(message)
    }
}

/// Canonical bytes of a JSON value. Floats are refused, as in Python.
pub fn encode(value: &Value) -> Result<Vec<u8>> {
    to_bytes::<Canonical, _>(value)
}

/// Canonical bytes of anything serde can serialize, written directly.
pub fn encode_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    to_bytes::<Canonical, _>(value)
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s.as_bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuf::testdata;
    use sha2::{Digest, Sha256};

    #[test]
    fn every_vector_encodes_to_the_exact_bytes() {
        let doc = testdata::json("vectors/tuf/canonical-json.json");
        let vectors = doc["vectors"].as_array().unwrap();
        assert!(vectors.len() >= 12);
        for v in vectors {
            let input: Value = serde_json::from_str(v["input_json"].as_str().unwrap()).unwrap();
            let got = encode(&input).unwrap();
            let name = v["name"].as_str().unwrap();
            assert_eq!(
                String::from_utf8(got.clone()).unwrap(),
                v["canonical_utf8"].as_str().unwrap(),
                "{name}"
            );
            let hex: String = got.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, v["canonical_hex"].as_str().unwrap(), "{name}");
            let digest: String = Sha256::digest(&got)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(digest, v["sha256"].as_str().unwrap(), "{name}");
        }
    }

    #[test]
    fn keys_are_sorted_whatever_the_insertion_order() {
        let mut map = serde_json::Map::new();
        for key in ["b", "\u{1f600}", "a", "\u{ffff}", "B"] {
            map.insert(key.to_owned(), Value::from(1));
        }
        let text = String::from_utf8(encode(&Value::Object(map)).unwrap()).unwrap();
        assert_eq!(
            text,
            "{\"B\":1,\"a\":1,\"b\":1,\"\u{ffff}\":1,\"\u{1f600}\":1}"
        );
    }

    #[test]
    fn floats_are_rejected_like_securesystemslib() {
        let doc = testdata::json("vectors/tuf/canonical-json.json");
        let names: Vec<&str> = doc["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        // "bytes" has no JSON form; the float cases are the ones JSON can carry.
        assert!(names.contains(&"float") && names.contains(&"float in list"));
        for input in [r#"{"x": 1.0}"#, "[0.5]"] {
            let value: Value = serde_json::from_str(input).unwrap();
            assert!(
                matches!(encode(&value), Err(Error::CanonicalJson(_))),
                "{input}"
            );
        }
    }
}
