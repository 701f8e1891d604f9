//! Repositories in known states, built from the shared vectors rather than
//! by our own bootstrap: metadata files, settings hash and database rows
//! exactly as upstream's Python worker leaves them. A test that starts from
//! here also proves the worker carries on a repository Python created.
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::services::Deployment;
use super::{run_ok, run_python, shared};

/// The task id the fixture records as the finished bootstrap (`BOOTSTRAP`).
pub const BOOTSTRAP_TASK: &str = "f1x7ure0b0075724p0000000000000001";

/// Expiry of every role in `repo-bins/1-after-bootstrap`.
pub const VECTOR_EXPIRY: &str = "2036-01-01 00:00:00";

/// The online key of the vector repositories (`fn:online-ed25519.pem`).
pub const ONLINE_KEYID: &str = "9e5a93a998845599e5065a1164a0bd9cbfec78b12bb38730a46bc24825c6a4c1";

/// The 16 hash bins of `repo-bins`.
pub fn bin_names() -> Vec<String> {
    (0..16).map(|n| format!("bins-{n:x}")).collect()
}

/// The bin responsible for `path` among the 16.
pub fn bin_of(path: &str) -> String {
    rstuf_worker::tuf::hashbins::HashBins::from_count(16)
        .unwrap()
        .role_for_path(path)
}

/// Installs `repo-bins/1-after-bootstrap` in `dep`: metadata files in its
/// storage, the settings hash of the finished bootstrap in its Redis
/// database, and the schema plus one row per bin (version 1) in its
/// PostgreSQL database. Call it before starting workers.
pub fn install_bins_after_bootstrap(dep: &Deployment) {
    copy_metadata(
        &shared("vectors/tuf/repo-bins/1-after-bootstrap"),
        dep.storage.path(),
    );
    dep.set_settings(&borrowed(&final_bootstrap_settings()));
    migrate(dep);
    insert_roles(dep, &bin_names());
}

/// The online key of `repo-custom` (ECDSA P-256, `fn:cb20fa…`).
pub const CUSTOM_ONLINE_KEYID: &str =
    "cb20fa1061dde8e6267e0bef0981766aaadae168e917030f7f26edc7a0bab9c2";

/// Installs `repo-custom/1-after-bootstrap-and-signing` (custom roles
/// `dev` (online, `dev/*`), `production` (offline, `production/*`),
/// `default` (online, `*`)) the same way, with the settings upstream keeps
/// for such a repository: the bins hash without the bin keys, this
/// repository's online key and trusted metadata, and each role's
/// `<ROLE>_EXPIRATION` from its `x-rstuf-expire-policy`.
pub fn install_custom_after_bootstrap(dep: &Deployment) {
    let folder = shared("vectors/tuf/repo-custom/1-after-bootstrap-and-signing");
    copy_metadata(&folder, dep.storage.path());
    let read = |file: &str| -> Value {
        serde_json::from_slice(&std::fs::read(folder.join(file)).unwrap()).unwrap()
    };
    let (root, targets) = (read("1.root.json"), read("1.targets.json"));
    let mut online = root["signed"]["keys"][CUSTOM_ONLINE_KEYID].clone();
    online["keyid"] = json!(CUSTOM_ONLINE_KEYID);
    let mut fields: Vec<(String, String)> = final_bootstrap_settings()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("BINS_") && k != "NUMBER_OF_DELEGATED_BINS")
        .filter(|(k, _)| !["ONLINE_KEY", "TRUSTED_ROOT", "TRUSTED_TARGETS"].contains(&k.as_str()))
        .collect();
    fields.push(("ONLINE_KEY".into(), format!("@json {online}")));
    fields.push(("TRUSTED_ROOT".into(), format!("@json {root}")));
    fields.push(("TRUSTED_TARGETS".into(), format!("@json {targets}")));
    let mut names = Vec::new();
    for role in targets["signed"]["delegations"]["roles"]
        .as_array()
        .unwrap()
    {
        let name = role["name"].as_str().unwrap().to_owned();
        fields.push((
            format!("{}_EXPIRATION", name.to_uppercase()),
            format!("@int {}", role["x-rstuf-expire-policy"]),
        ));
        names.push(name);
    }
    dep.set_settings(&borrowed(&fields));
    migrate(dep);
    insert_roles(dep, &names);
}

