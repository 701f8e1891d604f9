//! One serde serializer for both JSON forms TUF needs, the canonical bytes
//! signatures cover ([`super::canonical`]) and python-tuf's file layout
//! ([`super::fileformat`]), writing bytes straight from the typed metadata.
//!
//! Going through `serde_json::Value` first cost more than the writing: a
//! 16384-bin snapshot took ~35 ms per form, mostly to build and drop 16384
//! small maps. Both forms sort object keys by code point; entries are written in
//! place and an object is re-sorted only when its keys did not arrive in
//! that order (see [`Object`]).
use std::borrow::Cow;
use std::fmt::{self, Display};
use std::io::Write;
use std::ops::Range;

use serde::ser::{self, Serialize};

/// What differs between the two forms.
pub(super) trait Format {
    /// Whitespace: canonical JSON has none; files indent by one space.
    const PRETTY: bool;
    fn write_string(s: &str, out: &mut Vec<u8>);
    fn error(message: String) -> super::Error;
}

/// Bytes of `value` in format `F`.
pub(super) fn to_bytes<F: Format, T: Serialize + ?Sized>(value: &T) -> super::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(1024);
    value
        .serialize(Writer::<F> {
            out: &mut out,
            depth: 0,
            format: std::marker::PhantomData,
        })
        .map_err(|e| F::error(e.0))?;
    Ok(out)
}

#[derive(Debug)]
pub(super) struct WriteError(String);

impl Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WriteError {}

impl ser::Error for WriteError {
    fn custom<T: Display>(msg: T) -> Self {
        WriteError(msg.to_string())
    }
}

type Result<T = ()> = std::result::Result<T, WriteError>;

/// Writes one value at `depth` (the indentation of its own line).
struct Writer<'a, F> {
    out: &'a mut Vec<u8>,
    depth: usize,
    format: std::marker::PhantomData<F>,
}

impl<'a, F: Format> Writer<'a, F> {
    fn integer(self, n: impl Display) -> Result {
        // Writing into a Vec cannot fail.
        let _ = write!(self.out, "{n}");
        Ok(())
    }

    fn raw(self, bytes: &[u8]) -> Result {
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    fn object(self) -> Object<'a, F> {
        self.out.push(b'{');
        Object {
            body: self.out.len(),
            out: self.out,
            depth: self.depth,
            entries: Vec::new(),
            in_order: true,
            key: None,
            format: std::marker::PhantomData,
        }
    }

    fn array(self) -> Array<'a, F> {
        self.out.push(b'[');
        Array {
            out: self.out,
            depth: self.depth,
            items: 0,
            format: std::marker::PhantomData,
        }
    }
}

/// A newline and `depth` spaces, in the file form only.
fn new_line<F: Format>(depth: usize, out: &mut Vec<u8>) {
    if F::PRETTY {
        out.push(b'\n');
        out.resize(out.len() + depth, b' ');
    }
}

fn float_error(n: f64) -> WriteError {
    WriteError(format!("floats are not allowed: {n}"))
}

impl<'a, F: Format> ser::Serializer for Writer<'a, F> {
    type Ok = ();
    type Error = WriteError;
    type SerializeSeq = Array<'a, F>;
    type SerializeTuple = Array<'a, F>;
    type SerializeTupleStruct = Array<'a, F>;
    type SerializeTupleVariant = Array<'a, F>;
    type SerializeMap = Object<'a, F>;
    type SerializeStruct = Object<'a, F>;
    type SerializeStructVariant = Object<'a, F>;

