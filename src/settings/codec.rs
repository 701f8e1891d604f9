//! The string form of one setting, exactly as dynaconf 3.3.x writes and
//! reads it (`unparse_conf_data` / `parse_conf_data`).
//!
//! Reading takes two passes, because dynaconf parses a value when its redis
//! loader reads it and again when it stores it in the settings object:
//! 1. If the text up to the first space is a dynaconf converter (`@int`,
//!    `@json`, ...), that converter applies to the rest; otherwise the text is
//!    parsed as the TOML document `key=<text>` and, if that fails, it is the
//!    string itself.
//! 2. Every string in the result, at any depth of lists and dicts, whose
//!    first word is a converter is converted once more (no TOML this time).
//!
//! `get_fresh` keeps a value only when the stored text is non-empty and the
//! result of pass 1 is truthy.
//!
//! Writing: `@bool True`, `@int N`, `@float <repr>`, `@json <json.dumps>`,
//! `@none ` and raw strings. A string is written raw only when it reads back
//! as itself; otherwise it gets one or two `@str ` converters, which Python
//! strips again. That way `12345`, `true` or `2024-01-01` stay strings, where
//! Python's writer would have them come back as an int, a bool or a date
//! (and a date makes every later Python write of the hash fail). Strings
//! inside lists and dicts that start with a converter word get `@str ` for
//! pass 2; no RSTUF value contains such a string, and Python's own writer
//! would have them read back converted.
use std::fmt;

use super::value::{python_float_repr, SettingValue};

/// Why a stored string cannot be read, or a value cannot be written.
#[derive(Debug, Clone, PartialEq)]
pub enum CodecError {
    /// The text parses as a TOML date or time: Python reads a `datetime`,
    /// which this worker has no use for and which breaks Python writers.
    TomlDateTime,
    /// A TOML integer beyond 64 bits, which Python would read as an int.
    IntegerTooLarge,
    /// A converter whose argument Python cannot convert (`@int abc`,
    /// `@json {not json`); Python silently treats the setting as absent.
    BadConverterValue {
        converter: &'static str,
        reason: String,
    },
    /// A dynaconf converter this worker does not implement (`@format`,
    /// `@merge`, ...), nothing RSTUF writes.
    UnsupportedConverter(String),
    /// A string that dynaconf would always turn into something else, even
    /// behind `@str ` (its first word is a converter and it continues with
    /// `@get`, `@format`, `@jinja` or `@read_file`).
    UnrepresentableString(String),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::TomlDateTime => f.write_str(
                "it reads as a TOML date/time; Python workers then fail every settings write \
                 (DataError), so store it as `@str <text>` instead",
            ),
            CodecError::IntegerTooLarge => {
                f.write_str("it is an integer beyond 64 bits, which RSTUF never stores")
            }
            CodecError::BadConverterValue { converter, reason } => {
                write!(f, "its {converter} value cannot be converted: {reason}")
            }
            CodecError::UnsupportedConverter(converter) => write!(
                f,
                "it uses the dynaconf converter {converter}, which RSTUF never writes; \
                 replace it with a plain value"
            ),
            CodecError::UnrepresentableString(text) => write!(
                f,
                "dynaconf reads the string {text:?} as a template whatever prefix it gets, \
                 so it cannot be stored"
            ),
        }
    }
}

/// Every converter name dynaconf 3.3.2 recognises as the first word.
const DYNACONF_CONVERTERS: [&str; 29] = [
    "@str",
    "@int",
    "@float",
    "@bool",
    "@json",
    "@format",
    "@jinja",
    "@reset",
    "@del",
    "@merge",
    "@merge_unique",
    "@insert",
    "@get",
    "@read_file",
    "@upper",
    "@lower",
    "@title",
    "@capitalize",
    "@strip",
    "@lstrip",
    "@rstrip",
    "@split",
    "@casefold",
    "@swapcase",
    "@note",
    "@comment",
    "@null",
    "@none",
    "@empty",
];

