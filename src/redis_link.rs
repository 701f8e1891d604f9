//! One blocking Redis connection that heals itself, shared by the settings
//! store and the locks.
//!
//! Worker threads keep their Redis connection for hours; Redis restarts,
//! idle-timeouts and network blips must cost one failed attempt, not a dead
//! worker. So a connection that reports an I/O-level failure is thrown away
//! and the command is tried once more on a fresh one. Callers only hand in
//! commands whose repetition is harmless (reads, `HSET` of the same value,
//! Lua scripts written to be idempotent for their owner).
use std::time::Duration;

use redis::{Client, Connection, ConnectionAddr, ConnectionInfo, RedisResult};
use ring::rand::{SecureRandom, SystemRandom};

/// Longer than any healthy Redis answer on a LAN, short enough that a hung
/// server fails a task instead of freezing a worker thread.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A lazily (re)connected Redis connection.
pub struct RedisLink {
    client: Client,
    conn: Option<Connection>,
    label: String,
}

impl RedisLink {
    /// Prepares a link; nothing is connected until the first command.
    pub fn new(info: ConnectionInfo) -> RedisResult<Self> {
        let label = label(&info);
        Ok(Self {
            client: Client::open(info)?,
            conn: None,
            label,
        })
    }

    /// `redis[s]://host:port/db` without credentials, for error messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Runs `op`, retrying once on a fresh connection if the connection broke.
    pub fn run<T>(
        &mut self,
        mut op: impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> RedisResult<T> {
        match self.attempt(&mut op) {
            Err(e) if is_broken(&e) => self.attempt(&mut op),
            other => other,
        }
    }

    fn attempt<T>(
        &mut self,
        op: &mut impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let conn = match self.conn.as_mut() {
            Some(conn) => conn,
            None => self.conn.insert(self.connect()?),
        };
        let result = op(conn);
        if matches!(&result, Err(e) if is_broken(e)) {
            // The reply stream may be out of step now; never reuse it.
            self.conn = None;
        }
        result
    }

    fn connect(&self) -> RedisResult<Connection> {
        let conn = self.client.get_connection_with_timeout(IO_TIMEOUT)?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(conn)
    }
}

fn is_broken(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

/// `redis[s]://host:port/db` of a connection, for messages.
pub fn label(info: &ConnectionInfo) -> String {
    let scheme = match info.addr {
        ConnectionAddr::TcpTls { .. } => "rediss",
        _ => "redis",
    };
    format!("{scheme}://{}/{}", info.addr, info.redis.db)
}

/// A Redis URL for messages and logs, any `user:password@` hidden.
pub fn redact_url(url: &str) -> String {
    match url
        .split_once("://")
        .and_then(|(scheme, rest)| Some((scheme, rest.rsplit_once('@')?.1)))
    {
        Some((scheme, host)) => format!("{scheme}://***@{host}"),
        None => url.to_owned(),
    }
}

/// 128 random bits as 32 lowercase hex digits: lock tokens and claim
/// identities, unique across every worker of a deployment.
pub fn random_token() -> Result<String, ring::error::Unspecified> {
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::IntoConnectionInfo;

    fn local(db: i64) -> RedisLink {
        let info = format!("redis://127.0.0.1:6379/{db}")
            .into_connection_info()
            .unwrap();
        RedisLink::new(info).unwrap()
    }

    #[test]
    fn label_names_host_port_and_db_without_password() {
        let info = "redis://:secret@127.0.0.1:6380/4"
            .into_connection_info()
            .unwrap();
        assert_eq!(
            RedisLink::new(info).unwrap().label(),
            "redis://127.0.0.1:6380/4"
        );
    }

    #[test]
    fn a_killed_connection_is_replaced_transparently() {
        let mut link = local(13);
        let name = crate::testutil::unique_name("rstuf-test-link-");
        let id: i64 = link
            .run(|c| {
                redis::cmd("CLIENT")
                    .arg("SETNAME")
                    .arg(&name)
                    .query::<()>(c)?;
                redis::cmd("CLIENT").arg("ID").query(c)
            })
            .unwrap();
        let mut killer = local(13);
        let killed: i64 = killer
            .run(|c| redis::cmd("CLIENT").arg("KILL").arg("ID").arg(id).query(c))
            .unwrap();
        assert_eq!(killed, 1);
        let pong: String = link.run(|c| redis::cmd("PING").query(c)).unwrap();
        assert_eq!(pong, "PONG");
        let new_id: i64 = link
            .run(|c| redis::cmd("CLIENT").arg("ID").query(c))
            .unwrap();
        assert_ne!(new_id, id);
    }

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact_url("redis://:pw@cache:6380/5"),
            "redis://***@cache:6380/5"
        );
        assert_eq!(redact_url("redis://redis"), "redis://redis");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn tokens_are_32_hex_digits_and_differ() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }
}
