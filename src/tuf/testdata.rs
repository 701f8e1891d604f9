//! Access to the shared test vectors (`../shared` beside the repository, or
//! `$RSTUF_SHARED_DIR`).
use std::path::PathBuf;

/// Path of a file under the shared folder, e.g. `vectors/tuf/keys.json`.
pub fn shared(rel: &str) -> PathBuf {
    let base = std::env::var_os("RSTUF_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    base.join(rel)
}

/// Raw bytes of a shared file; panics with the path so a missing vector is obvious.
pub fn bytes(rel: &str) -> Vec<u8> {
    let path = shared(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read vector {}: {e}", path.display()))
}

/// A shared JSON file parsed into a `serde_json::Value`.
pub fn json(rel: &str) -> serde_json::Value {
    serde_json::from_slice(&bytes(rel)).unwrap_or_else(|e| panic!("vector {rel} is not JSON: {e}"))
}
