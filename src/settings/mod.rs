//! The repository settings store: the Redis hash `DYNACONF_MAIN` (database
//! `RSTUF_REDIS_SERVER_DB_REPO_SETTINGS`, default 1) that the Python API and
//! workers read and write through dynaconf 3.3.x.
//!
//! `codec` turns one field value into a [`SettingValue`] and back exactly as
//! dynaconf does (`@int 365`, `@json {...}`, `@none `, raw strings, TOML
//! fallback); `store` reads with `get_fresh` semantics and writes single
//! fields; `bootstrap` interprets the `BOOTSTRAP` state machine.

pub mod bootstrap;
pub mod codec;
pub mod error;
pub mod store;
pub mod value;

pub use bootstrap::BootstrapState;
pub use codec::{decode, decode_fresh, encode, CodecError};
pub use error::Error;
pub use store::{FullLoad, SettingName, SettingsConfig, SettingsStore};
pub use value::{Dict, SettingValue};
