//! Celery's Redis result backend, writer side: the `celery-task-meta-<id>`
//! records the API reads to show a task's state (spec celery-wire.md §5).
//!
//! Every state write is what Celery 5.6 does: `GET` the key and leave it
//! alone if it already says SUCCESS, else `MULTI; SETEX key <expiry> json;
//! PUBLISH key json; EXEC`. RSTUF's PRE_RUN marker is a plain `SET` (no
//! expiry, no publish), as upstream writes it.
//!
//! Connections: a small pool of idle blocking connections behind a mutex.
//! A writing thread takes one (or opens one), and gives it back only after
//! it worked, so a broken connection is simply dropped. The pool grows to the
//! number of threads writing at the same time and no further, with no
//! per-thread state to clean up when a thread ends. If a connection that sat
//! idle in the pool fails with an I/O error (Redis restarted meanwhile), the
//! write is retried once on a fresh connection; the retried commands are
//! idempotent (same value, one more identical PUBLISH). If Redis is down the
//! write fails with [`Error::Connect`] and the next write tries again.

pub mod error;
pub mod record;

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use error::Error;
pub use record::{Failure, Progress, State, TaskRequest, TaskResult, Timestamp};

use crate::celery::TaskId;

/// Celery's key prefix for task results (also the PUBLISH channel).
const KEY_PREFIX: &str = "celery-task-meta-";
/// Celery's default `result_expires`: one day.
pub const DEFAULT_EXPIRES: Duration = Duration::from_secs(86_400);
/// How long to wait to connect, and for each reply.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how results are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    /// `redis://[[user]:password@]host:port/<db>`, the db being
    /// `RSTUF_REDIS_SERVER_DB_RESULT` (config's `RedisConfig::url`).
    pub url: String,
    /// Record lifetime (Celery's `result_expires`); `None` keeps records
    /// forever with a plain SET, as Celery does without an expiry.
    pub expires: Option<Duration>,
    pub timeout: Duration,
}

