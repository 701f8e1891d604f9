//! Worker configuration from the environment, with upstream's variable names.
//!
//! Everything is read and validated once at start-up, so a missing or
//! malformed variable stops the worker with one line naming it, instead of
//! failing the first task that needs it. Secrets (passwords, AWS keys) are
//! wrapped in [`Secret`] so they never reach a log line.
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::broker::{self, BrokerUrl};
use crate::{db, storage};

/// Where secret values may be stored as files (Docker/Kubernetes secrets).
const SECRETS_DIR: &str = "/run/secrets/";
pub const DEFAULT_QUEUES: [&str; 2] = ["metadata_repository", "rstuf_internals"];

#[derive(Debug)]
pub struct Config {
    pub broker: BrokerUrl,
    /// `RSTUF_BROKER_VISIBILITY_TIMEOUT`: kombu's `visibility_timeout` of
    /// the Redis broker transport.
    pub broker_visibility_timeout: Duration,
    pub redis: RedisConfig,
    pub db: db::Config,
    pub storage: StorageConfig,
    /// `RSTUF_LOCK_TIMEOUT`: how long one holder may keep `LOCK_TARGETS`.
    pub lock_timeout: Duration,
    /// `RSTUF_BUMP_ONLINE_ROLES_TTL`: lifetime of the `BOR` lock.
    pub bump_ttl: Duration,
    /// `RSTUF_TASK_TIME_LIMIT`: how long one task may run before the worker
    /// ends it (Celery's hard `task_time_limit`).
    pub task_time_limit: Duration,
    /// Where the online key lives: `RSTUF_ONLINE_KEY_DIR` and KMS access.
    pub signers: crate::kms::SignerConfig,
    pub worker_id: String,
    /// `DATA_DIR`: holds the heartbeat `health` reads.
    pub data_dir: PathBuf,
    /// `RSTUF_METRICS_ADDR`: the Prometheus endpoint, off when unset.
    pub metrics_addr: Option<SocketAddr>,
    pub threads: usize,
    pub queues: Vec<String>,
}

/// A configuration problem, naming the variable and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

fn problem(variable: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable: variable.to_owned(),
        problem: problem.into(),
    }
}

/// A value that must not be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// `RSTUF_REDIS_SERVER_DB_RESULT`: Celery results (and PRE_RUN).
    pub db_result: i64,
    /// `RSTUF_REDIS_SERVER_DB_REPO_SETTINGS`: the dynaconf settings hash.
    pub db_settings: i64,
    /// Locks live where upstream's `StrictRedis.from_url(RSTUF_REDIS_SERVER)`
    /// puts them: the URL's db, else 0, so a mixed fleet shares them.
    pub db_lock: i64,
}

impl RedisConfig {
    /// A URL the redis crate accepts, for one logical database.
    pub fn url(&self, db: i64) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let auth = match (&self.username, &self.password) {
            (Some(u), Some(p)) => format!("{u}:{}@", p.expose()),
            (None, Some(p)) => format!(":{}@", p.expose()),
            (Some(u), None) => format!("{u}@"),
            (None, None) => String::new(),
        };
        format!("{scheme}://{auth}{}:{}/{db}", self.host, self.port)
    }
}

#[derive(Debug, Clone)]
pub enum StorageConfig {
    Local(storage::LocalConfig),
    S3(storage::S3Config),
}

/// Command-line overrides (`--threads`, `--queues`).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub threads: Option<usize>,
    pub queues: Option<Vec<String>>,
}

/// Reads variables through a lookup function so tests need no process env.
pub struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Env<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Env { lookup }
    }

    /// A set, non-empty variable.
    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.get(name)
            .ok_or_else(|| problem(name, "is required but not set"))
    }

    /// The first of several names that is set (newer name first).
    fn first_of(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|n| self.get(n))
    }

    fn parsed<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| problem(name, format!("{v:?} is not a valid number"))),
        }
    }

    /// A secret value, read from the file when it names one in /run/secrets.
    fn secret(&self, name: &str, value: String) -> Result<Secret, ConfigError> {
        if !value.starts_with(SECRETS_DIR) {
            return Ok(Secret(value));
        }
        std::fs::read_to_string(&value)
            .map(|s| Secret(s.trim_end_matches(['\n', '\r']).to_owned()))
            .map_err(|e| problem(name, format!("cannot read secret file {value}: {e}")))
    }
}

