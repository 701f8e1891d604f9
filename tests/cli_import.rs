//! The real RSTUF CLI's `rstuf admin import-artifacts` (pinned in
//! tests/requirements-cli.txt) against our worker. The CLI writes artifact
//! rows with SQLAlchemy straight into the database our worker migrated,
//! then asks the API to publish; tests/py/api_stand_in.py answers the API
//! calls and sends publish_artifacts as the API does. The worker has to
//! publish rows it never inserted itself, for python-tuf's client to see.
mod actions_support;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use actions_support::{assert_client_sees, assert_result, ngclient};
use common::api_stand_in::ApiStandIn;
use common::fixtures::{bin_of, install_bins_after_bootstrap};
use common::services::Deployment;
use common::{rstuf_cli, TempDir};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const LONG: Duration = Duration::from_secs(120);

struct Artifact {
    path: String,
    length: u64,
    sha256: String,
}

impl Artifact {
    fn new(path: &str) -> Artifact {
        let content = format!("content of {path}");
        Artifact {
            path: path.to_owned(),
            length: content.len() as u64,
            sha256: format!("{:x}", Sha256::digest(content.as_bytes())),
        }
    }

    fn info(&self) -> Value {
        json!({"length": self.length, "hashes": {"sha256": self.sha256}})
    }

    /// `path;size;hash-type;hash;`: the CLI's documented format plus a
    /// trailing `;`, because 1.0.0b1 splits each raw line on `;`, so the
    /// last field keeps the newline (fixed upstream after the release, by
    /// reading with `csv`); the extra empty field is ignored by both.
    fn csv_line(&self) -> String {
        format!("{};{};sha256;{};\n", self.path, self.length, self.sha256)
    }
}

/// Two CSV files of four artifacts each, spread over several bins.
fn write_csv_files(dir: &Path, artifacts: &[Artifact]) -> Vec<PathBuf> {
    artifacts
        .chunks(4)
        .enumerate()
        .map(|(n, chunk)| {
            let file = dir.join(format!("artifacts-{}of2.csv", n + 1));
            std::fs::write(
                &file,
                chunk.iter().map(Artifact::csv_line).collect::<String>(),
            )
            .unwrap();
            file
        })
        .collect()
}

