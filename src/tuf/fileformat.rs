//! Metadata files as python-tuf writes them to disk:
//! `json.dumps(d, indent=1, separators=(",", ": "), sort_keys=True)`.
//!
//! Written by hand because the bytes must match Python's exactly (operators
//! diff files, and lengths/hashes of files end up in snapshot/timestamp):
//! `ensure_ascii` escapes every non-ASCII character as lowercase `\uXXXX`
//! (astral ones as surrogate pairs) and DEL as `\u007f`, which no serde_json
//! formatter does. Keys are sorted by code point here, whatever order the map
//! keeps (serde_json is built with `preserve_order`, so payloads keep the
//! order their sender gave, as Python dicts do).
use serde::Serialize;
use serde_json::Value;

use super::jsonwrite::{to_bytes, Format};
use super::{Error, Result};

const HEX: &[u8; 16] = b"0123456789abcdef";

struct File;

impl Format for File {
    const PRETTY: bool = true;
    fn write_string(s: &str, out: &mut Vec<u8>) {
        write_string(s, out);
    }
    fn error(message: String) -> Error {
        Error::FileFormat(message)
    }
}

/// File bytes of a JSON value, without a trailing newline.
pub fn encode(value: &Value) -> Result<Vec<u8>> {
    to_bytes::<File, _>(value)
}

/// File bytes of anything serde can serialize, written directly.
pub fn encode_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    to_bytes::<File, _>(value)
}

/// Python's `ensure_ascii` string form: printable ASCII is copied in runs,
/// everything else escaped.
fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let mut copied_up_to = 0;
    for (i, c) in s.char_indices() {
        if (' '..='~').contains(&c) && c != '"' && c != '\\' {
            continue;
        }
        out.extend_from_slice(&s.as_bytes()[copied_up_to..i]);
        write_escape(c, out);
        copied_up_to = i + c.len_utf8();
    }
    out.extend_from_slice(&s.as_bytes()[copied_up_to..]);
    out.push(b'"');
}

fn write_escape(c: char, out: &mut Vec<u8>) {
    let short: &[u8] = match c {
        '"' => b"\\\"",
        '\\' => b"\\\\",
        '\n' => b"\\n",
        '\r' => b"\\r",
        '\t' => b"\\t",
        '\u{8}' => b"\\b",
        '\u{c}' => b"\\f",
        _ => b"",
    };
    if !short.is_empty() {
        out.extend_from_slice(short);
        return;
    }
    let mut units = [0u16; 2];
    for &unit in c.encode_utf16(&mut units).iter() {
        out.extend_from_slice(b"\\u");
        for shift in [12, 8, 4, 0] {
            out.push(HEX[usize::from((unit >> shift) & 0xf)]);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tuf::testdata;
    use serde_json::json;

    /// Every metadata file (anything with `signed`) in the vector folders.
    pub(crate) fn vector_metadata_files() -> Vec<(String, Vec<u8>)> {
        let folders = [
            "vectors/tuf/repo-bins/1-after-bootstrap",
            "vectors/tuf/repo-bins/2-after-add-artifacts",
            "vectors/tuf/repo-custom/1-after-bootstrap-and-signing",
            "vectors/tuf/verification",
        ];
        let mut files = Vec::new();
        for folder in folders {
            let mut names: Vec<String> = std::fs::read_dir(testdata::shared(folder))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.ends_with(".json"))
                .collect();
            names.sort();
            for name in names {
                let rel = format!("{folder}/{name}");
                let bytes = testdata::bytes(&rel);
                let value: Value = serde_json::from_slice(&bytes).unwrap();
                if value.get("signed").is_some() {
                    files.push((rel, bytes));
                }
            }
        }
        files
    }

    #[test]
    fn every_vector_file_is_reproduced_byte_for_byte() {
        let files = vector_metadata_files();
        assert!(files.len() >= 70, "only {} files found", files.len());
        for (rel, bytes) in files {
            let value: Value = serde_json::from_slice(&bytes).unwrap();
            let out = encode(&value).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(bytes).unwrap(),
                "{rel}"
            );
        }
    }

    #[test]
    fn unicode_target_path_is_escaped_like_python() {
        let bytes = testdata::bytes("vectors/tuf/repo-bins/2-after-add-artifacts/2.bins-f.json");
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains(r#""caf\u00e9/\u6587\u4ef6-\ud83d\ude00.txt": {"#));
        let value = json!({"caf\u{e9}/\u{6587}\u{4ef6}-\u{1f600}.txt": 1});
        assert_eq!(
            encode(&value).unwrap(),
            b"{\n \"caf\\u00e9/\\u6587\\u4ef6-\\ud83d\\ude00.txt\": 1\n}"
        );
    }

    #[test]
    fn every_ascii_character_is_escaped_like_python() {
        let all: String = (0u32..=0x80).filter_map(char::from_u32).collect();
        // python3: json.dumps("".join(map(chr, range(0x81))), indent=1,
        //                     separators=(",", ": "), sort_keys=True)
        let python = concat!(
            r#""\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r"#,
            r#"\u000e\u000f\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018"#,
            r##"\u0019\u001a\u001b\u001c\u001d\u001e\u001f !\"#$%&'()*+,-./0123456789"##,
            r#":;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"#,
            r#"\u007f\u0080""#
        );
        assert_eq!(
            String::from_utf8(encode(&Value::String(all)).unwrap()).unwrap(),
            python
        );
    }

    #[test]
    fn nesting_empties_and_key_order_match_python() {
        let value = json!({
            "k\u{e9}y\u{1f600}": [
                "caf\u{e9}", "\u{6587}\u{ffff}\u{2028}", "/path\\x", {}, [],
                {"z": [{}], "a": null, "m": true, "n": false, "i": -12345678901234i64}
            ],
            "b": {"\u{1f600}": 1, "\u{ffff}": 2}
        });
        // Output of the same dict through Python's json.dumps (see module doc).
        let python = r#"{
 "b": {
  "\uffff": 2,
  "\ud83d\ude00": 1
 },
 "k\u00e9y\ud83d\ude00": [
  "caf\u00e9",
  "\u6587\uffff\u2028",
  "/path\\x",
  {},
  [],
  {
   "a": null,
   "i": -12345678901234,
   "m": true,
   "n": false,
   "z": [
    {}
   ]
  }
 ]
}"#;
        assert_eq!(String::from_utf8(encode(&value).unwrap()).unwrap(), python);
        assert_eq!(encode(&json!({})).unwrap(), b"{}");
        assert_eq!(encode(&json!([[]])).unwrap(), b"[\n []\n]");
        assert_eq!(encode(&json!("")).unwrap(), b"\"\"");
        assert_eq!(encode(&json!(u64::MAX)).unwrap(), b"18446744073709551615");
    }

    #[test]
    fn keys_are_sorted_by_code_point_whatever_the_map_order() {
        let map: serde_json::Map<String, Value> = ["\u{1f600}", "\u{ffff}", "b", "a", "B"]
            .into_iter()
            .map(|k| (k.to_owned(), Value::Null))
            .collect();
        let text = String::from_utf8(encode(&Value::Object(map)).unwrap()).unwrap();
        assert_eq!(
            text,
            "{\n \"B\": null,\n \"a\": null,\n \"b\": null,\n \"\\uffff\": null,\n \"\\ud83d\\ude00\": null\n}"
        );
    }

    #[test]
    fn floats_are_refused() {
        for value in [json!({"x": 1.0}), json!([0.5])] {
            assert!(matches!(encode(&value), Err(Error::FileFormat(_))));
        }
    }
}
