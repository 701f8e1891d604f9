//! Where signed metadata files live: a local directory or an S3 bucket.
//!
//! Both backends store the same names (see [`name`]) so a repository written
//! by this worker and one written by the Python worker look alike and can be
//! served by the same web server or bucket. Calls block; the worker's thread
//! pool shares one storage value (`Send + Sync`).
//!
//! Differences from upstream, on purpose:
//! - "latest version" of a role that has no file is `None`, not 1; the
//!   caller decides what a missing role means;
//! - local writes are atomic (temporary file, fsync, rename, directory
//!   fsync), so a reader never sees a truncated `timestamp.json`, and a
//!   writer whose lock expired never replaces newer local metadata;
//! - neither backend lists the whole directory or bucket per lookup: a
//!   per-process lower bound of each role's latest version is checked by
//!   probing single files above it (exponential, then binary search);
//! - digit-leading role names keep their version prefix ([`name`]).

mod error;
mod latest;
pub mod local;
pub mod name;
pub mod s3;

pub use error::Error;
pub use local::{LocalConfig, LocalStorage};
pub use name::{MetadataFile, TIMESTAMP_FILE};
pub use s3::{AwsS3, S3Config};

use crate::tuf::{RoleName, Version};

/// Result type of the storage boundary.
pub type Result<T> = std::result::Result<T, Error>;

/// A metadata store. Implementations must make every file they accept in
/// [`Storage::put_all`] visible in the given order, so a reader that sees a
/// file also sees the files written before it in the same batch.
pub trait Storage: Send + Sync {
    /// Bytes of one file; [`Error::NotFound`] when it does not exist.
    fn read(&self, file: &MetadataFile) -> Result<Vec<u8>>;

    /// Newest stored version of `role`, None when it has no file at all.
    /// Timestamp is stored unversioned, so this is None for it: use
    /// [`Storage::get_timestamp`].
    fn latest_version(&self, role: &RoleName) -> Result<Option<Version>>;

    /// Store a batch of files, in order. LocalStorage refuses to replace a
    /// versioned file with other bytes or `timestamp.json` with one that is
    /// not newer ([`Error::Superseded`]); S3 replaces objects of the same
    /// name (rust-s3 has no conditional writes).
    fn put_all(&self, files: &[(MetadataFile, &[u8])]) -> Result<()>;

    /// `<version>.<role>.json`.
    fn get(&self, role: &RoleName, version: Version) -> Result<Vec<u8>> {
        self.read(&MetadataFile::Versioned {
            role: role.clone(),
            version,
        })
    }

    /// `timestamp.json`.
    fn get_timestamp(&self) -> Result<Vec<u8>> {
        self.read(&MetadataFile::Timestamp)
    }

    /// Newest version of `role` and its bytes, None when it has no file.
    fn get_latest(&self, role: &RoleName) -> Result<Option<(Version, Vec<u8>)>> {
        match self.latest_version(role)? {
            Some(version) => Ok(Some((version, self.get(role, version)?))),
            None => Ok(None),
        }
    }

    /// Store one file.
    fn put(&self, file: &MetadataFile, bytes: &[u8]) -> Result<()> {
        self.put_all(&[(file.clone(), bytes)])
    }
}

/// Version 0 would be invisible to [`Storage::latest_version`] (0 means
/// "nothing"), so a batch holding one is refused before anything is written.
fn check_versions(files: &[(MetadataFile, &[u8])]) -> Result<()> {
    match files.iter().find_map(|(file, _)| match file {
        MetadataFile::Versioned { role, version } if version.0 == 0 => Some(role),
        _ => None,
    }) {
        Some(role) => Err(Error::VersionZero {
            role: role.to_string(),
        }),
        None => Ok(()),
    }
}

/// Versions a successful batch proved to exist, for the latest-version cache.
fn stored_versions<'a>(
    files: &'a [(MetadataFile, &[u8])],
) -> impl Iterator<Item = (&'a RoleName, Version)> {
    files.iter().filter_map(|(file, _)| match file {
        MetadataFile::Versioned { role, version } => Some((role, *version)),
        MetadataFile::Timestamp => None,
    })
}
