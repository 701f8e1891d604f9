//! rstuf-worker: a Rust worker for Repository Service for TUF.
pub mod backend;
pub mod beat;
pub mod broker;
pub mod celery;
pub mod config;
pub mod db;
pub mod health;
pub mod kms;
pub mod lock;
pub mod metrics;
pub mod redis_link;
pub mod settings;
pub mod storage;
pub mod tasks;
#[cfg(test)]
pub(crate) mod testutil;
pub mod tls;
pub mod tuf;
pub mod worker;
