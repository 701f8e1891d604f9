//! A repository whose online key lives in AWS KMS (a local moto server),
//! driven through the worker as the API drives it and verified after every
//! step with python-tuf's client: bootstrap with an `fn:` key, an artifact,
//! a root rotation to an `awskms:` key, another artifact; and a bootstrap
//! straight with an `awskms:` key.
mod actions_support;
mod common;

use actions_support::{
    api_pre_lock, bootstrap_bins, file, ngclient, payload_vector, root_with_online_key_dict,
    run_task, signers,
};
use common::moto::{self, Moto};
use common::services::{Deployment, WorkerProcess};
use rstuf_worker::tuf::Key;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// (moto key spec, TUF keytype, TUF scheme) of the online keys tried.
const ECDSA_P256: (&str, &str, &str) = ("ECC_NIST_P256", "ecdsa", "ecdsa-sha2-nistp256");
const RSA_PSS: (&str, &str, &str) = ("RSA_3072", "rsa", "rsassa-pss-sha256");

/// A new KMS key of `spec` and the key dict root lists for it, by key id.
fn kms_online_key(moto: &Moto, (spec, keytype, scheme): (&str, &str, &str)) -> (String, Value) {
    let (kms_key, pem) = moto.create_kms_key(spec);
    let dict = json!({
        "keytype": keytype,
        "scheme": scheme,
        "keyval": {"public": pem},
        "x-rstuf-key-name": "Online Key in KMS",
        "x-rstuf-online-key-uri": format!("awskms:{kms_key}"),
    });
    let key: Key = serde_json::from_value(dict.clone()).unwrap();
    (key.keyid().unwrap().to_string(), dict)
}

/// A worker that may reach `moto`'s KMS.
fn kms_worker(dep: &Deployment, moto: &Moto) -> WorkerProcess {
    let endpoint = moto.endpoint();
    dep.start_worker(&[
        ("RSTUF_AWS_ACCESS_KEY_ID", moto::ACCESS_KEY),
        ("RSTUF_AWS_SECRET_ACCESS_KEY", moto::SECRET_KEY),
        ("RSTUF_AWS_DEFAULT_REGION", moto::REGION),
        ("RSTUF_AWS_ENDPOINT_URL", &endpoint),
    ])
}

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

fn rotation_from_a_key_file_to(spec: (&str, &str, &str)) {
    let moto = Moto::start_kms();
    let dep = Deployment::new();
    let _worker = kms_worker(&dep, &moto);
    bootstrap_bins(&dep);
    add_artifact(&dep, "before/one.tar.gz");
    client_finds(&dep, 1, &["before/one.tar.gz"]);

    let (keyid, key) = kms_online_key(&moto, spec);
    let mut signed = file(&dep, "1.root.json")["signed"].clone();
    signed["version"] = json!(2);
    let root = root_with_online_key_dict(signed, &keyid, key);
    let (_, record) = run_task(&dep, "metadata_update", json!({"metadata": {"root": root}}));
    assert_eq!(
        record["result"]["details"],
        json!({"role": "root"}),
        "{record}"
    );
    online_roles_signed_by(&dep, &keyid);

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

#[test]
fn a_repository_bootstraps_with_its_online_key_in_kms() {
    let moto = Moto::start_kms();
    let dep = Deployment::new();
    let _worker = kms_worker(&dep, &moto);
    let (keyid, key) = kms_online_key(&moto, ECDSA_P256);
    let mut payload = payload_vector("bootstrap-bins");
    let signed = payload["metadata"]["root"]["signed"].clone();
    payload["metadata"]["root"] = root_with_online_key_dict(signed, &keyid, key);
    api_pre_lock(&dep);
    let (id, record) = run_task(&dep, "bootstrap", payload);
    assert_eq!(
        record["result"]["details"]["bootstrap"],
        format!("Bootstrap finished {id}"),
        "{record}"
    );
    online_roles_signed_by(&dep, &keyid);
    add_artifact(&dep, "kms/first.tar.gz");
    online_roles_signed_by(&dep, &keyid);
    client_finds(&dep, 1, &["kms/first.tar.gz"]);
}
