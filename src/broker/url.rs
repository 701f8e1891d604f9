//! Broker URLs as upstream's `RSTUF_BROKER_SERVER` holds them, read the way
//! kombu reads them, so a deployment keeps its value when it swaps workers.
use std::fmt;
use std::time::Duration;

use amiquip::{Auth, ConnectionOptions};
use redis::{ConnectionAddr, ConnectionInfo, ProtocolVersion, RedisConnectionInfo};

use super::Error;

/// Which transport a broker URL selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerUrl {
    Amqp(AmqpUrl),
    /// Celery's Redis transport (kombu's `redis://`).
    Redis(RedisUrl),
}

impl BrokerUrl {
    /// The AMQP URL, or an error an operator can act on for any other transport.
    pub fn into_amqp(self) -> Result<AmqpUrl, Error> {
        match self {
            BrokerUrl::Amqp(url) => Ok(url),
            BrokerUrl::Redis(url) => Err(Error::UnsupportedBroker {
                url: url.to_string(),
                reason: "this needs RabbitMQ (amqp://user:password@host:5672//), not a Redis \
                         broker"
                    .into(),
            }),
        }
    }
}

impl From<AmqpUrl> for BrokerUrl {
    fn from(url: AmqpUrl) -> Self {
        BrokerUrl::Amqp(url)
    }
}

impl From<RedisUrl> for BrokerUrl {
    fn from(url: RedisUrl) -> Self {
        BrokerUrl::Redis(url)
    }
}

/// Safe to log: the password never appears.
impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerUrl::Amqp(url) => url.fmt(f),
            BrokerUrl::Redis(url) => url.fmt(f),
        }
    }
}

/// A `redis://` broker as kombu reads it: `redis://[[user]:password@]host[:port][/db]`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    tls: bool,
    username: Option<String>,
    password: Option<String>,
    host: String,
    port: u16,
    db: i64,
}

const REDIS_DEFAULT_PORT: u16 = 6379;

/// An `amqp://` broker: credentials, address and vhost, all decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct AmqpUrl {
    tls: bool,
    user: String,
    password: String,
    host: String,
    port: u16,
    vhost: String,
    params: Vec<(String, String)>,
}

/// Query parameters amiquip understands; kombu's others would make it refuse to connect.
const SUPPORTED_PARAMS: [&str; 3] = ["heartbeat", "connection_timeout", "channel_max"];
const DEFAULT_PORT: u16 = 5672;
const DEFAULT_TLS_PORT: u16 = 5671;

/// Reads a broker URL. A value without a scheme (`guest:guest@rabbitmq:5672`)
/// means `amqp://`; `pyamqp://` is kombu's alias for it.
pub fn parse_broker_url(raw: &str) -> Result<BrokerUrl, Error> {
    let raw = raw.trim();
    let (scheme, rest) = raw.split_once("://").unwrap_or(("amqp", raw));
    match scheme.to_ascii_lowercase().as_str() {
        "amqp" | "pyamqp" => parse_amqp(raw, rest, false).map(BrokerUrl::Amqp),
        "amqps" => parse_amqp(raw, rest, true).map(BrokerUrl::Amqp),
        "redis" => parse_redis(raw, rest, false).map(BrokerUrl::Redis),
        "rediss" => parse_redis(raw, rest, true).map(BrokerUrl::Redis),
        other => Err(unsupported(
            raw,
            &format!(
                "unknown scheme {other:?}; use amqp:// or amqps:// (RabbitMQ), or redis:// \
                 or rediss://"
            ),
        )),
    }
}

fn unsupported(raw: &str, reason: &str) -> Error {
    Error::UnsupportedBroker {
        url: redact_raw(raw),
        reason: reason.to_owned(),
    }
}

const AMQP_FORM: &str = "amqp://user:password@host:port/vhost";
const REDIS_FORM: &str = "redis://[:password@]host[:port][/db]";

fn invalid(raw: &str, reason: String) -> Error {
    invalid_as(raw, AMQP_FORM, reason)
}

fn invalid_as(raw: &str, expected: &'static str, reason: String) -> Error {
    Error::InvalidUrl {
        url: redact_raw(raw),
        reason,
        expected,
    }
}

/// `rest` is everything after `scheme://`.
fn parse_amqp(raw: &str, rest: &str, tls: bool) -> Result<AmqpUrl, Error> {
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, authority),
    };
    let (user, password) = match userinfo.map(|u| u.split_once(':').unwrap_or((u, ""))) {
        Some((user, password)) => (
            decode_or_default(raw, user, "user")?,
            decode_or_default(raw, password, "password")?,
        ),
        None => ("guest".to_owned(), "guest".to_owned()),
    };
    let default_port = if tls { DEFAULT_TLS_PORT } else { DEFAULT_PORT };
    let (host, port) =
        split_host_port(hostport, default_port).map_err(|reason| invalid(raw, reason))?;
    let vhost = percent_decode(path).map_err(|reason| invalid(raw, format!("vhost {reason}")))?;
    Ok(AmqpUrl {
        tls,
        user,
        password,
        host,
        port,
        // kombu: no path, `/` and `//` all mean the default vhost.
        vhost: if vhost.is_empty() { "/".into() } else { vhost },
        params: parse_params(query).map_err(|reason| invalid(raw, reason))?,
    })
}

