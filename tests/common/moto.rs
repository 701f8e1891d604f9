//! A local moto server (S3, KMS) for tests: 127.0.0.1, a free port, killed on drop.
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rstuf_worker::storage::S3Config;
use s3::creds::Credentials;
use s3::{Bucket, BucketConfiguration, Region};
use serde_json::Value;

use super::services::{Deployment, WorkerProcess};
use super::{free_port, online_key_dict, python, run_ok};

pub const ACCESS_KEY: &str = "testing";
pub const SECRET_KEY: &str = "testing";
/// Not us-east-1: rust-s3 sends a LocationConstraint with every bucket
/// creation, and S3 (moto too) refuses one naming us-east-1.
pub const REGION: &str = "eu-west-1";

/// A KMS key spec and the TUF key type and scheme of its keys.
#[derive(Debug, Clone, Copy)]
pub struct KmsKeySpec {
    pub kms: &'static str,
    pub keytype: &'static str,
    pub scheme: &'static str,
}

pub const ECDSA_P256: KmsKeySpec = KmsKeySpec {
    kms: "ECC_NIST_P256",
    keytype: "ecdsa",
    scheme: "ecdsa-sha2-nistp256",
};
pub const RSA_PSS: KmsKeySpec = KmsKeySpec {
    kms: "RSA_3072",
    keytype: "rsa",
    scheme: "rsassa-pss-sha256",
};

/// A moto S3 server; killed on drop, so a failing test does not leak it.
pub struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    pub fn start() -> Moto {
        Moto::spawn(&["-m", "moto.server", "-H", "127.0.0.1", "-p"])
    }

    /// A moto server whose KMS keys sign the digests they are sent
    /// (tests/py/moto_kms_digest.py says why).
    pub fn start_kms() -> Moto {
        Moto::start_kms_with_latency(0)
    }

    /// Like [`Moto::start_kms`], each signature taking `ms` milliseconds
    /// more, as a round trip to a real KMS does.
    pub fn start_kms_with_latency(ms: u64) -> Moto {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/moto_kms_digest.py");
        Moto::spawn_with(&[script], &[("RSTUF_TEST_KMS_LATENCY_MS", &ms.to_string())])
    }

    /// Runs python with `args` then the port.
    fn spawn(args: &[&str]) -> Moto {
        Moto::spawn_with(args, &[])
    }

    fn spawn_with(args: &[&str], env: &[(&str, &str)]) -> Moto {
        let port = free_port();
        let child = Command::new(python())
            .args(args)
            .envs(env.iter().copied())
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start moto with {} (set RSTUF_TEST_PYTHON): {e}",
                    python().display()
                )
            });
        let mut moto = Moto { child, port };
        moto.wait_until_listening();
        moto
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("moto server exited before listening: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "moto did not listen on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn config(&self, bucket: &str) -> S3Config {
        let mut config = S3Config::new(bucket, ACCESS_KEY, SECRET_KEY);
        config.region = Some(REGION.to_owned());
        config.endpoint_url = Some(self.endpoint());
        config
    }

    /// A bucket created outside the code under test, also used to write
    /// objects behind its cache's back.
    pub fn create_bucket(&self, name: &str) -> Box<Bucket> {
        let region = Region::Custom {
            region: REGION.to_owned(),
            endpoint: self.endpoint(),
        };
        let credentials =
            Credentials::new(Some(ACCESS_KEY), Some(SECRET_KEY), None, None, None).unwrap();
        let created = Bucket::create_with_path_style(
            name,
            region,
            credentials,
            BucketConfiguration::default(),
        )
        .unwrap();
        assert_eq!(created.response_code, 200, "{}", created.response_text);
        created.bucket
    }

    /// A new KMS signing key of `spec` (e.g. `ECC_NIST_P256`): its key id
    /// and its public key as SubjectPublicKeyInfo PEM.
    pub fn create_kms_key(&self, spec: &str) -> (String, String) {
        let script = "import boto3, sys, base64\n\
            kms = boto3.client('kms', endpoint_url=sys.argv[1], region_name='eu-west-1',\n\
                aws_access_key_id='testing', aws_secret_access_key='testing')\n\
            k = kms.create_key(KeySpec=sys.argv[2], KeyUsage='SIGN_VERIFY')['KeyMetadata']['KeyId']\n\
            der = kms.get_public_key(KeyId=k)['PublicKey']\n\
            b64 = base64.b64encode(der).decode()\n\
            lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]\n\
            print(k)\n\
            print('\\n'.join(['-----BEGIN PUBLIC KEY-----'] + lines + ['-----END PUBLIC KEY-----']))\n";
        let out = run_ok(Command::new(python()).args(["-c", script, &self.endpoint(), spec]));
        let (id, pem) = out.split_once('\n').unwrap();
        (id.to_owned(), format!("{}\n", pem.trim_end()))
    }

    /// A new KMS key of `spec` as an online key: its key id and the key
    /// dict root lists for it, with its `awskms:` URI.
    pub fn create_online_key(&self, spec: KmsKeySpec) -> (String, Value) {
        let (kms_key, pem) = self.create_kms_key(spec.kms);
        online_key_dict(spec.keytype, spec.scheme, &pem, format!("awskms:{kms_key}"))
    }

    /// The environment of a worker that signs through this server's KMS.
    pub fn kms_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("RSTUF_AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("RSTUF_AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("RSTUF_AWS_DEFAULT_REGION", REGION.into()),
            ("RSTUF_AWS_ENDPOINT_URL", self.endpoint()),
        ]
    }

    /// A worker of `dep` with `threads` pool threads that signs through
    /// this server's KMS.
    pub fn kms_worker(&self, dep: &Deployment, threads: usize) -> WorkerProcess {
        let env = self.kms_env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        dep.start_worker_with_threads(threads, &env)
    }

    /// The grants of an object, as boto3 reports them: (grantee, permission).
    pub fn grants(&self, bucket: &str, key: &str) -> String {
        let script = "import boto3, sys\n\
            s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='eu-west-1',\n\
                aws_access_key_id='testing', aws_secret_access_key='testing')\n\
            acl = s3.get_object_acl(Bucket=sys.argv[2], Key=sys.argv[3])\n\
            print(sorted((g['Grantee'].get('URI', g['Grantee'].get('Type')), g['Permission'])\n\
                for g in acl['Grants']))\n";
        run_ok(Command::new(python()).args(["-c", script, &self.endpoint(), bucket, key]))
            .trim()
            .to_owned()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
