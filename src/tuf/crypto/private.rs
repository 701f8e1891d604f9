//! Unencrypted PEM private keys as `load_pem_private_key(data, None)` reads
//! them for RSTUF's `fn:` signer (PKCS#8, PKCS#1 `RSA PRIVATE KEY`, SEC1
//! `EC PRIVATE KEY`), and signing with them.
//!
//! Signing uses ring (ECDSA, RSA) and ed25519-compact. The RustCrypto `rsa`
//! crate is deliberately not used: its private-key operation leaks timing
//! (RUSTSEC-2023-0071).
use std::fmt;

use ring::rand::SystemRandom;
use ring::rsa::PublicKeyComponents;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaEncoding, RsaKeyPair};

use super::der::{self, oid, tag, Reader};
use super::ec::{Curve, EcPoint};
use super::rsa::{RsaPadding, RsaPublic};
use super::{spki, HashAlg, Invalid, Material, PublicKey, Scheme};
use crate::tuf::key::Key;
use crate::tuf::{Error, Result};

const PKCS8: &str = "PRIVATE KEY";
const PKCS8_ENCRYPTED: &str = "ENCRYPTED PRIVATE KEY";
const PKCS1: &str = "RSA PRIVATE KEY";
const SEC1: &str = "EC PRIVATE KEY";

/// A private key loaded from PEM, with its public half.
pub struct PrivateKey {
    secret: Secret,
    public: Material,
}

enum Secret {
    Ed25519(ed25519_compact::KeyPair),
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// Shows only the public half: secrets must not reach logs.
impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.public.describe())
    }
}

impl PrivateKey {
    /// The first private key block of `pem`; encrypted keys are refused.
    pub fn from_pem(pem: &str) -> Result<PrivateKey> {
        PrivateKey::parse_pem(pem).map_err(|why| Error::PrivateKey(why.0))
    }

    pub(crate) fn parse_pem(pem: &str) -> std::result::Result<PrivateKey, Invalid> {
        let block = super::pem::find(pem, &[PKCS8, PKCS8_ENCRYPTED, PKCS1, SEC1])?;
        if block.label == PKCS8_ENCRYPTED || block.is_legacy_encrypted() {
            return Err(Invalid(format!(
                "the key is encrypted ({}); the fn: signer reads unencrypted PEM keys only",
                if block.label == PKCS8_ENCRYPTED {
                    PKCS8_ENCRYPTED
                } else {
                    "Proc-Type: 4,ENCRYPTED"
                }
            )));
        }
        match block.label.as_str() {
            PKCS1 => rsa_key(RsaKeyPair::from_der(&block.der)),
            SEC1 => from_sec1(&block.der),
            _ => from_pkcs8(&block.der),
        }
    }

    /// The key dict `SSlibKey.from_crypto` gives this key (default scheme:
    /// `ed25519`, `ecdsa-sha2-nistpNNN`, `rsassa-pss-sha256`), e.g. to show
    /// an operator the public key of a new online key.
    pub fn key_dict(&self) -> Key {
        self.public.default_key_dict()
    }

    /// Ready to sign for `public`, which must be this key's public half; its
    /// scheme decides padding and hash.
    pub(crate) fn into_signing_key(
        self,
        public: &PublicKey,
    ) -> std::result::Result<SigningKey, Invalid> {
        let mismatch = || {
            Invalid(format!(
                "the private key ({}) does not match the key metadata lists for this \
                 key id ({})",
                self.public.describe(),
                public.material.describe()
            ))
        };
        if public.material != self.public {
            return Err(mismatch());
        }
        let kind = match (self.secret, public.scheme) {
            (Secret::Ed25519(pair), Scheme::Ed25519) => Signing::Ed25519(pair),
            (Secret::Ecdsa(pair), Scheme::Ecdsa(_)) => Signing::Ecdsa(pair),
            (Secret::Rsa(pair), Scheme::Rsa(padding)) => Signing::Rsa(pair, ring_padding(padding)?),
            // Equal material already implies the same kind of key.
            _ => return Err(mismatch()),
        };
        Ok(SigningKey {
            kind,
            rng: SystemRandom::new(),
        })
    }
}

/// A private key bound to a scheme. `Send + Sync`; signing takes `&self`.
pub(crate) struct SigningKey {
    kind: Signing,
    rng: SystemRandom,
}

enum Signing {
    Ed25519(ed25519_compact::KeyPair),
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair, &'static dyn RsaEncoding),
}

