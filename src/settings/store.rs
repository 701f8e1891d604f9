//! The repository settings hash in Redis, shared with the Python API (and
//! any Python workers) through dynaconf's redis loader.
//!
//! Every read goes to Redis: the API and other workers write at any time,
//! so a cached value would be a stale one. Writes set only the field that
//! changes (`HSET <PREFIX>_MAIN FIELD value`), which avoids Python's
//! whole-hash rewrite and its lost updates.
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use redis::{ConnectionInfo, IntoConnectionInfo};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::bootstrap::BootstrapState;
use super::codec::{decode, decode_fresh, encode};
use super::error::Error;
use super::value::SettingValue;
use crate::redis_link::{redact_url, RedisLink};

/// `RSTUF_REDIS_SERVER_PORT` default.
pub const DEFAULT_PORT: u16 = 6379;
/// `RSTUF_REDIS_SERVER_DB_REPO_SETTINGS` default.
pub const DEFAULT_DB: i64 = 1;
/// dynaconf's `ENVVAR_PREFIX_FOR_DYNACONF`, which names the hashes.
pub const DEFAULT_PREFIX: &str = "DYNACONF";

const BOOTSTRAP: &str = "BOOTSTRAP";

/// Where the settings live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsConfig {
    /// `RSTUF_REDIS_SERVER`: upstream's `redis://host`, or a full URL
    /// `redis://[[user]:password@]host[:port][/db]`.
    pub server: String,
    /// Used when `server` names no port.
    pub port: u16,
    /// Used when `server` names no database.
    pub db: i64,
    /// Hash name prefix: production `DYNACONF` (hashes `DYNACONF_MAIN`, ...).
    pub prefix: String,
}

