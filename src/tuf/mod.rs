//! The TUF core: metadata types, canonical JSON, keys, signatures, hash bins
//! and delegated path matching.
//!
//! Everything here is pure: no Redis, AMQP, SQL or storage. The only outside
//! input is bytes handed in by the caller (a metadata file, a PEM key), so the
//! whole module is tested against the vectors in `../shared/vectors/tuf/`
//! alone. Byte-exactness with python-tuf matters because clients verify
//! signatures over the canonical form and operators diff files on disk.

pub mod canonical;
pub mod crypto;
pub mod datetime;
pub mod error;
pub mod fileformat;
pub mod hashbins;
mod jsonwrite;
pub mod key;
pub mod metadata;
pub mod paths;
pub mod signer;
pub mod types;
pub mod verify;

pub use crypto::{PrivateKey, PublicKey};
pub use datetime::UtcTime;
pub use error::Error;
pub use key::Key;
pub use metadata::Metadata;
pub use signer::{load_online_signer, load_pem_signer, Concurrency, PemSigner, Signer, SignerUri};
pub use types::{InvalidRoleName, KeyId, RoleName, Version};

/// Result type of the TUF core.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
pub(crate) mod testdata;
