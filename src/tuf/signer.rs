//! Signing metadata with the online key.
//!
//! [`Signer`] is the seam for every key store (files here, KMS signers in
//! `crate::kms`): the worker needs only the key id, the key dict and
//! signature bytes.
//! [`PemSigner`] is RSTUF's `fn:` signer: an unencrypted PEM private key in
//! the online key directory.
use std::fmt;
use std::path::{Path, PathBuf};

use super::crypto::{PrivateKey, PublicKey, SigningKey};
use super::key::{hex_lower, Key};
use super::types::KeyId;
use super::{Error, Result};

/// URI scheme of RSTUF's file-name signer: `fn:<file name>`.
pub const FILE_NAME_SCHEME: &str = "fn";

/// Signs for one key. `Send + Sync` and `&self` so that one signer can sign
/// thousands of roles from parallel workers.
pub trait Signer: Send + Sync {
    /// The key id metadata lists for this key.
    fn keyid(&self) -> &KeyId;

    /// The key dict as root metadata carries it, extra fields included.
    fn public_key(&self) -> &Key;

    /// Signature bytes over `msg` as the key's scheme defines them.
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>>;

    /// The signature as lowercase hex, the form metadata stores.
    fn sign_hex(&self, msg: &[u8]) -> Result<String> {
        self.sign(msg).map(|sig| hex_lower(&sig))
    }

    /// How many signatures this signer makes well at once.
    fn concurrency(&self) -> Concurrency {
        Concurrency::Cpu
    }
}

/// What bounds a signer's throughput, so that signing many roles spreads
/// over the threads that suit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// Signing costs CPU: one thread per core at most.
    Cpu,
    /// Signing waits on a remote service: this many requests in flight,
    /// whatever the number of cores.
    Network(usize),
}

/// A private key from a PEM file, bound to the metadata key it signs for.
pub struct PemSigner {
    keyid: KeyId,
    key: Key,
    signing: SigningKey,
}

/// Names the key, never the secret.
impl fmt::Debug for PemSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PemSigner({} {})", self.key.scheme, self.keyid)
    }
}

impl PemSigner {
    /// Binds `private` to `keyid`/`key`. The key's public half must be the
    /// key material of `key` (compared as numbers and points, not PEM text);
    /// `key.scheme` decides padding and hash.
    pub fn new(private: PrivateKey, keyid: &KeyId, key: &Key) -> Result<PemSigner> {
        PemSigner::bind(private, keyid, key).map_err(|reason| Error::Key {
            keyid: keyid.to_string(),
            reason,
        })
    }

    fn bind(
        private: PrivateKey,
        keyid: &KeyId,
        key: &Key,
    ) -> std::result::Result<PemSigner, String> {
        let public = PublicKey::parse(key).map_err(|why| format!("metadata key: {why}"))?;
        let signing = private.into_signing_key(&public).map_err(|why| why.0)?;
        Ok(PemSigner {
            keyid: keyid.clone(),
            key: key.clone(),
            signing,
        })
    }
}

impl Signer for PemSigner {
    fn keyid(&self) -> &KeyId {
        &self.keyid
    }

    fn public_key(&self) -> &Key {
        &self.key
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        self.signing.sign(msg).map_err(|why| Error::Sign {
            keyid: self.keyid.to_string(),
            reason: why.0,
        })
    }
}

/// Where an online key's private half lives, from its
/// `x-rstuf-online-key-uri`, spelled as securesystemslib's signer URIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerUri {
    /// `fn:<file name>`: RSTUF's unencrypted PEM file in the online key dir.
    FileName(String),
    /// `file2:<path>`: securesystemslib's unencrypted PEM file by path.
    File(PathBuf),
    /// `awskms:<key id or ARN>`: an AWS KMS asymmetric signing key.
    AwsKms(String),
    /// `gcpkms:<resource name>`: a Google Cloud KMS key version.
    GcpKms(String),
}

impl SignerUri {
    /// The URI of the online key `keyid`; an absent field or an unknown
    /// scheme is an error naming both.
    pub fn of(keyid: &KeyId, key: &Key) -> Result<SignerUri> {
        let uri = key.online_key_uri().unwrap_or_default();
        SignerUri::parse(uri).map_err(|reason| Error::SignerUri {
            keyid: keyid.to_string(),
            uri: uri.to_owned(),
            reason,
        })
    }