impl SigningKey {
    /// Ed25519 and PKCS#1 v1.5 signatures are deterministic; ECDSA and PSS
    /// are randomised, as with `cryptography`.
    pub fn sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, Invalid> {
        match &self.kind {
            Signing::Ed25519(pair) => Ok(pair.sk.sign(msg, None).to_vec()),
            Signing::Ecdsa(pair) => pair
                .sign(&self.rng, msg)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| Invalid("ECDSA signing failed".into())),
            Signing::Rsa(pair, padding) => {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(*padding, &self.rng, msg, &mut sig)
                    .map_err(|_| Invalid("RSA signing failed".into()))?;
                Ok(sig)
            }
        }
    }
}

/// ring's PSS salt length is the digest length, which is what
/// securesystemslib's `CryptoSigner` uses too.
fn ring_padding(padding: RsaPadding) -> std::result::Result<&'static dyn RsaEncoding, Invalid> {
    Ok(match padding {
        RsaPadding::Pss(HashAlg::Sha256) => &signature::RSA_PSS_SHA256,
        RsaPadding::Pss(HashAlg::Sha384) => &signature::RSA_PSS_SHA384,
        RsaPadding::Pss(HashAlg::Sha512) => &signature::RSA_PSS_SHA512,
        RsaPadding::Pkcs1v15(HashAlg::Sha256) => &signature::RSA_PKCS1_SHA256,
        RsaPadding::Pkcs1v15(HashAlg::Sha384) => &signature::RSA_PKCS1_SHA384,
        RsaPadding::Pkcs1v15(HashAlg::Sha512) => &signature::RSA_PKCS1_SHA512,
        RsaPadding::Pss(HashAlg::Sha224) | RsaPadding::Pkcs1v15(HashAlg::Sha224) => {
            return Err(Invalid(
                "SHA-224 RSA schemes can be verified but not signed here (ring lacks SHA-224)"
                    .into(),
            ))
        }
    })
}

/// PKCS#8 `PrivateKeyInfo` (or v2 `OneAsymmetricKey`).
fn from_pkcs8(der: &[u8]) -> std::result::Result<PrivateKey, Invalid> {
    let mut info = Reader::whole_sequence(der, "PKCS#8 PrivateKeyInfo")?;
    if info.small_integer("PKCS#8 version")? > 1 {
        return Err(Invalid("unsupported PKCS#8 version".into()));
    }
    let mut algorithm = info.sequence("PKCS#8 algorithm")?;
    let key_oid = algorithm.read(tag::OID, "PKCS#8 algorithm")?;
    let private = info.read(tag::OCTET_STRING, "PKCS#8 private key")?;
    match key_oid {
        oid::RSA_ENCRYPTION => rsa_key(RsaKeyPair::from_pkcs8(der)),
        oid::EC_PUBLIC_KEY => {
            let curve = Curve::from_oid(algorithm.read(tag::OID, "EC named curve")?)
                .ok_or_else(spki::unsupported_curve)?;
            let inner = EcPrivateKeyInfo::inspect(private)?;
            if inner.curve.is_some_and(|c| c != curve) {
                return Err(Invalid(
                    "PKCS#8 and ECPrivateKey name different curves".into(),
                ));
            }
            inner.require_public_key()?;
            ecdsa_key(curve, der)
        }
        oid::ED25519 => {
            algorithm.finish("Ed25519 algorithm")?;
            ed25519_key(private, info)
        }
        _ => Err(Invalid(
            "unsupported private key algorithm (Ed25519, ECDSA and RSA keys are supported)".into(),
        )),
    }
}

/// The Ed25519 seed (an OCTET STRING inside the PKCS#8 one), then the
/// optional attributes and public key of the PKCS#8 structure.
fn ed25519_key(private: &[u8], mut rest: Reader<'_>) -> std::result::Result<PrivateKey, Invalid> {
    let mut inner = Reader::new(private);
    let seed = inner.read(tag::OCTET_STRING, "Ed25519 private key")?;
    inner.finish("Ed25519 private key")?;
    let seed = <[u8; 32]>::try_from(seed)
        .map_err(|_| Invalid("Ed25519 private key must be 32 bytes".into()))?;
    let pair = ed25519_compact::KeyPair::try_from_seed(ed25519_compact::Seed::new(seed))
        .map_err(|e| Invalid(format!("Ed25519 key rejected: {e}")))?;
    rest.optional(tag::CONTEXT_0, "PKCS#8 attributes")?;
    if let Some(stored) = rest.optional(tag::CONTEXT_1_PRIMITIVE, "PKCS#8 public key")? {
        if stored.split_first() != Some((&0, &pair.pk[..])) {
            return Err(Invalid(
                "the public key stored in the file does not belong to its private key".into(),
            ));
        }
    }
    rest.finish("PKCS#8 PrivateKeyInfo")?;
    Ok(PrivateKey {
        public: Material::Ed25519(*pair.pk),
        secret: Secret::Ed25519(pair),
    })
}

