//! Where and how to connect. Built by the application's configuration from
//! RSTUF_DB_SERVER / RSTUF_DB_USER / RSTUF_DB_PASSWORD; nothing here reads the
//! environment.
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use tokio_postgres_rustls::MakeRustlsConnect;

use super::error::Error;
use crate::tls;

pub const DEFAULT_PORT: u16 = 5432;
pub const DEFAULT_POOL_SIZE: u32 = 4;
const SERVER_SETTING: &str = "RSTUF_DB_SERVER";

/// A password; `Debug` never shows it, so configs can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// What RSTUF_DB_SERVER says, e.g. `postgresql://user:pass@host:5432/db`
/// or, without scheme, `host:5432/db`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    pub host: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<Password>,
    pub dbname: Option<String>,
    /// libpq's `sslmode` and `sslrootcert` from the URL's query.
    pub ssl: SslSettings,
}

/// libpq's TLS settings as given, from the URL (`?sslmode=…&sslrootcert=…`)
/// or from libpq's variables `PGSSLMODE` and `PGSSLROOTCERT`; the URL wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SslSettings {
    pub mode: Option<String>,
    pub root_cert: Option<String>,
}

impl SslSettings {
    fn or(self, fallback: &SslSettings) -> SslSettings {
        SslSettings {
            mode: self.mode.or_else(|| fallback.mode.clone()),
            root_cert: self.root_cert.or_else(|| fallback.root_cert.clone()),
        }
    }
}

/// TLS to the server: always verified against trusted CAs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub verify: tls::Verify,
    /// The CAs to trust (`sslrootcert`); None: SSL_CERT_FILE or the system's.
    pub root_cert: Option<PathBuf>,
}

/// TCP keepalive probing, so a server that vanished without closing the
/// connection (host down, network cut) fails the current query instead of
/// blocking a worker thread forever. Upstream's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keepalive {
    pub idle: Duration,
    pub interval: Duration,
    pub retries: u32,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            idle: Duration::from_secs(30),
            interval: Duration::from_secs(5),
            retries: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<Password>,
    /// None: the server's default, a database named like the user.
    pub dbname: Option<String>,
    /// Connections kept by the pool; one per worker thread is enough.
    pub pool_size: u32,
    /// Limit for opening one connection.
    pub connect_timeout: Duration,
    /// Limit for waiting on a free pooled connection.
    pub checkout_timeout: Duration,
    pub keepalive: Keepalive,
    /// None: plaintext (`sslmode=disable`, or no sslmode given).
    pub tls: Option<Tls>,
}

impl Config {
    /// Combines the settings the way upstream does: RSTUF_DB_USER, when set,
    /// replaces the URL's credentials and then RSTUF_DB_PASSWORD is required
    /// (reading `/run/secrets/...` files is the caller's job). Without
    /// RSTUF_DB_USER the URL's own credentials are used and
    /// RSTUF_DB_PASSWORD is ignored, also as upstream does.
    /// `ssl_env` holds `PGSSLMODE`/`PGSSLROOTCERT`, which the URL overrides.
    pub fn from_settings(
        server: &str,
        user: Option<&str>,
        password: Option<&str>,
        ssl_env: &SslSettings,
    ) -> Result<Config, Error> {
        let url = parse_server(server)?;
        let tls = tls_settings(url.ssl.or(ssl_env))?;
        let (user, password) = match user.filter(|u| !u.is_empty()) {
            Some(user) => {
                let password = password.ok_or_else(|| Error::Config {
                    setting: "RSTUF_DB_PASSWORD",
                    reason: "is required when RSTUF_DB_USER is set".into(),
                })?;
                (user.to_owned(), Some(Password(password.to_owned())))
            }
            None => {
                let user = url.user.ok_or_else(|| Error::Config {
                    setting: "RSTUF_DB_USER",
                    reason: "no database user given: set RSTUF_DB_USER or write it in \
                             RSTUF_DB_SERVER (postgresql://user:password@host:port)"
                        .into(),
                })?;
                (user, url.password)
            }
        };
        Ok(Config {
            host: url.host,
            port: url.port.unwrap_or(DEFAULT_PORT),
            user,
            password,
            dbname: url.dbname,
            pool_size: DEFAULT_POOL_SIZE,
            connect_timeout: Duration::from_secs(10),
            checkout_timeout: Duration::from_secs(30),
            keepalive: Keepalive::default(),
            tls,
        })
    }