    fn serialize_bool(self, v: bool) -> Result {
        self.raw(if v { b"true" } else { b"false" })
    }
    fn serialize_i8(self, v: i8) -> Result {
        self.integer(v)
    }
    fn serialize_i16(self, v: i16) -> Result {
        self.integer(v)
    }
    fn serialize_i32(self, v: i32) -> Result {
        self.integer(v)
    }
    fn serialize_i64(self, v: i64) -> Result {
        self.integer(v)
    }
    fn serialize_u8(self, v: u8) -> Result {
        self.integer(v)
    }
    fn serialize_u16(self, v: u16) -> Result {
        self.integer(v)
    }
    fn serialize_u32(self, v: u32) -> Result {
        self.integer(v)
    }
    fn serialize_u64(self, v: u64) -> Result {
        self.integer(v)
    }
    // TUF metadata has no floats, and Python would print them differently
    // (`1e+16`, `Infinity`), so refusing is safer than guessing.
    fn serialize_f32(self, v: f32) -> Result {
        Err(float_error(f64::from(v)))
    }
    fn serialize_f64(self, v: f64) -> Result {
        Err(float_error(v))
    }
    fn serialize_char(self, v: char) -> Result {
        self.serialize_str(v.encode_utf8(&mut [0u8; 4]))
    }
    fn serialize_str(self, v: &str) -> Result {
        F::write_string(v, self.out);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result {
        let mut array = self.array();
        for byte in v {
            ser::SerializeSeq::serialize_element(&mut array, byte)?;
        }
        ser::SerializeSeq::end(array)
    }
    fn serialize_none(self) -> Result {
        self.raw(b"null")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result {
        self.raw(b"null")
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result {
        self.raw(b"null")
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result {
        let mut object = self.object();
        ser::SerializeMap::serialize_entry(&mut object, variant, value)?;
        ser::SerializeMap::end(object)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Array<'a, F>> {
        Ok(self.array())
    }
    fn serialize_tuple(self, _: usize) -> Result<Array<'a, F>> {
        Ok(self.array())
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Array<'a, F>> {
        Ok(self.array())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Array<'a, F>> {
        Err(WriteError(format!(
            "tuple variant {variant} has no JSON form here"
        )))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Object<'a, F>> {
        Ok(self.object())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Object<'a, F>> {
        Ok(self.object())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Object<'a, F>> {
        Err(WriteError(format!(
            "struct variant {variant} has no JSON form here"
        )))
    }
}

/// An array being written in place: items need no sorting.
struct Array<'a, F> {
    out: &'a mut Vec<u8>,
    depth: usize,
    items: usize,
    format: std::marker::PhantomData<F>,
}

impl<F: Format> Array<'_, F> {
    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        if self.items > 0 {
            self.out.push(b',');
        }
        new_line::<F>(self.depth + 1, self.out);
        self.items += 1;
        value.serialize(Writer::<F> {
            out: self.out,
            depth: self.depth + 1,
            format: std::marker::PhantomData,
        })
    }

    fn close(self) -> Result {
        if self.items > 0 {
            new_line::<F>(self.depth, self.out);
        }
        self.out.push(b']');
        Ok(())
    }
}

/// serde splits arrays into four traits of one shape; all write items.
macro_rules! array_trait {
    ($trait:ident, $method:ident) => {
        impl<F: Format> ser::$trait for Array<'_, F> {
            type Ok = ();
            type Error = WriteError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
                self.item(value)
            }
            fn end(self) -> Result {
                self.close()
            }
        }
    };
}

array_trait!(SerializeSeq, serialize_element);
array_trait!(SerializeTuple, serialize_element);
array_trait!(SerializeTupleStruct, serialize_field);
array_trait!(SerializeTupleVariant, serialize_field);

/// An object, written in place. Keys usually arrive in code-point order
/// (struct fields are declared sorted, maps are `BTreeMap`s), so entries go
/// straight to the output; only an object whose keys came out of order or
/// repeated is rewritten, sorted, when it closes.
struct Object<'a, F> {
    out: &'a mut Vec<u8>,
    depth: usize,
    /// Where the first entry starts, just after `{`.
    body: usize,
    entries: Vec<Entry>,
    in_order: bool,
    key: Option<String>,
    format: std::marker::PhantomData<F>,
}

/// One written entry: its key and its bytes in the output (from its line
/// break to the end of its value, without the separating comma).
struct Entry {
    key: Cow<'static, str>,
    span: Range<usize>,
}

impl<F: Format> Object<'_, F> {
    fn entry<T: Serialize + ?Sized>(&mut self, key: Cow<'static, str>, value: &T) -> Result {
        if let Some(last) = self.entries.last() {
            self.in_order &= last.key < key;
            self.out.push(b',');
        }
        let start = self.out.len();
        new_line::<F>(self.depth + 1, self.out);
        F::write_string(&key, self.out);
        self.out
            .extend_from_slice(if F::PRETTY { b": " } else { b":" });
        value.serialize(Writer::<F> {
            out: self.out,
            depth: self.depth + 1,
            format: std::marker::PhantomData,
        })?;
        let span = start..self.out.len();
        self.entries.push(Entry { key, span });
        Ok(())
    }

    fn close(mut self) -> Result {
        if !self.in_order {
            self.sort();
        }
        if !self.entries.is_empty() {
            new_line::<F>(self.depth, self.out);
        }
        self.out.push(b'}');
        Ok(())
    }

    /// Rewrites the entries in key order. Stable: of repeated keys the last
    /// is kept, as a JSON object built from the same entries would keep it.
    fn sort(&mut self) {
        let written = self.out.split_off(self.body);
        let body = self.body;
        self.entries.sort_by(|a, b| a.key.cmp(&b.key));
        self.entries.dedup_by(|later, earlier| {
            let same = later.key == earlier.key;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            let span = entry.span.start - body..entry.span.end - body;
            self.out.extend_from_slice(&written[span]);
        }
    }
}

