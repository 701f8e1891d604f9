//! How a staged file takes its final name without letting a stale writer
//! overwrite newer metadata.
//!
//! Two workers can both believe they hold `LOCK_TARGETS`: the lock of the
//! first expired while its storage was slow, and the second took it. The
//! first then writes metadata built from an older state. A plain rename
//! would let it replace the second's `N.snapshot.json` or move
//! `timestamp.json` back to an older version, which clients reject as a
//! rollback. So:
//! - a versioned file is hard-linked into place, which fails when the name
//!   exists; the same bytes already there are a redone write and fine,
//!   other bytes mean another writer published this version first;
//! - `timestamp.json` is replaced under an exclusive `flock` on a lock file
//!   beside it, and only by a newer version.
//!
//! Either refusal is [`Error::Superseded`]: the publication round starts
//! over from what is stored now. Writers that do not take the lock (the
//! Python worker) are not fenced off by it.
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use serde::Deserialize;

use crate::storage::{Error, Result};

/// Taken by every writer of `timestamp.json` in the directory; hidden, so
/// no web server or listing of metadata shows it.
pub const TIMESTAMP_LOCK: &str = ".timestamp.json.lock";

/// Gives the staged `temp` the name `target` unless the name is taken.
pub(super) fn link_new(temp: &Path, target: &Path, bytes: &[u8]) -> Result<()> {
    match fs::hard_link(temp, target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let stored = fs::read(target)
                .map_err(|e| Error::io(target, "compare with the file already there", e))?;
            match stored == bytes {
                true => Ok(()),
                false => Err(Error::Superseded {
                    path: target.to_owned(),
                    stored: "other content under this version".into(),
                }),
            }
        }
        Err(e) => Err(Error::io(target, "move the new copy into place", e)),
    }
}

/// Renames `temp` over `target` (`timestamp.json`) when its version is newer
/// than the stored one's; false when the same bytes were already stored.
pub(super) fn replace_if_newer(
    dir: &Path,
    temp: &Path,
    target: &Path,
    bytes: &[u8],
) -> Result<bool> {
    let _lock = lock(dir)?;
    let ours = version(target, "read the version of the new copy", bytes)?;
    match fs::read(target) {
        Ok(stored) if stored == bytes => return Ok(false),
        Ok(stored) => {
            let theirs = version(target, "read the version of the stored file", &stored)?;
            if theirs >= ours {
                return Err(Error::Superseded {
                    path: target.to_owned(),
                    stored: format!("version {theirs} (this write has version {ours})"),
                });
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(target, "read the stored version", e)),
    }
    fs::rename(temp, target).map_err(|e| Error::io(target, "move the new copy into place", e))?;
    Ok(true)
}

/// The exclusive lock, released when the returned file is closed.
fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(TIMESTAMP_LOCK);
    let failed = |e| Error::io(&path, "lock timestamp.json for writing", e);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(failed)?;
    // SAFETY: flock only uses the descriptor, which `file` keeps open.
    match unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } {
        0 => Ok(file),
        _ => Err(failed(io::Error::last_os_error())),
    }
}

#[derive(Deserialize)]
struct Versioned {
    signed: Version,
}

#[derive(Deserialize)]
struct Version {
    version: u64,
}

/// `signed.version` of timestamp bytes.
fn version(target: &Path, action: &'static str, bytes: &[u8]) -> Result<u64> {
    serde_json::from_slice::<Versioned>(bytes)
        .map(|v| v.signed.version)
        .map_err(|e| {
            Error::io(
                target,
                action,
                io::Error::new(io::ErrorKind::InvalidData, e),
            )
        })
}