    /// r2d2 panics on these, so they are refused as settings first.
    pub(crate) fn check_pool_limits(&self) -> Result<(), Error> {
        if self.pool_size == 0 {
            return Err(Error::Config {
                setting: "pool size",
                reason: "must be at least 1".into(),
            });
        }
        if self.checkout_timeout.is_zero() {
            return Err(Error::Config {
                setting: "pool checkout timeout",
                reason: "must be longer than zero".into(),
            });
        }
        Ok(())
    }

    /// `user@host:port/db`, for messages (never the password).
    pub fn server_label(&self) -> String {
        let db = self.dbname.as_deref().unwrap_or(&self.user);
        format!("{}@{}:{}/{db}", self.user, self.host, self.port)
    }

    /// The TLS connector; with TLS off one that is never used.
    pub(crate) fn connector(&self) -> Result<MakeRustlsConnect, Error> {
        let config = match &self.tls {
            None => tls::unused_config(),
            Some(t) => {
                tls::client_config(t.root_cert.as_deref(), t.verify).map_err(|e| Error::Config {
                    setting: "sslrootcert",
                    reason: e.to_string(),
                })?
            }
        };
        Ok(MakeRustlsConnect::new(config))
    }

    pub(crate) fn to_postgres(&self) -> postgres::Config {
        let mut pg = postgres::Config::new();
        // Never `Prefer`: a server refusing TLS fails the connection.
        pg.ssl_mode(match self.tls {
            Some(_) => postgres::config::SslMode::Require,
            None => postgres::config::SslMode::Disable,
        });
        pg.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .application_name("rstuf-worker")
            // Upstream stores naive UTC in `timestamp without time zone` and
            // compares it with aware "now"; that is only right in a UTC session.
            .options("-c TimeZone=UTC")
            .connect_timeout(self.connect_timeout)
            .keepalives(true)
            .keepalives_idle(self.keepalive.idle)
            .keepalives_interval(self.keepalive.interval)
            .keepalives_retries(self.keepalive.retries);
        if let Some(password) = &self.password {
            pg.password(&password.0);
        }
        if let Some(dbname) = &self.dbname {
            pg.dbname(dbname);
        }
        pg
    }
}

fn invalid(reason: String) -> Error {
    Error::Config {
        setting: SERVER_SETTING,
        reason,
    }
}

/// Parses RSTUF_DB_SERVER: `[scheme://][user[:password]@]host[:port][/dbname]`
/// with percent-encoded parts. Schemes: `postgresql`, `postgres` and
/// SQLAlchemy's `postgresql+<driver>`.
pub fn parse_server(server: &str) -> Result<ServerUrl, Error> {
    let rest = strip_scheme(server.trim())?;
    if rest.contains('#') {
        return Err(invalid(
            "a '#' fragment is not allowed; write a '#' in a password as %23".into(),
        ));
    }
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, host_port) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(info) => parse_userinfo(info)?,
        None => (None, None),
    };
    let (host, port) = parse_host_port(host_port)?;
    Ok(ServerUrl {
        host,
        port,
        user,
        password,
        dbname: parse_dbname(path)?,
        ssl: parse_query(query)?,
    })
}

/// `sslmode` and `sslrootcert`, the libpq options that matter to a worker;
/// any other is refused rather than silently ignored.
fn parse_query(query: &str) -> Result<SslSettings, Error> {
    let mut ssl = SslSettings::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value).map_err(|e| invalid(format!("{name}: {e}")))?;
        match name {
            "sslmode" => ssl.mode = Some(value),
            "sslrootcert" => ssl.root_cert = Some(value),
            other => {
                return Err(invalid(format!(
                    "connection option '{other}' is not supported; the options are sslmode \
                     and sslrootcert"
                )))
            }
        }
    }
    Ok(ssl)
}

