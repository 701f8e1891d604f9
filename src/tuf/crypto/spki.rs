//! SubjectPublicKeyInfo: reading the `keyval.public` PEM of ECDSA and RSA
//! keys (and of Ed25519 ones, which metadata writes as hex instead) and
//! writing it byte for byte as `cryptography` does (key ids hash that text).
use super::der::{self, oid, tag, Reader};
use super::ec::{Curve, EcPoint};
use super::pem;
use super::rsa::RsaPublic;
use super::{Invalid, Material};
use crate::tuf::key::hex_lower;

const SPKI_LABEL: &str = "PUBLIC KEY";
/// `load_pem_public_key` also takes a bare PKCS#1 RSA key.
const PKCS1_LABEL: &str = "RSA PUBLIC KEY";

/// The public key in PEM text, as `load_pem_public_key` reads it.
pub(crate) fn parse_pem(text: &str) -> Result<Material, Invalid> {
    let block = pem::find(text, &[SPKI_LABEL, PKCS1_LABEL])?;
    if block.label == PKCS1_LABEL {
        RsaPublic::from_pkcs1_der(&block.der).map(Material::Rsa)
    } else {
        parse_der(&block.der)
    }
}

pub(crate) fn parse_der(der: &[u8]) -> Result<Material, Invalid> {
    let what = "SubjectPublicKeyInfo";
    let mut spki = Reader::whole_sequence(der, what)?;
    let mut algorithm = spki.sequence("SPKI algorithm")?;
    let key_oid = algorithm.read(tag::OID, "SPKI algorithm")?;
    let key = spki.bit_string("SPKI public key")?;
    spki.finish(what)?;
    match key_oid {
        oid::RSA_ENCRYPTION => {
            // Parameters are NULL, or absent in some encoders.
            if algorithm
                .optional(tag::NULL, "RSA parameters")?
                .is_some_and(|null| !null.is_empty())
            {
                return Err(Invalid("RSA parameters: NULL with contents".into()));
            }
            algorithm.finish("SPKI algorithm")?;
            RsaPublic::from_pkcs1_der(key).map(Material::Rsa)
        }
        oid::EC_PUBLIC_KEY => {
            let curve_oid = algorithm.read(tag::OID, "EC named curve")?;
            algorithm.finish("SPKI algorithm")?;
            let curve = Curve::from_oid(curve_oid).ok_or_else(unsupported_curve)?;
            EcPoint::decode(curve, key).map(Material::Ec)
        }
        oid::ED25519 => {
            algorithm.finish("SPKI algorithm")?;
            <[u8; 32]>::try_from(key)
                .map(Material::Ed25519)
                .map_err(|_| Invalid("Ed25519 public key must be 32 bytes".into()))
        }
        other => Err(Invalid(format!(
            "unsupported public key algorithm (OID bytes {})",
            hex_lower(other)
        ))),
    }
}

pub(crate) fn unsupported_curve() -> Invalid {
    Invalid("unsupported EC curve (P-256, P-384 and P-521 are supported)".into())
}

pub(crate) fn ec_pem(point: &EcPoint) -> String {
    let algorithm = der::sequence(&[
        &der::write(tag::OID, oid::EC_PUBLIC_KEY),
        &der::write(tag::OID, point.curve().oid()),
    ]);
    encode(&algorithm, point.uncompressed())
}

pub(crate) fn rsa_pem(key: &RsaPublic) -> String {
    let algorithm = der::sequence(&[
        &der::write(tag::OID, oid::RSA_ENCRYPTION),
        &der::write(tag::NULL, &[]),
    ]);
    encode(&algorithm, &key.to_pkcs1_der())
}

fn encode(algorithm: &[u8], key: &[u8]) -> String {
    pem::encode(
        SPKI_LABEL,
        &der::sequence(&[algorithm, &der::bit_string(key)]),
    )
}
