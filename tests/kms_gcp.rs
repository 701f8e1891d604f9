//! The `gcpkms:` online signer against a stand-in for Google's token
//! endpoint and Cloud KMS API (no local Cloud KMS exists): the stand-in
//! checks the JWT bearer assertion and the request shapes, and signs with
//! keys of its own; what it signs must verify with the key dicts root
//! would list.
mod common;

use common::gcp::GcpStandIn;
use rstuf_worker::kms::{load_online_signer, GcpKmsConfig, SignerConfig};
use rstuf_worker::tuf::{Key, KeyId, PublicKey};
use serde_json::json;

fn config(gcp: GcpKmsConfig) -> SignerConfig {
    SignerConfig {
        gcp: Some(gcp),
        ..SignerConfig::default()
    }
}

/// The key dict root lists for a key version: its public PEM and the URI.
fn key_dict(keytype: &str, scheme: &str, public_pem: &str, name: &str) -> (KeyId, Key) {
    let uri = format!("gcpkms:{name}");
    let (_, dict) = common::online_key_dict(keytype, scheme, public_pem, uri);
    let key: Key = serde_json::from_value(dict).unwrap();
    (key.keyid().unwrap(), key)
}

fn refusal(config: &SignerConfig, keyid: &KeyId, key: &Key) -> String {
    load_online_signer(config, keyid, key)
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

#[test]
fn cloud_kms_keys_sign_what_their_key_dicts_verify() {
    let gcp = GcpStandIn::start();
    let config = config(gcp.config());
    let kinds = [
        ("p256", "ecdsa", "ecdsa-sha2-nistp256"),
        ("p384", "ecdsa", "ecdsa-sha2-nistp384"),
        ("rsa-pss", "rsa", "rsassa-pss-sha256"),
        ("rsa-pkcs1", "rsa", "rsa-pkcs1v15-sha256"),
    ];
    for (kms_key, keytype, scheme) in kinds {
        let (name, pem) = gcp.key(kms_key);
        let (keyid, key) = key_dict(keytype, scheme, &pem, &name);
        let signer = load_online_signer(&config, &keyid, &key).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(signer.keyid(), &keyid);
        let verifier = PublicKey::from_key(&key).unwrap();
        std::thread::scope(|scope| {
            for t in 0..12u8 {
                let (signer, verifier) = (&signer, &verifier);
                scope.spawn(move || {
                    // Any size: only the digest travels.
                    let msg = vec![t; 10_000];
                    let sig = signer.sign(&msg).unwrap();
                    assert!(verifier.verify_bytes(&msg, &sig), "{scheme}");
                    assert!(!verifier.verify_bytes(b"other", &sig), "{scheme}");
                });
            }
        });
    }
    // One token per signer, cached across its calls.
    assert_eq!(gcp.stats(), json!({"tokens": 4, "signatures": 48}));
}

#[test]
fn a_key_version_that_is_not_roots_key_or_scheme_is_refused() {
    let gcp = GcpStandIn::start();
    let config = config(gcp.config());
    let (name, _) = gcp.key("p256");
    let (_, other_pem) = gcp.key("p384");
    let (keyid, key) = key_dict("ecdsa", "ecdsa-sha2-nistp384", &other_pem, &name);
    assert_eq!(
        refusal(&config, &keyid, &key),
        format!(
            "online key {keyid}: signer URI 'gcpkms:{name}': the public key of Cloud KMS key \
             {name} is not the key root lists for this key id"
        )
    );
    let (name, pem) = gcp.key("rsa-pkcs1");
    let (keyid, key) = key_dict("rsa", "rsassa-pss-sha256", &pem, &name);
    let err = refusal(&config, &keyid, &key);
    assert!(
        err.ends_with(&format!(
            "Cloud KMS key {name} signs with RSA_SIGN_PKCS1_2048_SHA256, not with scheme \
             rsassa-pss-sha256 (supported: EC_SIGN_P256_SHA256 as ecdsa-sha2-nistp256, \
             EC_SIGN_P384_SHA384 as ecdsa-sha2-nistp384, RSA_SIGN_PSS_2048_SHA256 as \
             rsassa-pss-sha256, RSA_SIGN_PSS_3072_SHA256 as rsassa-pss-sha256, \
             RSA_SIGN_PSS_4096_SHA256 as rsassa-pss-sha256, RSA_SIGN_PSS_4096_SHA512 as \
             rsassa-pss-sha512, RSA_SIGN_PKCS1_2048_SHA256 as rsa-pkcs1v15-sha256, \
             RSA_SIGN_PKCS1_3072_SHA256 as rsa-pkcs1v15-sha256, RSA_SIGN_PKCS1_4096_SHA256 \
             as rsa-pkcs1v15-sha256, RSA_SIGN_PKCS1_4096_SHA512 as rsa-pkcs1v15-sha512)"
        )),
        "{err}"
    );
}

#[test]
fn unknown_key_versions_foreign_accounts_and_no_credentials_are_clear_errors() {
    let gcp = GcpStandIn::start();
    let (_, pem) = gcp.key("p256");
    let name =
        "projects/test-project/locations/global/keyRings/rstuf/cryptoKeys/gone/cryptoKeyVersions/1";
    let (keyid, key) = key_dict("ecdsa", "ecdsa-sha2-nistp256", &pem, name);
    assert_eq!(
        refusal(&config(gcp.config()), &keyid, &key),
        format!(
            "online key {keyid}: signer URI 'gcpkms:{name}': getPublicKey: HTTP 404 Not Found \
             NOT_FOUND: CryptoKeyVersion {name} not found."
        )
    );

    // The account's file with another key: the assertion does not verify.
    let mut file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(gcp.key_file()).unwrap()).unwrap();
    file["private_key"] =
        std::fs::read_to_string(common::shared("vectors/tuf/keys/generated/rsa-2048-a.pem"))
            .unwrap()
            .into();
    let foreign = GcpKmsConfig::from_key_file(&file.to_string(), Some(gcp.endpoint())).unwrap();
    let err = refusal(&config(foreign), &keyid, &key);
    assert!(
        err.contains(
            "getPublicKey: token request for rstuf-worker@test-project.iam.gserviceaccount.com \
             refused: HTTP 400 Bad Request invalid_grant: InvalidSignature()"
        ),
        "{err}"
    );

    let err = refusal(&SignerConfig::default(), &keyid, &key);
    assert!(
        err.ends_with(
            "Google Cloud KMS is not configured: set RSTUF_GOOGLE_APPLICATION_CREDENTIALS"
        ),
        "{err}"
    );
}

#[test]
fn a_refused_token_is_replaced_and_the_call_retried() {
    let gcp = GcpStandIn::start();
    let (name, pem) = gcp.key("p256");
    let (keyid, key) = key_dict("ecdsa", "ecdsa-sha2-nistp256", &pem, &name);
    let signer = load_online_signer(&config(gcp.config()), &keyid, &key).unwrap();
    let verifier = PublicKey::from_key(&key).unwrap();
    assert!(verifier.verify_bytes(b"one", &signer.sign(b"one").unwrap()));
    gcp.revoke_tokens();
    assert!(verifier.verify_bytes(b"two", &signer.sign(b"two").unwrap()));
    assert_eq!(gcp.stats(), json!({"tokens": 2, "signatures": 2}));
}