/// SEC1 `EC PRIVATE KEY`. ring reads ECDSA keys only as PKCS#8, so the SEC1
/// structure is wrapped in a `PrivateKeyInfo` unchanged.
fn from_sec1(sec1: &[u8]) -> std::result::Result<PrivateKey, Invalid> {
    let info = EcPrivateKeyInfo::inspect(sec1)?;
    let curve = info
        .curve
        .ok_or_else(|| Invalid("the EC PRIVATE KEY does not name its curve".into()))?;
    info.require_public_key()?;
    let algorithm = der::sequence(&[
        &der::write(tag::OID, oid::EC_PUBLIC_KEY),
        &der::write(tag::OID, curve.oid()),
    ]);
    let pkcs8 = der::sequence(&[
        &der::unsigned_integer(&[0]),
        &algorithm,
        &der::write(tag::OCTET_STRING, sec1),
    ]);
    ecdsa_key(curve, &pkcs8)
}

/// What an `ECPrivateKey` (RFC 5915) says about itself.
struct EcPrivateKeyInfo {
    curve: Option<Curve>,
    has_public_key: bool,
}

impl EcPrivateKeyInfo {
    fn inspect(der: &[u8]) -> std::result::Result<EcPrivateKeyInfo, Invalid> {
        let what = "ECPrivateKey";
        let mut key = Reader::whole_sequence(der, what)?;
        if key.small_integer("ECPrivateKey version")? != 1 {
            return Err(Invalid("unsupported ECPrivateKey version".into()));
        }
        key.read(tag::OCTET_STRING, "EC private key")?;
        let curve = match key.optional(tag::CONTEXT_0, "EC parameters")? {
            Some(params) => {
                let mut params = Reader::new(params);
                let curve_oid = params.read(tag::OID, "EC named curve")?;
                params.finish("EC parameters")?;
                Some(Curve::from_oid(curve_oid).ok_or_else(spki::unsupported_curve)?)
            }
            None => None,
        };
        let has_public_key = key.optional(tag::CONTEXT_1, "EC public key")?.is_some();
        key.finish(what)?;
        Ok(EcPrivateKeyInfo {
            curve,
            has_public_key,
        })
    }

    /// ring needs the public point stored with the key; deriving it here
    /// would mean secret-dependent big-integer arithmetic.
    fn require_public_key(&self) -> std::result::Result<(), Invalid> {
        if self.has_public_key {
            Ok(())
        } else {
            Err(Invalid(
                "the EC private key does not include its public key; re-export it with \
                 `openssl ec -in <file> -out <file>` (OpenSSL writes the public key by default)"
                    .into(),
            ))
        }
    }
}

fn ecdsa_key(curve: Curve, pkcs8: &[u8]) -> std::result::Result<PrivateKey, Invalid> {
    let algorithm = match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        Curve::P521 => {
            return Err(Invalid(
                "P-521 keys cannot sign here (nor with securesystemslib's CryptoSigner)".into(),
            ))
        }
    };
    let pair = EcdsaKeyPair::from_pkcs8(algorithm, pkcs8, &SystemRandom::new())
        .map_err(|e| Invalid(format!("{} private key rejected: {e}", curve.name())))?;
    let public = EcPoint::decode(curve, pair.public_key().as_ref())?;
    Ok(PrivateKey {
        secret: Secret::Ecdsa(pair),
        public: Material::Ec(public),
    })
}

