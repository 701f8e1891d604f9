//! Signature verification exactly as securesystemslib 1.4.0
//! (`SSlibKey.verify_signature`, i.e. `cryptography` over OpenSSL) decides
//! it, and the private keys the online signer uses.
//!
//! Keys come from metadata written by others, so nothing here panics on
//! them: a key that cannot be used is an error from [`PublicKey::from_key`]
//! (python-tuf counts such a key's signature as invalid), a signature that
//! does not verify is `false`.
mod der;
mod ec;
mod pem;
mod private;
mod rsa;
mod spki;

pub use private::PrivateKey;
pub(crate) use private::SigningKey;

use std::fmt;

use serde_json::Map;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

use self::ec::{Curve, EcPoint};
use self::rsa::{RsaPadding, RsaPublic};
use super::key::{hex_lower, Key, KeyVal};
use super::{Error, Result};

/// Why key material was refused. Public functions turn it into an
/// [`Error`] naming the key or file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid(pub(crate) String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A metadata key ready to verify signatures; build it once per key, not
/// per signature.
#[derive(Debug, Clone)]
pub struct PublicKey {
    scheme: Scheme,
    material: Material,
}

impl PublicKey {
    /// Accepts every keytype/scheme pair securesystemslib verifies:
    /// `ed25519`; `ecdsa-sha2-nistp{256,384,521}` with keytype `ecdsa` or the
    /// scheme name itself (legacy alias); `rsassa-pss-*` and `rsa-pkcs1v15-*`
    /// with SHA-224/256/384/512. The curve must match the scheme.
    pub fn from_key(key: &Key) -> Result<PublicKey> {
        PublicKey::parse(key).map_err(|why| Error::Key {
            keyid: key
                .keyid()
                .map_or_else(|_| "(key id not computable)".to_owned(), |id| id.0),
            reason: why.0,
        })
    }

    pub(crate) fn parse(key: &Key) -> std::result::Result<PublicKey, Invalid> {
        let scheme = Scheme::parse(&key.keytype, &key.scheme).ok_or_else(|| {
            Invalid(format!(
                "unsupported keytype/scheme {}/{}",
                key.keytype, key.scheme
            ))
        })?;
        let public = &key.keyval.public;
        let material = match scheme {
            Scheme::Ed25519 => decode_hex(public)
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .map(Material::Ed25519)
                .ok_or_else(|| Invalid("ed25519 keyval.public must be 64 hex digits".into()))?,
            _ => spki::parse_pem(public).map_err(|why| Invalid(format!("keyval.public: {why}")))?,
        };
        if !scheme.accepts(&material) {
            return Err(Invalid(format!(
                "scheme {} cannot use {} (keyval.public)",
                key.scheme,
                material.describe()
            )));
        }
        Ok(PublicKey { scheme, material })
    }

    /// Whether the DER SubjectPublicKeyInfo `spki` (what a KMS hands out)
    /// is this key, compared as numbers and points.
    pub fn is_spki_der(&self, spki: &[u8]) -> bool {
        spki::parse_der(spki).is_ok_and(|material| material == self.material)
    }

    /// Whether the PEM SubjectPublicKeyInfo `pem` is this key.
    pub fn is_spki_pem(&self, pem: &str) -> bool {
        spki::parse_pem(pem).is_ok_and(|material| material == self.material)
    }

    /// `sig_hex` as metadata stores it (decoded like Python's
    /// `bytes.fromhex`: either case, whitespace between byte pairs).
    pub fn verify(&self, msg: &[u8], sig_hex: &str) -> bool {
        decode_hex(sig_hex).is_some_and(|sig| self.verify_bytes(msg, &sig))
    }

    pub fn verify_bytes(&self, msg: &[u8], sig: &[u8]) -> bool {
        match (self.scheme, &self.material) {
            (Scheme::Ed25519, Material::Ed25519(pk)) => ed25519_compact::Signature::from_slice(sig)
                .is_ok_and(|sig| {
                    ed25519_compact::PublicKey::new(*pk)
                        .verify(msg, &sig)
                        .is_ok()
                }),
            (Scheme::Ecdsa(_), Material::Ec(point)) => point.verify(msg, sig),
            (Scheme::Rsa(padding), Material::Rsa(key)) => key.verify(padding, msg, sig),
            // `parse` never pairs a scheme with another kind of key.
            _ => false,
        }
    }
}

