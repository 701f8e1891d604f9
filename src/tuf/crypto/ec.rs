//! NIST curves: public point decoding and ECDSA verification.
//!
//! P-256 and P-384 verify with ring. ring has no P-521, which
//! securesystemslib accepts, so P-521 verifies here with big-integer
//! arithmetic; the inputs are public, so variable time is fine. Points may
//! be compressed, because `cryptography` loads such SPKI keys; they are
//! stored uncompressed, the form ring and key comparison use.
use num_bigint::BigUint;
use ring::signature::{self, UnparsedPublicKey};

use super::der::{oid, Reader};
use super::{HashAlg, Invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
    P521,
}

/// Domain parameters as hex; `a` is `p - 3` on all three curves.
struct Constants {
    p: &'static str,
    b: &'static str,
    n: &'static str,
    gx: &'static str,
    gy: &'static str,
}

const P256: Constants = Constants {
    p: "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
    b: "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b",
    n: "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
    gx: "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
    gy: "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
};

const P384: Constants = Constants {
    p: "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe\
        ffffffff0000000000000000ffffffff",
    b: "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875a\
        c656398d8a2ed19d2a85c8edd3ec2aef",
    n: "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf\
        581a0db248b0a77aecec196accc52973",
    gx: "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a38\
         5502f25dbf55296c3a545e3872760ab7",
    gy: "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c0\
         0a60b1ce1d7e819d7a431d7c90ea0e5f",
};

const P521: Constants = Constants {
    p: "1ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
        ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    b: "051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109\
        e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00",
    n: "1ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
        fa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409",
    gx: "0c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3\
         dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66",
    gy: "11839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e66\
         2c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650",
};

impl Curve {
    pub const ALL: [Curve; 3] = [Curve::P256, Curve::P384, Curve::P521];

    pub fn from_oid(oid: &[u8]) -> Option<Curve> {
        Curve::ALL.into_iter().find(|c| c.oid() == oid)
    }

    pub fn oid(self) -> &'static [u8] {
        match self {
            Curve::P256 => oid::P256,
            Curve::P384 => oid::P384,
            Curve::P521 => oid::P521,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    /// The securesystemslib scheme for this curve, which also fixes the hash.
    pub fn scheme(self) -> &'static str {
        match self {
            Curve::P256 => "ecdsa-sha2-nistp256",
            Curve::P384 => "ecdsa-sha2-nistp384",
            Curve::P521 => "ecdsa-sha2-nistp521",
        }
    }

    fn hash(self) -> HashAlg {
        match self {
            Curve::P256 => HashAlg::Sha256,
            Curve::P384 => HashAlg::Sha384,
            Curve::P521 => HashAlg::Sha512,
        }
    }

    fn field_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    fn params(self) -> Params {
        let c = match self {
            Curve::P256 => &P256,
            Curve::P384 => &P384,
            Curve::P521 => &P521,
        };
        Params {
            p: constant(c.p),
            b: constant(c.b),
            n: constant(c.n),
            g: Jacobian::affine(constant(c.gx), constant(c.gy)),
        }
    }
}

fn constant(hex: &str) -> BigUint {
    BigUint::parse_bytes(hex.as_bytes(), 16).expect("curve constants are valid hex")
}

/// A validated public point, kept in uncompressed SEC1 form (`04 || x || y`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EcPoint {
    curve: Curve,
    uncompressed: Vec<u8>,
}