fn rsa_key(
    parsed: std::result::Result<RsaKeyPair, ring::error::KeyRejected>,
) -> std::result::Result<PrivateKey, Invalid> {
    let pair = parsed.map_err(|e| {
        Invalid(format!(
            "RSA private key rejected: {e} (signing needs a 2048 to 4096-bit key with \
             public exponent of at least 65537)"
        ))
    })?;
    let components: PublicKeyComponents<Vec<u8>> = pair.public().into();
    Ok(PrivateKey {
        public: Material::Rsa(RsaPublic::from_components(&components.n, &components.e)),
        secret: Secret::Rsa(pair),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuf::crypto::tests::{is_encrypted, key_dict, private_pem, vector_key, vector_keys};

    fn parse_error(pem: &str) -> String {
        PrivateKey::from_pem(pem).unwrap_err().to_string()
    }

    #[test]
    fn every_unencrypted_vector_key_gives_the_securesystemslib_key_dict() {
        let mut loaded = 0;
        for entry in vector_keys().iter().filter(|e| !is_encrypted(e)) {
            let key = PrivateKey::from_pem(&private_pem(entry)).unwrap();
            let want = key_dict(entry);
            let got = key.key_dict();
            assert_eq!(got.keytype, want.keytype, "{}", entry["label"]);
            assert_eq!(got.keyval, want.keyval, "{}", entry["label"]);
            // The pkcs1v15 vector key was given a non-default scheme.
            if want.scheme == got.scheme {
                assert_eq!(got.keyid().unwrap().0, entry["keyid"].as_str().unwrap());
            } else {
                assert_eq!(
                    (got.scheme.as_str(), want.scheme.as_str()),
                    ("rsassa-pss-sha256", "rsa-pkcs1v15-sha256")
                );
            }
            loaded += 1;
        }
        assert_eq!(loaded, 10);
    }

    #[test]
    fn encrypted_keys_are_refused_with_a_clear_reason() {
        let encrypted: Vec<_> = vector_keys().into_iter().filter(is_encrypted).collect();
        assert_eq!(encrypted.len(), 4);
        for entry in &encrypted {
            assert_eq!(
                parse_error(&private_pem(entry)),
                "private key: the key is encrypted (ENCRYPTED PRIVATE KEY); the fn: signer reads \
                 unencrypted PEM keys only"
            );
        }
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
                      DEK-Info: AES-128-CBC,0011\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert!(parse_error(legacy).contains("the key is encrypted (Proc-Type: 4,ENCRYPTED)"));
    }

    #[test]
    fn ec_keys_without_their_public_point_are_refused_clearly() {
        // ecdsa-p256-a.pem re-exported with `openssl ec -no_public`, as SEC1
        // and as PKCS#8.
        let sec1 = "-----BEGIN EC PRIVATE KEY-----\n\
            MDECAQEEIIABnh5BvXeQW3yU/lJpy6n7pb+DdIHgR2ymO9zhvv+loAoGCCqGSM49\n\
            AwEH\n-----END EC PRIVATE KEY-----\n";
        let pkcs8 = "-----BEGIN PRIVATE KEY-----\n\
            MEECAQAwEwYHKoZIzj0CAQYIKoZIzj0DAQcEJzAlAgEBBCCAAZ4eQb13kFt8lP5S\n\
            acup+6W/g3SB4Edspjvc4b7/pQ==\n-----END PRIVATE KEY-----\n";
        for pem in [sec1, pkcs8] {
            assert!(parse_error(pem).starts_with(
                "private key: the EC private key does not include its public key; re-export it"
            ));
        }
    }

    #[test]
    fn sec1_key_is_the_same_key_as_its_pkcs8_form() {
        let entry = vector_key("umbrella-online-ecdsa-p256-sec1");
        let pem = private_pem(&entry);
        assert!(pem.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        let sec1 = PrivateKey::from_pem(&pem).unwrap();
        let der = super::super::pem::find(&pem, &[SEC1]).unwrap().der;
        let info = EcPrivateKeyInfo::inspect(&der).unwrap();
        assert_eq!(info.curve, Some(Curve::P256));
        assert!(info.has_public_key);
        assert_eq!(
            sec1.public,
            PublicKey::from_key(&key_dict(&entry)).unwrap().material
        );
    }

    #[test]
    fn other_pem_contents_are_refused() {
        let public = key_dict(&vector_key("rsa-2048-a.pem")).keyval.public;
        assert_eq!(
            parse_error(&public),
            "private key: expected a PEM block labelled PRIVATE KEY or ENCRYPTED PRIVATE KEY or \
             RSA PRIVATE KEY or EC PRIVATE KEY, found only PUBLIC KEY"
        );
        let ssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
        assert!(parse_error(ssh).ends_with("found only OPENSSH PRIVATE KEY"));
        let garbage = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(parse_error(garbage).starts_with("private key: PKCS#8 PrivateKeyInfo:"));
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let key = PrivateKey::from_pem(&private_pem(&vector_key("ed25519-a.pem"))).unwrap();
        assert_eq!(format!("{key:?}"), "PrivateKey(an Ed25519 key)");
        let key = PrivateKey::from_pem(&private_pem(&vector_key("rsa-3072-pkcs1.pem"))).unwrap();
        assert_eq!(format!("{key:?}"), "PrivateKey(a 3072-bit RSA key)");
    }

    #[test]
    fn ed25519_signing_uses_the_seed_from_the_file() {
        let entry = vector_key("ed25519-a.pem");
        let key = PrivateKey::from_pem(&private_pem(&entry)).unwrap();
        let Secret::Ed25519(pair) = &key.secret else {
            panic!("not Ed25519")
        };
        assert_eq!(
            crate::tuf::key::hex_lower(&pair.sk[..32]),
            entry["ed25519_private_seed_hex"].as_str().unwrap()
        );
    }
}
