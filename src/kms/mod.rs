//! Online signers whose private key lives outside the worker: the one place
//! that turns an `x-rstuf-online-key-uri` into a [`Signer`], reaching the
//! network for KMS schemes. File schemes stay in `crate::tuf::signer`.
mod aws;
mod sigv4;

use std::path::PathBuf;

use crate::tuf::signer::{key_file_path, SignerUri};
use crate::tuf::{load_pem_signer, Error, Key, KeyId, Result, Signer};

pub use aws::{AwsKmsConfig, AwsKmsSigner};

/// Everything a signer may need, whichever scheme root picks.
#[derive(Debug, Clone, Default)]
pub struct SignerConfig {
    /// `RSTUF_ONLINE_KEY_DIR`, where `fn:` names files.
    pub online_key_dir: Option<PathBuf>,
    /// Credentials and endpoint for `awskms:`; `None` when not configured.
    pub aws: Option<AwsKmsConfig>,
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
        SignerUri::GcpKms(_) => Err(refuse(
            "Google Cloud KMS signing is not supported by this worker".into(),
        )),
    }
}