    fn parse(uri: &str) -> std::result::Result<SignerUri, String> {
        if uri.is_empty() {
            return Err(format!(
                "the key has no {} field",
                super::key::ONLINE_KEY_URI_FIELD
            ));
        }
        let (scheme, rest) = uri.split_once(':').unwrap_or((uri, ""));
        let parsed = match scheme {
            FILE_NAME_SCHEME => SignerUri::FileName(rest.to_owned()),
            FILE_SCHEME => SignerUri::File(PathBuf::from(rest)),
            AWS_KMS_SCHEME => SignerUri::AwsKms(rest.to_owned()),
            GCP_KMS_SCHEME => SignerUri::GcpKms(rest.to_owned()),
            _ => {
                return Err(format!(
                    "unsupported signer URI scheme '{scheme}' (supported: {FILE_NAME_SCHEME}:<file \
                     name>, {FILE_SCHEME}:<path>, {AWS_KMS_SCHEME}:<key id or ARN>, \
                     {GCP_KMS_SCHEME}:<key version resource name>)"
                ))
            }
        };
        if rest.is_empty() {
            return Err(format!(
                "bad uri: expected '{scheme}:<{}>'",
                parsed.argument()
            ));
        }
        Ok(parsed)
    }

    fn argument(&self) -> &'static str {
        match self {
            SignerUri::FileName(_) => "file name",
            SignerUri::File(_) => "path",
            SignerUri::AwsKms(_) => "key id or ARN",
            SignerUri::GcpKms(_) => "key version resource name",
        }
    }
}

/// URI scheme of securesystemslib's PEM file signer: `file2:<path>`.
pub const FILE_SCHEME: &str = "file2";
/// URI scheme of securesystemslib's AWS KMS signer.
pub const AWS_KMS_SCHEME: &str = "awskms";
/// URI scheme of securesystemslib's Google Cloud KMS signer.
pub const GCP_KMS_SCHEME: &str = "gcpkms";

/// The signer for the online key `keyid` when its private half is a file:
/// `fn:<file name>` (in `key_dir`) or `file2:<path>`. KMS URIs are refused
/// here: the caller that owns the network reaches those.
pub fn load_online_signer(key_dir: &Path, keyid: &KeyId, key: &Key) -> Result<Box<dyn Signer>> {
    let path = match SignerUri::of(keyid, key)? {
        SignerUri::FileName(name) => key_file_path(key_dir, &name),
        SignerUri::File(path) => path,
        remote => {
            return Err(Error::SignerUri {
                keyid: keyid.to_string(),
                uri: key.online_key_uri().unwrap_or_default().to_owned(),
                reason: format!("{remote:?} is a KMS key, not a local file"),
            })
        }
    };
    load_pem_signer(&path, keyid, key)
}

/// The signer for `keyid` from the unencrypted PEM private key at `path`;
/// the key must be the one `key` describes.
pub fn load_pem_signer(path: &Path, keyid: &KeyId, key: &Key) -> Result<Box<dyn Signer>> {
    let file_error = |reason: String| Error::KeyFile {
        keyid: keyid.to_string(),
        path: path.display().to_string(),
        reason,
    };
    warn_if_world_readable(path);
    let mut pem = std::fs::read(path).map_err(|e| file_error(format!("cannot read it: {e}")))?;
    let parsed = std::str::from_utf8(&pem)
        .map_err(|_| file_error("it is not a PEM text file".into()))
        .and_then(|text| PrivateKey::parse_pem(text).map_err(|why| file_error(why.0)));
    scrub(&mut pem);
    let private = parsed?;
    let signer = PemSigner::bind(private, keyid, key).map_err(file_error)?;
    Ok(Box::new(signer))
}

/// Any user of the host could copy a world-readable key; the worker still
/// uses it (refusing would stop signing on a deployment that ran fine
/// upstream) but says so at every load.
fn warn_if_world_readable(path: &Path) {
    if let Some(mode) = world_readable_mode(path) {
        log::warn!(
            "online key file {} is readable by every user (mode {mode:o}); run `chmod o-r` on it",
            path.display()
        );
    }
}

/// The permission bits of `path` when others may read it.
fn world_readable_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o004 != 0).then_some(mode)
}

/// Overwrites the key file's bytes once parsed, so they do not linger in
/// freed memory; volatile so the compiler cannot drop the dead stores.
fn scrub(bytes: &mut [u8]) {
    for byte in bytes.iter_mut() {
        // SAFETY: `byte` is a valid, exclusive reference into the slice.
        unsafe { std::ptr::write_volatile(byte, 0) };
    }
}