/// kombu and amiquip both log in as guest/guest when the URL names nobody.
fn decode_or_default(raw: &str, part: &str, what: &str) -> Result<String, Error> {
    match percent_decode(part).map_err(|reason| invalid(raw, format!("{what} {reason}")))? {
        empty if empty.is_empty() => Ok("guest".into()),
        decoded => Ok(decoded),
    }
}

/// `rest` is everything after `scheme://`. kombu takes the path as the
/// database number and knows no query parameters a worker would need.
fn parse_redis(raw: &str, rest: &str, tls: bool) -> Result<RedisUrl, Error> {
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !query.is_empty() {
        return Err(invalid_as(
            raw,
            REDIS_FORM,
            format!("query parameters ({query:?}) are not supported for a Redis broker"),
        ));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, authority),
    };
    let decode = |part: &str, what: &str| {
        percent_decode(part)
            .map(non_empty)
            .map_err(|r| invalid_as(raw, REDIS_FORM, format!("{what} {r}")))
    };
    let (username, password) = match userinfo.map(|u| u.split_once(':').unwrap_or((u, ""))) {
        Some((user, password)) => (decode(user, "user")?, decode(password, "password")?),
        None => (None, None),
    };
    let (host, port) = split_host_port(hostport, REDIS_DEFAULT_PORT)
        .map_err(|reason| invalid_as(raw, REDIS_FORM, reason))?;
    let db = match path.trim_matches('/') {
        "" => 0,
        db => db.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            invalid_as(
                raw,
                REDIS_FORM,
                format!("database {db:?} is not a number (0, 1, …)"),
            )
        })?,
    };
    Ok(RedisUrl {
        tls,
        username,
        password,
        host,
        port,
        db,
    })
}

fn non_empty(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
}

impl RedisUrl {
    /// Where the redis crate connects; `rediss://` verifies the server's
    /// certificate against the system's CAs or `SSL_CERT_FILE`.
    pub fn connection_info(&self) -> ConnectionInfo {
        let addr = if self.tls {
            ConnectionAddr::TcpTls {
                host: self.host.clone(),
                port: self.port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(self.host.clone(), self.port)
        };
        ConnectionInfo {
            addr,
            redis: RedisConnectionInfo {
                db: self.db,
                username: self.username.clone(),
                password: self.password.clone(),
                protocol: ProtocolVersion::RESP2,
            },
        }
    }
}

/// Safe to log: the password never appears.
impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let user = self
            .username
            .as_deref()
            .map(percent_encode)
            .unwrap_or_default();
        let auth = match (user.is_empty(), self.password.is_some()) {
            (_, true) => format!("{user}:***@"),
            (false, false) => format!("{user}@"),
            (true, false) => String::new(),
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "{scheme}://{auth}{host}:{}/{}", self.port, self.db)
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

fn split_host_port(hostport: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("IPv6 host {hostport:?} lacks its closing ']'"))?;
            (host, after.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        },
    };
    let port = match port {
        None | Some("") => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("port {p:?} is not a number from 1 to 65535"))?,
    };
    let host = if host.is_empty() { "localhost" } else { host };
    Ok((host.to_owned(), port))
}

fn parse_params(query: &str) -> Result<Vec<(String, String)>, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !SUPPORTED_PARAMS.contains(&key) {
                return Err(format!(
                    "query parameter {key:?} is not supported (only {})",
                    SUPPORTED_PARAMS.join(", ")
                ));
            }
            value
                .parse::<u64>()
                .map_err(|_| format!("query parameter {key}={value:?} is not a whole number"))?;
            Ok((key.to_owned(), value.to_owned()))
        })
        .collect()
}

impl AmqpUrl {
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn user(&self) -> &str {
        &self.user
    }

    pub(crate) fn password(&self) -> &str {
        &self.password
    }

    pub fn vhost(&self) -> &str {
        &self.vhost
    }

    /// `amqps://`: TLS from the first byte.
    pub(crate) fn tls(&self) -> bool {
        self.tls
    }

