//! The worker binary and the local services, as behaviour tests use them:
//! each test gets its own queues, database and storage directory.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::rabbitmq::TlsNode;
use super::tls::{Protocol, TestCa, TlsFront};
use super::{python, run_python, unique, TempDir};

pub const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672//";
const REDIS_ADMIN: &str = "redis://127.0.0.1:6379/0";

/// A Redis logical database (2..=15) claimed by one test deployment for its
/// settings hash, locks and task results; emptied when claimed and released
/// on drop. The claim lives in Redis so parallel test processes agree.
pub struct RedisDb {
    pub number: u32,
    /// `host:port` of the server.
    pub server: String,
    /// The claim key on the shared server; empty on a private server.
    claim: String,
}

impl RedisDb {
    pub fn claim() -> RedisDb {
        let client = redis::Client::open(REDIS_ADMIN).unwrap();
        let mut admin = client
            .get_connection()
            .expect("Redis on 127.0.0.1:6379 is required");
        let token = unique("claim");
        let start = Instant::now();
        loop {
            for number in 2..=15u32 {
                let claim = format!("rstuf-test-db-claim:{number}");
                let won: bool = redis::cmd("SET")
                    .arg(&claim)
                    .arg(&token)
                    .arg("NX")
                    .arg("EX")
                    .arg(600)
                    .query::<Option<String>>(&mut admin)
                    .unwrap()
                    .is_some();
                if won {
                    let mut db = redis::Client::open(format!("redis://127.0.0.1:6379/{number}"))
                        .unwrap()
                        .get_connection()
                        .unwrap();
                    redis::cmd("FLUSHDB").query::<()>(&mut db).unwrap();
                    return RedisDb {
                        number,
                        server: "127.0.0.1:6379".into(),
                        claim,
                    };
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "no free Redis test database"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Database 0 of a Redis server of the test's own on `port`.
    pub fn private(port: u16) -> RedisDb {
        RedisDb {
            number: 0,
            server: format!("127.0.0.1:{port}"),
            claim: String::new(),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://{}/{}", self.server, self.number)
    }
}

impl Drop for RedisDb {
    fn drop(&mut self) {
        if self.claim.is_empty() {
            return;
        }
        if let Ok(mut admin) = redis::Client::open(REDIS_ADMIN).and_then(|c| c.get_connection()) {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&self.claim).query(&mut admin);
        }
    }
}

/// A PostgreSQL database of the test's own, dropped on drop.
pub struct TestDb {
    pub name: String,
    /// The server's port on 127.0.0.1 (5432: the shared one).
    pub port: u16,
}

impl TestDb {
    pub fn new() -> TestDb {
        TestDb::on(5432)
    }

    /// A database in the cluster listening on `port`.
    pub fn on(port: u16) -> TestDb {
        let name = unique("rstuf_t");
        let mut admin = postgres::Client::connect(&pg_admin(port), postgres::NoTls)
            .expect("PostgreSQL on 127.0.0.1 (user postgres, trust auth) is required");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        TestDb { name, port }
    }

    pub fn url(&self) -> String {
        format!(
            "postgresql://postgres@127.0.0.1:{}/{}",
            self.port, self.name
        )
    }
}

fn pg_admin(port: u16) -> String {
    format!("host=127.0.0.1 port={port} user=postgres dbname=postgres")
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&pg_admin(self.port), postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// Everything one deployment under test shares: queues, database, storage.
pub struct Deployment {
    pub queue: String,
    pub internals: String,
    pub db: TestDb,
    pub redis: RedisDb,
    pub storage: TempDir,
    /// `RSTUF_ONLINE_KEY_DIR`: the vector keys the payload roots name.
    pub keys: TempDir,
    pub logs: TempDir,
    /// Set for a deployment whose metadata lives in a (moto) S3 bucket.
    pub s3: Option<(super::moto::Moto, String)>,
    /// Set for a deployment whose broker is Celery's Redis transport on a
    /// database of its own; RabbitMQ otherwise.
    pub redis_broker: Option<RedisDb>,
    /// Set for a deployment whose worker reaches every service over TLS.
    pub tls: Option<TlsFronts>,
    /// An AMQP broker of the test's own (e.g. a node it restarts).
    pub private_broker: Option<String>,
}

/// A test CA and TLS fronts to the shared services (and moto): the worker
/// connects through them, the test's own clients connect directly.
pub struct TlsFronts {
    pub ca: TestCa,
    pub postgres: TlsFront,
    pub redis: TlsFront,
    /// To the shared RabbitMQ, unless the deployment has its own node.
    pub rabbitmq: Option<TlsFront>,
    /// A second RabbitMQ node with TLS ([`Deployment::with_tls_rabbitmq_node`]).
    pub rabbitmq_node: Option<TlsNode>,
    pub s3: Option<TlsFront>,
}

impl Deployment {
    /// No front saw a connection that did not start TLS: the worker never
    /// fell back to plaintext.
    pub fn assert_no_plaintext_attempt(&self) {
        let tls = self.tls.as_ref().expect("a deployment made with_tls()");
        let fronts = [&tls.postgres, &tls.redis];
        let optional = [&tls.rabbitmq, &tls.s3];
        for front in fronts.into_iter().chain(optional.into_iter().flatten()) {
            assert_eq!(front.plaintext_attempts(), 0, "port {}", front.port);
        }
    }
}

impl Deployment {
    /// Metadata in an S3 bucket of a local moto server; `storage` is then
    /// only where [`Deployment::sync_storage`] copies the bucket for clients.
    pub fn new_s3() -> Deployment {
        let moto = super::moto::Moto::start();
        let bucket = "rstuf-metadata".to_owned();
        moto.create_bucket(&bucket);
        let mut dep = Deployment::new();
        dep.s3 = Some((moto, bucket));
        dep
    }

    /// Copies every object of the S3 bucket into `storage` (no-op for
    /// LocalStorage), so the python-tuf client can read it.
    pub fn sync_storage(&self) {
        let Some(client) = self.bucket() else {
            return;
        };
        for page in client.list(String::new(), None).unwrap() {
            for object in page.contents {
                let body = client.get_object(&object.key).unwrap();
                std::fs::write(self.storage.path().join(&object.key), body.bytes()).unwrap();
            }
        }
    }

    /// A client of the S3 bucket (None for LocalStorage), to read or write
    /// objects behind the worker's back.
    pub fn bucket(&self) -> Option<Box<s3::Bucket>> {
        let (moto, bucket) = self.s3.as_ref()?;
        let config = moto.config(bucket);
        let region = s3::Region::Custom {
            region: super::moto::REGION.into(),
            endpoint: moto.endpoint(),
        };
        let creds = s3::creds::Credentials::new(
            Some(&config.access_key),
            Some(&config.secret_key),
            None,
            None,
            None,
        )
        .unwrap();
        Some(
            s3::Bucket::new(bucket, region, creds)
                .unwrap()
                .with_path_style(),
        )
    }

    /// Tasks travel through Celery's Redis transport, on a second claimed
    /// database (kombu's keys there: the queue lists, `unacked`, …).
    pub fn new_redis_broker() -> Deployment {
        let mut dep = Deployment::new();
        dep.redis_broker = Some(RedisDb::claim());
        dep
    }

    /// `RSTUF_BROKER_SERVER` of this deployment, for workers and publishers.
    pub fn broker_url(&self) -> String {
        let own_node = self.tls.as_ref().and_then(|t| t.rabbitmq_node.as_ref());
        if let Some(url) = &self.private_broker {
            return url.clone();
        }
        match (&self.redis_broker, own_node) {
            (Some(db), _) => db.url(),
            (None, Some(node)) => node.plain_url(),
            (None, None) => AMQP.to_owned(),
        }
    }

    pub fn new() -> Deployment {
        Deployment {
            s3: None,
            redis_broker: None,
            tls: None,
            private_broker: None,
            queue: unique("t_metadata_repository"),
            internals: unique("t_rstuf_internals"),
            db: TestDb::new(),
            redis: RedisDb::claim(),
            storage: TempDir::new("rstuf-storage"),
            keys: online_keys(),
            logs: TempDir::new("rstuf-logs"),
        }
    }

    /// The worker reaches PostgreSQL (`sslmode=verify-full` with
    /// `sslrootcert`), Redis (`rediss://`) and S3 (`https://`) through TLS
    /// fronts, and RabbitMQ (`amqps://`) on a second node of the test's
    /// own; it trusts their CA through `SSL_CERT_FILE`.
    pub fn with_tls(mut self) -> Deployment {
        let ca = TestCa::new("rstuf-test-ca");
        let s3 = self
            .s3
            .as_ref()
            .map(|(moto, _)| TlsFront::to(moto.port(), Protocol::Direct, &ca));
        self.tls = Some(TlsFronts {
            postgres: TlsFront::to(5432, Protocol::Postgres, &ca),
            redis: TlsFront::to(6379, Protocol::Direct, &ca),
            rabbitmq: Some(TlsFront::to(5672, Protocol::Direct, &ca)),
            rabbitmq_node: None,
            s3,
            ca,
        });
        self
    }

    /// As [`Deployment::with_tls`], but RabbitMQ's own TLS (Erlang's) on a
    /// second node of the test's own instead of a front.
    pub fn with_tls_rabbitmq_node(self) -> Deployment {
        let mut dep = self.with_tls();
        if let Some(tls) = dep.tls.as_mut() {
            tls.rabbitmq = None;
            tls.rabbitmq_node = Some(TlsNode::start(&tls.ca));
        }
        dep
    }

    /// The settings that differ over TLS (added after the others, so they win).
    fn tls_env(&self, tls: &TlsFronts) -> Vec<(&'static str, String)> {
        let ca = tls.ca.ca_file().display().to_string();
        let redis = |number: u32| format!("rediss://127.0.0.1:{}/{number}", tls.redis.port);
        let broker = match (&self.redis_broker, &tls.rabbitmq_node, &tls.rabbitmq) {
            (Some(db), _, _) => redis(db.number),
            (None, Some(node), _) => node.amqps_url(),
            (None, None, Some(front)) => {
                format!("amqps://guest:guest@127.0.0.1:{}//", front.port)
            }
            (None, None, None) => unreachable!("with_tls makes a RabbitMQ front"),
        };
        let mut env = vec![
            ("SSL_CERT_FILE", ca.clone()),
            ("RSTUF_BROKER_SERVER", broker),
            ("RSTUF_REDIS_SERVER", redis(self.redis.number)),
            (
                "RSTUF_DB_SERVER",
                format!(
                    "postgresql://postgres@127.0.0.1:{}/{}?sslmode=verify-full&sslrootcert={ca}",
                    tls.postgres.port, self.db.name
                ),
            ),
        ];
        if let Some(s3) = &tls.s3 {
            env.push((
                "RSTUF_AWS_ENDPOINT_URL",
                format!("https://127.0.0.1:{}", s3.port),
            ));
        }
        env
    }

    /// `rstuf-worker check` with this deployment's environment plus
    /// `extra`: (exit 0, one line per component).
    pub fn check(&self, extra: &[(&str, String)]) -> (bool, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_rstuf-worker"))
            .arg("check")
            .env_clear()
            .envs(self.env())
            .envs(extra.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// The environment a worker of this deployment runs with.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("RSTUF_BROKER_SERVER", self.broker_url()),
            (
                "RSTUF_REDIS_SERVER",
                format!("redis://{}/{}", self.redis.server, self.redis.number),
            ),
            (
                "RSTUF_REDIS_SERVER_DB_REPO_SETTINGS",
                self.redis.number.to_string(),
            ),
            ("RSTUF_DB_SERVER", self.db.url()),
            ("RSTUF_STORAGE_BACKEND", "LocalStorage".to_owned()),
            (
                "RSTUF_LOCAL_STORAGE_BACKEND_PATH",
                self.storage.path().display().to_string(),
            ),
            (
                "RSTUF_ONLINE_KEY_DIR",
                self.keys.path().display().to_string(),
            ),
            ("RSTUF_WORKER_ID", unique("test")),
            ("RUST_LOG", "info".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if let Some((moto, bucket)) = &self.s3 {
            for (k, v) in [
                ("RSTUF_STORAGE_BACKEND", "AWSS3".to_owned()),
                ("RSTUF_AWS_STORAGE_BUCKET", bucket.clone()),
                (
                    "RSTUF_AWS_ACCESS_KEY_ID",
                    super::moto::ACCESS_KEY.to_owned(),
                ),
                (
                    "RSTUF_AWS_SECRET_ACCESS_KEY",
                    super::moto::SECRET_KEY.to_owned(),
                ),
                ("RSTUF_AWS_DEFAULT_REGION", super::moto::REGION.to_owned()),
                ("RSTUF_AWS_ENDPOINT_URL", moto.endpoint()),
            ] {
                set(&mut env, k, v);
            }
        }
        if let Some(tls) = &self.tls {
            for (k, v) in self.tls_env(tls) {
                set(&mut env, k, v);
            }
        }
        env
    }

    /// Starts a worker on this deployment's queues, with extra variables.
    pub fn start_worker(&self, extra_env: &[(&str, &str)]) -> WorkerProcess {
        self.start_worker_on(&[&self.queue, &self.internals], 2, extra_env)
    }

    /// Starts a worker with `threads` pool threads.
    pub fn start_worker_with_threads(
        &self,
        threads: usize,
        extra_env: &[(&str, &str)],
    ) -> WorkerProcess {
        self.start_worker_on(&[&self.queue, &self.internals], threads, extra_env)
    }

    /// Starts a worker consuming only `queues` (without `rstuf_internals`
    /// it runs no periodic bump).
    pub fn start_worker_on(
        &self,
        queues: &[&str],
        threads: usize,
        extra_env: &[(&str, &str)],
    ) -> WorkerProcess {
        let name = unique("worker");
        let log = self.logs.path().join(format!("{name}.log"));
        // Each process its own DATA_DIR: the heartbeat is per process.
        let data_dir = self.logs.path().join(format!("{name}-data"));
        std::fs::create_dir_all(&data_dir).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rstuf-worker"));
        cmd.arg("run")
            .arg("--threads")
            .arg(threads.to_string())
            .arg("--queues")
            .arg(queues.join(","))
            .envs(self.env())
            .env("DATA_DIR", &data_dir)
            .envs(
                extra_env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string())),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = cmd.spawn().expect("worker binary starts");
        let worker = WorkerProcess {
            child: Some(child),
            log,
            data_dir,
        };
        // The process announces its queues before its threads declare them;
        // a message published to an undeclared queue is dropped.
        for queue in queues {
            worker.wait_for_log(
                &format!(": consuming {queue} from"),
                Duration::from_secs(20),
            );
        }
        worker
    }

    /// Publishes tasks as the API does (see tests/py/send_tasks.py).
    pub fn send(&self, queue: &str, tasks: &Value) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/send_tasks.py");
        let out = run_python(&script, &[&self.broker_url(), queue, &tasks.to_string()]);
        assert!(
            out.status.success(),
            "send_tasks.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `app.repository_service_tuf_worker(action, payload)` on the main queue.
    pub fn send_action(&self, action: &str, payload: Value) -> String {
        let id = unique("task");
        let task = serde_json::json!([{
            "name": "app.repository_service_tuf_worker",
            "id": id,
            "kwargs": {"action": action, "payload": payload},
        }]);
        self.send(&self.queue, &task);
        id
    }
}

fn set(env: &mut Vec<(String, String)>, name: &str, value: String) {
    env.retain(|(n, _)| n != name);
    env.push((name.to_owned(), value));
}

impl Drop for Deployment {
    /// Celery's queues and exchanges are durable: remove this test's.
    fn drop(&mut self) {
        if self.redis_broker.is_some() || self.private_broker.is_some() {
            return;
        }
        let Ok(mut conn) = amiquip::Connection::insecure_open("amqp://guest:guest@127.0.0.1:5672")
        else {
            return;
        };
        if let Ok(channel) = conn.open_channel(None) {
            for name in [&self.queue, &self.internals] {
                let _ = channel.queue_delete(name.as_str(), Default::default());
                let _ = channel.exchange_delete(name.as_str(), Default::default());
            }
        }
        let _ = conn.close();
    }
}

/// Every unencrypted private key of the vectors, by the file names that
/// `fn:` URIs in the vector roots use.
fn online_keys() -> TempDir {
    let dir = TempDir::new("rstuf-keys");
    for folder in ["vectors/tuf/keys/generated", "vectors/tuf/keys/umbrella"] {
        for entry in std::fs::read_dir(super::shared(folder)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_owned();
            std::fs::copy(&path, dir.path().join(name)).unwrap();
        }
    }
    dir
}

/// A running `rstuf-worker run`, killed on drop.
pub struct WorkerProcess {
    child: Option<Child>,
    pub log: PathBuf,
    pub data_dir: PathBuf,
}

impl WorkerProcess {
    /// `rstuf-worker health` on this process's DATA_DIR: (exit 0, output).
    pub fn health(&self) -> (bool, String) {
        health(&self.data_dir)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn wait_for_log(&self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while !self.log_text().contains(needle) {
            assert!(
                start.elapsed() < limit,
                "worker log never said {needle:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal and waits for the exit status.
    pub fn signal_and_wait(mut self, signal: &str) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{signal} failed");
        let mut child = self.child.take().unwrap();
        child.wait().unwrap()
    }
}

/// `rstuf-worker health` with `data_dir` as DATA_DIR: (exit 0, output).
pub fn health(data_dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rstuf-worker"))
        .arg("health")
        .env_clear()
        .env("DATA_DIR", data_dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Deployment {
    /// The raw `celery-task-meta-<id>` record, once it reaches a final state.
    pub fn wait_for_final(&self, id: &str, limit: Duration) -> Value {
        wait_for_final(&self.redis.url(), id, limit)
    }

    /// What `GET /api/v1/task?task_id=<id>` would show (check_result.py).
    pub fn api_view(&self, id: &str) -> Value {
        api_view(&self.redis.url(), id)
    }
}

fn wait_for_final(redis_url: &str, id: &str, limit: Duration) -> Value {
    let client = redis::Client::open(redis_url).unwrap();
    let mut conn = client
        .get_connection()
        .expect("Redis on 127.0.0.1:6379 is required");
    let start = Instant::now();
    loop {
        let raw: Option<String> = redis::cmd("GET")
            .arg(format!("celery-task-meta-{id}"))
            .query(&mut conn)
            .unwrap();
        if let Some(record) = raw.and_then(|r| serde_json::from_str::<Value>(&r).ok()) {
            if matches!(record["status"].as_str(), Some("SUCCESS" | "FAILURE")) {
                return record;
            }
        }
        assert!(
            start.elapsed() < limit,
            "task {id} did not finish in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn api_view(redis_url: &str, id: &str) -> Value {
    let script = super::shared("vectors/celery/check_result.py");
    let out = run_python(&script, &[id, "--backend", redis_url]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the API could not show task {id}: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("check_result.py output: {e}: {text}"))
}

/// Messages waiting in a queue (ready, not unacknowledged).
pub fn queue_depth(queue: &str) -> u64 {
    let out = Command::new(python())
        .arg("-c")
        .arg(format!(
            "import kombu\nwith kombu.Connection({AMQP:?}) as c:\n    \
             print(c.default_channel.queue_declare({queue:?}, passive=True).message_count)"
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| {
            panic!(
                "queue depth of {queue}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

impl Deployment {
    /// A raw connection to this deployment's Redis database.
    pub fn redis(&self) -> redis::Connection {
        redis::Client::open(self.redis.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// Writes settings fields exactly as given (already dynaconf-encoded).
    pub fn set_settings(&self, fields: &[(&str, &str)]) {
        let mut cmd = redis::cmd("HSET");
        cmd.arg("DYNACONF_MAIN");
        for (k, v) in fields {
            cmd.arg(*k).arg(*v);
        }
        cmd.query::<()>(&mut self.redis()).unwrap();
    }

    /// One raw settings field as stored.
    pub fn setting(&self, field: &str) -> Option<String> {
        redis::cmd("HGET")
            .arg("DYNACONF_MAIN")
            .arg(field)
            .query(&mut self.redis())
            .unwrap()
    }

    /// Sends an action and returns its final result record's `result`.
    pub fn run_action(&self, action: &str, payload: Value) -> Value {
        let id = self.send_action(action, payload);
        let record = self.wait_for_final(&id, Duration::from_secs(60));
        assert!(self.api_view(&id)["api_would_fail"] == false);
        record["result"].clone()
    }
}

/// Deletes `LOCK_TARGETS` in a tight loop until dropped: whoever takes the
/// lock finds it gone when it re-checks before writing, which is exactly a
/// holder whose lock expired, without depending on how fast it works.
pub struct LockThief {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Deployment {
    pub fn steal_lock_targets(&self) -> LockThief {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let mut conn = self.redis();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let _: redis::RedisResult<()> =
                    redis::cmd("DEL").arg("LOCK_TARGETS").query(&mut conn);
            }
        });
        LockThief {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for LockThief {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Deployment {
    /// Every file in the storage directory, by name, with its bytes.
    /// How many files LocalStorage holds, without reading them.
    pub fn stored_file_count(&self) -> usize {
        std::fs::read_dir(self.storage.path()).unwrap().count()
    }

    pub fn stored_files(&self) -> std::collections::BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(self.storage.path())
            .unwrap()
            .map(|entry| {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&path).unwrap())
            })
            .collect()
    }
}

impl Deployment {
    /// The current `celery-task-meta-<id>` record (null before the first write).
    pub fn record(&self, id: &str) -> Value {
        let raw: Option<String> = redis::cmd("GET")
            .arg(format!("celery-task-meta-{id}"))
            .query(&mut self.redis())
            .unwrap();
        raw.and_then(|r| serde_json::from_str(&r).ok())
            .unwrap_or(Value::Null)
    }
}