impl EcPoint {
    /// Accepts uncompressed (`04`) and compressed (`02`/`03`) encodings of a
    /// point on `curve`, as OpenSSL does.
    pub fn decode(curve: Curve, encoded: &[u8]) -> Result<EcPoint, Invalid> {
        let len = curve.field_len();
        let params = curve.params();
        let field = Field { p: &params.p };
        let (x, y) = match encoded {
            [0x04, xy @ ..] if xy.len() == 2 * len => (
                BigUint::from_bytes_be(&xy[..len]),
                BigUint::from_bytes_be(&xy[len..]),
            ),
            [prefix @ (0x02 | 0x03), x @ ..] if x.len() == len => {
                let x = BigUint::from_bytes_be(x);
                let y = (x < params.p)
                    .then(|| field.y_for(&x, &params.b, *prefix == 0x03))
                    .flatten()
                    .ok_or_else(|| {
                        Invalid(format!("compressed point is not on {}", curve.name()))
                    })?;
                (x, y)
            }
            _ => {
                return Err(Invalid(format!(
                    "not an uncompressed or compressed {} point",
                    curve.name()
                )))
            }
        };
        if x >= params.p || y >= params.p || !field.on_curve(&x, &y, &params.b) {
            return Err(Invalid(format!("point is not on {}", curve.name())));
        }
        let mut uncompressed = vec![0x04];
        uncompressed.extend(fixed_width(&x, len));
        uncompressed.extend(fixed_width(&y, len));
        Ok(EcPoint {
            curve,
            uncompressed,
        })
    }

    pub fn curve(&self) -> Curve {
        self.curve
    }

    pub fn uncompressed(&self) -> &[u8] {
        &self.uncompressed
    }

    /// ECDSA over `msg` with the curve's hash; `sig` is DER. High-S
    /// signatures verify, as in OpenSSL.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let ring_alg = match self.curve {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1,
            Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1,
            Curve::P521 => return self.verify_digest(&self.curve.hash().digest(&[msg]), sig),
        };
        UnparsedPublicKey::new(ring_alg, &self.uncompressed)
            .verify(msg, sig)
            .is_ok()
    }

    /// ECDSA verification (SEC1 4.1.4) over a message digest.
    fn verify_digest(&self, digest: &[u8], sig: &[u8]) -> bool {
        let Some((r, s)) = parse_signature(sig) else {
            return false;
        };
        let params = self.curve.params();
        let n = &params.n;
        if r == BigUint::ZERO || s == BigUint::ZERO || &r >= n || &s >= n {
            return false;
        }
        let Some(w) = s.modinv(n) else {
            return false;
        };
        let u1 = digest_scalar(digest, n) * &w % n;
        let u2 = &r * &w % n;
        let len = self.curve.field_len();
        let q = Jacobian::affine(
            BigUint::from_bytes_be(&self.uncompressed[1..=len]),
            BigUint::from_bytes_be(&self.uncompressed[len + 1..]),
        );
        let field = Field { p: &params.p };
        field
            .affine_x(&field.double_mul(&u1, &params.g, &u2, &q))
            .is_some_and(|x| x % n == r)
    }
}

struct Params {
    p: BigUint,
    b: BigUint,
    n: BigUint,
    g: Jacobian,
}

/// `(r, s)` from a strict DER `ECDSA-Sig-Value`.
fn parse_signature(der: &[u8]) -> Option<(BigUint, BigUint)> {
    let what = "ECDSA signature";
    let mut seq = Reader::whole_sequence(der, what).ok()?;
    let r = BigUint::from_bytes_be(seq.unsigned_integer(what).ok()?);
    let s = BigUint::from_bytes_be(seq.unsigned_integer(what).ok()?);
    seq.finish(what).ok()?;
    Some((r, s))
}

/// The digest as an integer, keeping its leftmost bits when it is longer
/// than the group order.
fn digest_scalar(digest: &[u8], n: &BigUint) -> BigUint {
    let e = BigUint::from_bytes_be(digest);
    let digest_bits = 8 * digest.len() as u64;
    if digest_bits > n.bits() {
        e >> (digest_bits - n.bits())
    } else {
        e
    }
}

fn fixed_width(v: &BigUint, len: usize) -> Vec<u8> {
    let bytes = v.to_bytes_be();
    let mut out = vec![0; len.saturating_sub(bytes.len())];
    out.extend(bytes);
    out
}

/// A point in Jacobian coordinates (`x/z², y/z³`); `z = 0` is infinity.
#[derive(Clone)]
struct Jacobian {
    x: BigUint,
    y: BigUint,
    z: BigUint,
}

impl Jacobian {
    fn affine(x: BigUint, y: BigUint) -> Jacobian {
        Jacobian {
            x,
            y,
            z: BigUint::from(1u8),
        }
    }

    fn infinity() -> Jacobian {
        Jacobian {
            x: BigUint::from(1u8),
            y: BigUint::from(1u8),
            z: BigUint::ZERO,
        }
    }

