//! Redis locks shared with Python RSTUF workers.
//!
//! `LOCK_TARGETS` serialises everything that re-signs targets, snapshot and
//! timestamp; `BOR` keeps two bump-online-roles runs apart. Python workers
//! take them with redis-py's `Lock`: the key holds a random token with a
//! millisecond expiry (`SET key token NX PX ms`), release deletes the key
//! only while it still holds the token, and extension re-arms the expiry
//! under the same condition. These locks use the same key, value and expiry
//! semantics, so Rust and Python workers exclude each other.
//!
//! The connection is `RSTUF_REDIS_SERVER` taken as a URL, database 0 unless
//! the URL names one (upstream's `StrictRedis.from_url`).
//!
//! A lock expires while its holder still works if the work outlives the
//! timeout. The holder then must not publish: [`LockGuard::extend`] checks
//! ownership atomically and re-arms the timeout, and is meant to be called
//! right before each write.

pub mod error;
pub mod schedule;

use std::fmt;
use std::thread;
use std::time::{Duration, Instant};

use redis::{ConnectionInfo, IntoConnectionInfo, Script};

pub use error::Error;
pub use schedule::{EveryMinutes, Slot, SlotClaimer};

use crate::redis_link::{label, random_token, redact_url, RedisLink};

/// The lock around every change of targets/snapshot/timestamp metadata.
pub const LOCK_TARGETS: &str = "LOCK_TARGETS";
/// The lock that keeps bump-online-roles runs apart.
pub const BOR: &str = "BOR";
/// `BUMP_ONLINE_ROLES_TTL` default.
pub const DEFAULT_BOR_TTL: Duration = Duration::from_secs(600);

/// redis-py's blocking `Lock.acquire` polls at this interval.
const RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// Takes the lock, or re-arms it if this token already holds it, so that a
/// command retried after a lost reply does not lock out its own caller.
const ACQUIRE_SCRIPT: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if holder then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// Deletes the key only while it still holds our token (redis-py's
/// `Lock.release`, which kombu's `unacked_mutex` uses too).
pub(crate) const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Re-arms the expiry only while the key still holds our token.
const EXTEND_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Where the locks live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockConfig {
    /// `RSTUF_REDIS_SERVER`, e.g. `redis://redis` (database 0).
    pub url: String,
}

/// The Redis key of a lock (production: [`LOCK_TARGETS`], [`BOR`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LockKey(String);