fn borrowed(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// One active row per role, version 1, expiring with the vector files.
fn insert_roles(dep: &Deployment, names: &[String]) {
    dep.sql()
        .execute(
            "INSERT INTO rstuf_target_roles (rolename, expires, version, active, last_update) \
             SELECT name, $2::text::timestamp, 1, true, now() AT TIME ZONE 'UTC' \
             FROM unnest($1::varchar[]) AS name",
            &[&names, &VECTOR_EXPIRY],
        )
        .unwrap();
    // As the worker's bootstrap does (and autovacuum would do in time):
    // without statistics the planner joins every role in each round.
    dep.sql()
        .execute("ANALYZE rstuf_target_roles", &[])
        .unwrap();
}

/// Like [`install_bins_after_bootstrap`] with `count` bins: the vector
/// root, and targets, bins, snapshot and timestamp generated and signed
/// with the vector online key (for sizes no vector has, e.g. 16384).
pub fn install_generated_bins(dep: &Deployment, count: u64) {
    use rstuf_worker::tuf::hashbins::HashBins;
    use rstuf_worker::tuf::metadata::{
        Delegations, MetaFile, Root, Signed, Snapshot, SuccinctRoles, Targets, Timestamp,
    };
    use rstuf_worker::tuf::{load_online_signer, KeyId, Metadata, Signer, UtcTime, Version};
    use std::collections::BTreeMap;

    let dir = dep.storage.path();
    let root_bytes = std::fs::read(shared(
        "vectors/tuf/repo-bins/1-after-bootstrap/1.root.json",
    ))
    .unwrap();
    std::fs::write(dir.join("1.root.json"), &root_bytes).unwrap();
    let root = Metadata::<Root>::from_file_bytes(&root_bytes).unwrap();
    let keyid = KeyId::from(ONLINE_KEYID);
    let key = root.signed.keys[&keyid].clone();
    let signer = load_online_signer(dep.keys.path(), &keyid, &key).unwrap();
    let write = |name: &str, md: &mut dyn FnMut(&dyn Signer) -> Vec<u8>| {
        std::fs::write(dir.join(name), md(signer.as_ref())).unwrap();
    };
    fn signed<T: Signed>(signed: T, signer: &dyn Signer) -> Vec<u8> {
        let mut md = Metadata::new(signed);
        md.sign(signer).unwrap();
        md.to_file_bytes().unwrap()
    }
    let expires = UtcTime::parse("2036-01-01T00:00:00Z").unwrap();
    let bins = HashBins::from_count(count).unwrap();
    let mut targets = Targets::new(Version(1), expires);
    targets.delegations = Some(Delegations {
        keys: BTreeMap::from([(keyid.clone(), key.clone())]),
        roles: None,
        succinct_roles: Some(SuccinctRoles {
            bit_length: bins.bit_length(),
            name_prefix: "bins".into(),
            keyids: vec![keyid.clone()],
            threshold: 1,
            extra: Default::default(),
        }),
        extra: Default::default(),
    });
    write("1.targets.json", &mut |s| signed(targets.clone(), s));
    let mut snapshot = Snapshot::new(Version(1), expires);
    snapshot
        .meta
        .insert("targets.json".into(), MetaFile::new(Version(1)));
    let names: Vec<String> = bins.roles().map(|(_, name)| name).collect();
    for name in &names {
        write(&format!("1.{name}.json"), &mut |s| {
            signed(Targets::new(Version(1), expires), s)
        });
        snapshot
            .meta
            .insert(format!("{name}.json"), MetaFile::new(Version(1)));
    }
    write("1.snapshot.json", &mut |s| signed(snapshot.clone(), s));
    let timestamp = Timestamp::new(Version(1), expires, MetaFile::new(Version(1)));
    write("timestamp.json", &mut |s| signed(timestamp.clone(), s));

    let mut settings = final_bootstrap_settings();
    for (name, value) in &mut settings {
        if name == "NUMBER_OF_DELEGATED_BINS" {
            *value = format!("@int {count}");
        }
    }
    dep.set_settings(&borrowed(&settings));
    migrate(dep);
    insert_roles(dep, &names);
}

/// Every `*.json` metadata file of a vector folder (not its manifest).
fn copy_metadata(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".json") && name != "manifest.json" {
            // Written, not copied: the vectors are read-only and the worker
            // replaces timestamp.json.
            std::fs::write(to.join(&name), std::fs::read(&path).unwrap()).unwrap();
        }
    }
}