/// What a key dict's keytype/scheme pair asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Ed25519,
    Ecdsa(Curve),
    Rsa(RsaPadding),
}

impl Scheme {
    fn parse(keytype: &str, scheme: &str) -> Option<Scheme> {
        if let Some(curve) = Curve::ALL.into_iter().find(|c| c.scheme() == scheme) {
            return (keytype == "ecdsa" || keytype == scheme).then_some(Scheme::Ecdsa(curve));
        }
        match keytype {
            "ed25519" => (scheme == "ed25519").then_some(Scheme::Ed25519),
            "rsa" => RsaPadding::from_scheme(scheme).map(Scheme::Rsa),
            _ => None,
        }
    }

    fn accepts(self, material: &Material) -> bool {
        match (self, material) {
            (Scheme::Ed25519, Material::Ed25519(_)) => true,
            (Scheme::Ecdsa(curve), Material::Ec(point)) => point.curve() == curve,
            (Scheme::Rsa(_), Material::Rsa(_)) => true,
            _ => false,
        }
    }
}

/// The public half of a key, whatever form it was written in; equal
/// material means the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Material {
    Ed25519([u8; 32]),
    Ec(EcPoint),
    Rsa(RsaPublic),
}

impl Material {
    fn describe(&self) -> String {
        match self {
            Material::Ed25519(_) => "an Ed25519 key".to_owned(),
            Material::Ec(point) => format!("a {} key", point.curve().name()),
            Material::Rsa(key) => format!("a {}-bit RSA key", key.modulus_bits()),
        }
    }

    /// The key dict `SSlibKey.from_crypto` makes: default scheme, raw hex
    /// for Ed25519, SPKI PEM otherwise.
    fn default_key_dict(&self) -> Key {
        let (keytype, scheme, public) = match self {
            Material::Ed25519(pk) => ("ed25519", "ed25519", hex_lower(pk)),
            Material::Ec(point) => ("ecdsa", point.curve().scheme(), spki::ec_pem(point)),
            Material::Rsa(key) => ("rsa", "rsassa-pss-sha256", spki::rsa_pem(key)),
        };
        Key {
            keytype: keytype.to_owned(),
            scheme: scheme.to_owned(),
            keyval: KeyVal {
                public,
                extra: Map::new(),
            },
            extra: Map::new(),
        }
    }
}

/// The hash of a signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashAlg {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    /// `sha256` etc., the suffix of RSA scheme names.
    fn from_name(name: &str) -> Option<HashAlg> {
        match name {
            "sha224" => Some(HashAlg::Sha224),
            "sha256" => Some(HashAlg::Sha256),
            "sha384" => Some(HashAlg::Sha384),
            "sha512" => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    /// Digest of the concatenation of `parts`.
    fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut hasher = D::new();
            for part in parts {
                hasher.update(part);
            }
            hasher.finalize().to_vec()
        }
        match self {
            HashAlg::Sha224 => run::<Sha224>(parts),
            HashAlg::Sha256 => run::<Sha256>(parts),
            HashAlg::Sha384 => run::<Sha384>(parts),
            HashAlg::Sha512 => run::<Sha512>(parts),
        }
    }

    fn output_len(self) -> usize {
        match self {
            HashAlg::Sha224 => 28,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    fn oid(self) -> &'static [u8] {
        match self {
            HashAlg::Sha224 => der::oid::SHA224,
            HashAlg::Sha256 => der::oid::SHA256,
            HashAlg::Sha384 => der::oid::SHA384,
            HashAlg::Sha512 => der::oid::SHA512,
        }
    }
}

