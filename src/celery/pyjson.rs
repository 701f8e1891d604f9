//! JSON bytes exactly as Python's `json.dumps` writes them with its defaults
//! (`", "` / `": "` separators, `ensure_ascii=True`), which is what Celery and
//! kombu put on the wire and into Redis.
//!
//! Byte-exactness matters for interop checks and for operators comparing a
//! Rust worker's records with a Python worker's. Key order is whatever the
//! serialized type gives: struct fields in declaration order, and
//! `serde_json::Map` in insertion order (serde_json's `preserve_order`), as
//! a Python dict would.
use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::Formatter;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `json.dumps(value)` as bytes.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    value.serialize(&mut serializer)?;
    Ok(out)
}

/// `json.dumps(value)` as a string (always ASCII).
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    // ensure_ascii output is pure ASCII, so this conversion cannot lose data.
    to_vec(value).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Python's `repr(float)`: the shortest digits that round-trip (as Rust
/// finds them too), but in exponent form below 1e-4 and from 1e16 on, with
/// a signed two-digit exponent, and `.0` on integral values.
pub fn float_repr(value: f64) -> String {
    if value.is_nan() {
        return "nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.into();
    }
    // `{:e}` gives the shortest round-trip digits as `d.ddde<exp>`.
    let sci = format!("{value:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..16).contains(&exponent) {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{first}{fraction}e{exp_sign}{:02}", exponent.abs());
    }
    let point = exponent + 1;
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else {
        let point = point as usize;
        if digits.len() <= point {
            format!("{digits}{}.0", "0".repeat(point - digits.len()))
        } else {
            format!("{}.{}", &digits[..point], &digits[point..])
        }
    };
    format!("{sign}{body}")
}

/// serde_json's compact output with Python's separators, float format and
/// ASCII-only strings. Control characters, `"` and `\` are escaped by
/// serde_json itself the same way Python does (`\n`, `\u001f`, ...).
struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.begin_array_value(w, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(float_repr(value).as_bytes())
    }

    fn write_f32<W: ?Sized + Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(w, f64::from(value))
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, s: &str) -> io::Result<()> {
        let mut printable_from = 0;
        for (at, c) in s.char_indices() {
            if (' '..='~').contains(&c) {
                continue;
            }
            w.write_all(&s.as_bytes()[printable_from..at])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write_unicode_escape(w, *unit)?;
            }
            printable_from = at + c.len_utf8();
        }
        w.write_all(&s.as_bytes()[printable_from..])
    }
}

fn write_unicode_escape<W: ?Sized + Write>(w: &mut W, unit: u16) -> io::Result<()> {
    let nibble = |shift: u16| HEX[usize::from((unit >> shift) & 0xf)];
    w.write_all(&[b'\\', b'u', nibble(12), nibble(8), nibble(4), nibble(0)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn separators_and_insertion_ordered_maps_match_python() {
        // python3 -c 'import json; print(json.dumps({"b": [1, 2, {"x": None}], "a": True, "c": {}}))'
        let value = json!({"b": [1, 2, {"x": null}], "a": true, "c": {}});
        assert_eq!(
            to_string(&value).unwrap(),
            r#"{"b": [1, 2, {"x": null}], "a": true, "c": {}}"#
        );
        assert_eq!(to_string(&json!([])).unwrap(), "[]");
    }

    #[test]
    fn strings_are_escaped_like_ensure_ascii() {
        // Expected bytes from python3 -c 'import json; print(json.dumps(s))'.
        let cases = [
            ("v\u{e9}", r#""v\u00e9""#),
            ("\u{1f600}", r#""\ud83d\ude00""#),
            ("tab\tnl\ncr\rbs\u{8}ff\u{c}", r#""tab\tnl\ncr\rbs\bff\f""#),
            ("\u{1}\u{1f}\u{7f}", r#""\u0001\u001f\u007f""#),
            ("q\"b\\s/", r#""q\"b\\s/""#),
            ("\u{2028}\u{ffff}", r#""\u2028\uffff""#),
        ];
        for (input, want) in cases {
            assert_eq!(to_string(input).unwrap(), want, "{input:?}");
        }
    }

    #[test]
    fn floats_print_like_python_repr() {
        // Expected strings from python3 -c 'print(repr(x))'.
        let cases = [
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1.234e16, "1.234e+16"),
            (9999999999999998.0, "9999999999999998.0"),
            (123456.789, "123456.789"),
            (2.5e-300, "2.5e-300"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (input, want) in cases {
            assert_eq!(float_repr(input), want, "{input:e}");
        }
        assert_eq!(to_string(&json!({"t": 0.25})).unwrap(), r#"{"t": 0.25}"#);
    }
}
