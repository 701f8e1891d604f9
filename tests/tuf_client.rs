//! Proof against the real client: a hash-bin repository built and signed by
//! our TUF core alone must satisfy python-tuf's ngclient, and a tampered copy
//! must not.
mod common;

use std::collections::BTreeMap;
use std::path::Path;

use rstuf_worker::tuf::hashbins::HashBins;
use rstuf_worker::tuf::metadata::{
    Delegations, MetaFile, Root, Signed, Snapshot, SuccinctRoles, TargetFile, Targets, Timestamp,
};
use rstuf_worker::tuf::{
    load_online_signer, Key, KeyId, Metadata, PemSigner, PrivateKey, Signer, UtcTime, Version,
};
use sha2::{Digest, Sha256};

const ARTIFACTS: [&str; 5] = [
    "file1.tar.gz",
    "café/文件-😀.txt",
    "packages/foo-1.0.tar.gz",
    "a/b/c.txt",
    "deep/path/to/some-artifact_1.2.3.whl",
];

fn write<T: Signed>(dir: &Path, name: &str, md: &Metadata<T>) {
    std::fs::write(dir.join(name), md.to_file_bytes().unwrap()).unwrap();
}

fn target_file(content: &str) -> TargetFile {
    let mut file: TargetFile = serde_json::from_value(serde_json::json!({
        "length": content.len(),
        "hashes": {"sha256": format!("{:x}", Sha256::digest(content.as_bytes()))},
    }))
    .unwrap();
    file.custom = Some(serde_json::json!({"origin": "rstuf-worker test"}));
    file
}

/// Targets (v1, succinct delegation), every bin with the artifacts that hash
/// into it, snapshot and timestamp, all signed by `online`.
fn publish_bins(dir: &Path, online: &dyn Signer, bins: &HashBins) {
    let expires = UtcTime::now().unwrap().add_days(30).unwrap();
    let online_id = online.keyid().clone();
    let mut targets = Targets::new(Version(1), expires);
    targets.delegations = Some(Delegations {
        keys: BTreeMap::from([(online_id.clone(), online.public_key().clone())]),
        roles: None,
        succinct_roles: Some(SuccinctRoles {
            bit_length: bins.bit_length(),
            name_prefix: bins.name_prefix().to_owned(),
            keyids: vec![online_id],
            threshold: 1,
            extra: Default::default(),
        }),
        extra: Default::default(),
    });
    let mut snapshot = Snapshot::new(Version(1), expires);
    snapshot
        .meta
        .insert("targets.json".into(), MetaFile::new(Version(1)));
    for (_, role) in bins.roles() {
        let mut bin = Targets::new(Version(1), expires);
        for path in ARTIFACTS.iter().filter(|p| bins.role_for_path(p) == role) {
            bin.targets.insert(path.to_string(), target_file(path));
        }
        let mut md = Metadata::new(bin);
        md.sign(online).unwrap();
        write(dir, &format!("1.{role}.json"), &md);
        snapshot
            .meta
            .insert(format!("{role}.json"), MetaFile::new(Version(1)));
    }
    let mut targets = Metadata::new(targets);
    targets.sign(online).unwrap();
    write(dir, "1.targets.json", &targets);
    let mut snapshot = Metadata::new(snapshot);
    snapshot.sign(online).unwrap();
    write(dir, "1.snapshot.json", &snapshot);
    let mut timestamp = Metadata::new(Timestamp::new(
        Version(1),
        expires,
        MetaFile::new(Version(1)),
    ));
    timestamp.sign(online).unwrap();
    write(dir, "timestamp.json", &timestamp);
}

fn ngclient(dir: &Path, paths: &[&str]) -> (bool, String) {
    let script = common::shared("vectors/tuf/check_with_ngclient.py");
    let mut args = vec![dir.to_str().unwrap()];
    args.extend_from_slice(paths);
    let out = common::run_python(&script, &args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn assert_client_accepts(dir: &Path) {
    let (ok, out) = ngclient(dir, &ARTIFACTS);
    assert!(ok, "ngclient rejected our repository:\n{out}");
    // The script prints Python's repr: single quotes, non-ASCII kept as is.
    for path in ARTIFACTS {
        assert!(
            out.contains(&format!("found '{path}'")),
            "{path} not found:\n{out}"
        );
    }
}

/// Copies the repository, edits one file's JSON without re-signing it, and
/// checks that the client refuses the result.
fn assert_tampering_detected(dir: &Path, file: &str, edit: impl Fn(&mut serde_json::Value)) {
    let copy = common::TempDir::new("rstuf-tampered");
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
    }
    let path = copy.path().join(file);
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut doc);
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let (ok, out) = ngclient(copy.path(), &ARTIFACTS);
    assert!(!ok, "ngclient accepted a tampered {file}:\n{out}");
}

