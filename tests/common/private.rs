//! Servers of a test's own, which it may stop and start again: the shared
//! PostgreSQL, Redis and RabbitMQ serve other tests at the same time and
//! are never restarted.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::tls::TestCa;
use super::{free_port, run_ok, wait_for_port, TempDir};

/// A PostgreSQL cluster (initdb into a temporary directory, run as user
/// postgres, trust auth), optionally TLS-only with the test CA's server
/// certificate, so that a plaintext client is turned away.
pub struct PrivatePostgres {
    child: Option<Child>,
    pub port: u16,
    tls: bool,
    dir: TempDir,
}

impl PrivatePostgres {
    pub fn start(tls: Option<&TestCa>) -> PrivatePostgres {
        let dir = TempDir::new("rstuf-pg");
        if let Some(ca) = tls {
            let (cert, key) = ca.server_files();
            std::fs::copy(cert, dir.path().join("server.pem")).unwrap();
            std::fs::copy(key, dir.path().join("server.key")).unwrap();
        }
        run_on(&["chown", "-R", "postgres:postgres"], dir.path());
        if tls.is_some() {
            run_on(&["chmod", "0600"], &dir.path().join("server.key"));
        }
        run_ok(
            as_postgres("initdb")
                .args(["-N", "-A", "trust", "-U", "postgres", "-D"])
                .arg(data(dir.path())),
        );
        let host = if tls.is_some() { "hostssl" } else { "host" };
        std::fs::write(
            data(dir.path()).join("pg_hba.conf"),
            format!("local all all trust\n{host} all all 127.0.0.1/32 trust\n"),
        )
        .unwrap();
        let mut pg = PrivatePostgres {
            child: None,
            port: free_port(),
            tls: tls.is_some(),
            dir,
        };
        pg.run();
        pg
    }

    fn run(&mut self) {
        let dir = self.dir.path();
        let setting = |name: &str, value: &Path| format!("{name}={}", value.display());
        let mut cmd = as_postgres("postgres");
        cmd.arg("-D")
            .arg(data(dir))
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(setting("unix_socket_directories", dir));
        if self.tls {
            cmd.args(["-c", "ssl=on", "-c"])
                .arg(setting("ssl_cert_file", &dir.join("server.pem")))
                .arg("-c")
                .arg(setting("ssl_key_file", &dir.join("server.key")));
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres runs");
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(30));
    }

    /// A fast shutdown (every session ended, in-flight transactions rolled
    /// back), `down` without a server, then the same cluster again.
    pub fn restart(&mut self, down: Duration) {
        let out = self.stop();
        assert!(
            out.as_ref().is_ok_and(|o| o.status.success()),
            "pg_ctl stop: {out:?}"
        );
        std::thread::sleep(down);
        self.run();
    }

    fn stop(&mut self) -> std::io::Result<std::process::Output> {
        let out = as_postgres("pg_ctl")
            .args(["-m", "fast", "-w", "stop", "-D"])
            .arg(data(self.dir.path()))
            .output();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        out
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn data(dir: &Path) -> PathBuf {
    dir.join("data")
}

fn as_postgres(program: &str) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--", program]);
    cmd
}

/// A file command run as root on a path (the cluster must belong to postgres).
fn run_on(command: &[&str], path: &Path) {
    let status = Command::new(command[0])
        .args(&command[1..])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "{command:?}");
}

/// A `redis-server` that keeps its data across restarts (append-only file,
/// fsync on every write), as a deployment that restarts Redis would.
pub struct PrivateRedis {
    child: Option<Child>,
    pub port: u16,
    dir: TempDir,
}

impl PrivateRedis {
    pub fn start() -> PrivateRedis {
        let mut redis = PrivateRedis {
            child: None,
            port: free_port(),
            dir: TempDir::new("rstuf-redis"),
        };
        redis.run();
        redis
    }

    fn run(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(30));
    }

    /// SIGTERM (Redis closes every client and exits), `down` without a
    /// server, then the same data directory again.
    pub fn restart(&mut self, down: Duration) {
        self.stop();
        std::thread::sleep(down);
        self.run();
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
