//! A strict DER reader and the few writers key handling needs.
//!
//! Only what SPKI, PKCS#1, PKCS#8, SEC1 and ECDSA signatures use:
//! single-byte tags and definite, minimally encoded lengths. Strictness
//! matters for verification: OpenSSL (what securesystemslib verifies with)
//! refuses BER and non-minimal integers, so accepting them here would let a
//! signature count that Python would not count.
use super::Invalid;

pub(crate) mod tag {
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const OID: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;
    /// `[0]` constructed (ECPrivateKey parameters, PKCS#8 attributes).
    pub const CONTEXT_0: u8 = 0xa0;
    /// `[1]` constructed (ECPrivateKey public key).
    pub const CONTEXT_1: u8 = 0xa1;
    /// `[1] IMPLICIT BIT STRING` (PKCS#8 v2 public key).
    pub const CONTEXT_1_PRIMITIVE: u8 = 0x81;
}

/// Object identifier contents (without tag and length).
pub(crate) mod oid {
    /// 1.2.840.113549.1.1.1
    pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    /// 1.2.840.10045.2.1
    pub const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    /// 1.2.840.10045.3.1.7 (prime256v1)
    pub const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    /// 1.3.132.0.34 (secp384r1)
    pub const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    /// 1.3.132.0.35 (secp521r1)
    pub const P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
    /// 1.3.101.112
    pub const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    /// 2.16.840.1.101.3.4.2.4
    pub const SHA224: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04];
    /// 2.16.840.1.101.3.4.2.1
    pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    /// 2.16.840.1.101.3.4.2.2
    pub const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
    /// 2.16.840.1.101.3.4.2.3
    pub const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
}

/// Reads DER elements one after another from a byte slice.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Reader { rest: input }
    }

    /// The whole input must be exactly one SEQUENCE; returns its contents.
    pub fn whole_sequence(input: &'a [u8], what: &str) -> Result<Reader<'a>, Invalid> {
        let mut outer = Reader::new(input);
        let inner = outer.sequence(what)?;
        outer.finish(what)?;
        Ok(inner)
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The contents of the next element, which must have tag `tag`.
    pub fn read(&mut self, tag: u8, what: &str) -> Result<&'a [u8], Invalid> {
        let (found, value) = self.read_any(what)?;
        if found != tag {
            return Err(Invalid(format!(
                "{what}: expected DER tag 0x{tag:02x}, found 0x{found:02x}"
            )));
        }
        Ok(value)
    }

    /// The contents of the next element when it has tag `tag`, else `None`
    /// (and nothing is consumed).
    pub fn optional(&mut self, tag: u8, what: &str) -> Result<Option<&'a [u8]>, Invalid> {
        if self.peek_tag() == Some(tag) {
            self.read(tag, what).map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn sequence(&mut self, what: &str) -> Result<Reader<'a>, Invalid> {
        self.read(tag::SEQUENCE, what).map(Reader::new)
    }

    /// A non-negative INTEGER as big-endian magnitude (no sign byte; zero is
    /// `[0]`). Negative and non-minimal encodings are refused.
    pub fn unsigned_integer(&mut self, what: &str) -> Result<&'a [u8], Invalid> {
        let value = self.read(tag::INTEGER, what)?;
        match value {
            [] => Err(Invalid(format!("{what}: empty INTEGER"))),
            [first, ..] if first & 0x80 != 0 => Err(Invalid(format!("{what}: negative INTEGER"))),
            [0, second, ..] if second & 0x80 == 0 => Err(Invalid(format!(
                "{what}: INTEGER has a redundant leading zero"
            ))),
            [0, rest @ ..] if !rest.is_empty() => Ok(rest),
            _ => Ok(value),
        }
    }

    /// A version number or other small INTEGER.
    pub fn small_integer(&mut self, what: &str) -> Result<u8, Invalid> {
        match self.unsigned_integer(what)? {
            [v] => Ok(*v),
            _ => Err(Invalid(format!("{what}: INTEGER too large"))),
        }
    }

    /// A BIT STRING with no unused bits, as keys are stored.
    pub fn bit_string(&mut self, what: &str) -> Result<&'a [u8], Invalid> {
        match self.read(tag::BIT_STRING, what)? {
            [0, bits @ ..] => Ok(bits),
            _ => Err(Invalid(format!("{what}: BIT STRING with unused bits"))),
        }
    }

    /// Nothing may follow the elements already read.
    pub fn finish(self, what: &str) -> Result<(), Invalid> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Invalid(format!(
                "{what}: unexpected data after the last element"
            )))
        }
    }

    fn read_any(&mut self, what: &str) -> Result<(u8, &'a [u8]), Invalid> {
        let truncated = || Invalid(format!("{what}: truncated DER"));
        let (&tag, rest) = self.rest.split_first().ok_or_else(truncated)?;
        if tag & 0x1f == 0x1f {
            return Err(Invalid(format!(
                "{what}: multi-byte DER tags are not used in keys"
            )));
        }
        let (&first, rest) = rest.split_first().ok_or_else(truncated)?;
        let (len, rest) = match first {
            0..=0x7f => (usize::from(first), rest),
            0x81..=0x84 => long_length(first, rest, what)?,
            _ => return Err(Invalid(format!("{what}: unsupported DER length form"))),
        };
        if rest.len() < len {
            return Err(truncated());
        }
        let (value, rest) = rest.split_at(len);
        self.rest = rest;
        Ok((tag, value))
    }
}