/// `rstuf admin --api-server … import-artifacts --db-uri … --csv …`, killed
/// if it has not finished within [`LONG`] (it polls the task forever).
fn import_artifacts(dep: &Deployment, api: &ApiStandIn, dir: &Path, csv: &[PathBuf]) -> Output {
    // SQLAlchemy 2.1 takes `postgresql://` for psycopg 3; the driver the
    // CLI's docs install is psycopg2, so name it.
    let db_uri = dep
        .db
        .url()
        .replace("postgresql://", "postgresql+psycopg2://");
    let mut cmd = Command::new(rstuf_cli());
    // Its own config file, none in $HOME; the CLI also reads a
    // pyproject.toml in its working directory.
    cmd.current_dir(dir)
        .arg("-c")
        .arg(dir.join("rstuf.yml"))
        .args(["admin", "--api-server", &api.url(), "import-artifacts"])
        .args(["--db-uri", &db_uri]);
    for file in csv {
        cmd.arg("--csv").arg(file);
    }
    // rich wraps at the terminal width, 80 without one.
    cmd.env("COLUMNS", "200")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > LONG {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The publish task the CLI reported sending.
fn publish_task_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Import status: Publish artifacts task id is "))
        .unwrap_or_else(|| panic!("no publish task id in: {stdout}"))
        .trim()
        .to_owned()
}

/// `path → (info, published, action, role name)` of the imported rows.
fn imported_rows(dep: &Deployment) -> Vec<(String, Value, bool, String, String)> {
    dep.sql()
        .query(
            "SELECT f.path, f.info::text, f.published, f.action::text, r.rolename \
             FROM rstuf_target_files f JOIN rstuf_target_roles r ON r.id = f.targets_role \
             WHERE f.path LIKE 'imported/%' ORDER BY f.path",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| {
            let info: String = r.get(1);
            let info = serde_json::from_str(&info).unwrap();
            (r.get(0), info, r.get(2), r.get(3), r.get(4))
        })
        .collect()
}

/// The publish_artifacts task the API sent, as the worker left it: every
/// bin the imported paths fall in, and a result the API can show.
fn assert_publish_result(dep: &Deployment, task: &str, artifacts: &[Artifact]) {
    let record = dep.wait_for_final(task, LONG);
    let mut bins: Vec<String> = artifacts.iter().map(|a| bin_of(&a.path)).collect();
    bins.sort();
    bins.dedup();
    assert!(bins.len() > 1, "the paths should spread over bins");
    assert_result(
        &record["result"],
        "publish_artifacts",
        "Publish Artifacts Processed",
        Value::Null,
        json!({ "artifact_roles": bins }),
    );
    assert_eq!(dep.api_view(task)["data"]["state"], "SUCCESS");
}

/// python-tuf's client finds every artifact with the CSV's length and hash
/// (what it checks a download against), and `before` still, after exactly
/// one more publication (snapshot and timestamp v3).
fn assert_client_finds(dep: &Deployment, artifacts: &[Artifact], before: &Artifact) {
    let mut lookups: Vec<(&str, bool)> =
        artifacts.iter().map(|a| (a.path.as_str(), true)).collect();
    lookups.push((before.path.as_str(), true));
    lookups.push(("imported/never-listed.tar.gz", false));
    assert_client_sees(dep, [1, 3, 3, 1], &lookups);
    let paths: Vec<&str> = artifacts.iter().map(|a| a.path.as_str()).collect();
    let (_, text) = ngclient(dep, &paths);
    for a in artifacts {
        let line = format!(
            "found '{}': length={} hashes={{'sha256': '{}'}}",
            a.path, a.length, a.sha256
        );
        assert!(text.contains(&line), "{line}\n{text}");
    }
}

#[test]
fn cli_imports_csv_rows_that_the_worker_publishes_for_the_client() {
    let dep = Deployment::new();
    install_bins_after_bootstrap(&dep);
    let worker = dep.start_worker(&[]);
    // The usual route first, so the import joins a live repository.
    let before = Artifact::new("before/usual-route.txt");
    let added = dep.run_action(
        "add_artifacts",
        json!({"artifacts": [{"path": before.path, "info": before.info()}]}),
    );
    assert_eq!(added["status"], true, "{added}");

    let artifacts: Vec<Artifact> = (0..8)
        .map(|n| Artifact::new(&format!("imported/pkg-{n}/pkg-{n}-1.0.tar.gz")))
        .collect();
    let dir = TempDir::new("rstuf-cli");
    let csv = write_csv_files(dir.path(), &artifacts);
    let api = ApiStandIn::start(&dep);
    let out = import_artifacts(&dep, &api, dir.path(), &csv);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let context = format!(
        "{stdout}{}\nAPI stand-in:\n{}\nworker:\n{}",
        String::from_utf8_lossy(&out.stderr),
        api.log_text(),
        worker.log_text()
    );
    assert!(out.status.success(), "rstuf failed: {context}");
    assert!(stdout.contains("Import status: Finished."), "{context}");

    // The CLI's own rows: its columns, and the bin row it looked up.
    let expected_rows: Vec<_> = artifacts
        .iter()
        .map(|a| {
            (
                a.path.clone(),
                a.info(),
                true,
                "ADD".to_owned(),
                bin_of(&a.path),
            )
        })
        .collect();
    assert_eq!(imported_rows(&dep), expected_rows);
    assert_publish_result(&dep, &publish_task_id(&stdout), &artifacts);
    assert_client_finds(&dep, &artifacts, &before);
}
