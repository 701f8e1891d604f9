//! Online signers whose private key lives outside the worker: the one place
//! that turns an `x-rstuf-online-key-uri` into a [`Signer`], reaching the
//! network for KMS schemes. File schemes stay in `crate::tuf::signer`.
mod aws;
mod gcp;
mod http;
mod sigv4;

use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::tuf::signer::{key_file_path, SignerUri};
use crate::tuf::{load_pem_signer, Error, Key, KeyId, PublicKey, Result, Signer};

pub use aws::{AwsKmsConfig, AwsKmsSigner};
pub use gcp::{GcpKmsConfig, GcpKmsSigner};

/// Everything a signer may need, whichever scheme root picks.
#[derive(Debug, Clone, Default)]
pub struct SignerConfig {
    /// `RSTUF_ONLINE_KEY_DIR`, where `fn:` names files.
    pub online_key_dir: Option<PathBuf>,
    /// Credentials and endpoint for `awskms:`; `None` when not configured.
    pub aws: Option<AwsKmsConfig>,
    /// The service account and endpoint for `gcpkms:`; `None` when not
    /// configured.
    pub gcp: Option<GcpKmsConfig>,
}

/// The signer for online key `keyid`, selected by the scheme of its
/// `x-rstuf-online-key-uri`. A signer whose key is not `key` is an error.
pub fn load_online_signer(
    config: &SignerConfig,
    keyid: &KeyId,
    key: &Key,
) -> Result<Box<dyn Signer>> {
    let refuse = |reason: String| Error::SignerUri {
        keyid: keyid.to_string(),
        uri: key.online_key_uri().unwrap_or_default().to_owned(),
        reason,
    };
    match SignerUri::of(keyid, key)? {
        SignerUri::FileName(name) => {
            let dir = config.online_key_dir.as_ref().ok_or_else(|| {
                refuse("RSTUF_ONLINE_KEY_DIR is not set, so the key file cannot be found".into())
            })?;
            load_pem_signer(&key_file_path(dir, &name), keyid, key)
        }
        SignerUri::File(path) => load_pem_signer(&path, keyid, key),
        SignerUri::AwsKms(kms_key) => {
            let aws = config.aws.as_ref().ok_or_else(|| {
                refuse(
                    "AWS KMS is not configured: set RSTUF_AWS_ACCESS_KEY_ID and \
                     RSTUF_AWS_SECRET_ACCESS_KEY"
                        .into(),
                )
            })?;
            let signer = AwsKmsSigner::connect(aws, &kms_key, keyid, key).map_err(refuse)?;
            Ok(Box::new(signer))
        }
        SignerUri::GcpKms(name) => {
            let gcp = config.gcp.as_ref().ok_or_else(|| {
                refuse(
                    "Google Cloud KMS is not configured: set RSTUF_GOOGLE_APPLICATION_CREDENTIALS"
                        .into(),
                )
            })?;
            let signer = GcpKmsSigner::connect(gcp, &name, keyid, key).map_err(refuse)?;
            Ok(Box::new(signer))
        }
    }
}

/// What `rstuf-worker check` says of the online signer of root key
/// `keyid`: it is reachable, its key is root's, and a signature it makes
/// verifies with root's key (a KMS policy may allow reading the public key
/// but not signing).
pub fn probe(config: &SignerConfig, keyid: &KeyId, key: &Key) -> Result<String> {
    const PROBE: &[u8] = b"rstuf-worker check";
    let signer = load_online_signer(config, keyid, key)?;
    let signature = signer.sign(PROBE)?;
    if !PublicKey::from_key(key)?.verify_bytes(PROBE, &signature) {
        return Err(Error::Sign {
            keyid: keyid.to_string(),
            reason: "a test signature does not verify with root's key".into(),
        });
    }
    Ok(format!(
        "{} for key {keyid}: matches root's key, a test signature verifies",
        key.online_key_uri().unwrap_or_default()
    ))
}

/// The hash whose digest a KMS signs: only digests travel, so metadata of
/// any size fits the services' message limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, msg: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(msg).to_vec(),
            Hash::Sha384 => Sha384::digest(msg).to_vec(),
            Hash::Sha512 => Sha512::digest(msg).to_vec(),
        }
    }

    /// The name Cloud KMS gives the digest field.
    fn name(self) -> &'static str {
        match self {
            Hash::Sha256 => "sha256",
            Hash::Sha384 => "sha384",
            Hash::Sha512 => "sha512",
        }
    }
}

/// The bytes of the base64 text `field` of a KMS answer.
fn base64_field(answer: &Value, field: &str) -> std::result::Result<Vec<u8>, String> {
    answer[field]
        .as_str()
        .and_then(|text| BASE64.decode(text).ok())
        .ok_or_else(|| format!("KMS answered without a base64 {field}"))
}
