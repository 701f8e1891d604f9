//! The Cloud KMS stand-in of tests/py/gcp_kms_stand_in.py: a token endpoint
//! and KMS API on 127.0.0.1 that check the worker's requests and sign with
//! keys of their own; killed on drop.
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use rstuf_worker::kms::GcpKmsConfig;
use serde_json::Value;

use super::{free_port, online_key_dict, python, TempDir};

pub struct GcpStandIn {
    child: Child,
    port: u16,
    dir: TempDir,
    /// Public PEM of each key version, by resource name.
    pub keys: BTreeMap<String, String>,
}

impl GcpStandIn {
    pub fn start() -> GcpStandIn {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/gcp_kms_stand_in.py");
        let port = free_port();
        let dir = TempDir::new("gcp-kms");
        let mut child = Command::new(python())
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path().join("service-account.json"))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {script} (set RSTUF_TEST_PYTHON): {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let keys = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the stand-in did not start ({e}): {line:?}"));
        GcpStandIn {
            child,
            port,
            dir,
            keys,
        }
    }

    /// The service account key file the stand-in accepts assertions of.
    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("service-account.json")
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The worker's view: the key file and this endpoint.
    pub fn config(&self) -> GcpKmsConfig {
        let text = std::fs::read_to_string(self.key_file()).unwrap();
        GcpKmsConfig::from_key_file(&text, Some(self.endpoint())).unwrap()
    }

    /// The key version of the stand-in whose name ends with `/<key>/…`.
    pub fn key(&self, key: &str) -> (String, String) {
        self.keys
            .iter()
            .find(|(name, _)| name.contains(&format!("/cryptoKeys/{key}/")))
            .map(|(name, pem)| (name.clone(), pem.clone()))
            .unwrap_or_else(|| panic!("no stand-in key {key}"))
    }

    /// Key version `key` as an online key: its key id and the key dict
    /// root lists for it, with its `gcpkms:` URI.
    pub fn online_key(&self, key: &str, keytype: &str, scheme: &str) -> (String, Value) {
        let (name, pem) = self.key(key);
        online_key_dict(keytype, scheme, &pem, format!("gcpkms:{name}"))
    }

    /// The environment of a worker that signs through this stand-in.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "RSTUF_GOOGLE_APPLICATION_CREDENTIALS",
                self.key_file().display().to_string(),
            ),
            ("RSTUF_GOOGLE_KMS_ENDPOINT_URL", self.endpoint()),
        ]
    }

    /// How many tokens and signatures it handed out.
    pub fn stats(&self) -> Value {
        let url = format!("{}/stats", self.endpoint());
        let text = attohttpc::get(url).send().unwrap().text().unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

impl GcpStandIn {
    /// Every token issued so far is refused from now on.
    pub fn revoke_tokens(&self) {
        let url = format!("{}/revoke", self.endpoint());
        let status = attohttpc::post(url).send().unwrap().status();
        assert!(status.is_success(), "{status}");
    }
}

impl Drop for GcpStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
