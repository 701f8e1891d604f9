//! tests/py/api_stand_in.py for one deployment: the few RSTUF API endpoints
//! the CLI calls, answered from the deployment's Redis and broker. Killed
//! on drop.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::services::Deployment;
use super::{python, shared};

pub struct ApiStandIn {
    child: Child,
    port: u16,
    /// The stand-in's request log (http.server writes one line a request).
    pub log: PathBuf,
}

impl ApiStandIn {
    pub fn start(dep: &Deployment) -> ApiStandIn {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/api_stand_in.py");
        let log = dep.logs.path().join("api-stand-in.log");
        let mut child = Command::new(python())
            .arg(script)
            .arg(dep.redis.number.to_string())
            .arg(dep.broker_url())
            .arg(&dep.internals)
            .arg(shared("vectors/celery/check_result.py"))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "API stand-in did not start: {first}{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        ApiStandIn { child, port, log }
    }

    /// What the CLI takes as `--api-server`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ApiStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
