//! rstuf-worker: a Rust worker for Repository Service for TUF.
pub mod lock;
pub mod redis_link;
pub mod settings;
pub mod tuf;