impl Config {
    pub fn from_env(env: &Env, overrides: &Overrides) -> Result<Config, ConfigError> {
        let threads = match overrides.threads {
            Some(n) => n,
            None => env.parsed("RSTUF_WORKER_THREADS", default_threads())?,
        };
        if threads == 0 {
            return Err(problem("RSTUF_WORKER_THREADS", "must be at least 1"));
        }
        Ok(Config {
            broker: broker_url(env)?,
            broker_visibility_timeout: seconds(
                env,
                "RSTUF_BROKER_VISIBILITY_TIMEOUT",
                broker::DEFAULT_VISIBILITY_TIMEOUT.as_secs_f64(),
            )?,
            redis: redis_config(env)?,
            db: db_config(env)?,
            storage: storage_config(env)?,
            lock_timeout: seconds(env, "RSTUF_LOCK_TIMEOUT", 60.0)?,
            bump_ttl: seconds(env, "RSTUF_BUMP_ONLINE_ROLES_TTL", 600.0)?,
            task_time_limit: seconds(env, "RSTUF_TASK_TIME_LIMIT", 600.0)?,
            signers: signer_config(env)?,
            worker_id: env.get("RSTUF_WORKER_ID").unwrap_or_else(hostname),
            data_dir: data_dir(env),
            metrics_addr: metrics_addr(env)?,
            threads,
            queues: overrides
                .queues
                .clone()
                .unwrap_or_else(|| DEFAULT_QUEUES.iter().map(|q| q.to_string()).collect()),
        })
    }
}

/// `DATA_DIR`: where the heartbeat lives. `health` reads only this, so a
/// health check never fails over a variable it does not need.
pub fn data_dir(env: &Env) -> PathBuf {
    PathBuf::from(env.get("DATA_DIR").unwrap_or_else(|| "/data".into()))
}

/// `RSTUF_METRICS_ADDR`: where to serve Prometheus metrics; unset, none.
fn metrics_addr(env: &Env) -> Result<Option<SocketAddr>, ConfigError> {
    const NAME: &str = "RSTUF_METRICS_ADDR";
    env.get(NAME)
        .map(|v| {
            v.trim().parse().map_err(|_| {
                problem(
                    NAME,
                    format!("{v:?} is not an address and port such as 0.0.0.0:9100"),
                )
            })
        })
        .transpose()
}

