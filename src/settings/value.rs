//! The values the settings hash holds, as Python sees them.
//!
//! Python dicts keep insertion order and `json.dumps` writes them in that
//! order, so a byte-identical writer needs an ordered map; `serde_json::Map`
//! is sorted in this build. [`Dict`] keeps the order, and parsing JSON into a
//! [`SettingValue`] goes through our own serde visitor, which sees object
//! members in document order whatever serde_json's features are.
use std::collections::HashMap;
use std::fmt::{self, Write};

use serde::de::{self, DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Python value as dynaconf stores it: scalars, lists and dicts.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingValue {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<SettingValue>),
    Dict(Dict),
}

/// An insertion-ordered dict with string keys.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dict(Vec<(String, SettingValue)>);

impl Dict {
    pub fn get(&self, key: &str) -> Option<&SettingValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &SettingValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl IntoIterator for Dict {
    type Item = (String, SettingValue);
    type IntoIter = std::vec::IntoIter<(String, SettingValue)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Like filling a Python dict: a repeated key keeps its first position and
/// takes the last value.
impl FromIterator<(String, SettingValue)> for Dict {
    fn from_iter<I: IntoIterator<Item = (String, SettingValue)>>(iter: I) -> Self {
        let mut entries: Vec<(String, SettingValue)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (key, value) in iter {
            match index.get(&key) {
                Some(&at) => entries[at].1 = value,
                None => {
                    index.insert(key.clone(), entries.len());
                    entries.push((key, value));
                }
            }
        }
        Dict(entries)
    }
}

impl SettingValue {
    /// Python's `bool(value)`: what `get_fresh` uses to drop stored values.
    pub fn is_truthy(&self) -> bool {
        match self {
            SettingValue::None => false,
            SettingValue::Bool(b) => *b,
            SettingValue::Int(n) => *n != 0,
            SettingValue::Float(x) => *x != 0.0,
            SettingValue::Str(s) => !s.is_empty(),
            SettingValue::List(items) => !items.is_empty(),
            SettingValue::Dict(dict) => !dict.is_empty(),
        }
    }

    /// The Python type dynaconf hands out, for messages an operator can
    /// compare with what Python code would see.
    pub fn python_type(&self) -> &'static str {
        match self {
            SettingValue::None => "NoneType",
            SettingValue::Bool(_) => "bool",
            SettingValue::Int(_) => "int",
            SettingValue::Float(_) => "float",
            SettingValue::Str(_) => "str",
            SettingValue::List(_) => "DataList",
            SettingValue::Dict(_) => "DataDict",
        }
    }

    /// A Rust value as a setting. Struct fields keep their declaration order
    /// (serde_json's writer emits them in order and our parser keeps it).
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::from_str(&serde_json::to_string(value)?)
    }

    /// The setting as a Rust value.
    pub fn deserialize_into<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_value(serde_json::to_value(self)?)
    }

    /// `json.dumps(value)` with Python's defaults: `", "` and `": "`
    /// separators, `ensure_ascii`, dict order kept, `Infinity`/`NaN`.
    pub fn to_python_json(&self) -> String {
        let mut out = String::new();
        write_json(self, &mut out);
        out
    }
}

fn write_json(value: &SettingValue, out: &mut String) {
    match value {
        SettingValue::None => out.push_str("null"),
        SettingValue::Bool(true) => out.push_str("true"),
        SettingValue::Bool(false) => out.push_str("false"),
        SettingValue::Int(n) => push_display(out, n),
        SettingValue::Float(x) if x.is_nan() => out.push_str("NaN"),
        SettingValue::Float(x) if x.is_infinite() => {
            out.push_str(if *x > 0.0 { "Infinity" } else { "-Infinity" })
        }
        SettingValue::Float(x) => out.push_str(&python_float_repr(*x)),
        SettingValue::Str(s) => write_ascii_string(s, out),
        SettingValue::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(item, out);
            }
            out.push(']');
        }
        SettingValue::Dict(dict) => {
            out.push('{');
            for (i, (key, item)) in dict.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_ascii_string(key, out);
                out.push_str(": ");
                write_json(item, out);
            }
            out.push('}');
        }
    }
}

fn push_display(out: &mut String, value: impl fmt::Display) {
    // Writing into a String cannot fail.
    let _ = write!(out, "{value}");
}

