//! PostgreSQL: the target role and target file rows the worker shares with
//! upstream's Python workers (schema of upstream's alembic head
//! `1effe827d0cd`, created by [`Db::migrate`]).
//!
//! Blocking I/O on a small r2d2 pool. Every connection is tested when taken
//! from the pool, so a server restart or a terminated backend costs at most
//! the operation that was running on it; that operation fails with an error
//! whose [`Error::is_transient`] is true, and running it again gets a fresh
//! connection. Each public operation runs in one transaction.

pub mod config;
pub mod error;
mod migrate;
mod queries;
pub mod types;

#[cfg(test)]
mod tests;

use postgres::Transaction;
use r2d2_postgres::PostgresConnectionManager;
use tokio_postgres_rustls::MakeRustlsConnect;

pub use config::{parse_server, Config, Keepalive, Password, ServerUrl, SslSettings, Tls};
pub use error::Error;
pub use migrate::{MigrationReport, HEAD_REVISION};
pub use types::{
    ArtifactPath, FileId, FileStamp, NewFile, NewRole, RoleFiles, RoleId, RoleUpdate, RowStamp,
    TargetAction, TargetFile, TargetRole,
};

pub type Result<T> = std::result::Result<T, Error>;

type Pool = r2d2::Pool<PostgresConnectionManager<MakeRustlsConnect>>;

/// A pool of connections to the RSTUF database. Cheap to clone; share one
/// per process.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    server: String,
}

impl std::fmt::Debug for Db {
    // The pool's own Debug would print the connection settings.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("server", &self.server).finish()
    }
}

/// What went wrong inside a transaction, before it is named for the caller.
enum Failure {
    Pg(postgres::Error),
    Value(String),
    /// Already a complete error (migrate's schema verdicts).
    Named(Error),
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Self {
        Failure::Pg(e)
    }
}

impl Failure {
    fn named(self, operation: String) -> Error {
        match self {
            Failure::Pg(source) => Error::Query { operation, source },
            Failure::Value(reason) => Error::Value { operation, reason },
            Failure::Named(error) => error,
        }
    }
}

impl Db {
    /// Opens one connection to check the settings, then builds the pool.
    pub fn connect(config: &Config) -> Result<Db> {
        config.check_pool_limits()?;
        let pg = config.to_postgres();
        let tls = config.connector()?;
        let server = config.server_label();
        // r2d2 would report a wrong password or database as a bare timeout;
        // a direct connection gets the server's own reason.
        pg.connect(tls.clone()).map_err(|source| Error::Connect {
            server: server.clone(),
            source,
        })?;
        let pool = r2d2::Pool::builder()
            .max_size(config.pool_size)
            .min_idle(Some(0))
            .connection_timeout(config.checkout_timeout)
            .test_on_check_out(true)
            .build_unchecked(PostgresConnectionManager::new(pg, tls));
        Ok(Db { pool, server })
    }

    /// A round trip on a pooled connection, for the heartbeat.
    pub fn ping(&self) -> Result<()> {
        self.transaction(
            || "ping".into(),
            |tx| {
                tx.batch_execute("SELECT 1")?;
                Ok(())
            },
        )
    }

    /// Runs `work` in a transaction on a pooled connection and commits it.
    /// `operation` ("read role 'bins-0'") names the work in errors only.
    fn transaction<T>(
        &self,
        operation: impl FnOnce() -> String,
        work: impl FnOnce(&mut Transaction<'_>) -> std::result::Result<T, Failure>,
    ) -> Result<T> {
        let mut client = match self.pool.get() {
            Ok(client) => client,
            Err(source) => {
                return Err(Error::Pool {
                    server: self.server.clone(),
                    operation: operation(),
                    source,
                })
            }
        };
        let result = client
            .transaction()
            .map_err(Failure::Pg)
            .and_then(|mut tx| {
                let value = work(&mut tx)?;
                tx.commit()?;
                Ok(value)
            });
        result.map_err(|failure| failure.named(operation()))
    }
}