    /// amiquip's options for this URL: its user, password and vhost, a
    /// handshake timeout, and the query parameters amiquip knows.
    pub(crate) fn options(&self, connect_timeout: Duration) -> ConnectionOptions<Auth> {
        let mut options = ConnectionOptions::default()
            .auth(Auth::Plain {
                username: self.user.clone(),
                password: self.password.clone(),
            })
            .virtual_host(self.vhost.clone())
            .connection_timeout(Some(connect_timeout));
        // parse_params checked that each value is a whole number.
        for (key, value) in &self.params {
            let number = value.parse::<u64>().unwrap_or_default();
            let small = u16::try_from(number).unwrap_or(u16::MAX);
            options = match key.as_str() {
                "heartbeat" => options.heartbeat(small),
                "channel_max" => options.channel_max(small),
                "connection_timeout" => {
                    options.connection_timeout(Some(Duration::from_millis(number)))
                }
                _ => options,
            };
        }
        options
    }

    /// `text` with this URL's password hidden wherever the URL appears in it.
    pub(crate) fn redact(&self, text: &str) -> String {
        let user = percent_encode(&self.user);
        text.replace(
            &format!("{user}:{}@", percent_encode(&self.password)),
            &format!("{user}:***@"),
        )
    }

    fn address_and_vhost(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{host}:{}/{}", self.port, percent_encode(&self.vhost))
    }
}

/// Safe to log: the password never appears.
impl fmt::Display for AmqpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}:***@{}",
            if self.tls { "amqps" } else { "amqp" },
            percent_encode(&self.user),
            self.address_and_vhost()
        )
    }
}

impl fmt::Debug for AmqpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AmqpUrl({self})")
    }
}