/// After a converter, these start a lazy template (dynaconf's combination
/// tokens such as `@str @format {this.X}`).
const LAZY_FORMATTERS: [&str; 4] = ["@jinja", "@format", "@read_file", "@get"];

/// dynaconf's `true_values` for `@bool`; anything else is False.
const TRUE_WORDS: [&str; 6] = ["t", "true", "enabled", "1", "on", "yes"];

/// Reads a stored field value the way a full dynaconf load does.
pub fn decode(raw: &str) -> Result<SettingValue, CodecError> {
    second_pass(first_pass(raw)?)
}

/// Reads a stored field value the way `get_fresh` does: `None` when the
/// text is empty or pass 1 gives a falsy value (the caller's default wins).
pub fn decode_fresh(raw: &str) -> Result<Option<SettingValue>, CodecError> {
    if raw.is_empty() {
        return Ok(None);
    }
    let first = first_pass(raw)?;
    if first.is_truthy() {
        second_pass(first).map(Some)
    } else {
        Ok(None)
    }
}

/// The string dynaconf would store for `value` (strings: see module docs).
pub fn encode(value: &SettingValue) -> Result<String, CodecError> {
    Ok(match value {
        SettingValue::None => "@none ".to_owned(),
        SettingValue::Bool(b) => format!("@bool {}", if *b { "True" } else { "False" }),
        SettingValue::Int(n) => format!("@int {n}"),
        SettingValue::Float(x) => format!("@float {}", python_float_repr(*x)),
        SettingValue::List(_) | SettingValue::Dict(_) => {
            format!("@json {}", protect_nested(value)?.to_python_json())
        }
        SettingValue::Str(s) => return encode_str(s),
    })
}

fn encode_str(s: &str) -> Result<String, CodecError> {
    let candidates = [s.to_owned(), format!("@str {s}"), format!("@str @str {s}")];
    let raw_is_risky = starts_with_toml_number(s);
    candidates
        .into_iter()
        .enumerate()
        .find(|(i, stored)| {
            !(*i == 0 && raw_is_risky)
                && matches!(decode(stored), Ok(SettingValue::Str(back)) if back == s)
        })
        .map(|(_, stored)| stored)
        .ok_or_else(|| CodecError::UnrepresentableString(s.to_owned()))
}

/// Gives nested strings that pass 2 would convert a `@str ` to strip.
fn protect_nested(value: &SettingValue) -> Result<SettingValue, CodecError> {
    Ok(match value {
        SettingValue::Str(s) if first_word_is_converter(s) => {
            let protected = format!("@str {s}");
            match convert_if_tagged(&protected) {
                Some(Ok(SettingValue::Str(back))) if back == *s => SettingValue::Str(protected),
                _ => return Err(CodecError::UnrepresentableString(s.clone())),
            }
        }
        SettingValue::List(items) => {
            SettingValue::List(items.iter().map(protect_nested).collect::<Result<_, _>>()?)
        }
        SettingValue::Dict(dict) => SettingValue::Dict(
            dict.iter()
                .map(|(k, v)| Ok((k.to_owned(), protect_nested(v)?)))
                .collect::<Result<_, CodecError>>()?,
        ),
        other => other.clone(),
    })
}

fn first_pass(raw: &str) -> Result<SettingValue, CodecError> {
    convert_if_tagged(raw).unwrap_or_else(|| decode_toml(raw))
}

fn second_pass(value: SettingValue) -> Result<SettingValue, CodecError> {
    Ok(match value {
        SettingValue::Str(s) => match convert_if_tagged(&s) {
            Some(converted) => converted?,
            None => SettingValue::Str(s),
        },
        SettingValue::List(items) => SettingValue::List(
            items
                .into_iter()
                .map(second_pass)
                .collect::<Result<_, _>>()?,
        ),
        SettingValue::Dict(dict) => SettingValue::Dict(
            dict.into_iter()
                .map(|(k, v)| Ok((k, second_pass(v)?)))
                .collect::<Result<_, CodecError>>()?,
        ),
        other => other,
    })
}