    fn is_infinity(&self) -> bool {
        self.z == BigUint::ZERO
    }
}

/// Arithmetic modulo the field prime on a curve with `a = -3`. Every value
/// passed in is already reduced.
struct Field<'a> {
    p: &'a BigUint,
}

impl Field<'_> {
    fn add(&self, a: &BigUint, b: &BigUint) -> BigUint {
        (a + b) % self.p
    }

    fn sub(&self, a: &BigUint, b: &BigUint) -> BigUint {
        (a + self.p - b) % self.p
    }

    fn mul(&self, a: &BigUint, b: &BigUint) -> BigUint {
        a * b % self.p
    }

    fn small(&self, k: u8, a: &BigUint) -> BigUint {
        a * BigUint::from(k) % self.p
    }

    /// `x³ - 3x + b`.
    fn rhs(&self, x: &BigUint, b: &BigUint) -> BigUint {
        let x3 = self.mul(&self.mul(x, x), x);
        self.add(&self.sub(&x3, &self.small(3, x)), b)
    }

    fn on_curve(&self, x: &BigUint, y: &BigUint, b: &BigUint) -> bool {
        self.mul(y, y) == self.rhs(x, b)
    }

    /// The `y` with the requested parity for `x`, if `x` is on the curve.
    /// All three primes are 3 mod 4, so a square root is one power.
    fn y_for(&self, x: &BigUint, b: &BigUint, odd: bool) -> Option<BigUint> {
        let rhs = self.rhs(x, b);
        let exp = (self.p + 1u8) >> 2;
        let y = rhs.modpow(&exp, self.p);
        if self.mul(&y, &y) != rhs {
            return None;
        }
        Some(if y.bit(0) == odd {
            y
        } else {
            self.sub(&BigUint::ZERO, &y)
        })
    }

    fn double(&self, pt: &Jacobian) -> Jacobian {
        if pt.is_infinity() || pt.y == BigUint::ZERO {
            return Jacobian::infinity();
        }
        let yy = self.mul(&pt.y, &pt.y);
        let zz = self.mul(&pt.z, &pt.z);
        let s = self.small(4, &self.mul(&pt.x, &yy));
        // 3x² + a·z⁴ with a = -3 factors as 3(x - z²)(x + z²).
        let m = self.small(3, &self.mul(&self.sub(&pt.x, &zz), &self.add(&pt.x, &zz)));
        let x = self.sub(&self.mul(&m, &m), &self.small(2, &s));
        let y = self.sub(
            &self.mul(&m, &self.sub(&s, &x)),
            &self.small(8, &self.mul(&yy, &yy)),
        );
        let z = self.small(2, &self.mul(&pt.y, &pt.z));
        Jacobian { x, y, z }
    }

    fn add_points(&self, a: &Jacobian, b: &Jacobian) -> Jacobian {
        if a.is_infinity() {
            return b.clone();
        }
        if b.is_infinity() {
            return a.clone();
        }
        let z1z1 = self.mul(&a.z, &a.z);
        let z2z2 = self.mul(&b.z, &b.z);
        let u1 = self.mul(&a.x, &z2z2);
        let u2 = self.mul(&b.x, &z1z1);
        let s1 = self.mul(&a.y, &self.mul(&b.z, &z2z2));
        let s2 = self.mul(&b.y, &self.mul(&a.z, &z1z1));
        if u1 == u2 {
            return if s1 == s2 {
                self.double(a)
            } else {
                Jacobian::infinity()
            };
        }
        let h = self.sub(&u2, &u1);
        let r = self.sub(&s2, &s1);
        let hh = self.mul(&h, &h);
        let hhh = self.mul(&h, &hh);
        let u1hh = self.mul(&u1, &hh);
        let x = self.sub(&self.sub(&self.mul(&r, &r), &hhh), &self.small(2, &u1hh));
        let y = self.sub(&self.mul(&r, &self.sub(&u1hh, &x)), &self.mul(&s1, &hhh));
        let z = self.mul(&h, &self.mul(&a.z, &b.z));
        Jacobian { x, y, z }
    }

    /// `k1·p1 + k2·p2` in one pass over the bits (Shamir's trick).
    fn double_mul(&self, k1: &BigUint, p1: &Jacobian, k2: &BigUint, p2: &Jacobian) -> Jacobian {
        let both = self.add_points(p1, p2);
        let mut acc = Jacobian::infinity();
        for i in (0..k1.bits().max(k2.bits())).rev() {
            acc = self.double(&acc);
            let addend = match (k1.bit(i), k2.bit(i)) {
                (true, true) => &both,
                (true, false) => p1,
                (false, true) => p2,
                (false, false) => continue,
            };
            acc = self.add_points(&acc, addend);
        }
        acc
    }

    fn affine_x(&self, pt: &Jacobian) -> Option<BigUint> {
        let z_inv = pt.z.modinv(self.p)?;
        Some(self.mul(&pt.x, &self.mul(&z_inv, &z_inv)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuf::crypto::tests::{key_dict, message, signature_vectors};
    use crate::tuf::crypto::{decode_hex, spki, Material};

    #[test]
    fn curve_constants_describe_prime_order_curves() {
        for curve in Curve::ALL {
            let params = curve.params();
            let field = Field { p: &params.p };
            assert!(
                field.on_curve(&params.g.x, &params.g.y, &params.b),
                "{curve:?}"
            );
            let n_g = field.double_mul(&params.n, &params.g, &BigUint::ZERO, &params.g);
            assert!(n_g.is_infinity(), "{curve:?}");
            let minus_one = &params.n - 1u8;
            let almost = field.double_mul(&minus_one, &params.g, &BigUint::ZERO, &params.g);
            assert_eq!(
                field.affine_x(&almost),
                Some(params.g.x.clone()),
                "{curve:?}"
            );
        }
        assert_eq!(Curve::P521.params().p, (BigUint::from(1u8) << 521) - 1u8);
    }

    #[test]
    fn big_integer_ecdsa_agrees_with_every_p256_and_p384_vector() {
        let mut checked = 0;
        for v in signature_vectors() {
            let Ok(Material::Ec(point)) = spki::parse_pem(&key_dict(&v).keyval.public) else {
                continue;
            };
            let sig = decode_hex(v["signature_hex"].as_str().unwrap()).unwrap();
            let digest = point.curve().hash().digest(&[&message(&v)]);
            let valid = v["valid"].as_bool().unwrap();
            assert_eq!(point.verify_digest(&digest, &sig), valid, "{}", v["note"]);
            assert_eq!(point.verify(&message(&v), &sig), valid, "{}", v["note"]);
            checked += 1;
        }
        assert_eq!(checked, 14);
    }

    #[test]
    fn compressed_points_decompress_to_the_vector_points() {
        for v in signature_vectors() {
            let Ok(Material::Ec(point)) = spki::parse_pem(&key_dict(&v).keyval.public) else {
                continue;
            };
            let len = point.curve().field_len();
            let xy = &point.uncompressed()[1..];
            let prefix = 0x02 | (xy[2 * len - 1] & 1);
            let compressed = [&[prefix][..], &xy[..len]].concat();
            assert_eq!(EcPoint::decode(point.curve(), &compressed).unwrap(), point);
            let wrong_parity = [&[prefix ^ 1][..], &xy[..len]].concat();
            assert_ne!(
                EcPoint::decode(point.curve(), &wrong_parity).unwrap(),
                point
            );
        }
    }

    #[test]
    fn points_off_the_curve_or_badly_encoded_are_refused() {
        let mut off = vec![0x04];
        off.extend([1u8; 64]);
        assert_eq!(
            EcPoint::decode(Curve::P256, &off).unwrap_err().0,
            "point is not on P-256"
        );
        assert_eq!(
            EcPoint::decode(Curve::P256, &[0x00]).unwrap_err().0,
            "not an uncompressed or compressed P-256 point"
        );
        let mut beyond_p = vec![0x02];
        beyond_p.extend([0xff; 32]);
        assert_eq!(
            EcPoint::decode(Curve::P256, &beyond_p).unwrap_err().0,
            "compressed point is not on P-256"
        );
    }
}