/// A long-form length (`0x81..=0x84` followed by that many bytes), which
/// DER allows only when the short form cannot express it.
fn long_length<'a>(first: u8, rest: &'a [u8], what: &str) -> Result<(usize, &'a [u8]), Invalid> {
    let count = usize::from(first & 0x7f);
    if rest.len() < count {
        return Err(Invalid(format!("{what}: truncated DER")));
    }
    let (digits, rest) = rest.split_at(count);
    let len = digits
        .iter()
        .fold(0usize, |acc, &d| (acc << 8) | usize::from(d));
    if digits.first() == Some(&0) || len < 0x80 {
        return Err(Invalid(format!("{what}: non-minimal DER length")));
    }
    Ok((len, rest))
}

/// One DER element.
pub(crate) fn write(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let digits: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&d| d == 0)
            .collect();
        out.push(0x80 | digits.len() as u8);
        out.extend_from_slice(&digits);
    }
    out.extend_from_slice(contents);
    out
}

/// A SEQUENCE of already encoded elements.
pub(crate) fn sequence(elements: &[&[u8]]) -> Vec<u8> {
    write(tag::SEQUENCE, &elements.concat())
}

/// An INTEGER from a big-endian magnitude.
pub(crate) fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = match magnitude.iter().position(|&b| b != 0) {
        Some(i) => &magnitude[i..],
        None => &[],
    };
    let mut contents = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().map_or(true, |b| b & 0x80 != 0) {
        contents.push(0);
    }
    contents.extend_from_slice(trimmed);
    write(tag::INTEGER, &contents)
}

/// A BIT STRING with no unused bits.
pub(crate) fn bit_string(bits: &[u8]) -> Vec<u8> {
    write(tag::BIT_STRING, &[&[0u8][..], bits].concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_int(der: &[u8]) -> Result<Vec<u8>, Invalid> {
        let mut r = Reader::new(der);
        let v = r.unsigned_integer("int")?.to_vec();
        r.finish("int")?;
        Ok(v)
    }

    #[test]
    fn integers_must_be_minimal_and_non_negative() {
        assert_eq!(read_int(&[0x02, 0x01, 0x00]).unwrap(), vec![0]);
        assert_eq!(read_int(&[0x02, 0x02, 0x00, 0x80]).unwrap(), vec![0x80]);
        assert_eq!(read_int(&[0x02, 0x01, 0x7f]).unwrap(), vec![0x7f]);
        assert!(read_int(&[0x02, 0x02, 0x00, 0x7f])
            .unwrap_err()
            .0
            .contains("redundant leading zero"));
        assert!(read_int(&[0x02, 0x01, 0x80])
            .unwrap_err()
            .0
            .contains("negative"));
        assert!(read_int(&[0x02, 0x00]).unwrap_err().0.contains("empty"));
        assert!(read_int(&[0x02, 0x02, 0x01])
            .unwrap_err()
            .0
            .contains("truncated"));
        assert!(read_int(&[0x02, 0x01, 0x01, 0x00])
            .unwrap_err()
            .0
            .contains("after"));
    }

    #[test]
    fn lengths_must_be_definite_and_minimal() {
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend(std::iter::repeat(7).take(0x80));
        assert_eq!(
            Reader::new(&long)
                .read(tag::OCTET_STRING, "x")
                .unwrap()
                .len(),
            0x80
        );
        let short_in_long_form = [0x04, 0x81, 0x01, 0x00];
        assert!(Reader::new(&short_in_long_form)
            .read(tag::OCTET_STRING, "x")
            .unwrap_err()
            .0
            .contains("non-minimal"));
        let leading_zero = [0x04, 0x82, 0x00, 0x80];
        assert!(Reader::new(&leading_zero)
            .read(tag::OCTET_STRING, "x")
            .is_err());
        let indefinite = [0x30, 0x80, 0x00, 0x00];
        assert!(Reader::new(&indefinite)
            .sequence("x")
            .unwrap_err()
            .0
            .contains("length form"));
    }

    #[test]
    fn writers_round_trip_through_the_reader() {
        let n = [0x00, 0x00, 0x9c, 0x01];
        let encoded = sequence(&[&unsigned_integer(&n), &bit_string(&[1, 2])]);
        assert_eq!(
            encoded,
            [0x30, 0x0a, 0x02, 0x03, 0x00, 0x9c, 0x01, 0x03, 0x03, 0x00, 0x01, 0x02]
        );
        let mut seq = Reader::whole_sequence(&encoded, "seq").unwrap();
        assert_eq!(seq.unsigned_integer("n").unwrap(), [0x9c, 0x01]);
        assert_eq!(seq.bit_string("bits").unwrap(), [1, 2]);
        seq.finish("seq").unwrap();
        assert_eq!(unsigned_integer(&[0, 0]), [0x02, 0x01, 0x00]);
        let big = write(tag::OCTET_STRING, &[0u8; 300]);
        assert_eq!(&big[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
}