impl LockKey {
    pub fn new(key: impl Into<String>) -> Self {
        LockKey(key.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hands out locks; cheap to clone, one per thread or shared.
#[derive(Debug, Clone)]
pub struct LockClient {
    info: ConnectionInfo,
}

impl LockClient {
    pub fn new(config: &LockConfig) -> Result<Self, Error> {
        let info = config
            .url
            .as_str()
            .into_connection_info()
            .map_err(|e| Error::Config {
                url: redact_url(&config.url),
                reason: e.to_string(),
            })?;
        Ok(LockClient { info })
    }

    /// Waits until the lock is free (polling every 100 ms like redis-py) or
    /// `deadline` passes. The lock expires `ttl` after it was taken or last
    /// extended.
    pub fn acquire(
        &self,
        key: &LockKey,
        ttl: Duration,
        deadline: Instant,
    ) -> Result<LockGuard, Error> {
        let started = Instant::now();
        let mut guard = self.guard(key, ttl)?;
        loop {
            if guard.take()? {
                crate::metrics::lock_waited(started.elapsed());
                return Ok(guard);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout {
                    key: key.to_string(),
                    waited: now - started,
                });
            }
            thread::sleep(RETRY_INTERVAL.min(deadline - now));
        }
    }

    /// Takes the lock if it is free, without waiting (`BOR`).
    pub fn try_acquire(&self, key: &LockKey, ttl: Duration) -> Result<Option<LockGuard>, Error> {
        let mut guard = self.guard(key, ttl)?;
        Ok(guard.take()?.then_some(guard))
    }

    fn guard(&self, key: &LockKey, ttl: Duration) -> Result<LockGuard, Error> {
        let token = random_token().map_err(|_| Error::Random)?;
        Ok(LockGuard {
            holder: self.holder(key, token)?,
            ttl,
            held: false,
            taken: Instant::now(),
        })
    }

    /// `key` and `token` on a connection of their own.
    fn holder(&self, key: &LockKey, token: String) -> Result<Holder, Error> {
        let link = RedisLink::new(self.info.clone()).map_err(|source| Error::Redis {
            server: label(&self.info),
            key: key.to_string(),
            action: "opening a connection",
            source,
        })?;
        Ok(Holder {
            link,
            key: key.clone(),
            token,
        })
    }
}

/// A key with a token, on its own connection: what runs the scripts.
struct Holder {
    link: RedisLink,
    key: LockKey,
    token: String,
}

impl Holder {
    /// Runs one of the scripts; every script answers 1 for "done" and 0 for
    /// "the key does not hold our token".
    fn run(&mut self, action: &'static str, script: &str, ttl: Duration) -> Result<bool, Error> {
        let millis = ttl.as_millis();
        if millis == 0 {
            return Err(Error::Ttl {
                key: self.key.to_string(),
                ttl,
            });
        }
        let script = Script::new(script);
        let (key, token) = (self.key.as_str(), self.token.as_str());
        let done: i64 = self
            .link
            .run(|c| script.key(key).arg(token).arg(millis.to_string()).invoke(c))
            .map_err(|source| Error::Redis {
                server: self.link.label().to_owned(),
                key: key.to_owned(),
                action,
                source,
            })?;
        Ok(done == 1)
    }
}

/// A held lock. Dropping it releases it (best effort, logged).
pub struct LockGuard {
    holder: Holder,
    ttl: Duration,
    held: bool,
    /// When it was taken, for the hold-time metric.
    taken: Instant,
}

impl LockGuard {
    pub fn key(&self) -> &LockKey {
        &self.holder.key
    }

    /// Proves the lock is still ours and re-arms its full timeout, in one
    /// atomic step. Call it right before each write the lock protects.
    pub fn extend(&mut self) -> Result<(), Error> {
        let ttl = self.ttl;
        if self.holder.run("extending", EXTEND_SCRIPT, ttl)? {
            Ok(())
        } else {
            self.held = false;
            Err(self.lost())
        }
    }

    /// Releases the lock; `Lost` if it had expired in the meantime (a new
    /// holder's lock is left alone).
    pub fn release(mut self) -> Result<(), Error> {
        self.held = false;
        crate::metrics::lock_held(self.taken.elapsed());
        let ttl = self.ttl;
        if self.holder.run("releasing", RELEASE_SCRIPT, ttl)? {
            Ok(())
        } else {
            Err(self.lost())
        }
    }

    fn take(&mut self) -> Result<bool, Error> {
        let ttl = self.ttl;
        self.held = self.holder.run("acquiring", ACQUIRE_SCRIPT, ttl)?;
        self.taken = Instant::now();
        Ok(self.held)
    }

    fn lost(&self) -> Error {
        Error::Lost {
            key: self.holder.key.to_string(),
            ttl: self.ttl,
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        self.held = false;
        crate::metrics::lock_held(self.taken.elapsed());
        let ttl = self.ttl;
        match self.holder.run("releasing", RELEASE_SCRIPT, ttl) {
            Ok(true) => {}
            Ok(false) => log::warn!("{}", self.lost()),
            Err(e) => log::warn!("{e}; it expires by itself within {ttl:?}"),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testutil;
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Child, ChildStdout, Command, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    pub(crate) const TEST_URL: &str = "redis://127.0.0.1:6379/14";

    pub(crate) fn client() -> LockClient {
        LockClient::new(&LockConfig {
            url: TEST_URL.into(),
        })
        .unwrap()
    }

    fn unique_key() -> LockKey {
        LockKey::new(testutil::unique_name("rstuf-test-lock-"))
    }

    fn soon(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    const TTL: Duration = Duration::from_secs(10);

    fn stored(key: &LockKey) -> Option<String> {
        let mut c = redis::Client::open(TEST_URL)
            .unwrap()
            .get_connection()
            .unwrap();
        redis::cmd("GET").arg(key.as_str()).query(&mut c).unwrap()
    }

    fn pttl(key: &LockKey) -> i64 {
        let mut c = redis::Client::open(TEST_URL)
            .unwrap()
            .get_connection()
            .unwrap();
        redis::cmd("PTTL").arg(key.as_str()).query(&mut c).unwrap()
    }

    #[test]
    fn the_key_holds_our_token_with_the_timeout_and_release_deletes_it() {
        let key = unique_key();
        let guard = client().acquire(&key, TTL, soon(0)).unwrap();
        assert_eq!(stored(&key).as_deref(), Some(guard.holder.token.as_str()));
        assert!((9_000..=10_000).contains(&pttl(&key)), "{}", pttl(&key));
        guard.release().unwrap();
        assert_eq!(stored(&key), None);
    }

    #[test]
    fn a_second_thread_waits_until_the_first_releases() {
        let key = unique_key();
        let first = client().acquire(&key, TTL, soon(0)).unwrap();
        let err = client().acquire(&key, TTL, soon(300)).err().unwrap();
        assert!(
            matches!(err, Error::Timeout { waited, .. } if waited >= Duration::from_millis(300))
        );
        let (k, started) = (key.clone(), Instant::now());
        let waiter = thread::spawn(move || {
            client()
                .acquire(&k, TTL, soon(5_000))
                .map(|_| started.elapsed())
        });
        thread::sleep(Duration::from_millis(400));
        first.release().unwrap();
        let waited = waiter.join().unwrap().unwrap();
        assert!(waited >= Duration::from_millis(400), "{waited:?}");
    }

    #[test]
    fn threads_never_overlap_inside_the_lock() {
        let key = unique_key();
        let inside = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (key, inside) = (key.clone(), inside.clone());
                thread::spawn(move || {
                    for _ in 0..3 {
                        let mut guard = client().acquire(&key, TTL, soon(10_000)).unwrap();
                        assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                        thread::sleep(Duration::from_millis(20));
                        guard.extend().unwrap();
                        inside.store(false, Ordering::SeqCst);
                        guard.release().unwrap();
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
    }

    #[test]
    fn an_expired_holder_learns_it_lost_and_leaves_the_new_holder_alone() {
        let key = unique_key();
        let mut old = client()
            .acquire(&key, Duration::from_millis(200), soon(0))
            .unwrap();
        old.extend().unwrap();
        let mut new = client().acquire(&key, TTL, soon(2_000)).unwrap();
        let err = old.extend().unwrap_err();
        assert!(
            matches!(&err, Error::Lost { key: k, .. } if *k == key.to_string()),
            "{err}"
        );
        let err = old.release().unwrap_err();
        assert!(matches!(err, Error::Lost { .. }), "{err}");
        assert_eq!(stored(&key).as_deref(), Some(new.holder.token.as_str()));
        new.extend().unwrap();
        drop(new);
        assert_eq!(stored(&key), None, "dropping the guard released the lock");
    }

    #[test]
    fn try_acquire_does_not_wait() {
        let key = unique_key();
        let held = client()
            .try_acquire(&key, DEFAULT_BOR_TTL)
            .unwrap()
            .unwrap();
        assert!((599_000..=600_000).contains(&pttl(&key)));
        let started = Instant::now();
        assert!(client()
            .try_acquire(&key, DEFAULT_BOR_TTL)
            .unwrap()
            .is_none());
        assert!(started.elapsed() < RETRY_INTERVAL);
        held.release().unwrap();
        assert!(client()
            .try_acquire(&key, DEFAULT_BOR_TTL)
            .unwrap()
            .is_some());
    }

    #[test]
    fn a_zero_timeout_is_refused() {
        let err = client()
            .try_acquire(&unique_key(), Duration::ZERO)
            .err()
            .unwrap();
        assert!(
            err.to_string().ends_with("is too short; use at least 1 ms"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_url_is_reported_without_its_password() {
        let err = LockClient::new(&LockConfig {
            url: "http://user:secret@host".into(),
        })
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("lock client: RSTUF_REDIS_SERVER \"http://***@host\""),
            "{text}"
        );
    }

    /// redis-py 8's own `Lock` on the same key, driven line by line.
    const PYTHON_LOCK: &str = r#"
import sys, time, redis
url, key, mode = sys.argv[1:4]
lock = redis.Redis.from_url(url).lock(key, timeout=30)
if mode == "hold":
    assert lock.acquire(blocking=True, blocking_timeout=10)
    print("held", flush=True)
    sys.stdin.readline()
    lock.release()
    print("released", flush=True)
elif mode == "try":
    got = lock.acquire(blocking=False)
    print("acquired" if got else "busy", flush=True)
    if got:
        lock.release()
elif mode == "wait":
    start = time.monotonic()
    print("waiting", flush=True)
    assert lock.acquire(blocking=True, blocking_timeout=10)
    print(f"acquired {time.monotonic() - start:.3f}", flush=True)
    lock.release()
"#;

    struct PythonLock {
        child: Child,
        out: BufReader<ChildStdout>,
    }

    impl PythonLock {
        fn start(key: &LockKey, mode: &str) -> Self {
            let mut child = Command::new(testutil::python())
                .args(["-c", PYTHON_LOCK, TEST_URL, key.as_str(), mode])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let out = BufReader::new(child.stdout.take().unwrap());
            PythonLock { child, out }
        }

        fn line(&mut self) -> String {
            let mut line = String::new();
            self.out.read_line(&mut line).unwrap();
            line.trim().to_owned()
        }

        fn finish(mut self) {
            assert!(self.child.wait().unwrap().success());
        }
    }

    fn python_try(key: &LockKey) -> String {
        let mut python = PythonLock::start(key, "try");
        let answer = python.line();
        python.finish();
        answer
    }

    #[test]
    fn a_lock_held_by_python_excludes_us_until_python_releases() {
        let key = unique_key();
        let mut python = PythonLock::start(&key, "hold");
        assert_eq!(python.line(), "held");
        assert!(matches!(
            client().acquire(&key, TTL, soon(300)),
            Err(Error::Timeout { .. })
        ));
        let k = key.clone();
        let ours = thread::spawn(move || client().acquire(&k, TTL, soon(10_000)));
        thread::sleep(Duration::from_millis(300));
        let released_at = Instant::now();
        writeln!(python.child.stdin.as_mut().unwrap()).unwrap();
        assert_eq!(python.line(), "released");
        python.finish();
        let guard = ours.join().unwrap().unwrap();
        assert!(released_at.elapsed() < Duration::from_secs(2));
        assert_eq!(stored(&key).as_deref(), Some(guard.holder.token.as_str()));
    }

    #[test]
    fn a_lock_we_hold_excludes_python_until_we_release() {
        let key = unique_key();
        let guard = client().acquire(&key, TTL, soon(0)).unwrap();
        assert_eq!(python_try(&key), "busy");
        let mut waiting = PythonLock::start(&key, "wait");
        assert_eq!(waiting.line(), "waiting");
        thread::sleep(Duration::from_millis(500));
        guard.release().unwrap();
        let answer = waiting.line();
        waiting.finish();
        let waited: f64 = answer.strip_prefix("acquired ").unwrap().parse().unwrap();
        assert!(
            waited >= 0.45,
            "python got the lock after {waited} s while we held it"
        );
        assert_eq!(python_try(&key), "acquired");
    }
}
