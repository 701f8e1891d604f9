//! Temporary files a killed writer left behind. A process that dies by
//! SIGKILL or a crash between writing its hidden temporary copy and moving
//! it into place cannot remove it; the next LocalStorage opened on the same
//! host does. Each temporary name carries its writer (host and pid), so
//! only files of processes that no longer run on this host are removed: a
//! writer on another host sharing the directory may still be using its own.
use std::fs;
use std::path::Path;
use std::sync::OnceLock;

/// `<host>-<pid>` of this process, as temporary names carry it.
pub(super) fn writer() -> &'static str {
    static WRITER: OnceLock<String> = OnceLock::new();
    WRITER.get_or_init(|| format!("{}-{}", host(), std::process::id()))
}

/// This host's name without dots (they separate the parts of a temporary
/// name); "localhost" when it cannot be read.
fn host() -> String {
    let name = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = name.trim().replace('.', "_");
    match name.is_empty() {
        true => "localhost".into(),
        false => name,
    }
}

/// The writer of a temporary name `.<file>.<host>-<pid>.<n>.tmp`.
fn writer_of(name: &str) -> Option<(&str, u32)> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = rest.rsplitn(3, '.');
    let (_counter, tag) = (parts.next()?, parts.next()?);
    parts.next()?;
    let (host, pid) = tag.rsplit_once('-')?;
    Some((host, pid.parse().ok()?))
}

/// Removes the temporary files in `dir` of this host's dead processes; a
/// file that cannot be removed is only logged (no reader looks at them).
pub(super) fn remove(dir: &Path) {
    let ours = host();
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((host, pid)) = name.to_str().and_then(writer_of) else {
            continue;
        };
        if host != ours || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = entry.path();
        match fs::remove_file(&path) {
            Ok(()) => log::info!("removed {}, left by a writer that died", path.display()),
            Err(e) => log::warn!("cannot remove {}: {e}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temporary_name_tells_its_writer() {
        assert_eq!(
            writer_of(".11.bins-6.json.web-01-4242.7.tmp"),
            Some(("web-01", 4242))
        );
        assert_eq!(writer_of(".timestamp.json.lock"), None);
        assert_eq!(writer_of("1.root.json"), None);
        assert_eq!(writer_of(".x.json.nopid.1.tmp"), None);
    }
}
