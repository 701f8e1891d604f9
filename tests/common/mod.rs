//! Helpers shared by the behaviour tests: where the shared vectors and the
//! Python tools are, and unique names so tests can run in parallel.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

pub mod api_stand_in;
pub mod chaos;
pub mod faults;
pub mod fixtures;
pub mod gcp;
pub mod load;
pub mod moto;
pub mod private;
pub mod proxy;
pub mod rabbitmq;
pub mod services;
pub mod stale;
pub mod tls;

/// `../shared` beside the repository, or `$RSTUF_SHARED_DIR`.
pub fn shared(rel: &str) -> PathBuf {
    let base = std::env::var_os("RSTUF_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    base.join(rel)
}

/// A tool the Makefile builds: `$var` when set, else `default` below the
/// repository; missing means `make <target>` has not run.
pub fn built_tool(var: &str, default: &str, target: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(default));
    assert!(
        path.exists(),
        "{} is missing: run `make {target}` (make test does)",
        path.display()
    );
    path
}

/// The pinned Python of `make venv` (`$RSTUF_TEST_PYTHON` when set); the
/// tests drive the real Python clients with it.
pub fn python() -> PathBuf {
    built_tool("RSTUF_TEST_PYTHON", ".venv/bin/python", "venv")
}

/// The `rstuf` command of the pinned RSTUF CLI (`$RSTUF_TEST_CLI` when
/// set), which `make venv` installs into a venv of its own: its
/// dependencies are many and unpinned upstream, and must not move the test
/// venv's pins.
pub fn rstuf_cli() -> PathBuf {
    built_tool("RSTUF_TEST_CLI", ".venv-cli/bin/rstuf", "venv")
}

/// Runs a Python script with the test venv and returns its output.
pub fn run_python(script: &Path, args: &[&str]) -> Output {
    Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()))
}

/// Runs `cmd` to its end and returns what it printed; a command that
/// cannot start or fails fails the test with its standard error.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("{cmd:?} printed non-UTF-8: {e}"))
}

/// What `program` prints, trimmed; empty if it cannot run. For the
/// date and commit lines of BENCH.md and CHAOS.md.
pub fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// A port nobody listens on right now, for a server the test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on 127.0.0.1:`port` (a server the test
/// started); fails after `limit`.
pub fn wait_for_port(port: u16, limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on port {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The key dict root lists for an online key whose private half `uri`
/// names, and its key id.
pub fn online_key_dict(
    keytype: &str,
    scheme: &str,
    public_pem: &str,
    uri: String,
) -> (String, serde_json::Value) {
    let dict = serde_json::json!({
        "keytype": keytype,
        "scheme": scheme,
        "keyval": {"public": public_pem},
        "x-rstuf-key-name": "Online Key",
        "x-rstuf-online-key-uri": uri,
    });
    let key: rstuf_worker::tuf::Key = serde_json::from_value(dict.clone()).unwrap();
    (key.keyid().unwrap().to_string(), dict)
}

/// A name no other test (in this or another process) uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}_{}_{n}_{nanos:x}", std::process::id())
}

/// A fresh temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