impl BackendConfig {
    /// Upstream's settings: one day expiry.
    pub fn new(url: impl Into<String>) -> BackendConfig {
        BackendConfig {
            url: url.into(),
            expires: Some(DEFAULT_EXPIRES),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Whether a state write happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Written,
    /// The record already said SUCCESS, which Celery never overwrites.
    SuccessKept,
}

/// The result backend; share it between threads (it is `Sync`).
pub struct ResultBackend {
    client: redis::Client,
    /// `host:port db N`, for messages (no credentials).
    server: String,
    expires_seconds: Option<u64>,
    timeout: Duration,
    idle: Mutex<Vec<redis::Connection>>,
}

impl ResultBackend {
    /// Checks the settings; connects lazily on the first write.
    pub fn new(config: &BackendConfig) -> Result<ResultBackend, Error> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| Error::Config(format!("the result backend URL is not usable: {e}")))?;
        let info = client.get_connection_info();
        let server = format!("{} db {}", info.addr, info.redis.db);
        let expires_seconds = match config.expires {
            Some(d) if d.as_secs() == 0 => {
                return Err(Error::Config(format!(
                    "result expiry {d:?} is under one second; use no expiry instead"
                )))
            }
            other => other.map(|d| d.as_secs()),
        };
        if config.timeout.is_zero() {
            return Err(Error::Config("the Redis timeout must not be zero".into()));
        }
        Ok(ResultBackend {
            client,
            server,
            expires_seconds,
            timeout: config.timeout,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Fails unless Redis answers, so a worker can refuse to start without it.
    pub fn ping(&self) -> Result<(), Error> {
        self.with_connection("PING", |conn| redis::cmd("PING").query::<()>(conn))
    }

    /// RSTUF's PRE_RUN marker, written just before STARTED.
    pub fn pre_run(&self, id: &TaskId) -> Result<(), Error> {
        let key = key_for(id);
        let json = record::pre_run_json(id)?;
        self.with_connection(&key, |conn| {
            redis::cmd("SET").arg(&key).arg(&json).query::<()>(conn)
        })
    }

    /// STARTED with the executing process id and worker node name.
    pub fn started(
        &self,
        request: &TaskRequest,
        pid: u32,
        hostname: &str,
    ) -> Result<Stored, Error> {
        let result = record::started_result(pid, hostname);
        self.store(request, State::Started, &result, None)
    }

    /// RUNNING with a progress meta (usually a [`Progress`]).
    pub fn running<M: Serialize + ?Sized>(
        &self,
        request: &TaskRequest,
        meta: &M,
    ) -> Result<Stored, Error> {
        self.store(request, State::Running, meta, None)
    }

    /// SUCCESS with the task's return value (a [`TaskResult`] for actions).
    pub fn success<R: Serialize + ?Sized>(
        &self,
        request: &TaskRequest,
        result: &R,
    ) -> Result<Stored, Error> {
        self.store(request, State::Success, result, None)
    }

    /// FAILURE for a task that raised (or was not registered).
    pub fn failure(&self, request: &TaskRequest, failure: &Failure) -> Result<Stored, Error> {
        let result = record::failure_result(failure);
        self.store(
            request,
            State::Failure,
            &result,
            failure.traceback.as_deref(),
        )
    }

    /// Any state with any result; `date_done` is set for SUCCESS/FAILURE.
    pub fn store<R: Serialize + ?Sized>(
        &self,
        request: &TaskRequest,
        state: State,
        result: &R,
        traceback: Option<&str>,
    ) -> Result<Stored, Error> {
        let date_done = if state.is_ready() {
            Some(Timestamp::now()?)
        } else {
            None
        };
        let json = record::record_json(request, state, result, traceback, date_done)?;
        let key = key_for(&request.id);
        self.with_connection(&key, |conn| self.write_unless_success(conn, &key, &json))
    }

    fn write_unless_success(
        &self,
        conn: &mut redis::Connection,
        key: &str,
        json: &[u8],
    ) -> redis::RedisResult<Stored> {
        let current: Option<Vec<u8>> = redis::cmd("GET").arg(key).query(conn)?;
        if current.as_deref().is_some_and(is_success) {
            return Ok(Stored::SuccessKept);
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        match self.expires_seconds {
            Some(seconds) => pipe.cmd("SETEX").arg(key).arg(seconds).arg(json).ignore(),
            None => pipe.cmd("SET").arg(key).arg(json).ignore(),
        };
        pipe.cmd("PUBLISH").arg(key).arg(json).ignore();
        pipe.query::<()>(conn)?;
        Ok(Stored::Written)
    }

    /// Runs `op` on a pooled connection, retrying once on a fresh one when
    /// the pooled connection turns out to be dead.
    fn with_connection<T>(
        &self,
        key: &str,
        op: impl Fn(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, Error> {
        if let Some(mut conn) = self.take_idle() {
            match op(&mut conn) {
                Ok(value) => {
                    self.give_back(conn);
                    return Ok(value);
                }
                Err(e) if e.is_io_error() => {
                    log::warn!(
                        "Redis result backend at {}: connection lost ({e}), reconnecting",
                        self.server
                    );
                }
                Err(e) => return Err(self.command_error(key, &e)),
            }
        }
        let mut conn = self.connect()?;
        let value = op(&mut conn).map_err(|e| self.command_error(key, &e))?;
        self.give_back(conn);
        Ok(value)
    }

    fn connect(&self) -> Result<redis::Connection, Error> {
        let connect_error = |e: redis::RedisError| Error::Connect {
            server: self.server.clone(),
            reason: e.to_string(),
        };
        let conn = self
            .client
            .get_connection_with_timeout(self.timeout)
            .map_err(connect_error)?;
        conn.set_read_timeout(Some(self.timeout))
            .map_err(connect_error)?;
        conn.set_write_timeout(Some(self.timeout))
            .map_err(connect_error)?;
        Ok(conn)
    }

    fn command_error(&self, key: &str, e: &redis::RedisError) -> Error {
        Error::Command {
            server: self.server.clone(),
            key: key.to_owned(),
            reason: e.to_string(),
        }
    }

    // A panic while the lock was held cannot leave the Vec half-updated, so
    // a poisoned pool is still a valid pool.
    fn take_idle(&self) -> Option<redis::Connection> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn give_back(&self, conn: redis::Connection) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
    }
}

impl fmt::Debug for ResultBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResultBackend")
            .field("server", &self.server)
            .field("expires_seconds", &self.expires_seconds)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn key_for(id: &TaskId) -> String {
    format!("{KEY_PREFIX}{id}")
}

/// Whether a stored record is final. Anything unreadable is not: Celery
/// would fail to read it too, and overwriting it repairs the key.
fn is_success(stored: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Status {
        status: Option<String>,
    }
    serde_json::from_slice::<Status>(stored).is_ok_and(|s| s.status.as_deref() == Some("SUCCESS"))
}

#[cfg(test)]
mod redis_tests;
