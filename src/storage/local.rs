//! LocalStorage: metadata files in one directory, usually served as is by a
//! web server, with other workers (possibly on other hosts, over a shared
//! file system) writing into it too.
//!
//! A write goes to a hidden temporary file beside the target, is made
//! durable, moved into place and the directory is fsynced, so a reader sees
//! the old file or the new one, never a truncated one. A writer whose view
//! is stale never replaces newer metadata ([`place`]).
//!
//! Durability is paid per batch, not per file: a round that re-signs 16384
//! bins would otherwise wait for 16384 fsyncs. Small batches (one add: a
//! bin, snapshot and timestamp) fsync each file; large ones write every
//! temporary file and then flush the file system once (`syncfs`). The
//! versioned files are renamed and their directory flushed before
//! `timestamp.json` moves, so after a crash a timestamp never names files
//! that did not survive it.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::latest::LatestCache;
use super::{check_versions, stored_versions, Error, MetadataFile, Result, Storage};
use crate::tuf::{RoleName, Version};

/// Settings of [`LocalStorage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalConfig {
    /// The metadata directory, created at start when missing.
    pub path: PathBuf,
}

#[derive(Debug)]
pub struct LocalStorage {
    dir: PathBuf,
    latest: LatestCache,
}

impl LocalStorage {
    /// Create the directory if needed, remove temporary files of writers
    /// that died, and learn the latest version of every role from one
    /// listing; later lookups only probe single files.
    pub fn open(config: &LocalConfig) -> Result<LocalStorage> {
        let dir = config.path.clone();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, "create the storage directory", e))?;
        leftovers::remove(&dir);
        let latest = scan(&dir)?;
        Ok(LocalStorage { dir, latest })
    }

    fn file_path(&self, file: &MetadataFile) -> PathBuf {
        self.dir.join(file.name())
    }
}

/// The newest version of each role present in `dir`. The listing also covers
/// gaps a probe could not see across (versions pruned by an operator).
fn scan(dir: &Path) -> Result<LatestCache> {
    let listing_error = |e| Error::io(dir, "list the storage directory", e);
    let cache = LatestCache::default();
    for entry in fs::read_dir(dir).map_err(listing_error)? {
        let name = entry.map_err(listing_error)?.file_name();
        if let Some(MetadataFile::Versioned { role, version }) =
            name.to_str().and_then(MetadataFile::parse)
        {
            cache.record(&role, version);
        }
    }
    Ok(cache)
}

/// Distinguishes temporary files of concurrent writers in this process; the
/// host and pid distinguish processes ([`leftovers`]).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Up to this many files a batch fsyncs each one; above, one `syncfs` is
/// cheaper than the fsyncs and flushes them all.
const SYNC_EACH_MAX: usize = 8;

/// How a batch makes its temporary files durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    EachFile,
    WholeFileSystem,
}

impl Durability {
    fn for_batch(files: usize) -> Durability {
        if files <= SYNC_EACH_MAX {
            Durability::EachFile
        } else {
            Durability::WholeFileSystem
        }
    }
}

/// A file's new content, written and fsynced under a temporary name in the
/// target's directory (rename and link only work within one file system).
/// It is removed on drop unless it was renamed into place.
struct Staged {
    temp: PathBuf,
    target: PathBuf,
    placed: bool,
}

impl Staged {
    fn write(
        dir: &Path,
        file: &MetadataFile,
        bytes: &[u8],
        durability: Durability,
    ) -> Result<Staged> {
        let name = file.name();
        let target = dir.join(&name);
        let temp = dir.join(format!(
            ".{name}.{}.{}.tmp",
            leftovers::writer(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let failed = |e| Error::io(&target, "write a temporary copy", e);
        // create_new: never truncate a file some other writer owns.
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(failed)?;
        let staged = Staged {
            temp,
            target: target.clone(),
            placed: false,
        };
        out.write_all(bytes).map_err(failed)?;
        if durability == Durability::EachFile {
            out.sync_all().map_err(failed)?;
        }
        Ok(staged)
    }

    /// A versioned file keeps its temporary name until dropped: the link
    /// is the file's second name.
    fn place(mut self, dir: &Path, file: &MetadataFile, bytes: &[u8]) -> Result<()> {
        match file {
            MetadataFile::Versioned { .. } => place::link_new(&self.temp, &self.target, bytes),
            MetadataFile::Timestamp => {
                self.placed = place::replace_if_newer(dir, &self.temp, &self.target, bytes)?;
                Ok(())
            }
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.placed {
            return;
        }
        // A leftover hidden temp file is harmless (no reader looks for it),
        // so a failed clean-up is reported but does not fail the write.
        if let Err(e) = fs::remove_file(&self.temp) {
            log::warn!("cannot remove temporary file {}: {e}", self.temp.display());
        }
    }
}

/// Makes the renames durable: without it a crash can bring back old files.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, "flush the directory to disk", e))
}

/// Flushes every written file of the file system holding `dir` at once.
fn sync_file_system(dir: &Path) -> Result<()> {
    let flush = |d: File| {
        // SAFETY: syncfs only reads the descriptor, which `d` keeps open.
        if unsafe { libc::syncfs(d.as_raw_fd()) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    File::open(dir)
        .and_then(flush)
        .map_err(|e| Error::io(dir, "flush the new files to disk (syncfs)", e))
}

fn read_error(path: PathBuf, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::NotFound {
        Error::NotFound {
            location: path.display().to_string(),
        }
    } else {
        Error::io(path, "read", e)
    }
}

impl Storage for LocalStorage {
    fn read(&self, file: &MetadataFile) -> Result<Vec<u8>> {
        let path = self.file_path(file);
        fs::read(&path).map_err(|e| read_error(path, e))
    }

    fn latest_version(&self, role: &RoleName) -> Result<Option<Version>> {
        self.latest.latest(role, |version| {
            let path = self.file_path(&MetadataFile::Versioned {
                role: role.clone(),
                version,
            });
            path.try_exists()
                .map_err(|e| Error::io(path, "check whether it exists", e))
        })
    }

    /// All contents are written and made durable first, then the versioned
    /// files are linked in order and flushed, then `timestamp.json`. A
    /// version already stored with other bytes, or a timestamp not newer
    /// than the stored one, ends the batch with [`Error::Superseded`].
    fn put_all(&self, files: &[(MetadataFile, &[u8])]) -> Result<()> {
        check_versions(files)?;
        let durability = Durability::for_batch(files.len());
        let staged = files
            .iter()
            .map(|(file, bytes)| Staged::write(&self.dir, file, bytes, durability))
            .collect::<Result<Vec<_>>>()?;
        if durability == Durability::WholeFileSystem {
            sync_file_system(&self.dir)?;
        }
        let (timestamp, versioned): (Vec<_>, Vec<_>) = staged
            .into_iter()
            .zip(files)
            .partition(|(_, (file, _))| *file == MetadataFile::Timestamp);
        for (staged, (file, bytes)) in versioned {
            staged.place(&self.dir, file, bytes)?;
        }
        for (role, version) in stored_versions(files) {
            self.latest.record(role, version);
        }
        sync_dir(&self.dir)?;
        if timestamp.is_empty() {
            return Ok(());
        }
        for (staged, (file, bytes)) in timestamp {
            staged.place(&self.dir, file, bytes)?;
        }
        sync_dir(&self.dir)
    }
}

mod leftovers;
mod place;
pub use place::TIMESTAMP_LOCK;

#[cfg(test)]
mod tests;