impl<F: Format> ser::SerializeMap for Object<'_, F> {
    type Ok = ();
    type Error = WriteError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result {
        self.key = Some(key.serialize(KeyWriter)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        let key = self
            .key
            .take()
            .ok_or_else(|| WriteError("a map value came without its key".into()))?;
        self.entry(Cow::Owned(key), value)
    }
    fn end(self) -> Result {
        self.close()
    }
}

/// Struct fields are object entries under their field names.
macro_rules! struct_trait {
    ($trait:ident) => {
        impl<F: Format> ser::$trait for Object<'_, F> {
            type Ok = ();
            type Error = WriteError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result {
                self.entry(Cow::Borrowed(key), value)
            }
            fn end(self) -> Result {
                self.close()
            }
        }
    };
}

struct_trait!(SerializeStruct);
struct_trait!(SerializeStructVariant);

/// Object keys must be strings, as in JSON.
struct KeyWriter;

fn not_a_key<T>(what: &str) -> Result<T> {
    Err(WriteError(format!(
        "object keys must be strings, not {what}"
    )))
}

impl ser::Serializer for KeyWriter {
    type Ok = String;
    type Error = WriteError;
    type SerializeSeq = ser::Impossible<String, WriteError>;
    type SerializeTuple = ser::Impossible<String, WriteError>;
    type SerializeTupleStruct = ser::Impossible<String, WriteError>;
    type SerializeTupleVariant = ser::Impossible<String, WriteError>;
    type SerializeMap = ser::Impossible<String, WriteError>;
    type SerializeStruct = ser::Impossible<String, WriteError>;
    type SerializeStructVariant = ser::Impossible<String, WriteError>;

    fn serialize_str(self, v: &str) -> Result<String> {
        Ok(v.to_owned())
    }
    fn serialize_char(self, v: char) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, v: &'static str) -> Result<String> {
        Ok(v.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<String> {
        value.serialize(self)
    }
    fn serialize_bool(self, _: bool) -> Result<String> {
        not_a_key("a boolean")
    }
    fn serialize_i8(self, _: i8) -> Result<String> {
        not_a_key("a number")
    }
    fn serialize_i16(self, _: i16) -> Result<String> {
        not_a_key("a number")
    }
    fn serialize_i32(self, _: i32) -> Result<String> {
        not_a_key("a number")
    }
    fn serialize_i64(self, _: i64) -> Result<String> {
        not_a_key("a number")
    }
    fn serialize_u8(self, _: u8) -> Result<String> {
        not_a_key("a number")
    }
    fn serialize_u16(self, _: u16) -> Result<String> {
        not_a_key("a number")
    }
    fn serialize_u32(self, _: u32) -> Result<String> {
        not_a_key("a number")
    }
    fn serialize_u64(self, _: u64) -> Result<String> {
        not_a_key("a number")
    }
    fn serialize_f32(self, _: f32) -> Result<String> {
        not_a_key("a number")
    }
    fn serialize_f64(self, _: f64) -> Result<String> {
        not_a_key("a number")
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<String> {
        not_a_key("bytes")
    }
    fn serialize_none(self) -> Result<String> {
        not_a_key("null")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<String> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<String> {
        not_a_key("null")
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String> {
        not_a_key("null")
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String> {
        not_a_key("an enum")
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
        not_a_key("an array")
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple> {
        not_a_key("an array")
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        not_a_key("an array")
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        not_a_key("an array")
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
        not_a_key("an object")
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
        not_a_key("an object")
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        not_a_key("an object")
    }
}

#[cfg(test)]
mod tests {
    use serde::ser::{Serialize, SerializeMap, Serializer};
    use serde_json::json;

    use crate::tuf::{canonical, fileformat};

    /// A map that emits its entries as given: out of order and repeated,
    /// which no JSON map type would produce.
    struct Entries(Vec<(&'static str, serde_json::Value)>);

    impl Serialize for Entries {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for (k, v) in &self.0 {
                map.serialize_entry(k, v)?;
            }
            map.end()
        }
    }

    fn unordered() -> Entries {
        Entries(vec![
            ("b", json!(1)),
            ("c", json!({"y": [1, {"q": 2}], "x": {}})),
            ("a", json!("first a")),
            ("b", json!(2)),
            ("a", json!("last a")),
        ])
    }

    #[test]
    fn out_of_order_and_repeated_keys_sort_and_keep_the_last() {
        assert_eq!(
            String::from_utf8(canonical::encode_serialize(&unordered()).unwrap()).unwrap(),
            r#"{"a":"last a","b":2,"c":{"x":{},"y":[1,{"q":2}]}}"#
        );
        assert_eq!(
            String::from_utf8(fileformat::encode_serialize(&unordered()).unwrap()).unwrap(),
            "{\n \"a\": \"last a\",\n \"b\": 2,\n \"c\": {\n  \"x\": {},\n  \"y\": [\n   1,\n   {\n    \"q\": 2\n   }\n  ]\n }\n}"
        );
    }
}