/// libpq's modes, except that `require` also verifies the certificate's
/// chain (libpq only does when it finds a root certificate file), and
/// `allow`/`prefer`, which fall back to plaintext, are refused.
fn tls_settings(ssl: SslSettings) -> Result<Option<Tls>, Error> {
    let verify = match ssl.mode.as_deref() {
        None | Some("disable") => {
            if ssl.root_cert.is_some() {
                return Err(Error::Config {
                    setting: "sslrootcert",
                    reason: "is set but TLS is off; add sslmode=verify-full (or PGSSLMODE)".into(),
                });
            }
            return Ok(None);
        }
        Some("require" | "verify-ca") => tls::Verify::ChainOnly,
        Some("verify-full") => tls::Verify::Full,
        Some(mode @ ("allow" | "prefer")) => {
            return Err(Error::Config {
                setting: "sslmode",
                reason: format!(
                    "'{mode}' is not supported: it falls back to an unencrypted connection; \
                     use verify-full, verify-ca or require (all verify the server's \
                     certificate), or disable"
                ),
            })
        }
        Some(other) => {
            return Err(Error::Config {
                setting: "sslmode",
                reason: format!("'{other}' is not one of disable, require, verify-ca, verify-full"),
            })
        }
    };
    let root_cert = match ssl.root_cert.as_deref() {
        // PostgreSQL 16's name for the system's trusted CAs.
        None | Some("system") => None,
        Some(path) => Some(PathBuf::from(path)),
    };
    Ok(Some(Tls { verify, root_cert }))
}

fn strip_scheme(server: &str) -> Result<&str, Error> {
    let Some((scheme, rest)) = server.split_once("://") else {
        return Ok(server);
    };
    let postgres = matches!(scheme, "postgresql" | "postgres") || scheme.starts_with("postgresql+");
    if postgres {
        Ok(rest)
    } else {
        Err(invalid(format!(
            "scheme '{scheme}' is not supported; this worker speaks PostgreSQL only \
             (postgresql://host:port)"
        )))
    }
}

fn parse_userinfo(info: &str) -> Result<(Option<String>, Option<Password>), Error> {
    let (user, password) = match info.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (info, None),
    };
    let user = percent_decode(user).map_err(|e| invalid(format!("user name: {e}")))?;
    let password = password
        .map(|p| percent_decode(p).map_err(|e| invalid(format!("password: {e}"))))
        .transpose()?;
    Ok((
        Some(user).filter(|u| !u.is_empty()),
        password.filter(|p| !p.is_empty()).map(Password),
    ))
}

fn parse_host_port(host_port: &str) -> Result<(String, Option<u16>), Error> {
    let (host, port) = match host_port.strip_prefix('[') {
        // IPv6 literal: the port, if any, follows the closing bracket.
        Some(bracketed) => {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| invalid(format!("host '{host_port}' lacks its closing ']'")))?;
            let port = match after.strip_prefix(':') {
                Some(port) => Some(port),
                None if after.is_empty() => None,
                None => return Err(invalid(format!("unexpected '{after}' after host [{host}]"))),
            };
            (host.to_owned(), port)
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (host_port.to_owned(), None),
        },
    };
    let host = percent_decode(&host).map_err(|e| invalid(format!("host: {e}")))?;
    if host.is_empty() {
        return Err(invalid(
            "no host given; expected postgresql://host:port (e.g. postgresql://postgres:5432)"
                .into(),
        ));
    }
    let port = port.map(parse_port).transpose()?;
    Ok((host, port))
}

fn parse_port(port: &str) -> Result<u16, Error> {
    port.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| invalid(format!("port '{port}' is not a number from 1 to 65535")))
}

fn parse_dbname(path: &str) -> Result<Option<String>, Error> {
    if path.contains('/') {
        return Err(invalid(format!(
            "database name '{path}' contains '/'; write it percent-encoded (%2F)"
        )));
    }
    let name = percent_decode(path).map_err(|e| invalid(format!("database name: {e}")))?;
    Ok(Some(name).filter(|n| !n.is_empty()))
}