/// Hex decoded the way Python's `bytes.fromhex` does it (securesystemslib
/// uses it for signatures and Ed25519 keys): either case, and ASCII
/// whitespace allowed between byte pairs but not inside one.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut chars = text.bytes();
    loop {
        let Some(high) = chars.find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
        else {
            return Some(out);
        };
        let low = chars.next()?;
        out.push(hex_digit(high)? << 4 | hex_digit(low)?);
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::Value;

    use super::*;
    use crate::tuf::testdata;

    /// The entries of `keys.json`.
    pub(crate) fn vector_keys() -> Vec<Value> {
        testdata::json("vectors/tuf/keys.json")["keys"]
            .as_array()
            .unwrap()
            .clone()
    }

    pub(crate) fn vector_key(label: &str) -> Value {
        vector_keys()
            .into_iter()
            .find(|k| k["label"] == label)
            .unwrap_or_else(|| panic!("no vector key {label}"))
    }

    pub(crate) fn key_dict(entry: &Value) -> Key {
        serde_json::from_value(entry["key_dict"].clone()).unwrap()
    }

    pub(crate) fn private_pem(entry: &Value) -> String {
        let file = entry["private_key_file"].as_str().unwrap();
        String::from_utf8(testdata::bytes(&format!("vectors/tuf/{file}"))).unwrap()
    }

    pub(crate) fn is_encrypted(entry: &Value) -> bool {
        entry["password"].is_string()
    }

    pub(crate) fn signature_vectors() -> Vec<Value> {
        testdata::json("vectors/tuf/signatures.json")["vectors"]
            .as_array()
            .unwrap()
            .clone()
    }

    pub(crate) fn message(vector: &Value) -> Vec<u8> {
        decode_hex(vector["message_hex"].as_str().unwrap()).unwrap()
    }

    fn public(label: &str) -> PublicKey {
        PublicKey::from_key(&key_dict(&vector_key(label))).unwrap()
    }

    fn pem_key(keytype: &str, scheme: &str, pem: &str) -> Key {
        serde_json::from_value(serde_json::json!({
            "keytype": keytype, "scheme": scheme, "keyval": {"public": pem}
        }))
        .unwrap()
    }

    fn key_error(key: &Key) -> String {
        PublicKey::from_key(key).unwrap_err().to_string()
    }

    #[test]
    fn every_signature_vector_verifies_as_securesystemslib_decides() {
        let vectors = signature_vectors();
        assert_eq!(vectors.len(), 51);
        let mut rejected = Vec::new();
        for v in &vectors {
            let key = PublicKey::from_key(&key_dict(v)).unwrap();
            let valid = v["valid"].as_bool().unwrap();
            let verdict = key.verify(&message(v), v["signature_hex"].as_str().unwrap());
            assert_eq!(verdict, valid, "{} / {}", v["key_label"], v["note"]);
            if !verdict {
                rejected.push(v["note"].as_str().unwrap());
            }
        }
        assert_eq!(
            rejected,
            [
                "one bit flipped",
                "signature over other message",
                "same signature as raw r||s (64 bytes): rejected, DER required",
                "PKCS#1 v1.5 signature presented for an rsassa-pss-sha256 key: rejected",
            ]
        );
    }

    #[test]
    fn every_vector_key_loads_and_its_spki_is_rewritten_byte_for_byte() {
        let keys = vector_keys();
        assert_eq!(keys.len(), 14);
        for entry in &keys {
            let dict = key_dict(entry);
            let key = PublicKey::from_key(&dict).unwrap();
            let rewritten = key.material.default_key_dict();
            assert_eq!(rewritten.keytype, dict.keytype, "{}", entry["label"]);
            assert_eq!(rewritten.keyval, dict.keyval, "{}", entry["label"]);
            // `x.pem.pub` beside generated keys, `JH.pub` for `JH.ed25519`.
            let private = entry["private_key_file"].as_str().unwrap();
            let pub_file = [
                format!("{private}.pub"),
                format!(
                    "{}.pub",
                    private.rsplit_once('.').map_or(private, |(stem, _)| stem)
                ),
            ]
            .into_iter()
            .map(|f| format!("vectors/tuf/{f}"))
            .find(|f| testdata::shared(f).exists())
            .unwrap();
            let spki_text = String::from_utf8(testdata::bytes(&pub_file)).unwrap();
            let from_file = spki::parse_pem(&spki_text).unwrap();
            assert_eq!(from_file, key.material, "{pub_file}");
        }
    }

    #[test]
    fn legacy_ecdsa_keytype_alias_is_accepted_for_its_own_scheme_only() {
        let entry = vector_key("umbrella-JJ-ecdsa-p256");
        let mut dict = key_dict(&entry);
        dict.keytype = "ecdsa-sha2-nistp256".into();
        let vector = signature_vectors()
            .into_iter()
            .find(|v| v["key_label"] == "umbrella-JJ-ecdsa-p256")
            .unwrap();
        let key = PublicKey::from_key(&dict).unwrap();
        assert!(key.verify(&message(&vector), vector["signature_hex"].as_str().unwrap()));
        dict.keytype = "ecdsa-sha2-nistp384".into();
        assert!(key_error(&dict)
            .ends_with(": unsupported keytype/scheme ecdsa-sha2-nistp384/ecdsa-sha2-nistp256"));
    }

    #[test]
    fn keys_that_securesystemslib_cannot_use_are_errors_naming_the_key() {
        let p384 = key_dict(&vector_key("ecdsa-p384-a.pem"));
        let as_p256 = pem_key("ecdsa", "ecdsa-sha2-nistp256", &p384.keyval.public);
        assert_eq!(
            key_error(&as_p256),
            format!(
                "key {}: scheme ecdsa-sha2-nistp256 cannot use a P-384 key (keyval.public)",
                as_p256.keyid().unwrap()
            )
        );
        let rsa = key_dict(&vector_key("rsa-2048-a.pem"));
        let rsa_as_ecdsa = pem_key("ecdsa", "ecdsa-sha2-nistp256", &rsa.keyval.public);
        assert!(key_error(&rsa_as_ecdsa).ends_with("cannot use a 2048-bit RSA key (keyval.public)"));
        let ed_entry = vector_key("ed25519-a.pem");
        let ed = key_dict(&ed_entry);
        let ed_spki = pem_key(
            "ecdsa",
            "ecdsa-sha2-nistp256",
            ed_entry["spki_public_pem"].as_str().unwrap(),
        );
        assert!(key_error(&ed_spki).ends_with("cannot use an Ed25519 key (keyval.public)"));
        let ed_as_ecdsa = pem_key("ecdsa", "ed25519", &ed.keyval.public);
        assert!(key_error(&ed_as_ecdsa).ends_with(": unsupported keytype/scheme ecdsa/ed25519"));
        let unknown = pem_key("ed25519", "ed448", &ed.keyval.public);
        assert!(key_error(&unknown).ends_with(": unsupported keytype/scheme ed25519/ed448"));
        let pss_sha1 = pem_key("rsa", "rsassa-pss-sha1", &rsa.keyval.public);
        assert!(key_error(&pss_sha1).ends_with(": unsupported keytype/scheme rsa/rsassa-pss-sha1"));
        let short = pem_key("ed25519", "ed25519", &ed.keyval.public[..62]);
        assert!(key_error(&short).ends_with(": ed25519 keyval.public must be 64 hex digits"));
        let not_pem = pem_key("rsa", "rsassa-pss-sha256", "MIIB");
        assert!(key_error(&not_pem)
            .contains("keyval.public: expected a PEM block labelled PUBLIC KEY or RSA PUBLIC KEY"));
    }

    #[test]
    fn hex_is_decoded_like_python_bytes_fromhex() {
        assert_eq!(
            decode_hex("7D58 16\t\n7d\x0b\x0c"),
            Some(vec![0x7d, 0x58, 0x16, 0x7d])
        );
        assert_eq!(decode_hex(""), Some(vec![]));
        assert_eq!(decode_hex("   "), Some(vec![]));
        assert_eq!(decode_hex("7 d58"), None);
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex("é0"), None);
        let v = signature_vectors()
            .into_iter()
            .find(|v| {
                v["note"]
                    == "signature hex in UPPER case: accepted (bytes.fromhex is case-insensitive)"
            })
            .unwrap();
        let spaced: Vec<String> = v["signature_hex"]
            .as_str()
            .unwrap()
            .as_bytes()
            .chunks(2)
            .map(|pair| String::from_utf8(pair.to_vec()).unwrap())
            .collect();
        assert!(public("ed25519-a.pem").verify(&message(&v), &spaced.join(" ")));
    }

    // Made with `cryptography` 48 (OpenSSL 3): a P-521 key and ECDSA-SHA512
    // signatures over "abc" (normal and high-S) and over "".
    const P521_PUB: &str = "-----BEGIN PUBLIC KEY-----\n\
        MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQA+aMra+Nk9G+Sw9gact4/X24ijOe7\n\
        XZajydQTSVKiY0Uo4o48mA++kpyv2+IejQqyDh+bxCPoJHnbhQztrT0qNrIBVM5+\n\
        OgPe4TjWDiAuVki2Vnx+nnogmM3ovC+TPY2wtgKraXhJGWQ0EGDkF8O5dvkTzql6\n\
        nqR9uF8x2kyKs+ffHCg=\n-----END PUBLIC KEY-----\n";
    const P521_COMPRESSED_PUB: &str = "-----BEGIN PUBLIC KEY-----\n\
        MFgwEAYHKoZIzj0CAQYFK4EEACMDRAACAPmjK2vjZPRvksPYGnLeP19uIoznu12W\n\
        o8nUE0lSomNFKOKOPJgPvpKcr9viHo0Ksg4fm8Qj6CR524UM7a09Kjay\n-----END PUBLIC KEY-----\n";
    const P521_SIG_ABC: &str = "308186024133e546fb9ed3107af395c4b8aed47edf3bbf818bc205ce173bfca2\
        e3325593a8e89d5e521bcb2766ce57eb3c36b2ca2edc2f218d6c84a905c909585aac172e156b02412acfbdd294\
        3d96d26d0f3b3a5f32a9a4029feddce0e273475412703a800a786ceecaf37d9e77c54a820641afbab18c5ea46e\
        d31fb73b7fff92b2030a6b38e29ff3";
    const P521_SIG_ABC_HIGH_S: &str = "308187024133e546fb9ed3107af395c4b8aed47edf3bbf818bc205ce17\
        3bfca2e3325593a8e89d5e521bcb2766ce57eb3c36b2ca2edc2f218d6c84a905c909585aac172e156b024201d5\
        30422d6bc2692d92f0c4c5a0cd565bfd6012231f1d8cb8abed8fc57ff587930b869309e5476a4be9798a518e45\
        7d472bcce2aa014e1c481c096cacb35855c416";
    const P521_SIG_EMPTY: &str = "308186024130a4b3b4f506b386acd2290213b835d6b8ef4219a882944b2af5\
        5dc897064da28e4caa00dfb4745257abc2110d3d374d76de19347912adc0ebbd72b5d4debdd752024142bdf767\
        49c367ce4afc2ed24705a0443d63747d9bbe4d1923e866ae6852aa746c01fd9cf1f10222b2019fc7ac782b72b7\
        9cdcfdbd15b593fee61370a384199b3f";

    #[test]
    fn p521_verifies_like_openssl_also_from_a_compressed_point() {
        let full = PublicKey::from_key(&pem_key("ecdsa", "ecdsa-sha2-nistp521", P521_PUB)).unwrap();
        let compressed = pem_key(
            "ecdsa-sha2-nistp521",
            "ecdsa-sha2-nistp521",
            P521_COMPRESSED_PUB,
        );
        let compressed = PublicKey::from_key(&compressed).unwrap();
        assert_eq!(full.material, compressed.material);
        for key in [&full, &compressed] {
            assert!(key.verify(b"abc", P521_SIG_ABC));
            assert!(key.verify(b"abc", P521_SIG_ABC_HIGH_S));
            assert!(key.verify(b"", P521_SIG_EMPTY));
            assert!(!key.verify(b"abd", P521_SIG_ABC));
            assert!(!key.verify(b"", P521_SIG_ABC));
            assert!(!key.verify(b"abc", &P521_SIG_ABC[..P521_SIG_ABC.len() - 2]));
        }
    }

    #[test]
    fn compressed_p256_point_verifies_through_ring() {
        // `cryptography` 48: a P-256 key written as SPKI with a compressed
        // point (load_pem_public_key accepts it) and a signature over "abc".
        let pem = "-----BEGIN PUBLIC KEY-----\n\
            MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgAC0oYhQrLfW+P2HgZw/GJybi0VTh2I\n\
            lEQ687NB+WY9r/U=\n-----END PUBLIC KEY-----\n";
        let sig = "30440220034aad59761a5b6cf3aa88303cd7a98d7be7163c467b3fe23ffa1a2cea0b6037\
            0220494958f966c4def6b6d75aa4b9499bd1ba02be74011a3abb279b1e7aebf02a00";
        let key = PublicKey::from_key(&pem_key("ecdsa", "ecdsa-sha2-nistp256", pem)).unwrap();
        assert!(key.verify(b"abc", sig));
        assert!(!key.verify(b"abd", sig));
        let Material::Ec(point) = &key.material else {
            panic!("not EC")
        };
        assert_eq!(point.uncompressed().len(), 65);
    }

    #[test]
    fn small_rsa_key_in_pkcs1_public_pem_verifies_pss() {
        // `cryptography` 48: a 1024-bit key (ring refuses those) as
        // `RSA PUBLIC KEY` PEM and a PSS-SHA256 signature over "abc".
        let pem = "-----BEGIN RSA PUBLIC KEY-----\n\
            MIGJAoGBAMrTCRM1SRVUHqhv/MXtpjJoALCMHWCpAFi11IEAut18ZabHDuT4Pi8i\n\
            zzHJujQVbSqAf2ur9Hcz8eq3ss7LihvgthPXtirk9BhFGDkB07ZUuyEYpzGsDz4S\n\
            KCHokm0J/GFuIfZJGwtfbG8WSTa0m0utK/BpaGS8q6/jAky13N4lAgMBAAE=\n\
            -----END RSA PUBLIC KEY-----\n";
        let sig = "49ae9e8ca6682bb037eceba5c3da189d8fcabf57978d9d4484fe8c6dfdd257478b54377b7176\
            91d53e5b050e2261b0a9e2814432ac4eb7e9f6c88ea97a5f50fd5863302a5b0e623e8b8ba5b73ab0a42db5\
            17b4f1d2edf21361c1027b13491a49db4f797b2358940e3f00f5f78f2c746ec5c1c629aa0909ed80364bd9\
            ab1eec3a";
        let key = PublicKey::from_key(&pem_key("rsa", "rsassa-pss-sha256", pem)).unwrap();
        assert!(key.verify(b"abc", sig));
        assert!(!key.verify(b"abd", sig));
        let Material::Rsa(rsa) = &key.material else {
            panic!("not RSA")
        };
        assert_eq!(rsa.modulus_bits(), 1024);
    }

    #[test]
    fn sha224_rsa_schemes_verify() {
        // `cryptography` 48 with rsa-2048-a.pem over "abc": PSS-SHA224
        // (salt 28) and PKCS#1 v1.5-SHA224.
        let pss = "7aeaf58ecbaefafd8c1dbd2d28f5fa02f2edfd82be152828c476bf966aa0fadeb6970debab9af5\
            3cd30d8ee97e8bc79bb6c9c1a7c5244e9cfcfad199a7938624e6f1583086b64c4aa1a6b39f5e28abdecefa\
            0311d999a7286cf0570a9505cc707575502601057208715c646efbc714783fb30368afdc44e1b4e2939ea7\
            f4154d7b4d68d305a008c451254f436af8adaf78bf01feff2a99f399357e49fe7afc425d4417e008b5b434\
            14c162452d122be14b84e7585ba0659201aff2f054d89f90913db904294d7eec7b5dbfe8f64eafedbe2c88\
            e65d6fe73e1ffa58d73e8a45a1cb8bacd83ee91631f77bc2b0927690067e4d5921460fd7f6ba3e0a7ef9c0\
            9432";
        let pkcs1 =
            "d3754f1d66c9dbff3797ff736be04e29952e350f89f25cfc70a1f43d757dbc63223dc35faf1f4e\
            179db7db31f21fe4d7cfedcbb8b13d06ff3c0969a471d40ab2d3ff1e1a9e5e65021bbe41419d4e6512212b\
            956433a1278a3bcfb929b362add17a90682c31b989cb8c989eb5173c61f733f9b36b5bfac285a8de8cdd2f\
            cffd07a06683e1f4dcfffe304fe460d1b25913fa3acdf96d890ac737d93b7fe1c788316b9534f7284b65b2\
            c4c2867e3e5bf2e7819cddfe0c5e8caac0a6379206d950035e9191d639873c4f76f65345b834e186c3d76a\
            9c5d64d00c00dc79ddd380a0a07c6f52083b7a98b661b1919f7937838e1b0e7a4c96897828de3e3b800894\
            d2d9";
        let rsa = key_dict(&vector_key("rsa-2048-a.pem"));
        let with =
            |scheme| PublicKey::from_key(&pem_key("rsa", scheme, &rsa.keyval.public)).unwrap();
        assert!(with("rsassa-pss-sha224").verify(b"abc", pss));
        assert!(with("rsa-pkcs1v15-sha224").verify(b"abc", pkcs1));
        assert!(!with("rsassa-pss-sha256").verify(b"abc", pss));
        assert!(!with("rsa-pkcs1v15-sha256").verify(b"abc", pkcs1));
        assert!(!with("rsassa-pss-sha224").verify(b"abc", pkcs1));
    }
}