/// The hash after upstream's `_bootstrap_finalize` of `repo-bins`, with
/// our task id.
fn final_bootstrap_settings() -> Vec<(String, String)> {
    let doc: Value = serde_json::from_slice(
        &std::fs::read(shared("vectors/settings/after-bootstrap-bins.json")).unwrap(),
    )
    .unwrap();
    let last = doc["steps"].as_array().unwrap().last().unwrap();
    last["HGETALL DYNACONF_MAIN"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let value = match k.as_str() {
                "BOOTSTRAP" => BOOTSTRAP_TASK.to_owned(),
                _ => v.as_str().unwrap().to_owned(),
            };
            (k.clone(), value)
        })
        .collect()
}

/// `rstuf-worker migrate` against the deployment's database.
pub fn migrate(dep: &Deployment) {
    run_ok(
        Command::new(env!("CARGO_BIN_EXE_rstuf-worker"))
            .arg("migrate")
            .envs(dep.env()),
    );
}

impl Deployment {
    /// A connection to the deployment's PostgreSQL database.
    pub fn sql(&self) -> postgres::Client {
        postgres::Client::connect(
            &format!(
                "host=127.0.0.1 port={} user=postgres dbname={}",
                self.db.port, self.db.name
            ),
            postgres::NoTls,
        )
        .unwrap()
    }

    /// `(version, expires)` of a role's row.
    pub fn role_row(&self, role: &str) -> (i32, SystemTime) {
        let row = self
            .sql()
            .query_one(
                "SELECT version, expires FROM rstuf_target_roles WHERE rolename = $1",
                &[&role],
            )
            .unwrap();
        (row.get(0), row.get(1))
    }

    /// `(path, action, published)` of every artifact row, by path.
    pub fn artifact_rows(&self) -> Vec<(String, String, bool)> {
        self.sql()
            .query(
                "SELECT path, action::text, published FROM rstuf_target_files ORDER BY path",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    }

    /// Parsed metadata of `<version>.<role>.json` (or `timestamp.json`).
    pub fn metadata(&self, file: &str) -> Value {
        let path = self.storage.path().join(file);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_slice(&bytes).unwrap()
    }

    /// The newest version of a role's metadata file in storage.
    pub fn latest_version(&self, role: &str) -> u64 {
        let suffix = format!(".{role}.json");
        std::fs::read_dir(self.storage.path())
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                name.strip_suffix(&suffix)?.parse::<u64>().ok()
            })
            .max()
            .unwrap_or(0)
    }

    /// What python-tuf's ngclient makes of the storage: a fresh client
    /// trusting `1.root.json` refreshes, then looks up each path.
    pub fn ngclient(&self, paths: &[&str]) -> ClientView {
        let script = shared("vectors/tuf/check_with_ngclient.py");
        let mut args = vec![self.storage.path().to_str().unwrap()];
        args.extend_from_slice(paths);
        let out = run_python(&script, &args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            stdout.starts_with("refresh OK"),
            "ngclient refresh failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut view = ClientView {
            refresh: stdout.lines().next().unwrap_or_default().to_owned(),
            found: Vec::new(),
            not_found: Vec::new(),
        };
        for path in paths {
            let quoted = python_str_repr(path);
            if stdout.contains(&format!("found {quoted}:")) {
                view.found.push(path.to_string());
            } else {
                view.not_found.push(path.to_string());
            }
        }
        view
    }
}

/// What the client saw.
#[derive(Debug)]
pub struct ClientView {
    /// `refresh OK: root v1, timestamp vN, snapshot vN, targets vN`.
    pub refresh: String,
    pub found: Vec<String>,
    pub not_found: Vec<String>,
}

/// Python's `repr()` of the test paths (no quotes or escapes in them).
fn python_str_repr(s: &str) -> String {
    assert!(
        !s.contains(['\'', '\\', '\n']),
        "test path needs escaping: {s}"
    );
    format!("'{s}'")
}

/// Waits until `check` holds, polling.
pub fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !check() {
        assert!(
            start.elapsed() < limit,
            "{what} did not happen in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