fn first_word_is_converter(text: &str) -> bool {
    let first = text.split_once(' ').map_or(text, |(first, _)| first);
    DYNACONF_CONVERTERS.contains(&first)
}

/// `None` when the text does not start with a converter word.
fn convert_if_tagged(text: &str) -> Option<Result<SettingValue, CodecError>> {
    let (converter, value) = text.split_once(' ').unwrap_or((text, ""));
    first_word_is_converter(text).then(|| convert(converter, value))
}

fn convert(converter: &str, value: &str) -> Result<SettingValue, CodecError> {
    if LAZY_FORMATTERS.iter().any(|lazy| value.starts_with(lazy)) {
        return Err(CodecError::UnsupportedConverter(format!(
            "{converter} {value}"
        )));
    }
    match converter {
        "@str" => Ok(SettingValue::Str(value.to_owned())),
        "@int" => parse_python_int(value)
            .map(SettingValue::Int)
            .ok_or_else(|| bad("@int", format!("{value:?} is not a whole number"))),
        "@float" => parse_python_float(value)
            .map(SettingValue::Float)
            .ok_or_else(|| bad("@float", format!("{value:?} is not a number"))),
        "@bool" => {
            let word = value.trim().to_lowercase();
            Ok(SettingValue::Bool(TRUE_WORDS.contains(&word.as_str())))
        }
        "@json" => serde_json::from_str(value).map_err(|e| bad("@json", e.to_string())),
        "@none" | "@null" => Ok(SettingValue::None),
        other => Err(CodecError::UnsupportedConverter(other.to_owned())),
    }
}

fn bad(converter: &'static str, reason: String) -> CodecError {
    CodecError::BadConverterValue { converter, reason }
}

/// Python's `int(text)`: surrounding whitespace, a sign, and `_` between
/// digits are accepted.
fn parse_python_int(text: &str) -> Option<i64> {
    let text = text.trim();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(digits) => ("-", digits),
        None => ("", text.strip_prefix('+').unwrap_or(text)),
    };
    if !digits.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return None;
    }
    format!("{sign}{}", without_digit_separators(digits)?)
        .parse()
        .ok()
}

/// Python's `float(text)`, which Rust's parser matches once the `_` digit
/// separators are gone (`inf`, `nan`, `1e5`, `.5`, `5.`, signs).
fn parse_python_float(text: &str) -> Option<f64> {
    without_digit_separators(text.trim())?.parse().ok()
}

/// Removes `_` that sits between two digits; any other `_` is invalid.
fn without_digit_separators(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        if c != '_' {
            out.push(c);
            continue;
        }
        let before = i.checked_sub(1).and_then(|j| chars.get(j));
        let after = chars.get(i + 1);
        if !(before.is_some_and(char::is_ascii_digit) && after.is_some_and(char::is_ascii_digit)) {
            return None;
        }
    }
    Some(out)
}

fn decode_toml(raw: &str) -> Result<SettingValue, CodecError> {
    match format!("key={raw}").parse::<toml::Value>() {
        Ok(toml::Value::Table(mut document)) => match document.remove("key") {
            Some(value) => from_toml(value),
            None => Ok(SettingValue::Str(raw.to_owned())),
        },
        _ => out_of_range_number(raw).unwrap_or_else(|| Ok(SettingValue::Str(raw.to_owned()))),
    }
}

/// The toml crate refuses numbers Python's tomllib accepts: floats that
/// overflow to infinity (`1234e567`) and integers beyond 64 bits.
fn out_of_range_number(raw: &str) -> Option<Result<SettingValue, CodecError>> {
    let literal = raw.trim_matches(TOML_BLANKS);
    match toml_number_prefix(literal)? {
        (len, NumberKind::Float) if len == literal.len() => {
            parse_python_float(literal).map(|x| Ok(SettingValue::Float(x)))
        }
        (len, NumberKind::Integer) if len == literal.len() => {
            Some(Err(CodecError::IntegerTooLarge))
        }
        _ => None,
    }
}