/// Decodes `%XX` escapes; the result must be UTF-8. Errors never repeat the
/// input, which may be a password.
fn percent_decode(s: &str) -> Result<String, String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hex = [bytes.next(), bytes.next()];
        let digit = |d: Option<u8>| d.and_then(|d| char::from(d).to_digit(16));
        match (digit(hex[0]), digit(hex[1])) {
            (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
            _ => return Err("'%' must be followed by two hex digits".into()),
        }
    }
    String::from_utf8(out).map_err(|_| "percent-encoded bytes are not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(
        host: &str,
        port: Option<u16>,
        user: Option<&str>,
        password: Option<&str>,
        db: Option<&str>,
    ) -> ServerUrl {
        ServerUrl {
            host: host.into(),
            port,
            user: user.map(Into::into),
            password: password.map(|p| Password(p.into())),
            dbname: db.map(Into::into),
            ssl: SslSettings::default(),
        }
    }

    #[test]
    fn parses_upstream_documented_forms() {
        // docker-compose.yml and Docker_README.md of the upstream worker.
        assert_eq!(
            parse_server("postgresql://postgres:secret@postgres:5432").unwrap(),
            url(
                "postgres",
                Some(5432),
                Some("postgres"),
                Some("secret"),
                None
            )
        );
        assert_eq!(
            parse_server("postgresql://mypgsql:5432").unwrap(),
            url("mypgsql", Some(5432), None, None, None)
        );
    }

    #[test]
    fn parses_full_url_with_database_and_escapes() {
        assert_eq!(
            parse_server("postgresql+psycopg2://rstuf:p%40ss%3Aw%2Fd@db.example:6543/rstuf%20db")
                .unwrap(),
            url(
                "db.example",
                Some(6543),
                Some("rstuf"),
                Some("p@ss:w/d"),
                Some("rstuf db")
            )
        );
        assert_eq!(
            parse_server("postgres://u@[::1]:5433/x").unwrap(),
            url("::1", Some(5433), Some("u"), None, Some("x"))
        );
    }

    #[test]
    fn parses_plain_forms_without_scheme() {
        assert_eq!(
            parse_server("127.0.0.1:5432/rstuf").unwrap(),
            url("127.0.0.1", Some(5432), None, None, Some("rstuf"))
        );
        assert_eq!(
            parse_server("postgres").unwrap(),
            url("postgres", None, None, None, None)
        );
        assert_eq!(
            parse_server("me:pw@localhost/").unwrap(),
            url("localhost", None, Some("me"), Some("pw"), None)
        );
    }

    #[test]
    fn rejects_what_it_cannot_use_and_says_why() {
        let reason = |s: &str| parse_server(s).unwrap_err().to_string();
        assert_eq!(
            reason("mysql+pymysql://db:3306"),
            "database setting RSTUF_DB_SERVER: scheme 'mysql+pymysql' is not supported; this \
             worker speaks PostgreSQL only (postgresql://host:port)"
        );
        assert_eq!(
            reason("postgresql://db:54x2"),
            "database setting RSTUF_DB_SERVER: port '54x2' is not a number from 1 to 65535"
        );
        assert_eq!(
            reason("postgresql://user:pw@:5432"),
            "database setting RSTUF_DB_SERVER: no host given; expected postgresql://host:port \
             (e.g. postgresql://postgres:5432)"
        );
        assert_eq!(
            reason("postgresql://db/x?connect_timeout=3"),
            "database setting RSTUF_DB_SERVER: connection option 'connect_timeout' is not \
             supported; the options are sslmode and sslrootcert"
        );
        assert_eq!(
            reason("postgresql://u:s3cr%zzet@db"),
            "database setting RSTUF_DB_SERVER: password: '%' must be followed by two hex digits"
        );
    }

    fn no_env() -> SslSettings {
        SslSettings::default()
    }

    fn tls_of(server: &str, env: &SslSettings) -> Result<Option<Tls>, String> {
        Config::from_settings(server, None, None, env)
            .map(|c| c.tls)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn sslmode_and_sslrootcert_come_from_the_url_or_libpq_variables() {
        assert_eq!(tls_of("postgresql://u@db/x", &no_env()), Ok(None));
        assert_eq!(
            tls_of("postgresql://u@db/x?sslmode=disable", &no_env()),
            Ok(None)
        );
        assert_eq!(
            tls_of(
                "postgresql://u@db/x?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
                &no_env()
            ),
            Ok(Some(Tls {
                verify: tls::Verify::Full,
                root_cert: Some("/etc/ca.pem".into())
            }))
        );
        let env = SslSettings {
            mode: Some("require".into()),
            root_cert: Some("system".into()),
        };
        assert_eq!(
            tls_of("postgresql://u@db/x", &env),
            Ok(Some(Tls {
                verify: tls::Verify::ChainOnly,
                root_cert: None
            }))
        );
        // The URL's mode wins over PGSSLMODE; PGSSLROOTCERT still applies.
        assert_eq!(
            tls_of("postgresql://u@db/x?sslmode=verify-full", &env),
            Ok(Some(Tls {
                verify: tls::Verify::Full,
                root_cert: None
            }))
        );
    }

    #[test]
    fn tls_modes_that_fall_back_to_plaintext_are_refused() {
        assert_eq!(
            tls_of("postgresql://u@db/x?sslmode=prefer", &no_env()).unwrap_err(),
            "database setting sslmode: 'prefer' is not supported: it falls back to an \
             unencrypted connection; use verify-full, verify-ca or require (all verify the \
             server's certificate), or disable"
        );
        assert!(tls_of("postgresql://u@db/x?sslmode=allow", &no_env()).is_err());
        assert_eq!(
            tls_of("postgresql://u@db/x?sslmode=verify", &no_env()).unwrap_err(),
            "database setting sslmode: 'verify' is not one of disable, require, verify-ca, \
             verify-full"
        );
        assert_eq!(
            tls_of("postgresql://u@db/x?sslrootcert=/ca.pem", &no_env()).unwrap_err(),
            "database setting sslrootcert: is set but TLS is off; add sslmode=verify-full \
             (or PGSSLMODE)"
        );
    }

    #[test]
    fn separate_user_replaces_url_credentials_and_needs_a_password() {
        let config = Config::from_settings(
            "postgresql://a:b@db:5432/rstuf",
            Some("svc"),
            Some("pw"),
            &no_env(),
        )
        .unwrap();
        assert_eq!(
            (config.user.as_str(), config.password.clone(), config.port),
            ("svc", Some(Password("pw".into())), 5432)
        );
        assert_eq!(config.server_label(), "svc@db:5432/rstuf");
        assert_eq!(
            Config::from_settings("postgresql://db", Some("svc"), None, &no_env())
                .unwrap_err()
                .to_string(),
            "database setting RSTUF_DB_PASSWORD: is required when RSTUF_DB_USER is set"
        );
    }

    #[test]
    fn url_credentials_are_used_without_separate_user() {
        let config = Config::from_settings("postgresql://a:b@db", None, None, &no_env()).unwrap();
        assert_eq!(
            (config.user.as_str(), config.password.clone(), config.port),
            ("a", Some(Password("b".into())), DEFAULT_PORT)
        );
        assert_eq!(config.server_label(), "a@db:5432/a");
        assert!(
            Config::from_settings("postgresql://db", None, None, &no_env())
                .unwrap_err()
                .to_string()
                .starts_with("database setting RSTUF_DB_USER: no database user given")
        );
    }

    #[test]
    fn pool_limits_r2d2_would_panic_on_are_refused() {
        let mut config = Config::from_settings("postgresql://a@db", None, None, &no_env()).unwrap();
        assert!(config.check_pool_limits().is_ok());
        config.pool_size = 0;
        assert_eq!(
            config.check_pool_limits().unwrap_err().to_string(),
            "database setting pool size: must be at least 1"
        );
        config.pool_size = 1;
        config.checkout_timeout = Duration::ZERO;
        assert_eq!(
            config.check_pool_limits().unwrap_err().to_string(),
            "database setting pool checkout timeout: must be longer than zero"
        );
    }

    #[test]
    fn debug_output_hides_the_password() {
        let config =
            Config::from_settings("postgresql://a:hunter2@db", None, None, &no_env()).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