/// Hides the password of a URL we could not parse, for error messages.
fn redact_raw(raw: &str) -> String {
    let (prefix, rest) = match raw.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), raw),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, _)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let after_at = &rest[userinfo.len()..];
            format!("{prefix}{user}:***{after_at}")
        }
        _ => raw.to_owned(),
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            // Like Python's unquote: a stray `%` stays as it is.
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once %-decoded"))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amqp(raw: &str) -> AmqpUrl {
        parse_broker_url(raw).unwrap().into_amqp().unwrap()
    }

    fn parts(url: &AmqpUrl) -> (&str, &str, &str, u16, &str) {
        (&url.user, &url.password, &url.host, url.port, &url.vhost)
    }

    #[test]
    fn vhosts_follow_kombu() {
        // Same inputs and results as kombu 5.6.2's Connection(url).virtual_host.
        for (raw, vhost) in [
            ("amqp://h/", "/"),
            ("amqp://h//", "/"),
            ("amqp://h", "/"),
            ("amqp://h/foo", "foo"),
            ("amqp://h/%2Ffoo", "/foo"),
            ("amqp://h/a/b", "a/b"),
        ] {
            assert_eq!(amqp(raw).vhost(), vhost, "{raw}");
        }
    }

    #[test]
    fn credentials_host_and_port() {
        assert_eq!(
            parts(&amqp("amqp://u:p%40x@h:1234/v%2F1")),
            ("u", "p@x", "h", 1234, "v/1")
        );
        assert_eq!(
            parts(&amqp("amqp://guest:guest@127.0.0.1:5672//")),
            ("guest", "guest", "127.0.0.1", 5672, "/")
        );
        assert_eq!(
            parts(&amqp("amqp://[::1]:5673/")),
            ("guest", "guest", "::1", 5673, "/")
        );
        assert_eq!(
            parts(&amqp("amqp://")),
            ("guest", "guest", "localhost", 5672, "/")
        );
        assert_eq!(
            parts(&amqp("PyAMQP://me@rabbit")),
            ("me", "guest", "rabbit", 5672, "/")
        );
    }

    #[test]
    fn value_without_scheme_means_amqp() {
        assert_eq!(
            parts(&amqp("guest:guest@rabbitmq:5672")),
            ("guest", "guest", "rabbitmq", 5672, "/")
        );
    }

    #[test]
    fn amqps_uses_tls_on_port_5671_with_the_same_options() {
        let url = amqp("amqps://u:p%2Fw@h/v?heartbeat=30");
        assert!(url.tls());
        assert_eq!(url.port(), 5671);
        assert_eq!(url.to_string(), "amqps://u:***@h:5671/v");
        assert_eq!(
            url.options(Duration::from_secs(10)),
            ConnectionOptions::default()
                .auth(Auth::Plain {
                    username: "u".into(),
                    password: "p/w".into()
                })
                .virtual_host("v")
                .connection_timeout(Some(Duration::from_secs(10)))
                .heartbeat(30)
        );
        assert!(!amqp("amqp://h").tls());
        assert_eq!(amqp("amqps://h:5999").port(), 5999);
    }

    #[test]
    fn display_hides_password() {
        let url = amqp("amqp://admin:s3cret@rabbit:5672/prod");
        assert_eq!(url.to_string(), "amqp://admin:***@rabbit:5672/prod");
        assert_eq!(
            format!("{url:?}"),
            "AmqpUrl(amqp://admin:***@rabbit:5672/prod)"
        );
    }

    #[test]
    fn redact_hides_the_password_in_amiquips_messages() {
        let url = amqp("amqp://admin:s%40cret@rabbit:5672/prod");
        let amiquip = "failed to connect to amqp://admin:s%40cret@rabbit:5672/prod?heartbeat=5";
        assert_eq!(
            url.redact(amiquip),
            "failed to connect to amqp://admin:***@rabbit:5672/prod?heartbeat=5"
        );
    }

    fn redis(raw: &str) -> RedisUrl {
        match parse_broker_url(raw).unwrap() {
            BrokerUrl::Redis(url) => url,
            other => panic!("{raw} is not a Redis URL: {other:?}"),
        }
    }

    #[test]
    fn redis_urls_follow_kombu() {
        let info = redis("redis://:p%40w@cache:6380/5").connection_info();
        assert_eq!(info.addr, ConnectionAddr::Tcp("cache".into(), 6380));
        assert_eq!(
            (info.redis.db, info.redis.username, info.redis.password),
            (5, None, Some("p@w".into()))
        );
        let info = redis("redis://u:pw@h").connection_info();
        assert_eq!(info.addr, ConnectionAddr::Tcp("h".into(), 6379));
        assert_eq!(
            (info.redis.db, info.redis.username.as_deref()),
            (0, Some("u"))
        );
        let info = redis("redis://").connection_info();
        assert_eq!(info.addr, ConnectionAddr::Tcp("localhost".into(), 6379));
        assert_eq!(redis("redis://h/").connection_info().redis.db, 0);
    }

    #[test]
    fn redis_urls_print_without_password() {
        assert_eq!(
            redis("redis://:s3cret@redis:6379/2").to_string(),
            "redis://:***@redis:6379/2"
        );
        assert_eq!(redis("redis://u@h").to_string(), "redis://u@h:6379/0");
        assert_eq!(
            format!("{:?}", BrokerUrl::from(redis("redis://h/1"))),
            "Redis(RedisUrl(redis://h:6379/1))"
        );
    }

    #[test]
    fn redis_url_problems_are_named() {
        let err = |raw: &str| parse_broker_url(raw).unwrap_err().to_string();
        assert_eq!(
            err("redis://:pw@h/x"),
            "broker URL \"redis://:***@h/x\" is invalid: database \"x\" is not a number (0, 1, …); \
             expected redis://[:password@]host[:port][/db]"
        );
        assert!(err("redis://h/0?ssl_cert_reqs=none").contains("query parameters"));
        assert!(matches!(
            redis("rediss://:pw@h:6380/0").connection_info().addr,
            ConnectionAddr::TcpTls { insecure: false, ref host, port: 6380, .. } if host == "h"
        ));
        assert_eq!(
            BrokerUrl::from(redis("redis://h"))
                .into_amqp()
                .unwrap_err()
                .to_string(),
            "broker URL \"redis://h:6379/0\" is not supported: this needs RabbitMQ \
             (amqp://user:password@host:5672//), not a Redis broker"
        );
    }

    #[test]
    fn rejects_what_amiquip_cannot_use() {
        let err = |raw: &str| parse_broker_url(raw).unwrap_err().to_string();
        assert_eq!(
            err("kafka://h"),
            "broker URL \"kafka://h\" is not supported: unknown scheme \"kafka\"; use amqp:// or \
             amqps:// (RabbitMQ), or redis:// or rediss://"
        );
        assert_eq!(
            err("amqp://u:pw@h:99999//"),
            "broker URL \"amqp://u:***@h:99999//\" is invalid: port \"99999\" is not a number \
             from 1 to 65535; expected amqp://user:password@host:port/vhost"
        );
        assert_eq!(
            err("amqp://h/?ssl=1"),
            "broker URL \"amqp://h/?ssl=1\" is invalid: query parameter \"ssl\" is not supported \
             (only heartbeat, connection_timeout, channel_max); expected \
             amqp://user:password@host:port/vhost"
        );
        assert_eq!(
            err("amqp://h/?heartbeat=x"),
            "broker URL \"amqp://h/?heartbeat=x\" is invalid: query parameter heartbeat=\"x\" is \
             not a whole number; expected amqp://user:password@host:port/vhost"
        );
        assert_eq!(
            err("amqp://h/%ff"),
            "broker URL \"amqp://h/%ff\" is invalid: vhost \"%ff\" is not UTF-8 once %-decoded; \
             expected amqp://user:password@host:port/vhost"
        );
    }

    #[test]
    fn stray_percent_is_kept() {
        assert_eq!(amqp("amqp://u:50%@h/").password, "50%");
    }
}
