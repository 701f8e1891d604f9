//! The one error type of the settings store.
use std::fmt;

use super::codec::CodecError;

/// Longest stored value quoted in a message (`TRUSTED_ROOT` is kilobytes).
const QUOTE_LIMIT: usize = 80;

#[derive(Debug)]
pub enum Error {
    /// `RSTUF_REDIS_SERVER` (or the values built from it) is not usable.
    Config { server: String, reason: String },
    /// Redis did not answer or refused a command.
    Redis {
        server: String,
        action: String,
        source: redis::RedisError,
    },
    /// A stored field that cannot be read (or a value that cannot be written).
    Value {
        holder: String,
        field: String,
        raw: Option<String>,
        problem: CodecError,
    },
    /// A field holds a different kind of value than the worker needs.
    WrongType {
        holder: String,
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    /// A JSON setting does not have the shape the worker needs, or a Rust
    /// value could not be turned into JSON.
    Json { field: String, reason: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config { server, reason } => write!(
                f,
                "settings store: Redis server {server:?} is not usable ({reason}); set \
                 RSTUF_REDIS_SERVER to redis://host or redis://[:password@]host[:port][/db]"
            ),
            Error::Redis {
                server,
                action,
                source,
            } => write!(
                f,
                "settings store {server}: {action} failed: {source}; check that Redis is \
                 reachable and RSTUF_REDIS_SERVER/RSTUF_REDIS_SERVER_PORT are right"
            ),
            Error::Value {
                holder,
                field,
                raw: Some(raw),
                problem,
            } => write!(
                f,
                "setting {field} in Redis hash {holder} = {:?} cannot be used: {problem}",
                quote(raw)
            ),
            Error::Value {
                holder,
                field,
                raw: None,
                problem,
            } => {
                write!(
                    f,
                    "setting {field} cannot be written to Redis hash {holder}: {problem}"
                )
            }
            Error::WrongType {
                holder,
                field,
                expected,
                found,
            } => write!(
                f,
                "setting {field} in Redis hash {holder} holds a Python {found} where \
                 {expected} is needed; fix the stored value"
            ),
            Error::Json { field, reason } => {
                write!(
                    f,
                    "setting {field} does not have the expected JSON shape: {reason}"
                )
            }
        }
    }
}

fn quote(raw: &str) -> String {
    match raw.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{}…", &raw[..cut]),
        None => raw.to_owned(),
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Redis { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_shortened_in_messages() {
        let err = Error::Value {
            holder: "DYNACONF_MAIN".into(),
            field: "TRUSTED_ROOT".into(),
            raw: Some(format!("@json {}", "x".repeat(500))),
            problem: CodecError::BadConverterValue {
                converter: "@json",
                reason: "eof".into(),
            },
        };
        let text = err.to_string();
        assert!(text.starts_with("setting TRUSTED_ROOT in Redis hash DYNACONF_MAIN = \"@json xxx"));
        assert!(text.contains("x…\" cannot be used: its @json value cannot be converted: eof"));
        assert!(text.len() < 200, "{text}");
    }
}