#[test]
fn vector_root_with_ed25519_online_key_and_256_bins() {
    let dir = common::TempDir::new("rstuf-ngclient");
    let root_bytes = std::fs::read(common::shared(
        "vectors/tuf/repo-bins/1-after-bootstrap/1.root.json",
    ))
    .unwrap();
    std::fs::write(dir.path().join("1.root.json"), &root_bytes).unwrap();
    let root = Metadata::<Root>::from_file_bytes(&root_bytes)
        .unwrap()
        .signed;
    let online_id = root.roles["timestamp"].keyids[0].clone();
    let signer = load_online_signer(
        &common::shared("vectors/tuf/keys/generated"),
        &online_id,
        &root.keys[&online_id],
    )
    .unwrap();
    let bins = HashBins::from_count(256).unwrap();
    publish_bins(dir.path(), signer.as_ref(), &bins);
    assert_client_accepts(dir.path());

    let victim = format!("1.{}.json", bins.role_for_path(ARTIFACTS[0]));
    assert_tampering_detected(dir.path(), &victim, |doc| {
        doc["signed"]["targets"][ARTIFACTS[0]]["length"] = serde_json::json!(1);
    });
    assert_tampering_detected(dir.path(), "1.snapshot.json", |doc| {
        doc["signed"]["version"] = serde_json::json!(1);
        doc["signed"]["expires"] = serde_json::json!("2099-01-01T00:00:00Z");
    });
}

fn key_of(file: &str) -> (PrivateKey, Key) {
    let pem = std::fs::read_to_string(common::shared(&format!(
        "vectors/tuf/keys/generated/{file}"
    )))
    .unwrap();
    let private = PrivateKey::from_pem(&pem).unwrap();
    let key = private.key_dict();
    (private, key)
}

/// A root of our own, signed by an RSA-PSS root key, delegating to an ECDSA
/// P-256 online key: the client must accept both kinds of our signatures.
#[test]
fn own_root_with_rsa_root_key_and_ecdsa_online_key() {
    let dir = common::TempDir::new("rstuf-ngclient-own-root");
    let (root_private, root_key) = key_of("rsa-2048-a.pem");
    let (_, mut online_key) = key_of("ecdsa-p256-a.pem");
    online_key.extra.insert(
        "x-rstuf-online-key-uri".into(),
        "fn:ecdsa-p256-a.pem".into(),
    );
    let root_id = root_key.keyid().unwrap();
    let online_id = online_key.keyid().unwrap();
    let role = |id: &KeyId| serde_json::json!({"keyids": [id], "threshold": 1});
    let root: Root = serde_json::from_value(serde_json::json!({
        "_type": "root",
        "spec_version": "1.0.31",
        "version": 1,
        "expires": UtcTime::now().unwrap().add_days(365).unwrap(),
        "consistent_snapshot": true,
        "keys": {root_id.as_str(): root_key, online_id.as_str(): online_key},
        "roles": {
            "root": role(&root_id),
            "targets": role(&online_id),
            "snapshot": role(&online_id),
            "timestamp": role(&online_id),
        },
    }))
    .unwrap();
    let mut root_md = Metadata::new(root.clone());
    let root_signer = PemSigner::new(root_private, &root_id, &root.keys[&root_id]).unwrap();
    root_md.sign(&root_signer).unwrap();
    write(dir.path(), "1.root.json", &root_md);

    let online = load_online_signer(
        &common::shared("vectors/tuf/keys/generated"),
        &online_id,
        &root.keys[&online_id],
    )
    .unwrap();
    publish_bins(
        dir.path(),
        online.as_ref(),
        &HashBins::from_count(16).unwrap(),
    );
    assert_client_accepts(dir.path());
    assert_tampering_detected(dir.path(), "timestamp.json", |doc| {
        doc["signed"]["version"] = serde_json::json!(2);
    });
}