/// `ensure_ascii`: printable ASCII as is, everything else (DEL included)
/// as `\uXXXX` in lowercase hex, astral characters as surrogate pairs.
fn write_ascii_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units).iter() {
                    push_display(out, format_args!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: the shortest round-tripping digits, in fixed
/// notation for exponents -4..16 (always with a fractional part), otherwise
/// `d.ddde+XX`.
pub(crate) fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // `{:e}` gives the same shortest digits as Python, e.g. `-1.5e-7`.
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    if !(-4..16).contains(&exponent) {
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}e{exp_sign}{:02}", exponent.unsigned_abs());
    }
    let digits = mantissa.replace('.', "");
    if exponent < 0 {
        let zeros = "0".repeat(exponent.unsigned_abs() as usize - 1);
        return format!("{sign}0.{zeros}{digits}");
    }
    let int_len = exponent as usize + 1;
    if digits.len() <= int_len {
        format!("{sign}{digits}{}.0", "0".repeat(int_len - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
    }
}

impl Serialize for SettingValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            SettingValue::None => serializer.serialize_unit(),
            SettingValue::Bool(b) => serializer.serialize_bool(*b),
            SettingValue::Int(n) => serializer.serialize_i64(*n),
            SettingValue::Float(x) => serializer.serialize_f64(*x),
            SettingValue::Str(s) => serializer.serialize_str(s),
            SettingValue::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            SettingValue::Dict(dict) => {
                let mut map = serializer.serialize_map(Some(dict.len()))?;
                for (key, item) in dict.iter() {
                    map.serialize_entry(key, item)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for SettingValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = SettingValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<SettingValue, E> {
        Ok(SettingValue::None)
    }

    fn visit_bool<E>(self, b: bool) -> Result<SettingValue, E> {
        Ok(SettingValue::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<SettingValue, E> {
        Ok(SettingValue::Int(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<SettingValue, E> {
        i64::try_from(n)
            .map(SettingValue::Int)
            .map_err(|_| E::custom(format!("integer {n} is larger than this worker supports")))
    }

    fn visit_f64<E>(self, x: f64) -> Result<SettingValue, E> {
        Ok(SettingValue::Float(x))
    }

    fn visit_str<E>(self, s: &str) -> Result<SettingValue, E> {
        Ok(SettingValue::Str(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<SettingValue, E> {
        Ok(SettingValue::Str(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SettingValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(SettingValue::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SettingValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, SettingValue>()? {
            entries.push(entry);
        }
        Ok(SettingValue::Dict(entries.into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        // Expected strings printed by CPython 3 `repr(x)`.
        let cases = [
            (500.0, "500.0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e15, "1000000000000000.0"),
            (123456789.123, "123456789.123"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (-1.5e-7, "-1.5e-07"),
            (-0.0, "-0.0"),
            (2.5e-310, "2.5e-310"),
            (1e308, "1e+308"),
            (1.0 / 3.0, "0.3333333333333333"),
            (12345678901234567890.0, "1.2345678901234567e+19"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for (x, python) in cases {
            assert_eq!(python_float_repr(x), python, "repr({x:e})");
        }
    }

    #[test]
    fn python_json_keeps_order_and_escapes_like_json_dumps() {
        let value: SettingValue = serde_json::from_str(
            r#"{"z": 1, "a": [1, 2.0, null, true, "café ☃ 😀 \u007f \u0001 \t\n\"\\ /"], "e": {}, "l": []}"#,
        )
        .unwrap();
        // Printed by CPython's json.dumps for the same dict.
        let python = r#"{"z": 1, "a": [1, 2.0, null, true, "caf\u00e9 \u2603 \ud83d\ude00 \u007f \u0001 \t\n\"\\ /"], "e": {}, "l": []}"#;
        assert_eq!(value.to_python_json(), python);
    }

    #[test]
    fn non_finite_floats_use_python_json_words() {
        let list = SettingValue::List(vec![
            SettingValue::Float(f64::INFINITY),
            SettingValue::Float(f64::NEG_INFINITY),
            SettingValue::Float(f64::NAN),
        ]);
        assert_eq!(list.to_python_json(), "[Infinity, -Infinity, NaN]");
    }

    #[test]
    fn repeated_keys_keep_first_position_and_last_value() {
        let value: SettingValue = serde_json::from_str(r#"{"b": 1, "a": 2, "b": 3}"#).unwrap();
        assert_eq!(value.to_python_json(), r#"{"b": 3, "a": 2}"#);
    }

    #[test]
    fn structs_keep_field_order_both_ways() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct Role {
            name: String,
            terminating: bool,
            threshold: u32,
        }
        let role = Role {
            name: "dev".into(),
            terminating: true,
            threshold: 1,
        };
        let value = SettingValue::from_serialize(&role).unwrap();
        assert_eq!(
            value.to_python_json(),
            r#"{"name": "dev", "terminating": true, "threshold": 1}"#
        );
        assert_eq!(value.deserialize_into::<Role>().unwrap(), role);
    }

    #[test]
    fn integers_beyond_i64_are_refused() {
        let err = serde_json::from_str::<SettingValue>("18446744073709551615").unwrap_err();
        assert!(
            err.to_string().contains("larger than this worker supports"),
            "{err}"
        );
    }

    #[test]
    fn truthiness_is_pythons() {
        let falsy = [
            SettingValue::None,
            SettingValue::Bool(false),
            SettingValue::Int(0),
            SettingValue::Float(0.0),
            SettingValue::Float(-0.0),
            SettingValue::Str(String::new()),
            SettingValue::List(vec![]),
            SettingValue::Dict(Dict::default()),
        ];
        assert!(falsy.iter().all(|v| !v.is_truthy()));
        let truthy = [
            SettingValue::Bool(true),
            SettingValue::Int(-1),
            SettingValue::Float(f64::NAN),
            SettingValue::Str(" ".into()),
            SettingValue::List(vec![SettingValue::None]),
        ];
        assert!(truthy.iter().all(SettingValue::is_truthy));
    }
}
