//! rstuf-worker: a Rust worker for Repository Service for TUF.
pub mod broker;
pub mod tuf;
