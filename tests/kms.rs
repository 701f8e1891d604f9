//! The `awskms:` online signer against a local KMS (moto): keys it creates
//! sign what the key dicts root would list verify.
mod common;

use common::moto::{self, Moto};
use rstuf_worker::kms::{load_online_signer, AwsKmsConfig, SignerConfig};
use rstuf_worker::tuf::{Key, KeyId, PublicKey, Signer};

fn config(moto: &Moto) -> SignerConfig {
    SignerConfig {
        online_key_dir: None,
        aws: Some(AwsKmsConfig {
            access_key_id: moto::ACCESS_KEY.into(),
            secret_access_key: moto::SECRET_KEY.into(),
            region: Some(moto::REGION.into()),
            endpoint_url: Some(moto.endpoint()),
        }),
        gcp: None,
    }
}

/// The key dict root lists for a KMS key: its public PEM and the URI.
fn key_dict(keytype: &str, scheme: &str, public_pem: &str, kms_key: &str) -> (KeyId, Key) {
    let uri = format!("awskms:{kms_key}");
    let (_, dict) = common::online_key_dict(keytype, scheme, public_pem, uri);
    let key: Key = serde_json::from_value(dict).unwrap();
    (key.keyid().unwrap(), key)
}

fn load(moto: &Moto, keyid: &KeyId, key: &Key) -> Box<dyn Signer> {
    load_online_signer(&config(moto), keyid, key).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn kms_keys_sign_what_their_key_dicts_verify() {
    let moto = Moto::start_kms();
    for (spec, keytype, scheme) in [
        ("ECC_NIST_P256", "ecdsa", "ecdsa-sha2-nistp256"),
        ("ECC_NIST_P384", "ecdsa", "ecdsa-sha2-nistp384"),
        ("RSA_2048", "rsa", "rsassa-pss-sha256"),
        ("RSA_3072", "rsa", "rsassa-pss-sha256"),
    ] {
        let (kms_key, pem) = moto.create_kms_key(spec);
        let (keyid, key) = key_dict(keytype, scheme, &pem, &kms_key);
        let signer = load(&moto, &keyid, &key);
        assert_eq!(signer.keyid(), &keyid);
        let verifier = PublicKey::from_key(&key).unwrap();
        // Larger than KMS's 4 KiB message limit: only the digest travels.
        let msg = vec![b'x'; 10_000];
        let sig = signer.sign(&msg).unwrap();
        assert!(verifier.verify_bytes(&msg, &sig), "{spec}");
        assert!(!verifier.verify_bytes(b"other", &sig), "{spec}");
    }
}

#[test]
fn a_kms_key_that_is_not_roots_key_is_refused_naming_both() {
    let moto = Moto::start_kms();
    let (kms_key, _) = moto.create_kms_key("ECC_NIST_P256");
    let (_, other_pem) = moto.create_kms_key("ECC_NIST_P256");
    let (keyid, key) = key_dict("ecdsa", "ecdsa-sha2-nistp256", &other_pem, &kms_key);
    let err = load_online_signer(&config(&moto), &keyid, &key)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "online key {keyid}: signer URI 'awskms:{kms_key}': the public key of KMS key \
             {kms_key} is not the key root lists for this key id"
        )
    );
}

#[test]
fn an_unknown_kms_key_or_missing_credentials_are_clear_errors() {
    let moto = Moto::start_kms();
    let (_, pem) = moto.create_kms_key("ECC_NIST_P256");
    let (keyid, key) = key_dict("ecdsa", "ecdsa-sha2-nistp256", &pem, "no-such-key");
    let err = load_online_signer(&config(&moto), &keyid, &key)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "online key {keyid}: signer URI 'awskms:no-such-key': GetPublicKey: HTTP 400 Bad \
             Request NotFoundException: Invalid keyId no-such-key"
        )
    );
    let unconfigured = SignerConfig::default();
    let err = load_online_signer(&unconfigured, &keyid, &key)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.ends_with("AWS KMS is not configured: set RSTUF_AWS_ACCESS_KEY_ID and RSTUF_AWS_SECRET_ACCESS_KEY"), "{err}");
}

#[test]
fn one_kms_signer_serves_parallel_threads() {
    let moto = Moto::start_kms();
    let (kms_key, pem) = moto.create_kms_key("ECC_NIST_P256");
    let (keyid, key) = key_dict("ecdsa", "ecdsa-sha2-nistp256", &pem, &kms_key);
    let signer = load(&moto, &keyid, &key);
    let verifier = PublicKey::from_key(&key).unwrap();
    std::thread::scope(|scope| {
        for t in 0..16u8 {
            let (signer, verifier) = (&signer, &verifier);
            scope.spawn(move || {
                let msg = [t; 32];
                let sig = signer.sign(&msg).unwrap();
                assert!(verifier.verify_bytes(&msg, &sig));
            });
        }
    });
}