/// Where `fn:<name>` points: `Path(key_dir, name)` as Python builds it, so an
/// absolute name replaces the directory and `.` parts, repeated and
/// trailing separators are dropped.
pub fn key_file_path(key_dir: &Path, name: &str) -> PathBuf {
    key_dir.join(Path::new(name).components().collect::<PathBuf>())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::tuf::crypto::tests::{
        is_encrypted, key_dict, message, signature_vectors, vector_key, vector_keys,
    };
    use crate::tuf::key::ONLINE_KEY_URI_FIELD;
    use crate::tuf::testdata;

    /// The vector key dict of `entry` pointing at `file` (beside the
    /// entry's own key file) through `fn:`.
    fn online_key(entry: &Value, file: &str) -> (PathBuf, KeyId, Key) {
        let private = testdata::shared(&format!(
            "vectors/tuf/{}",
            entry["private_key_file"].as_str().unwrap()
        ));
        let mut key = key_dict(entry);
        key.extra
            .insert(ONLINE_KEY_URI_FIELD.into(), format!("fn:{file}").into());
        let keyid = KeyId::from(entry["keyid"].as_str().unwrap());
        (private.parent().unwrap().to_owned(), keyid, key)
    }

    fn own_file(entry: &Value) -> String {
        let path = entry["private_key_file"].as_str().unwrap();
        path.rsplit('/').next().unwrap().to_owned()
    }

    fn load(entry: &Value, file: &str) -> Result<Box<dyn Signer>> {
        let (dir, keyid, key) = online_key(entry, file);
        load_online_signer(&dir, &keyid, &key)
    }

    fn load_error(entry: &Value, file: &str) -> Error {
        refused(load(entry, file))
    }

    fn refused(loaded: Result<Box<dyn Signer>>) -> Error {
        match loaded {
            Ok(signer) => panic!("{} loaded", signer.keyid()),
            Err(e) => e,
        }
    }

    #[test]
    fn key_files_readable_by_others_are_flagged() {
        use std::os::unix::fs::PermissionsExt;
        let dir = crate::testutil::TempDir::new("key-mode");
        let path = dir.path().join("key.pem");
        std::fs::write(&path, "x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(world_readable_mode(&path), Some(0o644));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(world_readable_mode(&path), None);
    }

    #[test]
    fn every_unencrypted_vector_key_signs_what_its_key_dict_verifies() {
        let doc = testdata::json("vectors/tuf/signatures.json");
        let deterministic = &doc["deterministic_signing"];
        let mut exact = 0;
        let entries: Vec<Value> = vector_keys()
            .into_iter()
            .filter(|e| !is_encrypted(e))
            .collect();
        assert_eq!(entries.len(), 10);
        for entry in &entries {
            let signer = load(entry, &own_file(entry)).unwrap();
            let key = key_dict(entry);
            assert_eq!(signer.keyid().as_str(), entry["keyid"].as_str().unwrap());
            assert_eq!(signer.public_key().keyval, key.keyval);
            assert!(signer.public_key().online_key_uri().is_some());
            let verifier = PublicKey::from_key(&key).unwrap();
            let label = entry["label"].as_str().unwrap();
            // Absent for the P-384 key, whose vectors were not made by CryptoSigner.
            let is_deterministic = deterministic[format!("{label} ({})", key.scheme)] == true;
            let sig = signer.sign(b"rstuf").unwrap();
            assert!(verifier.verify_bytes(b"rstuf", &sig), "{label}");
            let own_vectors = signature_vectors().into_iter().filter(|v| {
                v["key_label"] == label && v["note"].as_str().unwrap().starts_with("CryptoSigner")
            });
            for v in own_vectors {
                let msg = message(&v);
                let sig = signer.sign_hex(&msg).unwrap();
                assert!(verifier.verify(&msg, &sig), "{label}");
                if is_deterministic {
                    assert_eq!(sig, v["signature_hex"].as_str().unwrap(), "{label}");
                    exact += 1;
                }
            }
        }
        // ed25519-a, ed25519-b, online-ed25519 and the pkcs1v15 key, three
        // messages each.
        assert_eq!(exact, 12);
    }

    #[test]
    fn p384_signs_although_securesystemslib_cannot() {
        let entry = vector_key("ecdsa-p384-a.pem");
        let signer = load(&entry, "ecdsa-p384-a.pem").unwrap();
        let sig = signer.sign(b"abc").unwrap();
        assert!(PublicKey::from_key(&key_dict(&entry))
            .unwrap()
            .verify_bytes(b"abc", &sig));
    }

    #[test]
    fn encrypted_key_files_are_errors_naming_file_and_key() {
        for label in [
            "umbrella-JH-ed25519",
            "umbrella-JJ-ecdsa-p256",
            "umbrella-JC-rsa2048",
            "ed25519-encrypted-hunter2.pem",
        ] {
            let entry = vector_key(label);
            let (dir, keyid, _) = online_key(&entry, "");
            let file = own_file(&entry);
            let err = load_error(&entry, &file);
            assert_eq!(
                err.to_string(),
                format!(
                    "online key {keyid}: key file {}: the key is encrypted (ENCRYPTED PRIVATE \
                     KEY); the fn: signer reads unencrypted PEM keys only",
                    dir.join(&file).display()
                )
            );
        }
    }

    #[test]
    fn a_file_holding_another_key_is_a_mismatch() {
        let entry = vector_key("ed25519-a.pem");
        let Error::KeyFile {
            keyid,
            path,
            reason,
        } = load_error(&entry, "ed25519-b.pem")
        else {
            panic!("not a key file error")
        };
        assert_eq!(keyid, entry["keyid"].as_str().unwrap());
        assert!(path.ends_with("keys/generated/ed25519-b.pem"));
        assert_eq!(
            reason,
            "the private key (an Ed25519 key) does not match the key metadata lists for this \
             key id (an Ed25519 key)"
        );
        let Error::KeyFile { reason, .. } = load_error(&entry, "rsa-2048-a.pem") else {
            panic!("not a key file error")
        };
        assert_eq!(
            reason,
            "the private key (a 2048-bit RSA key) does not match the key metadata lists for \
             this key id (an Ed25519 key)"
        );
    }

    #[test]
    fn same_key_material_binds_whatever_the_pem_text_looks_like() {
        // The SEC1 file and the PKCS#8 dict-side SPKI are different texts
        // for one key; the pkcs1v15 key file serves a PSS dict of the same key.
        let entry = vector_key("rsa-2048-pkcs1v15.pem");
        let (dir, keyid, mut key) = online_key(&entry, "rsa-2048-pkcs1v15.pem");
        key.scheme = "rsassa-pss-sha256".into();
        let signer = load_online_signer(&dir, &keyid, &key).unwrap();
        let sig = signer.sign(b"m").unwrap();
        assert!(PublicKey::from_key(&key).unwrap().verify_bytes(b"m", &sig));
        let pkcs1v15 = PublicKey::from_key(&key_dict(&entry)).unwrap();
        assert!(!pkcs1v15.verify_bytes(b"m", &sig));
    }

    #[test]
    fn missing_file_is_an_error_naming_the_path() {
        let entry = vector_key("online-ed25519.pem");
        let (dir, keyid, _) = online_key(&entry, "");
        let err = load_error(&entry, "absent.pem");
        let Error::KeyFile { path, reason, .. } = &err else {
            panic!("not a key file error: {err}")
        };
        assert_eq!(path, &dir.join("absent.pem").display().to_string());
        assert!(reason.starts_with("cannot read it: No such file or directory"));
        assert!(err
            .to_string()
            .starts_with(&format!("online key {keyid}: key file {path}: ")));
    }

    #[test]
    fn file_names_resolve_like_python_path_join() {
        let dir = Path::new("/run/keys");
        assert_eq!(key_file_path(dir, "k.pem"), Path::new("/run/keys/k.pem"));
        assert_eq!(key_file_path(dir, "/etc/k.pem"), Path::new("/etc/k.pem"));
        assert_eq!(
            key_file_path(dir, "sub//./k.pem/").as_os_str(),
            "/run/keys/sub/k.pem"
        );
        assert_eq!(key_file_path(dir, "a:b"), Path::new("/run/keys/a:b"));
    }

    #[test]
    fn uris_select_the_signer_by_scheme() {
        assert_eq!(
            SignerUri::parse("fn:a:b"),
            Ok(SignerUri::FileName("a:b".into()))
        );
        assert_eq!(
            SignerUri::parse("file2:/k/x.pem"),
            Ok(SignerUri::File("/k/x.pem".into()))
        );
        assert_eq!(
            SignerUri::parse("awskms:arn:aws:kms:eu-west-1:1:key/k"),
            Ok(SignerUri::AwsKms("arn:aws:kms:eu-west-1:1:key/k".into()))
        );
        assert_eq!(
            SignerUri::parse("gcpkms:projects/p/cryptoKeyVersions/1"),
            Ok(SignerUri::GcpKms("projects/p/cryptoKeyVersions/1".into()))
        );
        for (bad, expected) in [
            ("fn:", "fn:<file name>"),
            ("fn", "fn:<file name>"),
            ("file2:", "file2:<path>"),
            ("awskms:", "awskms:<key id or ARN>"),
        ] {
            assert_eq!(
                SignerUri::parse(bad).unwrap_err(),
                format!("bad uri: expected '{expected}'")
            );
        }
        for other in ["hsm:1", "envvar:K", "k.pem"] {
            let scheme = other.split(':').next().unwrap();
            assert!(SignerUri::parse(other).unwrap_err().starts_with(&format!(
                "unsupported signer URI scheme '{scheme}' (supported: fn:"
            )));
        }
    }

    #[test]
    fn file2_uris_name_the_pem_file_by_path() {
        let entry = vector_key("online-ed25519.pem");
        let (dir, keyid, mut key) = online_key(&entry, "");
        let path = dir.join(own_file(&entry));
        key.extra.insert(
            ONLINE_KEY_URI_FIELD.into(),
            format!("file2:{}", path.display()).into(),
        );
        let signer = load_online_signer(Path::new("/nonexistent"), &keyid, &key).unwrap();
        let sig = signer.sign(b"m").unwrap();
        assert!(PublicKey::from_key(&key).unwrap().verify_bytes(b"m", &sig));
        key.extra
            .insert(ONLINE_KEY_URI_FIELD.into(), "file2:/absent.pem".into());
        assert_eq!(
            refused(load_online_signer(&dir, &keyid, &key)).to_string(),
            format!(
                "online key {keyid}: key file /absent.pem: cannot read it: No such file or \
                 directory (os error 2)"
            )
        );
    }

    #[test]
    fn uri_problems_are_errors_naming_key_and_uri() {
        let entry = vector_key("online-ed25519.pem");
        let (dir, keyid, mut key) = online_key(&entry, "online-ed25519.pem");
        key.extra
            .insert(ONLINE_KEY_URI_FIELD.into(), "hsm:slot1".into());
        assert!(refused(load_online_signer(&dir, &keyid, &key))
            .to_string()
            .starts_with(&format!(
                "online key {keyid}: signer URI 'hsm:slot1': unsupported signer URI scheme 'hsm'"
            )));
        key.extra
            .insert(ONLINE_KEY_URI_FIELD.into(), "awskms:arn:aws:kms:k".into());
        assert_eq!(
            refused(load_online_signer(&dir, &keyid, &key)).to_string(),
            format!(
                "online key {keyid}: signer URI 'awskms:arn:aws:kms:k': AwsKms(\"arn:aws:kms:k\") is a KMS key, \
                 not a local file"
            )
        );
        key.extra.remove(ONLINE_KEY_URI_FIELD);
        assert_eq!(
            refused(load_online_signer(&dir, &keyid, &key)).to_string(),
            format!(
                "online key {keyid}: signer URI '': the key has no x-rstuf-online-key-uri field"
            )
        );
    }

    #[test]
    fn one_signer_serves_parallel_threads() {
        let entry = vector_key("umbrella-online-ecdsa-p256-sec1");
        let signer = load(&entry, &own_file(&entry)).unwrap();
        let verifier = PublicKey::from_key(&key_dict(&entry)).unwrap();
        std::thread::scope(|scope| {
            for t in 0..4u8 {
                let (signer, verifier) = (&signer, &verifier);
                scope.spawn(move || {
                    let msg = [t; 16];
                    let sig = signer.sign(&msg).unwrap();
                    assert!(verifier.verify_bytes(&msg, &sig));
                });
            }
        });
    }

    #[test]
    fn pem_signer_debug_names_the_key_only() {
        let entry = vector_key("umbrella-online-rsa2048-pkcs1");
        let (dir, keyid, key) = online_key(&entry, &own_file(&entry));
        let pem = std::fs::read_to_string(dir.join(own_file(&entry))).unwrap();
        let signer = PemSigner::new(PrivateKey::from_pem(&pem).unwrap(), &keyid, &key).unwrap();
        assert_eq!(
            format!("{signer:?}"),
            format!("PemSigner(rsassa-pss-sha256 {keyid})")
        );
        let other = key_dict(&vector_key("rsa-2048-a.pem"));
        let err = PemSigner::new(PrivateKey::from_pem(&pem).unwrap(), &keyid, &other).unwrap_err();
        assert!(err
            .to_string()
            .starts_with(&format!("key {keyid}: the private key")));
    }
}