/// Number of CPUs, at least 2 so a waiting task never starves the publisher.
fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn seconds(env: &Env, name: &str, default: f64) -> Result<Duration, ConfigError> {
    let value: f64 = env.parsed(name, default)?;
    if !(value.is_finite() && value > 0.0) {
        return Err(problem(name, "must be a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(value))
}

fn broker_url(env: &Env) -> Result<BrokerUrl, ConfigError> {
    const NAME: &str = "RSTUF_BROKER_SERVER";
    broker::parse_broker_url(&env.required(NAME)?).map_err(|e| problem(NAME, e.to_string()))
}

fn redis_config(env: &Env) -> Result<RedisConfig, ConfigError> {
    const NAME: &str = "RSTUF_REDIS_SERVER";
    let raw = env.required(NAME)?;
    let (tls, rest) = match raw.trim().split_once("://") {
        Some(("redis", rest)) => (false, rest),
        Some(("rediss", rest)) => (true, rest),
        Some((scheme, _)) => {
            return Err(problem(
                NAME,
                format!("scheme {scheme:?} is not redis:// or rediss://"),
            ))
        }
        None => (false, raw.trim()),
    };
    let (authority, url_db) = match rest.split_once('/') {
        Some((a, "")) | Some((a, "0")) => (a, None),
        Some((a, db)) => (
            a,
            Some(
                db.parse::<i64>()
                    .map_err(|_| problem(NAME, "database after / must be a number"))?,
            ),
        ),
        None => (rest, None),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (username, password) = match userinfo.map(|u| u.split_once(':').unwrap_or((u, ""))) {
        Some((user, pass)) => (
            Some(user.to_owned()).filter(|u| !u.is_empty()),
            Some(pass.to_owned()).filter(|p| !p.is_empty()).map(Secret),
        ),
        None => (None, None),
    };
    let (host, url_port) = split_host_port(hostport).map_err(|p| problem(NAME, p))?;
    let port = match url_port {
        Some(p) => p,
        None => env.parsed("RSTUF_REDIS_SERVER_PORT", 6379u16)?,
    };
    Ok(RedisConfig {
        tls,
        host,
        port,
        username,
        password,
        db_result: env.parsed("RSTUF_REDIS_SERVER_DB_RESULT", url_db.unwrap_or(0))?,
        db_settings: env.parsed("RSTUF_REDIS_SERVER_DB_REPO_SETTINGS", 1)?,
        db_lock: url_db.unwrap_or(0),
    })
}

fn split_host_port(hostport: &str) -> Result<(String, Option<u16>), String> {
    if hostport.is_empty() {
        return Err("no host given".into());
    }
    // `[::1]:6379` style IPv6 literals keep their colons inside brackets.
    let colon = match hostport.rfind(':') {
        Some(i) if !hostport[i..].contains(']') => i,
        _ => return Ok((hostport.to_owned(), None)),
    };
    let port = hostport[colon + 1..]
        .parse::<u16>()
        .map_err(|_| format!("port in {hostport:?} is not a number"))?;
    Ok((hostport[..colon].to_owned(), Some(port)))
}

fn db_config(env: &Env) -> Result<db::Config, ConfigError> {
    let server = env
        .first_of(&["RSTUF_DB_SERVER", "RSTUF_SQL_SERVER"])
        .ok_or_else(|| problem("RSTUF_DB_SERVER", "is required but not set"))?;
    let password = match env.first_of(&["RSTUF_DB_PASSWORD", "RSTUF_SQL_PASSWORD"]) {
        Some(p) => Some(env.secret("RSTUF_DB_PASSWORD", p)?),
        None => None,
    };
    let user = env.first_of(&["RSTUF_DB_USER", "RSTUF_SQL_USER"]);
    // libpq's own variables: upstream's worker drops the URL's query, so
    // these are how its deployments ask for TLS.
    let ssl = db::SslSettings {
        mode: env.get("PGSSLMODE"),
        root_cert: env.get("PGSSLROOTCERT"),
    };
    db::Config::from_settings(
        &server,
        user.as_deref(),
        password.as_ref().map(Secret::expose),
        &ssl,
    )
    .map_err(|e| match e {
        db::Error::Config { setting, reason } => problem(setting, reason),
        other => problem("RSTUF_DB_SERVER", other.to_string()),
    })
}

fn signer_config(env: &Env) -> Result<crate::kms::SignerConfig, ConfigError> {
    let aws = match (
        env.get("RSTUF_AWS_ACCESS_KEY_ID"),
        env.get("RSTUF_AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(access), Some(secret)) => Some(crate::kms::AwsKmsConfig {
            access_key_id: env.secret("RSTUF_AWS_ACCESS_KEY_ID", access)?.0,
            secret_access_key: env.secret("RSTUF_AWS_SECRET_ACCESS_KEY", secret)?.0,
            region: env.get("RSTUF_AWS_DEFAULT_REGION"),
            endpoint_url: env.get("RSTUF_AWS_ENDPOINT_URL"),
        }),
        _ => None,
    };
    Ok(crate::kms::SignerConfig {
        online_key_dir: env.get("RSTUF_ONLINE_KEY_DIR").map(PathBuf::from),
        aws,
        gcp: gcp_kms_config(env)?,
    })
}

/// `RSTUF_GOOGLE_APPLICATION_CREDENTIALS`: the path of a service account key
/// file (a Docker secret under /run/secrets included), read at start so a
/// bad file stops the worker before any task.
fn gcp_kms_config(env: &Env) -> Result<Option<crate::kms::GcpKmsConfig>, ConfigError> {
    const NAME: &str = "RSTUF_GOOGLE_APPLICATION_CREDENTIALS";
    let Some(path) = env.get(NAME) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| problem(NAME, format!("cannot read the key file {path}: {e}")))?;
    crate::kms::GcpKmsConfig::from_key_file(&text, env.get("RSTUF_GOOGLE_KMS_ENDPOINT_URL"))
        .map(Some)
        .map_err(|why| problem(NAME, format!("{path}: {why}")))
}

fn storage_config(env: &Env) -> Result<StorageConfig, ConfigError> {
    const NAME: &str = "RSTUF_STORAGE_BACKEND";
    match env.required(NAME)?.trim() {
        "LocalStorage" => {
            let path = env
                .first_of(&[
                    "RSTUF_LOCAL_STORAGE_BACKEND_PATH",
                    "RSTUF_LOCAL_STORAGE_PATH",
                ])
                .ok_or_else(|| {
                    problem(
                        "RSTUF_LOCAL_STORAGE_BACKEND_PATH",
                        "is required for LocalStorage",
                    )
                })?;
            Ok(StorageConfig::Local(storage::LocalConfig {
                path: PathBuf::from(path),
            }))
        }
        "AWSS3" => {
            let access = env.required("RSTUF_AWS_ACCESS_KEY_ID")?;
            let secret = env.required("RSTUF_AWS_SECRET_ACCESS_KEY")?;
            let access = env.secret("RSTUF_AWS_ACCESS_KEY_ID", access)?;
            let secret = env.secret("RSTUF_AWS_SECRET_ACCESS_KEY", secret)?;
            let mut s3 = storage::S3Config::new(
                &env.required("RSTUF_AWS_STORAGE_BUCKET")?,
                access.expose(),
                secret.expose(),
            );
            s3.region = env.get("RSTUF_AWS_DEFAULT_REGION");
            s3.endpoint_url = env.get("RSTUF_AWS_ENDPOINT_URL");
            if let Some(acl) = env.get("RSTUF_AWS_S3_OBJECT_ACL") {
                s3.acl = Some(acl);
            }
            s3.request_timeout = seconds(
                env,
                "RSTUF_AWS_REQUEST_TIMEOUT",
                storage::S3Config::DEFAULT_REQUEST_TIMEOUT.as_secs_f64(),
            )?;
            Ok(StorageConfig::S3(s3))
        }
        other => Err(problem(
            NAME,
            format!("{other:?} is not a storage backend; use LocalStorage or AWSS3"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| map.get(name).cloned();
        Config::from_env(&Env::new(&lookup), &Overrides::default())
    }

    const BASE: [(&str, &str); 5] = [
        ("RSTUF_BROKER_SERVER", "guest:guest@rabbitmq:5672"),
        ("RSTUF_REDIS_SERVER", "redis://redis"),
        (
            "RSTUF_DB_SERVER",
            "postgresql://postgres:secret@postgres:5432",
        ),
        ("RSTUF_STORAGE_BACKEND", "LocalStorage"),
        (
            "RSTUF_LOCAL_STORAGE_BACKEND_PATH",
            "/var/opt/repository-service-tuf/storage",
        ),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut v: Vec<_> = BASE.to_vec();
        v.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn a_google_service_account_key_file_is_read_at_start() {
        const NAME: &str = "RSTUF_GOOGLE_APPLICATION_CREDENTIALS";
        let dir = crate::testutil::TempDir::new("gcp-config");
        let path = dir.path().join("sa.json");
        let path_text = path.display().to_string();
        let loaded = |extra: &[(&str, &str)]| {
            let mut vars = BASE.to_vec();
            vars.extend_from_slice(extra);
            load(&vars)
        };
        assert!(loaded(&[]).unwrap().signers.gcp.is_none());

        let err = loaded(&[(NAME, &path_text)]).unwrap_err();
        assert_eq!(err.variable, NAME);
        assert!(
            err.problem.starts_with(&format!(
                "cannot read the key file {path_text}: No such file"
            )),
            "{err}"
        );
        std::fs::write(&path, r#"{"type": "authorized_user"}"#).unwrap();
        let err = loaded(&[(NAME, &path_text)]).unwrap_err();
        assert!(
            err.problem.starts_with(&format!(
                "{path_text}: not a service account key file (JSON with client_email, \
                 private_key and token_uri)"
            )),
            "{err}"
        );
        std::fs::write(
            &path,
            r#"{"client_email": "w@p.iam.gserviceaccount.com", "private_key": "k",
                "token_uri": "https://oauth2.googleapis.com/token"}"#,
        )
        .unwrap();
        let config = loaded(&[
            (NAME, &path_text),
            ("RSTUF_GOOGLE_KMS_ENDPOINT_URL", "https://kms.internal"),
        ])
        .unwrap();
        assert_eq!(
            format!("{:?}", config.signers.gcp.unwrap()),
            r#"GcpKmsConfig(w@p.iam.gserviceaccount.com at Some("https://kms.internal"))"#
        );
    }

    #[test]
    fn upstream_docker_settings_load_with_defaults() {
        let c = load(&BASE).unwrap();
        match &c.broker {
            BrokerUrl::Amqp(url) => {
                assert_eq!(url.to_string(), "amqp://guest:***@rabbitmq:5672/%2F")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.redis.url(c.redis.db_result), "redis://redis:6379/0");
        assert_eq!(c.redis.url(c.redis.db_settings), "redis://redis:6379/1");
        assert_eq!(c.redis.db_lock, 0);
        assert_eq!(c.lock_timeout, Duration::from_secs(60));
        assert_eq!(c.bump_ttl, Duration::from_secs(600));
        assert_eq!(c.task_time_limit, Duration::from_secs(600));
        assert_eq!(c.data_dir, PathBuf::from("/data"));
        assert_eq!(c.metrics_addr, None);
        assert_eq!(c.queues, vec!["metadata_repository", "rstuf_internals"]);
        assert!(c.threads >= 2);
    }

    #[test]
    fn metrics_address_is_validated_at_start() {
        let c = load(&with(&[("RSTUF_METRICS_ADDR", "0.0.0.0:9100")])).unwrap();
        assert_eq!(c.metrics_addr, Some("0.0.0.0:9100".parse().unwrap()));
        let e = load(&with(&[("RSTUF_METRICS_ADDR", "9100")])).unwrap_err();
        assert_eq!(e.variable, "RSTUF_METRICS_ADDR");
        assert!(e.problem.contains("0.0.0.0:9100"), "{e}");
    }

    #[test]
    fn redis_full_url_forms() {
        let c = load(&with(&[
            ("RSTUF_REDIS_SERVER", "rediss://:pw@cache.example:6380/3"),
            ("RSTUF_REDIS_SERVER_PORT", "9999"),
        ]))
        .unwrap();
        assert!(c.redis.tls);
        assert_eq!(c.redis.port, 6380, "a port in the URL wins");
        assert_eq!(c.redis.db_result, 3);
        assert_eq!(c.redis.db_lock, 3);
        assert_eq!(c.redis.url(1), "rediss://:pw@cache.example:6380/1");
        let c = load(&with(&[("RSTUF_REDIS_SERVER_PORT", "6390")])).unwrap();
        assert_eq!(c.redis.port, 6390);
    }

    #[test]
    fn missing_or_malformed_variables_are_named() {
        let err = load(&BASE[1..]).unwrap_err();
        assert_eq!(err.variable, "RSTUF_BROKER_SERVER");
        let err = load(&with(&[("RSTUF_LOCK_TIMEOUT", "soon")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "RSTUF_LOCK_TIMEOUT: \"soon\" is not a valid number"
        );
        let err = load(&with(&[("RSTUF_STORAGE_BACKEND", "localstorage")])).unwrap_err();
        assert_eq!(err.variable, "RSTUF_STORAGE_BACKEND");
        let err = load(&with(&[("RSTUF_BROKER_SERVER", "kafka://x")])).unwrap_err();
        assert!(err.problem.contains("kafka"));
        let err = load(&with(&[("RSTUF_STORAGE_BACKEND", "AWSS3")])).unwrap_err();
        assert_eq!(err.variable, "RSTUF_AWS_ACCESS_KEY_ID");
    }

    #[test]
    fn a_redis_broker_with_its_visibility_timeout() {
        let c = load(&BASE).unwrap();
        assert_eq!(c.broker_visibility_timeout, Duration::from_secs(3600));
        let c = load(&with(&[
            ("RSTUF_BROKER_SERVER", "redis://:pw@redis:6379/2"),
            ("RSTUF_BROKER_VISIBILITY_TIMEOUT", "2.5"),
        ]))
        .unwrap();
        assert_eq!(c.broker.to_string(), "redis://:***@redis:6379/2");
        assert_eq!(c.broker_visibility_timeout, Duration::from_millis(2500));
        let err = load(&with(&[("RSTUF_BROKER_VISIBILITY_TIMEOUT", "0")])).unwrap_err();
        assert_eq!(err.variable, "RSTUF_BROKER_VISIBILITY_TIMEOUT");
    }

    #[test]
    fn time_limits_are_positive_seconds() {
        let c = load(&with(&[
            ("RSTUF_TASK_TIME_LIMIT", "2.5"),
            ("RSTUF_STORAGE_BACKEND", "AWSS3"),
            ("RSTUF_AWS_STORAGE_BUCKET", "meta"),
            ("RSTUF_AWS_ACCESS_KEY_ID", "a"),
            ("RSTUF_AWS_SECRET_ACCESS_KEY", "s"),
            ("RSTUF_AWS_REQUEST_TIMEOUT", "7"),
        ]))
        .unwrap();
        assert_eq!(c.task_time_limit, Duration::from_millis(2500));
        match c.storage {
            StorageConfig::S3(s3) => assert_eq!(s3.request_timeout, Duration::from_secs(7)),
            other => panic!("{other:?}"),
        }
        let err = load(&with(&[("RSTUF_TASK_TIME_LIMIT", "0")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "RSTUF_TASK_TIME_LIMIT: must be a positive number of seconds"
        );
    }

    #[test]
    fn lock_timeout_accepts_floats() {
        let c = load(&with(&[("RSTUF_LOCK_TIMEOUT", "2.5")])).unwrap();
        assert_eq!(c.lock_timeout, Duration::from_millis(2500));
    }

    #[test]
    fn older_sql_names_and_secret_files() {
        let c = load(&[
            ("RSTUF_BROKER_SERVER", "amqp://guest:guest@127.0.0.1:5672"),
            ("RSTUF_REDIS_SERVER", "redis://127.0.0.1"),
            ("RSTUF_SQL_SERVER", "postgres:5432"),
            ("RSTUF_SQL_USER", "rstuf"),
            ("RSTUF_SQL_PASSWORD", "plain"),
            ("RSTUF_STORAGE_BACKEND", "LocalStorage"),
            ("RSTUF_LOCAL_STORAGE_PATH", "/tmp/x"),
        ])
        .unwrap();
        assert_eq!((c.db.host.as_str(), c.db.port), ("postgres", 5432));
        assert_eq!(c.db.user, "rstuf");
        assert_eq!(c.db.password.as_ref().map(|p| p.0.as_str()), Some("plain"));
        assert!(
            !format!("{:?}", c.db).contains("plain"),
            "password leaked: {:?}",
            c.db
        );
        let err = load(&with(&[(
            "RSTUF_DB_PASSWORD",
            "/run/secrets/does-not-exist",
        )]))
        .unwrap_err();
        assert!(err.problem.contains("/run/secrets/does-not-exist"), "{err}");
    }
}
