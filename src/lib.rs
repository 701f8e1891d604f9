//! rstuf-worker: a Rust worker for Repository Service for TUF.
pub mod storage;
pub mod tuf;