const TOML_BLANKS: [char; 2] = [' ', '\t'];

/// Whether TOML would read a number at the start of `s` (a number followed
/// by the end, a blank, a comment or a newline). Such strings are never
/// written raw: whether Python then reads a number depends on TOML details
/// (sizes, what follows) the toml crate does not share with tomllib.
fn starts_with_toml_number(s: &str) -> bool {
    let s = s.trim_start_matches(TOML_BLANKS);
    toml_number_prefix(s).is_some_and(|(len, _)| {
        s[len..]
            .chars()
            .next()
            .map_or(true, |c| matches!(c, ' ' | '\t' | '#' | '\n' | '\r'))
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum NumberKind {
    Integer,
    Float,
}

/// Length of the TOML 1.0 integer or float literal at the start of `s`
/// (not `inf`/`nan`, which the toml crate reads like tomllib).
fn toml_number_prefix(s: &str) -> Option<(usize, NumberKind)> {
    let b = s.as_bytes();
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = s.strip_prefix(prefix) {
            let len = digit_run(rest.as_bytes(), radix);
            return (len > 0).then_some((prefix.len() + len, NumberKind::Integer));
        }
    }
    let mut at = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let int_len = match b.get(at) {
        Some(b'0') => 1,
        _ => digit_run(&b[at..], 10),
    };
    if int_len == 0 {
        return None;
    }
    at += int_len;
    let mut kind = NumberKind::Integer;
    if b.get(at) == Some(&b'.') {
        let frac = digit_run(&b[at + 1..], 10);
        if frac > 0 {
            at += 1 + frac;
            kind = NumberKind::Float;
        }
    }
    if matches!(b.get(at), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(b.get(at + 1), Some(b'+' | b'-')));
        let exp = b.get(at + 1 + sign..).map_or(0, |rest| digit_run(rest, 10));
        if exp > 0 {
            at += 1 + sign + exp;
            kind = NumberKind::Float;
        }
    }
    Some((at, kind))
}

/// Length of `digit(_?digit)*` in the given radix at the start of `b`.
fn digit_run(b: &[u8], radix: u32) -> usize {
    let is_digit = |c: &u8| char::from(*c).is_digit(radix);
    let mut len = 0;
    while len < b.len() {
        if is_digit(&b[len]) {
            len += 1;
        } else if b[len] == b'_' && len > 0 && b.get(len + 1).is_some_and(is_digit) {
            len += 2;
        } else {
            break;
        }
    }
    len
}

fn from_toml(value: toml::Value) -> Result<SettingValue, CodecError> {
    Ok(match value {
        toml::Value::String(s) => SettingValue::Str(s),
        toml::Value::Integer(n) => SettingValue::Int(n),
        toml::Value::Float(x) => SettingValue::Float(x),
        toml::Value::Boolean(b) => SettingValue::Bool(b),
        toml::Value::Datetime(_) => return Err(CodecError::TomlDateTime),
        toml::Value::Array(items) => {
            SettingValue::List(items.into_iter().map(from_toml).collect::<Result<_, _>>()?)
        }
        // Inline tables come back sorted by key (the toml crate keeps no
        // order); RSTUF never stores them raw.
        toml::Value::Table(table) => SettingValue::Dict(
            table
                .into_iter()
                .map(|(k, v)| Ok((k, from_toml(v)?)))
                .collect::<Result<_, CodecError>>()?,
        ),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::settings::value::Dict;
    use crate::tuf::testdata;
    use serde_json::{json, Value};

    const READ: &str = "vectors/settings/dynaconf-read-handwritten.json";
    const WRITE: &str = "vectors/settings/dynaconf-write-observed.json";
    const BINS: &str = "vectors/settings/after-bootstrap-bins.json";

    /// The read vector holds Python's bare `Infinity`, which is not JSON.
    pub(crate) fn read_vector() -> Value {
        let text = String::from_utf8(testdata::bytes(READ)).unwrap();
        serde_json::from_str(&text.replace(": Infinity", ": \"Infinity\"")).unwrap()
    }

    /// The vectors' `(type, value)` view of what Python read; dates and
    /// undecodable values map to the error that stands in for them.
    fn python_view(decoded: &Result<SettingValue, CodecError>) -> (String, Value) {
        match decoded {
            Ok(SettingValue::Float(x)) if x.is_infinite() => ("float".into(), json!("Infinity")),
            Ok(value) => (
                value.python_type().into(),
                serde_json::to_value(value).unwrap(),
            ),
            Err(CodecError::TomlDateTime) => ("date".into(), Value::Null),
            Err(e) => (format!("error: {e}"), Value::Null),
        }
    }

    /// What `get_fresh` returns, dropped values shown as Python's None.
    fn fresh(raw: &str) -> Result<SettingValue, CodecError> {
        decode_fresh(raw).map(|v| v.unwrap_or(SettingValue::None))
    }

    fn expected_view(case: &Value) -> (String, Value) {
        let kind = case["type"].as_str().unwrap().to_owned();
        let value = if kind == "date" {
            Value::Null
        } else {
            case["value"].clone()
        };
        (kind, value)
    }

    #[test]
    fn handwritten_values_decode_like_a_full_python_load() {
        let vector = read_vector();
        let cases = vector["cases"].as_object().unwrap();
        assert_eq!(cases.len(), 34);
        for (field, case) in cases {
            let raw = case["raw"].as_str().unwrap();
            let expected = expected_view(&case["get_after_full_load"]);
            assert_eq!(python_view(&decode(raw)), expected, "{field}: {raw:?}");
        }
    }

    #[test]
    fn handwritten_values_read_like_python_get_fresh() {
        let vector = read_vector();
        for (field, case) in vector["cases"].as_object().unwrap() {
            let raw = case["raw"].as_str().unwrap();
            if field.to_uppercase() != *field {
                // get_fresh looks up the upper-cased name, so it never sees
                // this field at all (checked against Redis in store.rs).
                assert_eq!(case["get_fresh"]["value"], Value::Null);
                continue;
            }
            let expected = expected_view(&case["get_fresh"]);
            assert_eq!(python_view(&fresh(raw)), expected, "{field}: {raw:?}");
        }
    }

    #[test]
    fn a_malformed_json_field_reads_as_absent_and_others_still_read() {
        let poison = &read_vector()["poison_test"];
        assert_eq!(poison["get_fresh_JSON_BAD"], Value::Null);
        let bad = decode(poison["hash"]["JSON_BAD"].as_str().unwrap()).unwrap_err();
        assert!(
            matches!(
                bad,
                CodecError::BadConverterValue {
                    converter: "@json",
                    ..
                }
            ),
            "{bad:?}"
        );
        let good = decode(poison["hash"]["GOOD"].as_str().unwrap()).unwrap();
        assert_eq!(json!(good), poison["get_fresh_GOOD"]);
    }

    #[test]
    fn date_strings_are_recognised() {
        let vector = read_vector();
        assert_eq!(
            vector["date_string_test"]["get_after_full_load_A_DATE"],
            "<date> 2024-01-01"
        );
        assert_eq!(decode("2024-01-01"), Err(CodecError::TomlDateTime));
        for raw in [
            "1979-05-27T07:32:00Z",
            "07:32:00",
            "1979-05-27 07:32:00",
            "[2024-01-01]",
        ] {
            assert_eq!(decode(raw), Err(CodecError::TomlDateTime), "{raw}");
        }
    }

    /// The values the write experiment stored, in its order (from
    /// `_generators/dynaconf_write_exp.py`, whose `writes` list is empty).
    fn written_values() -> Vec<(&'static str, SettingValue)> {
        let s = |t: &str| SettingValue::Str(t.to_owned());
        vec![
            ("BOOTSTRAP", s("pre-7a634b556f784ae88785d36425f9a218")),
            ("ROOT_EXPIRATION", SettingValue::Int(365)),
            ("TARGETS_ONLINE_KEY", SettingValue::Bool(true)),
            ("SOME_FALSE", SettingValue::Bool(false)),
            ("A_FLOAT", SettingValue::Float(500.0)),
            ("ROOT_SIGNING", SettingValue::None),
            (
                "DELEGATIONS",
                serde_json::from_str(
                    r#"{"keys": {}, "roles": [{"name": "dev", "terminating": true, "keyids": [],
                    "threshold": 1, "paths": ["dev/*"], "x-rstuf-expire-policy": 30}]}"#,
                )
                .unwrap(),
            ),
            ("A_LIST", SettingValue::List(vec![s("bins-0"), s("bins-1")])),
            ("EMPTY_LIST", SettingValue::List(vec![])),
            ("EMPTY_DICT", SettingValue::Dict(Dict::default())),
            ("EMPTY_STR", s("")),
            ("UNICODE_STR", s("caf\u{e9} \u{2603}")),
            ("digits_str", s("12345")),
            ("TRUE_STR", s("true")),
            ("QUOTED_STR", s("\"quoted\"")),
            ("NEG_INT", SettingValue::Int(-3)),
            ("lower_key", s("x")),
            ("DOTTED.ROLE_EXPIRATION", SettingValue::Int(7)),
            ("DASHED-ROLE_EXPIRATION", SettingValue::Int(8)),
        ]
    }

    #[test]
    fn values_encode_exactly_as_python_stored_them() {
        let vector = testdata::json(WRITE);
        let stored = &vector["HGETALL"]["DYNACONF_MAIN"];
        // Python rewrote these in their decoded form (type drift); we keep
        // them strings with `@str ` instead.
        let drifted = [
            ("digits_str", "@int 12345", "@str 12345"),
            ("TRUE_STR", "@bool True", "@str true"),
            ("QUOTED_STR", "quoted", "@str \"quoted\""),
        ];
        for (name, value) in written_values() {
            let python = stored[name.to_uppercase()].as_str().unwrap();
            let ours = encode(&value).unwrap();
            match drifted.iter().find(|(n, ..)| *n == name) {
                Some((_, python_drift, our_form)) => {
                    assert_eq!(python, *python_drift, "{name}");
                    assert_eq!(ours, *our_form, "{name}");
                    assert_eq!(decode(&ours), Ok(value), "{name} reads back as written");
                }
                None => assert_eq!(ours, python, "{name}"),
            }
        }
    }

    #[test]
    fn python_written_values_read_back_like_get_fresh() {
        let vector = testdata::json(WRITE);
        let stored = &vector["HGETALL"]["DYNACONF_MAIN"];
        let read_back = vector["read_back_get_fresh"].as_object().unwrap();
        assert_eq!(read_back.len(), written_values().len());
        for (name, expected) in read_back {
            let raw = stored[name.to_uppercase()].as_str().unwrap();
            let (kind, value) = python_view(&fresh(raw));
            assert_eq!(kind, expected["get_fresh_type"].as_str().unwrap(), "{name}");
            assert_eq!(value, expected["get_fresh_value"], "{name}");
        }
    }

    #[test]
    fn a_date_string_is_stored_so_that_it_stays_a_string() {
        let vector = testdata::json(WRITE);
        assert_eq!(
            vector["HGETALL_after_date"]["DYNACONF_MAIN"]["DATE_STR"],
            "2024-01-01"
        );
        assert!(vector["write_after_date_str"]
            .as_str()
            .unwrap()
            .starts_with("DataError"));
        let ours = encode(&SettingValue::Str("2024-01-01".into())).unwrap();
        assert_eq!(ours, "@str 2024-01-01");
        assert_eq!(decode(&ours), Ok(SettingValue::Str("2024-01-01".into())));
    }

    #[test]
    fn bootstrap_hashes_round_trip_byte_for_byte() {
        let vector = testdata::json(BINS);
        let steps = vector["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 3);
        for step in steps {
            for (field, raw) in step["HGETALL DYNACONF_MAIN"].as_object().unwrap() {
                let raw = raw.as_str().unwrap();
                let value = decode(raw).unwrap();
                assert_eq!(encode(&value).unwrap(), raw, "{}: {field}", step["after"]);
            }
        }
    }

    #[test]
    fn bootstrap_values_have_the_python_types() {
        let vector = testdata::json(BINS);
        let last = &vector["steps"][2]["HGETALL DYNACONF_MAIN"];
        let types = vector["python_type_from_get_fresh"].as_object().unwrap();
        assert_eq!(types.len(), last.as_object().unwrap().len());
        for (field, python_type) in types {
            let decoded = fresh(last[field].as_str().unwrap());
            assert_eq!(
                python_view(&decoded).0,
                python_type.as_str().unwrap(),
                "{field}"
            );
        }
    }

    #[test]
    fn strings_that_would_change_meaning_get_the_str_converter() {
        let cases = [
            (
                "7a634b556f784ae88785d36425f9a218",
                "7a634b556f784ae88785d36425f9a218",
            ),
            ("signing-7a63", "signing-7a63"),
            ("", ""),
            ("@intx", "@intx"),
            ("1234e567", "@str 1234e567"),
            ("inf", "@str inf"),
            ("[1, 2]", "@str [1, 2]"),
            ("'single'", "@str 'single'"),
            ("@int 5", "@str @str @int 5"),
            ("@none", "@str @str @none"),
            ("99999999999999999999", "@str 99999999999999999999"),
            ("0xffffffffffffffffffff", "@str 0xffffffffffffffffffff"),
            ("1e999 # big", "@str 1e999 # big"),
            ("7 days", "@str 7 days"),
            ("\"@int 7\"", "@str \"@int 7\""),
            ("@str @none", "@str @str @str @none"),
            (" 30", "@str  30"),
            ("1\nother=2", "@str 1\nother=2"),
        ];
        for (text, stored) in cases {
            assert_eq!(
                encode(&SettingValue::Str(text.into())).unwrap(),
                stored,
                "{text:?}"
            );
            assert_eq!(
                decode(stored),
                Ok(SettingValue::Str(text.into())),
                "{stored:?}"
            );
        }
    }

    #[test]
    fn template_strings_are_refused() {
        for text in [
            "@get X",
            "@format {this.X}",
            "@jinja {{x}}",
            "@read_file /etc/passwd",
        ] {
            let err = encode(&SettingValue::Str(text.into())).unwrap_err();
            assert_eq!(err, CodecError::UnrepresentableString(text.into()));
            let nested = SettingValue::List(vec![SettingValue::Str(text.into())]);
            assert_eq!(
                encode(&nested).unwrap_err(),
                CodecError::UnrepresentableString(text.into())
            );
        }
        // Without a space the first word is no converter, so it stays a string.
        assert_eq!(
            encode(&SettingValue::Str("@getter".into())).unwrap(),
            "@getter"
        );
    }

    #[test]
    fn converters_follow_python_casting_rules() {
        let cases = [
            ("@int +1_000", SettingValue::Int(1000)),
            ("@int -3", SettingValue::Int(-3)),
            ("@float 1_0.5", SettingValue::Float(10.5)),
            ("@float .5", SettingValue::Float(0.5)),
            ("@float 1e+16", SettingValue::Float(1e16)),
            ("@float -Infinity", SettingValue::Float(f64::NEG_INFINITY)),
            ("@bool  YES ", SettingValue::Bool(true)),
            ("@bool on", SettingValue::Bool(true)),
            ("@bool nope", SettingValue::Bool(false)),
            ("@bool", SettingValue::Bool(false)),
            ("@null whatever", SettingValue::None),
            ("@str  padded ", SettingValue::Str(" padded ".into())),
            ("@json 5", SettingValue::Int(5)),
        ];
        for (raw, expected) in cases {
            assert_eq!(decode(raw), Ok(expected), "{raw:?}");
        }
        for raw in [
            "@int 1__0",
            "@int _1",
            "@int 1.0",
            "@int",
            "@float 1_",
            "@json",
        ] {
            assert!(
                matches!(decode(raw), Err(CodecError::BadConverterValue { .. })),
                "{raw:?} -> {:?}",
                decode(raw)
            );
        }
        assert_eq!(
            decode("@merge a=1"),
            Err(CodecError::UnsupportedConverter("@merge".into()))
        );
    }

    #[test]
    fn floats_round_trip_through_their_python_text() {
        for x in [500.0, 0.1, 1e16, -1.5e-7, 1e308, f64::INFINITY, -0.0] {
            let stored = encode(&SettingValue::Float(x)).unwrap();
            assert_eq!(decode(&stored), Ok(SettingValue::Float(x)), "{stored}");
        }
        assert_eq!(encode(&SettingValue::Float(1e16)).unwrap(), "@float 1e+16");
    }

    /// Observed with dynaconf 3.3.2 (get_fresh and full load agree): the
    /// value is parsed again when dynaconf stores it, strings inside lists
    /// and dicts included.
    #[test]
    fn converter_words_are_applied_a_second_time_like_dynaconf() {
        let cases = [
            ("@str @int 5", json!(5)),
            (
                r#"@json {"a": "@int 5", "b": ["@bool on", "@str @none"], "c": "x @int"}"#,
                json!({"a": 5, "b": [true, "@none"], "c": "x @int"}),
            ),
            ("@str @json [1]", json!([1])),
            ("\"@int 7\"", json!(7)),
            ("@str @str @int 3", json!("@int 3")),
            ("@json \"@int 9\"", json!(9)),
            ("@str @none", Value::Null),
            ("[\"@int 1\"]", json!([1])),
        ];
        for (raw, python) in cases {
            assert_eq!(json!(decode(raw).unwrap()), python, "{raw}");
        }
        assert!(matches!(
            decode("@str @note hi"),
            Err(CodecError::UnsupportedConverter(_))
        ));
        // get_fresh judges truthiness before the second pass.
        assert_eq!(decode_fresh("@str @int 0"), Ok(Some(SettingValue::Int(0))));
    }

    #[test]
    fn nested_converter_words_are_protected_and_read_back() {
        let value: SettingValue = serde_json::from_str(
            r#"{"name": "@none", "keys": ["@int 5", "@str x", "@intx", "plain @int"]}"#,
        )
        .unwrap();
        let stored = encode(&value).unwrap();
        assert_eq!(
            stored,
            r#"@json {"name": "@str @none", "keys": ["@str @int 5", "@str @str x", "@intx", "plain @int"]}"#
        );
        assert_eq!(decode(&stored), Ok(value));
    }

    #[test]
    fn out_of_range_numbers_read_like_tomllib() {
        assert_eq!(decode("1234e567"), Ok(SettingValue::Float(f64::INFINITY)));
        assert_eq!(
            decode(" -1_0e1_000 "),
            Ok(SettingValue::Float(f64::NEG_INFINITY))
        );
        assert_eq!(
            decode("99999999999999999999"),
            Err(CodecError::IntegerTooLarge)
        );
        assert_eq!(
            decode("0xffffffffffffffffffff"),
            Err(CodecError::IntegerTooLarge)
        );
        assert_eq!(decode("1e5x"), Ok(SettingValue::Str("1e5x".into())));
    }
}