impl SettingsConfig {
    /// Upstream defaults for everything but the server.
    pub fn new(server: impl Into<String>) -> Self {
        SettingsConfig {
            server: server.into(),
            port: DEFAULT_PORT,
            db: DEFAULT_DB,
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }
}

/// A setting's field name: dynaconf's `upperfy` (upper case, except the
/// parts after a `__`, which dynaconf keeps for nested keys).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SettingName(String);

impl SettingName {
    pub fn new(name: &str) -> Self {
        match name.split_once("__") {
            Some((head, nested)) => SettingName(format!("{}__{nested}", head.to_uppercase())),
            None => SettingName(name.to_uppercase()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SettingName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every field a full load sees, each decoded or with the reason it cannot be.
pub type FullLoad = BTreeMap<SettingName, Result<SettingValue, Error>>;

/// The hashes dynaconf reads, in the order in which a later one overrides
/// an earlier one, and the one it writes.
///
/// dynaconf visits `P_P, P_DEFAULT, P_P, P_MAIN, P_GLOBAL` (the prefix is
/// both prepended and listed as the legacy global env), so `P_P` ends up
/// overriding `P_DEFAULT`.
#[derive(Debug, Clone)]
struct Holders {
    read: [String; 4],
    write: String,
}

impl Holders {
    fn new(prefix: &str) -> Self {
        let p = prefix.to_uppercase();
        let write = format!("{p}_MAIN");
        Holders {
            read: [
                format!("{p}_DEFAULT"),
                format!("{p}_{p}"),
                write.clone(),
                format!("{p}_GLOBAL"),
            ],
            write,
        }
    }
}

/// A connection to the settings hash. One per thread (methods take `&mut`).
pub struct SettingsStore {
    link: RedisLink,
    holders: Holders,
}

impl SettingsStore {
    /// Connects and checks that Redis answers.
    pub fn connect(config: &SettingsConfig) -> Result<Self, Error> {
        let info = connection_info(config)?;
        let link = RedisLink::new(info).map_err(|e| config_error(config, e.to_string()))?;
        let mut store = SettingsStore {
            link,
            holders: Holders::new(&config.prefix),
        };
        store.run("PING", |c| redis::cmd("PING").query::<()>(c))?;
        Ok(store)
    }

    /// dynaconf's `get_fresh`: `None` when the field is absent, empty or
    /// holds a falsy value (False, 0, 0.0, "", [], {}, None); callers apply
    /// their default. A field that cannot be decoded is an error (Python
    /// would silently use the default).
    pub fn get_fresh(&mut self, name: &SettingName) -> Result<Option<SettingValue>, Error> {
        Ok(self.get_fresh_located(name)?.map(|(_, value)| value))
    }

    pub fn get_fresh_int(&mut self, name: &SettingName) -> Result<Option<i64>, Error> {
        self.get_fresh_as(name, "an int", |v| match v {
            SettingValue::Int(n) => Ok(n),
            other => Err(other),
        })
    }

    /// Only ever `Some(true)`: a stored False reads as absent.
    pub fn get_fresh_bool(&mut self, name: &SettingName) -> Result<Option<bool>, Error> {
        self.get_fresh_as(name, "a bool", |v| match v {
            SettingValue::Bool(b) => Ok(b),
            other => Err(other),
        })
    }

    pub fn get_fresh_str(&mut self, name: &SettingName) -> Result<Option<String>, Error> {
        self.get_fresh_as(name, "a str", |v| match v {
            SettingValue::Str(s) => Ok(s),
            other => Err(other),
        })
    }

    /// A dict or list setting as a Rust value.
    pub fn get_fresh_json<T: DeserializeOwned>(
        &mut self,
        name: &SettingName,
    ) -> Result<Option<T>, Error> {
        let value = self.get_fresh_as(name, "a dict or list", |v| match v {
            SettingValue::Dict(_) | SettingValue::List(_) => Ok(v),
            other => Err(other),
        })?;
        value
            .map(|v| v.deserialize_into().map_err(|e| json_error(name, e)))
            .transpose()
    }

    pub fn bootstrap_state(&mut self) -> Result<BootstrapState, Error> {
        let stored = self.get_fresh_str(&SettingName::new(BOOTSTRAP))?;
        Ok(BootstrapState::parse(stored.as_deref()))
    }

    /// Every field of every hash dynaconf reads, later hashes overriding
    /// earlier ones, falsy values included (Python's `settings.reload()`).
    pub fn load_all(&mut self) -> Result<FullLoad, Error> {
        let holders = self.holders.read.clone();
        let hashes: Vec<HashMap<String, String>> = self.run("HGETALL", |c| {
            let mut pipe = redis::pipe();
            for holder in &holders {
                pipe.hgetall(holder);
            }
            pipe.query(c)
        })?;
        let mut all = FullLoad::new();
        for (holder, hash) in holders.iter().zip(hashes) {
            for (field, raw) in hash {
                let value = decode(&raw).map_err(|problem| Error::Value {
                    holder: holder.clone(),
                    field: field.clone(),
                    raw: Some(raw.clone()),
                    problem,
                });
                all.insert(SettingName::new(&field), value);
            }
        }
        Ok(all)
    }

    pub fn set(&mut self, name: &SettingName, value: &SettingValue) -> Result<(), Error> {
        let holder = self.holders.write.clone();
        let encoded = encode(value).map_err(|problem| Error::Value {
            holder: holder.clone(),
            field: name.to_string(),
            raw: None,
            problem,
        })?;
        self.run(&format!("HSET {holder} {name}"), |c| {
            redis::cmd("HSET")
                .arg(&holder)
                .arg(name.as_str())
                .arg(&encoded)
                .query::<()>(c)
        })
    }

    /// Stores a Rust value as a dict/list setting, struct fields in
    /// declaration order (as python-tuf's `to_dict` would give them).
    pub fn set_json<T: Serialize + ?Sized>(
        &mut self,
        name: &SettingName,
        value: &T,
    ) -> Result<(), Error> {
        let value = SettingValue::from_serialize(value).map_err(|e| json_error(name, e))?;
        self.set(name, &value)
    }

    pub fn set_bootstrap_state(&mut self, state: &BootstrapState) -> Result<(), Error> {
        let value = state
            .to_stored()
            .map_or(SettingValue::None, SettingValue::Str);
        self.set(&SettingName::new(BOOTSTRAP), &value)
    }

    /// The winning truthy value and the hash it came from.
    fn get_fresh_located(
        &mut self,
        name: &SettingName,
    ) -> Result<Option<(String, SettingValue)>, Error> {
        let holders = self.holders.read.clone();
        let raws: Vec<Option<String>> = self.run(&format!("HGET {name}"), |c| {
            let mut pipe = redis::pipe();
            for holder in &holders {
                pipe.hget(holder, name.as_str());
            }
            pipe.query(c)
        })?;
        let mut found = None;
        for (holder, raw) in holders.into_iter().zip(raws) {
            let Some(raw) = raw else { continue };
            match decode_fresh(&raw) {
                Ok(Some(value)) => found = Some((holder, value)),
                Ok(None) => {}
                Err(problem) => {
                    let field = name.to_string();
                    return Err(Error::Value {
                        holder,
                        field,
                        raw: Some(raw),
                        problem,
                    });
                }
            }
        }
        Ok(found)
    }

    fn get_fresh_as<T>(
        &mut self,
        name: &SettingName,
        expected: &'static str,
        pick: impl FnOnce(SettingValue) -> Result<T, SettingValue>,
    ) -> Result<Option<T>, Error> {
        let Some((holder, value)) = self.get_fresh_located(name)? else {
            return Ok(None);
        };
        pick(value).map(Some).map_err(|other| Error::WrongType {
            holder,
            field: name.to_string(),
            expected,
            found: other.python_type(),
        })
    }

    fn run<T>(
        &mut self,
        action: &str,
        op: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, Error> {
        self.link.run(op).map_err(|source| Error::Redis {
            server: self.link.label().to_owned(),
            action: action.to_owned(),
            source,
        })
    }
}

/// Completes upstream's host-only `redis://host` with port and db, and
/// keeps whatever a full URL says.
fn connection_info(config: &SettingsConfig) -> Result<ConnectionInfo, Error> {
    let mut url = redis::parse_redis_url(&config.server)
        .ok_or_else(|| config_error(config, "not a redis:// URL".into()))?;
    if url.port().is_none() {
        url.set_port(Some(config.port))
            .map_err(|()| config_error(config, "this URL cannot have a port".into()))?;
    }
    if url.path().trim_matches('/').is_empty() {
        url.set_path(&format!("/{}", config.db));
    }
    url.into_connection_info()
        .map_err(|e| config_error(config, e.to_string()))
}

fn config_error(config: &SettingsConfig, reason: String) -> Error {
    Error::Config {
        server: redact_url(&config.server),
        reason,
    }
}

fn json_error(name: &SettingName, e: serde_json::Error) -> Error {
    Error::Json {
        field: name.to_string(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::codec::tests::read_vector;
    use crate::settings::codec::CodecError;
    use crate::testutil;
    use serde::Deserialize;
    use serde_json::{json, Value};

    /// Redis database for settings tests; every test uses its own prefix.
    const TEST_DB: i64 = 13;

    /// A store over hashes no other test touches, deleted afterwards.
    struct Scratch {
        store: SettingsStore,
        prefix: String,
        raw: redis::Connection,
    }

    impl Scratch {
        fn new() -> Self {
            let prefix = testutil::unique_name("RSTUFTEST").to_uppercase();
            let mut config = SettingsConfig::new("redis://127.0.0.1");
            config.db = TEST_DB;
            config.prefix = prefix.clone();
            let store = SettingsStore::connect(&config).unwrap();
            let raw = redis::Client::open(format!("redis://127.0.0.1/{TEST_DB}"))
                .unwrap()
                .get_connection()
                .unwrap();
            Scratch { store, prefix, raw }
        }

        fn hash(&self, env: &str) -> String {
            format!("{}_{env}", self.prefix)
        }

        fn hset(&mut self, env: &str, field: &str, raw: &str) {
            let hash = self.hash(env);
            redis::cmd("HSET")
                .arg(hash)
                .arg(field)
                .arg(raw)
                .query::<()>(&mut self.raw)
                .unwrap();
        }

        fn hget(&mut self, field: &str) -> Option<String> {
            let hash = self.hash("MAIN");
            redis::cmd("HGET")
                .arg(hash)
                .arg(field)
                .query(&mut self.raw)
                .unwrap()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let prefix = self.prefix.clone();
            let envs = ["DEFAULT", "MAIN", "GLOBAL", "DEVELOPMENT", &prefix];
            let hashes: Vec<String> = envs.iter().map(|env| self.hash(env)).collect();
            let _ = redis::cmd("DEL").arg(hashes).query::<()>(&mut self.raw);
        }
    }

    fn name(s: &str) -> SettingName {
        SettingName::new(s)
    }

    #[test]
    fn names_are_upperfied_like_dynaconf() {
        assert_eq!(name("dev_expiration").as_str(), "DEV_EXPIRATION");
        assert_eq!(name("foo__bar__ZAZ").as_str(), "FOO__bar__ZAZ");
        assert_eq!(
            name("DOTTED.ROLE_expiration").as_str(),
            "DOTTED.ROLE_EXPIRATION"
        );
    }

    #[test]
    fn upstream_host_only_server_gets_port_and_db() {
        let info = connection_info(&SettingsConfig::new("redis://redis")).unwrap();
        assert_eq!(info.addr.to_string(), "redis:6379");
        assert_eq!(info.redis.db, 1);
        let mut config = SettingsConfig::new("redis://:pw@cache:6380/5");
        config.port = 7000;
        let info = connection_info(&config).unwrap();
        assert_eq!(
            (info.addr.to_string(), info.redis.db),
            ("cache:6380".into(), 5)
        );
        assert_eq!(info.redis.password.as_deref(), Some("pw"));
        let err = connection_info(&SettingsConfig::new("redis-host")).unwrap_err();
        assert!(
            err.to_string().contains("\"redis-host\" is not usable"),
            "{err}"
        );
        let err = connection_info(&SettingsConfig::new("http://u:pw@host")).unwrap_err();
        assert!(
            err.to_string()
                .contains("\"http://***@host\" is not usable"),
            "{err}"
        );
    }

    #[test]
    fn an_unreachable_server_is_named_in_the_error() {
        let mut config = SettingsConfig::new("redis://127.0.0.1");
        config.port = 1;
        let err = SettingsStore::connect(&config).err().unwrap();
        assert!(err
            .to_string()
            .starts_with("settings store redis://127.0.0.1:1/1: PING failed"));
    }

    #[test]
    fn written_values_are_stored_encoded_and_read_back() {
        let mut s = Scratch::new();
        let delegations: SettingValue =
            serde_json::from_str(r#"{"keys": {}, "roles": [{"name": "dev", "paths": ["dev/*"]}]}"#)
                .unwrap();
        let values = [
            ("ROOT_EXPIRATION", SettingValue::Int(365)),
            ("TARGETS_ONLINE_KEY", SettingValue::Bool(true)),
            ("DELEGATIONS", delegations),
            ("ROOT_SIGNING", SettingValue::None),
            ("TASK", SettingValue::Str("12345".into())),
            ("ZERO", SettingValue::Int(0)),
        ];
        for (field, value) in &values {
            s.store.set(&name(field), value).unwrap();
        }
        assert_eq!(s.hget("ROOT_EXPIRATION").as_deref(), Some("@int 365"));
        assert_eq!(
            s.hget("DELEGATIONS").as_deref(),
            Some(r#"@json {"keys": {}, "roles": [{"name": "dev", "paths": ["dev/*"]}]}"#)
        );
        assert_eq!(s.hget("ROOT_SIGNING").as_deref(), Some("@none "));
        assert_eq!(s.hget("TASK").as_deref(), Some("@str 12345"));
        let all = s.store.load_all().unwrap();
        for (field, value) in &values {
            assert_eq!(all[&name(field)].as_ref().unwrap(), value, "{field}");
            let fresh = s.store.get_fresh(&name(field)).unwrap();
            assert_eq!(
                fresh.as_ref(),
                Some(value).filter(|v| v.is_truthy()),
                "{field}"
            );
        }
    }

    #[test]
    fn typed_getters_check_the_kind_and_apply_the_falsy_rule() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Delegations {
            roles: Vec<String>,
        }
        let mut s = Scratch::new();
        s.hset("MAIN", "N", "30");
        s.hset("MAIN", "OFF", "@bool False");
        s.hset("MAIN", "ON", "@bool True");
        s.hset("MAIN", "TEXT", "pre-abc");
        s.hset("MAIN", "DELEGATIONS", r#"@json {"roles": ["a", "b"]}"#);
        s.hset("MAIN", "EMPTY", "@json {}");
        assert_eq!(s.store.get_fresh_int(&name("n")).unwrap(), Some(30));
        assert_eq!(s.store.get_fresh_bool(&name("OFF")).unwrap(), None);
        assert_eq!(s.store.get_fresh_bool(&name("ON")).unwrap(), Some(true));
        assert_eq!(
            s.store.get_fresh_str(&name("TEXT")).unwrap().as_deref(),
            Some("pre-abc")
        );
        assert_eq!(s.store.get_fresh_str(&name("MISSING")).unwrap(), None);
        let delegations: Option<Delegations> =
            s.store.get_fresh_json(&name("DELEGATIONS")).unwrap();
        assert_eq!(
            delegations,
            Some(Delegations {
                roles: vec!["a".into(), "b".into()]
            })
        );
        assert_eq!(
            s.store
                .get_fresh_json::<Delegations>(&name("EMPTY"))
                .unwrap(),
            None
        );
        let err = s.store.get_fresh_int(&name("TEXT")).unwrap_err();
        let main = s.hash("MAIN");
        let expected = format!("setting TEXT in Redis hash {main} holds a Python str where an int");
        assert!(err.to_string().starts_with(&expected), "{err}");
        let err = s
            .store
            .get_fresh_json::<Vec<u8>>(&name("DELEGATIONS"))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("setting DELEGATIONS does not have"),
            "{err}"
        );
    }

    #[test]
    fn undecodable_and_date_fields_are_errors_naming_the_field() {
        let mut s = Scratch::new();
        s.hset("MAIN", "GOOD", "@int 1");
        s.hset("MAIN", "JSON_BAD", "@json {not json");
        s.hset("MAIN", "A_DATE", "2024-01-01");
        assert_eq!(s.store.get_fresh_int(&name("GOOD")).unwrap(), Some(1));
        for field in ["JSON_BAD", "A_DATE"] {
            match s.store.get_fresh(&name(field)).unwrap_err() {
                Error::Value {
                    field: f, holder, ..
                } => assert_eq!((f, holder), (field.into(), s.hash("MAIN"))),
                other => panic!("{field}: {other}"),
            }
        }
        let all = s.store.load_all().unwrap();
        assert_eq!(all[&name("GOOD")].as_ref().unwrap(), &SettingValue::Int(1));
        assert!(matches!(
            all[&name("A_DATE")],
            Err(Error::Value {
                problem: CodecError::TomlDateTime,
                ..
            })
        ));
    }

    #[test]
    fn lower_case_fields_are_invisible_to_get_fresh_but_not_to_a_full_load() {
        let vector = read_vector();
        let mut s = Scratch::new();
        for field in ["lowercase_field", "MIXED_Case"] {
            let case = &vector["cases"][field];
            s.hset("MAIN", field, case["raw"].as_str().unwrap());
            assert_eq!(case["get_fresh"]["value"], Value::Null);
            assert_eq!(s.store.get_fresh(&name(field)).unwrap(), None, "{field}");
            let full = s.store.load_all().unwrap();
            let value = full[&name(field)].as_ref().unwrap();
            assert_eq!(
                json!(value),
                case["get_after_full_load"]["value"],
                "{field}"
            );
        }
    }

    #[test]
    fn later_hashes_override_earlier_ones_like_the_vector() {
        let vector = read_vector();
        let mut s = Scratch::new();
        let own = s.prefix.clone();
        // Same hashes as the generator, with our prefix for DYNACONF.
        s.hset(&own, "X", "@int 1");
        s.hset(&own, "ONLY_DYNACONF", "@int 1");
        s.hset("DEFAULT", "X", "@int 2");
        s.hset("DEFAULT", "ONLY_DEFAULT", "@int 2");
        s.hset("MAIN", "X", "@int 3");
        s.hset("GLOBAL", "ONLY_GLOBAL", "@int 4");
        s.hset("DEVELOPMENT", "ONLY_DEVELOPMENT", "@int 5");
        for (field, expected) in vector["holder_precedence"].as_object().unwrap() {
            let got = s.store.get_fresh_int(&name(field)).unwrap();
            assert_eq!(json!(got), *expected, "{field}");
        }
    }

    #[test]
    fn bootstrap_state_is_written_and_read() {
        let mut s = Scratch::new();
        assert_eq!(s.store.bootstrap_state().unwrap(), BootstrapState::None);
        let id = crate::celery::TaskId::new("7a634b556f784ae88785d36425f9a218");
        for state in [
            BootstrapState::Pre(id.clone()),
            BootstrapState::Signing(id.clone()),
            BootstrapState::Finished(id),
            BootstrapState::None,
        ] {
            s.store.set_bootstrap_state(&state).unwrap();
            assert_eq!(s.store.bootstrap_state().unwrap(), state);
        }
        assert_eq!(s.hget("BOOTSTRAP").as_deref(), Some("@none "));
    }

    /// What dynaconf (the real Python library) does with our hash, and what
    /// we read from one Python wrote. Python's worker write routine is the
    /// upstream one: full load, set one key, HSET every field.
    const PYTHON_SIDE: &str = r#"
import json, sys
from dynaconf import Dynaconf
from dynaconf.loaders import redis_loader
db, prefix = int(sys.argv[1]), sys.argv[2]
req = json.load(sys.stdin)
def settings():
    return Dynaconf(envvar_prefix=prefix, redis_enabled=True,
                    redis={"host": "127.0.0.1", "port": 6379, "db": db, "decode_responses": True})
def write(key, value):
    s = settings(); data = s.as_dict(env=s.current_env); data[key] = value
    redis_loader.write(s, data)
out = {"get_fresh": {}}
for k in req["read"]:
    v = settings().get_fresh(k)
    out["get_fresh"][k] = {"type": type(v).__name__, "value": v}
try:
    for k, v in req["write"]:
        write(k, v)
    out["write"] = "ok"
except Exception as e:
    out["write"] = f"{type(e).__name__}: {e}"
json.dump(out, sys.stdout)
"#;

    fn python(prefix: &str, request: &str) -> Value {
        let output = testutil::run_python(PYTHON_SIDE, &[&TEST_DB.to_string(), prefix], request);
        serde_json::from_str(&output).unwrap()
    }

    #[test]
    fn python_dynaconf_reads_what_we_write_and_we_read_what_it_writes() {
        let s = |t: &str| SettingValue::Str(t.to_owned());
        let ordered: SettingValue =
            serde_json::from_str(r#"{"z": {"é": [1, 2.5, null]}, "a": true, "m": "☃"}"#).unwrap();
        let ours = [
            ("BOOTSTRAP", s("pre-7a634b556f784ae88785d36425f9a218")),
            ("TASK", s("7a634b556f784ae88785d36425f9a218")),
            ("DIGITS", s("12345")),
            ("WORD_TRUE", s("true")),
            ("A_DATE", s("2024-01-01")),
            ("TAGGED", s("@int 5")),
            ("TAGGED_TWICE", s("@str @none")),
            (
                "NESTED_TAGS",
                serde_json::from_str(r#"{"k": ["@none", "@int 5", "@str x"]}"#).unwrap(),
            ),
            ("QUOTED", s("\"q\"")),
            ("UNICODE", s("caf\u{e9} \u{2603} \u{1f600}")),
            ("NEG", SettingValue::Int(-3)),
            ("ZERO", SettingValue::Int(0)),
            ("BIG_FLOAT", SettingValue::Float(1e16)),
            ("SMALL_FLOAT", SettingValue::Float(-1.5e-7)),
            ("ON", SettingValue::Bool(true)),
            ("OFF", SettingValue::Bool(false)),
            ("NOTHING", SettingValue::None),
            ("EMPTY_LIST", SettingValue::List(vec![])),
            ("ORDERED", ordered),
        ];
        let mut ours_scratch = Scratch::new();
        for (field, value) in &ours {
            ours_scratch.store.set(&name(field), value).unwrap();
        }
        // Precedence between the prefix hash and DEFAULT, as read from the code.
        let own = ours_scratch.prefix.clone();
        ours_scratch.hset(&own, "ORDER_CHECK", "@int 1");
        ours_scratch.hset("DEFAULT", "ORDER_CHECK", "@int 2");
        let read: Vec<&str> = ours
            .iter()
            .map(|(f, _)| *f)
            .chain(["ORDER_CHECK"])
            .collect();
        // Read before Python's whole-hash rewrite copies the winner into MAIN.
        let order_check = ours_scratch
            .store
            .get_fresh_int(&name("ORDER_CHECK"))
            .unwrap();
        let request = json!({"read": read, "write": [["AFTER_RUST", 1]]}).to_string();
        let seen = python(&ours_scratch.prefix, &request);
        for (field, value) in &ours {
            let expected = if value.is_truthy() {
                json!({"type": value.python_type(), "value": value})
            } else {
                json!({"type": "NoneType", "value": null})
            };
            assert_eq!(seen["get_fresh"][field], expected, "{field}");
        }
        assert_eq!(
            seen["get_fresh"]["ORDER_CHECK"]["value"],
            json!(order_check)
        );
        assert_eq!(order_check, Some(1));
        assert_eq!(
            seen["write"], "ok",
            "our hash must not break Python's writer"
        );

        // Python writes (values whose encoding does not drift), we read.
        let theirs_json = r#"[["BOOTSTRAP", "signing-7a634b556f784ae88785d36425f9a218"],
            ["ROOT_EXPIRATION", 365], ["A_FLOAT", 500.0], ["TINY", 1e-05], ["ON", true],
            ["OFF", false], ["NOTHING", null], ["UNICODE", "café ☃"],
            ["ONLINE_KEY", {"keytype": "ed25519", "scheme": "ed25519",
              "keyval": {"public": "83e2"}, "x-rstuf-online-key-uri": "fn:k", "keyid": "9e5a"}],
            ["NAMES", ["bins-0", "bins-1"]], ["EMPTY", {}]]"#;
        let theirs: Vec<(String, SettingValue)> = serde_json::from_str(theirs_json).unwrap();
        let mut theirs_scratch = Scratch::new();
        let request = format!(r#"{{"read": [], "write": {theirs_json}}}"#);
        assert_eq!(python(&theirs_scratch.prefix, &request)["write"], "ok");
        for (field, value) in &theirs {
            let raw = theirs_scratch.hget(field).unwrap();
            let decoded = decode(&raw).unwrap();
            assert_eq!(&decoded, value, "{field}");
            assert_eq!(
                encode(&decoded).unwrap(),
                raw,
                "{field}: our writer matches Python's bytes"
            );
            let fresh = theirs_scratch.store.get_fresh(&name(field)).unwrap();
            assert_eq!(
                fresh.as_ref(),
                Some(value).filter(|v| v.is_truthy()),
                "{field}"
            );
        }
    }
}
