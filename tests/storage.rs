//! AWSS3 storage against a local moto S3 server, one server per test (on
//! 127.0.0.1, a free port, killed when the test ends).
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rstuf_worker::storage::{AwsS3, Error, MetadataFile, S3Config, Storage};
use rstuf_worker::tuf::{RoleName, Version};
use s3::creds::Credentials;
use s3::{Bucket, BucketConfiguration, Region};

const ACCESS_KEY: &str = "testing";
const SECRET_KEY: &str = "testing";
/// Not us-east-1: rust-s3 sends a LocationConstraint with every bucket
/// creation, and S3 (moto too) refuses one naming us-east-1.
const REGION: &str = "eu-west-1";

fn python() -> PathBuf {
    std::env::var_os("RSTUF_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A moto S3 server; killed on drop, so a failing test does not leak it.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    fn start() -> Moto {
        let port = free_port();
        let child = Command::new(python())
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
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

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn config(&self, bucket: &str) -> S3Config {
        let mut config = S3Config::new(bucket, ACCESS_KEY, SECRET_KEY);
        config.region = Some(REGION.to_owned());
        config.endpoint_url = Some(self.endpoint());
        config
    }

    /// A bucket created outside the code under test, also used to write
    /// objects behind its cache's back.
    fn create_bucket(&self, name: &str) -> Box<Bucket> {
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

    /// The grants of an object, as boto3 reports them: (grantee, permission).
    fn grants(&self, bucket: &str, key: &str) -> String {
        let script = "import boto3, sys\n\
            s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='eu-west-1',\n\
                aws_access_key_id='testing', aws_secret_access_key='testing')\n\
            acl = s3.get_object_acl(Bucket=sys.argv[2], Key=sys.argv[3])\n\
            print(sorted((g['Grantee'].get('URI', g['Grantee'].get('Type')), g['Permission'])\n\
                for g in acl['Grants']))\n";
        let out = Command::new(python())
            .args(["-c", script, &self.endpoint(), bucket, key])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn role(name: &str) -> RoleName {
    RoleName::new(name).unwrap()
}

fn file(name: &str, version: u64) -> MetadataFile {
    MetadataFile::Versioned {
        role: role(name),
        version: Version(version),
    }
}

#[test]
fn put_get_and_latest_round_trip() {
    let moto = Moto::start();
    moto.create_bucket("rstuf-roundtrip");
    let storage = AwsS3::connect(&moto.config("rstuf-roundtrip")).unwrap();

    let batch: Vec<(MetadataFile, &[u8])> = vec![
        (file("root", 1), b"root one"),
        (file("2024-x", 1), b"digit leading"),
        (MetadataFile::Timestamp, b"ts one"),
    ];
    storage.put_all(&batch).unwrap();
    storage.put(&MetadataFile::Timestamp, b"ts two").unwrap();

    assert_eq!(storage.get(&role("root"), Version(1)).unwrap(), b"root one");
    assert_eq!(
        storage.get_latest(&role("2024-x")).unwrap(),
        Some((Version(1), b"digit leading".to_vec()))
    );
    assert_eq!(storage.get_timestamp().unwrap(), b"ts two");
    assert_eq!(storage.get_latest(&role("targets")).unwrap(), None);

    let err = storage.get(&role("root"), Version(2)).unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(
        err.to_string(),
        "s3://rstuf-roundtrip/2.root.json does not exist"
    );
}

#[test]
fn latest_probes_objects_written_behind_the_cache() {
    let moto = Moto::start();
    let raw = moto.create_bucket("rstuf-behind");
    let storage = AwsS3::connect(&moto.config("rstuf-behind")).unwrap();
    storage.put(&file("snapshot", 1), b"1").unwrap();
    storage.put(&file("snapshot", 2), b"2").unwrap();
    assert_eq!(
        storage.latest_version(&role("snapshot")).unwrap(),
        Some(Version(2))
    );

    // Another worker uploads 3..=13 and a new role.
    for v in 3..=13u32 {
        let key = format!("{v}.snapshot.json");
        let response = raw.put_object(&key, v.to_string().as_bytes()).unwrap();
        assert_eq!(response.status_code(), 200);
    }
    assert_eq!(
        raw.put_object("1.dev.json", b"dev").unwrap().status_code(),
        200
    );

    assert_eq!(
        storage.get_latest(&role("snapshot")).unwrap(),
        Some((Version(13), b"13".to_vec()))
    );
    assert_eq!(
        storage.get_latest(&role("dev")).unwrap(),
        Some((Version(1), b"dev".to_vec()))
    );

    // A worker started now has no cache: exponential probing finds 13.
    let cold = AwsS3::connect(&moto.config("rstuf-behind")).unwrap();
    assert_eq!(
        cold.latest_version(&role("snapshot")).unwrap(),
        Some(Version(13))
    );
    assert_eq!(cold.latest_version(&role("bins-0")).unwrap(), None);
}

#[test]
fn uploads_carry_the_configured_acl() {
    let moto = Moto::start();
    moto.create_bucket("rstuf-acl");
    let public = AwsS3::connect(&moto.config("rstuf-acl")).unwrap();
    public.put(&file("root", 1), b"r").unwrap();
    let mut config = moto.config("rstuf-acl");
    config.acl = None;
    let private = AwsS3::connect(&config).unwrap();
    private.put(&file("root", 2), b"r").unwrap();

    assert_eq!(
        moto.grants("rstuf-acl", "1.root.json"),
        "[('CanonicalUser', 'FULL_CONTROL'), \
         ('http://acs.amazonaws.com/groups/global/AllUsers', 'READ')]"
    );
    assert_eq!(
        moto.grants("rstuf-acl", "2.root.json"),
        "[('CanonicalUser', 'FULL_CONTROL')]"
    );
}

#[test]
fn a_missing_bucket_fails_at_connect() {
    let moto = Moto::start();
    let err = AwsS3::connect(&moto.config("rstuf-nobucket")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "S3 bucket 'rstuf-nobucket' not found at {}/rstuf-nobucket; \
             create it or fix the bucket name",
            moto.endpoint()
        )
    );
}

#[test]
fn an_unreachable_server_names_the_bucket_and_key() {
    let moto = Moto::start();
    moto.create_bucket("rstuf-gone");
    let storage = AwsS3::connect(&moto.config("rstuf-gone")).unwrap();
    drop(moto);

    let err = storage.get(&role("root"), Version(1)).unwrap_err();
    assert!(matches!(err, Error::S3 { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("cannot download s3://rstuf-gone/1.root.json: "),
        "{err}"
    );
    let err = storage.latest_version(&role("root")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot check for s3://rstuf-gone/1.root.json: "),
        "{err}"
    );
    let err = storage.put(&file("root", 1), b"r").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot upload s3://rstuf-gone/1.root.json: "),
        "{err}"
    );
}
