//! A repository whose online key lives in AWS KMS (a local moto server),
//! driven through the worker as the API drives it and verified after every
//! step with python-tuf's client: bootstrap with an `fn:` key, an artifact,
//! a root rotation to an `awskms:` key, another artifact; and a bootstrap
//! straight with an `awskms:` key, and with a `gcpkms:` key (through the
//! Cloud KMS stand-in).
mod actions_support;
mod common;

use actions_support::{
    api_pre_lock, bootstrap_bins, file, ngclient, payload_vector, root_with_online_key_dict,
    run_task, signers,
};
use common::gcp::GcpStandIn;
use common::moto::{KmsKeySpec, Moto, ECDSA_P256, RSA_PSS};
use common::services::Deployment;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn add_artifact(dep: &Deployment, path: &str) {
    let content = format!("content of {path}");
    let artifact = json!({"path": path, "info": {
        "length": content.len(),
        "hashes": {"sha256": format!("{:x}", Sha256::digest(content.as_bytes()))},
    }});
    let (_, record) = run_task(dep, "add_artifacts", json!({"artifacts": [artifact]}));
    assert_eq!(record["result"]["message"], "Artifact(s) Added", "{record}");
}

/// python-tuf refreshes from 1.root.json to `root` and finds every path.
fn client_finds(dep: &Deployment, root: u64, paths: &[&str]) {
    let (ok, text) = ngclient(dep, paths);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("refresh OK: root v{root},")),
        "{text}"
    );
    for path in paths {
        assert!(text.contains(&format!("found '{path}'")), "{text}");
    }
}

/// Every online role's newest file is signed by `keyid` alone.
fn online_roles_signed_by(dep: &Deployment, keyid: &str) {
    let snapshot = dep.latest_version("snapshot");
    let targets = dep.latest_version("targets");
    for name in [
        "timestamp.json".to_owned(),
        format!("{snapshot}.snapshot.json"),
        format!("{targets}.targets.json"),
    ] {
        assert_eq!(signers(&file(dep, &name)), [keyid], "{name}");
    }
}

/// The `online signer` line of `rstuf-worker check` with `extra` settings.
fn checked_signer(dep: &Deployment, extra: &[(&str, String)]) -> String {
    let (ok, report) = dep.check(extra);
    let line = report
        .lines()
        .find(|l| l.starts_with("online signer: "))
        .unwrap_or_else(|| panic!("no online signer line in:\n{report}"));
    assert_eq!(ok, line.starts_with("online signer: ok"), "{report}");
    line.to_owned()
}

fn rotation_from_a_key_file_to(spec: KmsKeySpec) {
    let moto = Moto::start_kms();
    let dep = Deployment::new();
    let _worker = moto.kms_worker(&dep, 2);
    assert_eq!(
        checked_signer(&dep, &[]),
        "online signer: ok (no root in storage yet (the repository is not bootstrapped))"
    );
    bootstrap_bins(&dep);
    assert!(
        checked_signer(&dep, &[]).starts_with("online signer: ok (fn:online-ed25519.pem for key")
    );
    add_artifact(&dep, "before/one.tar.gz");
    client_finds(&dep, 1, &["before/one.tar.gz"]);

    let (keyid, key) = moto.create_online_key(spec);
    let mut signed = file(&dep, "1.root.json")["signed"].clone();
    signed["version"] = json!(2);
    let root = root_with_online_key_dict(signed, &keyid, key.clone());
    let (_, record) = run_task(&dep, "metadata_update", json!({"metadata": {"root": root}}));
    assert_eq!(
        record["result"]["details"],
        json!({"role": "root"}),
        "{record}"
    );
    online_roles_signed_by(&dep, &keyid);
    assert_eq!(
        checked_signer(&dep, &moto.kms_env()),
        format!(
            "online signer: ok ({} for key {keyid}: matches root's key, a test signature \
             verifies)",
            key["x-rstuf-online-key-uri"].as_str().unwrap()
        )
    );
    // Keys live in one region: elsewhere the key is not found.
    let other_region = [
        moto.kms_env(),
        vec![("RSTUF_AWS_DEFAULT_REGION", "us-west-2".into())],
    ]
    .concat();
    let line = checked_signer(&dep, &other_region);
    assert!(
        line.starts_with(&format!(
            "online signer: FAILED: online key {keyid}: signer URI 'awskms:"
        )) && line.contains("NotFoundException"),
        "{line}"
    );

    add_artifact(&dep, "after/two.tar.gz");
    online_roles_signed_by(&dep, &keyid);
    client_finds(&dep, 2, &["before/one.tar.gz", "after/two.tar.gz"]);
}

#[test]
fn the_online_key_moves_from_a_file_to_an_ecdsa_kms_key() {
    rotation_from_a_key_file_to(ECDSA_P256);
}

#[test]
fn the_online_key_moves_from_a_file_to_an_rsa_pss_kms_key() {
    rotation_from_a_key_file_to(RSA_PSS);
}

/// Bootstraps `dep` with the hash-bin vector root, its online key moved to
/// `key`.
fn bootstrap_with_online_key(dep: &Deployment, keyid: &str, key: Value) {
    let mut payload = payload_vector("bootstrap-bins");
    let signed = payload["metadata"]["root"]["signed"].clone();
    payload["metadata"]["root"] = root_with_online_key_dict(signed, keyid, key);
    api_pre_lock(dep);
    let (id, record) = run_task(dep, "bootstrap", payload);
    assert_eq!(
        record["result"]["details"]["bootstrap"],
        format!("Bootstrap finished {id}"),
        "{record}"
    );
    online_roles_signed_by(dep, keyid);
}

#[test]
fn a_repository_bootstraps_with_its_online_key_in_kms() {
    let moto = Moto::start_kms();
    let dep = Deployment::new();
    let _worker = moto.kms_worker(&dep, 2);
    let (keyid, key) = moto.create_online_key(ECDSA_P256);
    bootstrap_with_online_key(&dep, &keyid, key);
    add_artifact(&dep, "kms/first.tar.gz");
    online_roles_signed_by(&dep, &keyid);
    client_finds(&dep, 1, &["kms/first.tar.gz"]);
}

#[test]
fn a_repository_bootstraps_with_its_online_key_in_cloud_kms() {
    let gcp = GcpStandIn::start();
    let dep = Deployment::new();
    let env = gcp.env();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let _worker = dep.start_worker(&env_refs);
    let (keyid, key) = gcp.online_key("rsa-pss", "rsa", "rsassa-pss-sha256");
    let uri = key["x-rstuf-online-key-uri"].as_str().unwrap().to_owned();
    bootstrap_with_online_key(&dep, &keyid, key);
    add_artifact(&dep, "gcp/first.tar.gz");
    online_roles_signed_by(&dep, &keyid);
    client_finds(&dep, 1, &["gcp/first.tar.gz"]);
    assert_eq!(
        checked_signer(&dep, &env),
        format!("online signer: ok ({uri} for key {keyid}: matches root's key, a test signature verifies)")
    );
}
