//! RSA public keys and signature verification as OpenSSL performs it for
//! securesystemslib: PSS with the salt length recovered from the signature
//! (`PSS.AUTO`), PKCS#1 v1.5 by comparison with the one valid encoding.
//!
//! ring fixes the PSS salt length to the digest length and refuses moduli
//! under 2048 bits, so verification is written here over num-bigint. All
//! inputs are public, so variable time is fine.
use num_bigint::BigUint;

use super::der::{self, tag, Reader};
use super::{HashAlg, Invalid};

/// OpenSSL refuses public operations with larger moduli.
const MAX_MODULUS_BITS: u64 = 16384;
/// Above this modulus size OpenSSL limits the public exponent to 64 bits.
const SMALL_MODULUS_BITS: u64 = 3072;
const MAX_LARGE_MODULUS_EXPONENT_BITS: u64 = 64;

/// Padding and hash of an `rsassa-pss-*` / `rsa-pkcs1v15-*` scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RsaPadding {
    Pss(HashAlg),
    Pkcs1v15(HashAlg),
}

impl RsaPadding {
    pub fn from_scheme(scheme: &str) -> Option<RsaPadding> {
        if let Some(hash) = scheme.strip_prefix("rsassa-pss-") {
            HashAlg::from_name(hash).map(RsaPadding::Pss)
        } else {
            let hash = scheme.strip_prefix("rsa-pkcs1v15-")?;
            HashAlg::from_name(hash).map(RsaPadding::Pkcs1v15)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RsaPublic {
    n: BigUint,
    e: BigUint,
}

impl RsaPublic {
    /// From big-endian modulus and exponent.
    pub fn from_components(n: &[u8], e: &[u8]) -> RsaPublic {
        RsaPublic {
            n: BigUint::from_bytes_be(n),
            e: BigUint::from_bytes_be(e),
        }
    }

    /// PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus, publicExponent }`.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<RsaPublic, Invalid> {
        let what = "RSAPublicKey";
        let mut seq = Reader::whole_sequence(der, what)?;
        let n = seq.unsigned_integer("RSA modulus")?;
        let e = seq.unsigned_integer("RSA public exponent")?;
        seq.finish(what)?;
        Ok(RsaPublic::from_components(n, e))
    }

    pub fn to_pkcs1_der(&self) -> Vec<u8> {
        der::sequence(&[
            &der::unsigned_integer(&self.n.to_bytes_be()),
            &der::unsigned_integer(&self.e.to_bytes_be()),
        ])
    }

    pub fn modulus_bits(&self) -> u64 {
        self.n.bits()
    }

    pub fn verify(&self, padding: RsaPadding, msg: &[u8], sig: &[u8]) -> bool {
        match padding {
            RsaPadding::Pss(hash) => self
                .open(sig)
                .is_some_and(|em| pss_matches(hash, &hash.digest(&[msg]), &em, self.n.bits())),
            // Unlike PSS, OpenSSL's PKCS#1 v1.5 check wants the exact length.
            RsaPadding::Pkcs1v15(hash) => {
                sig.len() == self.modulus_len()
                    && self.open(sig).is_some_and(|em| {
                        pkcs1v15_encoding(hash, msg, em.len()).is_some_and(|want| want == em)
                    })
            }
        }
    }

    fn modulus_len(&self) -> usize {
        self.n.bits().div_ceil(8) as usize
    }

    /// `sig^e mod n` as a modulus-length block, or `None` where OpenSSL's
    /// public operation fails. A signature shorter than the modulus is
    /// taken as a big-endian number, as OpenSSL does.
    fn open(&self, sig: &[u8]) -> Option<Vec<u8>> {
        let bits = self.n.bits();
        let usable = bits <= MAX_MODULUS_BITS
            && self.n.bit(0)
            && self.n > self.e
            && (bits <= SMALL_MODULUS_BITS || self.e.bits() <= MAX_LARGE_MODULUS_EXPONENT_BITS);
        let k = self.modulus_len();
        if !usable || sig.len() > k {
            return None;
        }
        let s = BigUint::from_bytes_be(sig);
        if s >= self.n {
            return None;
        }
        let m = s.modpow(&self.e, &self.n).to_bytes_be();
        let mut em = vec![0; k.saturating_sub(m.len())];
        em.extend(m);
        Some(em)
    }
}

/// `00 01 FF.. 00 DigestInfo` filling `k` bytes, if it fits.
fn pkcs1v15_encoding(hash: HashAlg, msg: &[u8], k: usize) -> Option<Vec<u8>> {
    let algorithm = der::sequence(&[
        &der::write(tag::OID, hash.oid()),
        &der::write(tag::NULL, &[]),
    ]);
    let digest_info = der::sequence(&[
        &algorithm,
        &der::write(tag::OCTET_STRING, &hash.digest(&[msg])),
    ]);
    // At least 8 bytes of 0xff padding, as PKCS#1 requires.
    let pad = k
        .checked_sub(digest_info.len() + 3)
        .filter(|&pad| pad >= 8)?;
    let mut em = vec![0x00, 0x01];
    em.resize(2 + pad, 0xff);
    em.push(0x00);
    em.extend(digest_info);
    Some(em)
}

/// EMSA-PSS-VERIFY (RFC 8017 9.1.2) with MGF1 over the same hash and the
/// salt length taken from the encoded block.
fn pss_matches(hash: HashAlg, m_hash: &[u8], block: &[u8], modulus_bits: u64) -> bool {
    let top_bits = modulus_bits.saturating_sub(1) % 8;
    // When modBits - 1 is a multiple of 8 the encoded message is one byte
    // shorter than the modulus and that leading byte must be zero.
    let em = match (top_bits, block.split_first()) {
        (0, Some((0, rest))) => rest,
        (0, _) => return false,
        (_, Some((first, _))) if first >> top_bits != 0 => return false,
        _ => block,
    };
    let h_len = hash.output_len();
    if em.len() < h_len + 2 || em.last() != Some(&0xbc) {
        return false;
    }
    let (masked_db, rest) = em.split_at(em.len() - h_len - 1);
    let h = &rest[..h_len];
    let mut db: Vec<u8> = masked_db
        .iter()
        .zip(mgf1(hash, h, masked_db.len()))
        .map(|(m, k)| m ^ k)
        .collect();
    if let (Some(first), true) = (db.first_mut(), top_bits != 0) {
        *first &= 0xff >> (8 - top_bits);
    }
    // Zero padding, one 0x01, then the salt, whatever its length.
    let Some(separator) = db.iter().position(|&b| b != 0) else {
        return false;
    };
    if db[separator] != 0x01 {
        return false;
    }
    hash.digest(&[&[0u8; 8], m_hash, &db[separator + 1..]]) == h
}

fn mgf1(hash: HashAlg, seed: &[u8], len: usize) -> Vec<u8> {
    let mut mask = Vec::with_capacity(len + hash.output_len());
    let mut counter: u32 = 0;
    while mask.len() < len {
        mask.extend(hash.digest(&[seed, &counter.to_be_bytes()]));
        counter += 1;
    }
    mask.truncate(len);
    mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuf::crypto::tests::{key_dict, private_pem, vector_key};
    use crate::tuf::crypto::{PrivateKey, PublicKey, SigningKey};

    /// A signer and verifier for a vector RSA key under `scheme`.
    fn pair(label: &str, scheme: &str) -> (SigningKey, PublicKey) {
        let entry = vector_key(label);
        let mut dict = key_dict(&entry);
        dict.scheme = scheme.into();
        let public = PublicKey::parse(&dict).unwrap();
        let private = PrivateKey::parse_pem(&private_pem(&entry)).unwrap();
        (private.into_signing_key(&public).unwrap(), public)
    }

    /// Signs numbered messages until a signature starts with a zero byte
    /// (one in 256 does).
    fn signature_with_leading_zero(signer: &SigningKey) -> (Vec<u8>, Vec<u8>) {
        (0..4096)
            .map(|i| format!("message {i}").into_bytes())
            .map(|msg| (signer.sign(&msg).unwrap(), msg))
            .find(|(sig, _)| sig[0] == 0)
            .map(|(sig, msg)| (msg, sig))
            .unwrap()
    }

    #[test]
    fn pss_accepts_a_signature_shorter_than_the_modulus_like_openssl() {
        let (signer, public) = pair("rsa-2048-a.pem", "rsassa-pss-sha256");
        let (msg, sig) = signature_with_leading_zero(&signer);
        assert!(public.verify_bytes(&msg, &sig));
        assert!(public.verify_bytes(&msg, &sig[1..]));
        assert!(!public.verify_bytes(&msg, &[&[0u8][..], &sig].concat()));
    }

    #[test]
    fn pkcs1v15_wants_exactly_modulus_length() {
        let (signer, public) = pair("rsa-2048-pkcs1v15.pem", "rsa-pkcs1v15-sha256");
        let (msg, sig) = signature_with_leading_zero(&signer);
        assert!(public.verify_bytes(&msg, &sig));
        assert!(!public.verify_bytes(&msg, &sig[1..]));
        assert!(!public.verify_bytes(&msg, &[&[0u8][..], &sig].concat()));
    }

    #[test]
    fn every_scheme_ring_signs_verifies_here_and_only_under_its_own_scheme() {
        let schemes = [
            "rsassa-pss-sha256",
            "rsassa-pss-sha384",
            "rsassa-pss-sha512",
            "rsa-pkcs1v15-sha256",
            "rsa-pkcs1v15-sha384",
            "rsa-pkcs1v15-sha512",
        ];
        for scheme in schemes {
            let (signer, _) = pair("rsa-3072-pkcs1.pem", scheme);
            let sig = signer.sign(b"payload").unwrap();
            assert_eq!(sig.len(), 384);
            for other in schemes {
                let (_, public) = pair("rsa-3072-pkcs1.pem", other);
                assert_eq!(
                    public.verify_bytes(b"payload", &sig),
                    scheme == other,
                    "{scheme} vs {other}"
                );
            }
        }
    }

    #[test]
    fn openssl_limits_on_the_public_key_apply() {
        let (signer, public) = pair("rsa-2048-a.pem", "rsassa-pss-sha256");
        let sig = signer.sign(b"m").unwrap();
        let crate::tuf::crypto::Material::Rsa(key) = &public.material else {
            panic!("not RSA")
        };
        assert!(key.verify(RsaPadding::Pss(HashAlg::Sha256), b"m", &sig));
        let even = RsaPublic {
            n: &key.n + 1u8,
            e: key.e.clone(),
        };
        assert!(even.open(&sig).is_none());
        let exponent_too_big = RsaPublic {
            n: key.n.clone(),
            e: &key.n + 2u8,
        };
        assert!(exponent_too_big.open(&sig).is_none());
        let signature_too_big = vec![0xff; 256];
        assert!(key.open(&signature_too_big).is_none());
    }

    #[test]
    fn pkcs1_public_key_der_round_trips() {
        let public = PublicKey::from_key(&key_dict(&vector_key("rsa-2048-a.pem"))).unwrap();
        let crate::tuf::crypto::Material::Rsa(key) = &public.material else {
            panic!("not RSA")
        };
        assert_eq!(
            &RsaPublic::from_pkcs1_der(&key.to_pkcs1_der()).unwrap(),
            key
        );
        assert_eq!(key.e, BigUint::from(65537u32));
        assert_eq!(key.modulus_bits(), 2048);
    }
}
