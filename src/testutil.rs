//! Helpers shared by the unit tests in `src/`: unique names so tests can run
//! in parallel (with each other and with other test binaries), the pinned
//! Python venv, and valid domain values from literals.
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::redis_link::random_token;
use crate::tuf::RoleName;

/// A Redis key, task id, database or directory name no other test (or test
/// run) uses: `prefix` and 32 lowercase hex digits.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}{}", random_token().unwrap())
}

/// The pinned Python venv: `$RSTUF_TEST_PYTHON`, else `.venv` here.
pub fn python() -> PathBuf {
    std::env::var_os("RSTUF_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

/// Runs `python -c script args...` with `stdin`, returns its stdout;
/// panics with stderr if it fails.
pub fn run_python(script: &str, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", python().display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python failed: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

/// A role name the test knows to be valid.
pub fn role_name(name: &str) -> RoleName {
    RoleName::new(name).unwrap()
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique_name(&format!("rstuf-{tag}-")));
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
