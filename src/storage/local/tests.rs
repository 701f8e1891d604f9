use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::*;
use crate::testutil::{role_name, TempDir};
use crate::tuf::testdata;

/// What these tests ask of their directory.
trait StorageDir {
    fn storage(&self) -> LocalStorage;
    fn names(&self) -> BTreeSet<String>;
}

impl StorageDir for TempDir {
    fn storage(&self) -> LocalStorage {
        LocalStorage::open(&LocalConfig {
            path: self.path().to_path_buf(),
        })
        .unwrap()
    }

    fn names(&self) -> BTreeSet<String> {
        fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    }
}

fn file(name: &str, version: u64) -> MetadataFile {
    MetadataFile::Versioned {
        role: role_name(name),
        version: Version(version),
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Timestamp bytes of `version`, `pad` bytes of padding long.
fn timestamp(version: u64, pad: usize) -> Vec<u8> {
    format!(
        r#"{{"signed":{{"version":{version}}},"pad":"{}"}}"#,
        "p".repeat(pad)
    )
    .into_bytes()
}

#[test]
fn put_then_get_uses_upstream_names_and_leaves_no_temp_files() {
    let dir = TempDir::new("roundtrip");
    let storage = dir.storage();
    storage.put(&file("root", 1), b"root one").unwrap();
    storage.put(&file("2024-x", 1), b"digit leading").unwrap();
    storage
        .put(&MetadataFile::Timestamp, &timestamp(1, 0))
        .unwrap();
    storage
        .put(&MetadataFile::Timestamp, &timestamp(2, 0))
        .unwrap();

    assert_eq!(
        dir.names(),
        set(&[
            "1.root.json",
            "1.2024-x.json",
            "timestamp.json",
            TIMESTAMP_LOCK
        ])
    );
    assert_eq!(
        storage.get(&role_name("root"), Version(1)).unwrap(),
        b"root one"
    );
    assert_eq!(
        storage.get_latest(&role_name("2024-x")).unwrap(),
        Some((Version(1), b"digit leading".to_vec()))
    );
    assert_eq!(storage.get_timestamp().unwrap(), timestamp(2, 0));
}

#[test]
fn a_large_batch_is_flushed_once_and_stored_whole() {
    assert_eq!(Durability::for_batch(3), Durability::EachFile);
    assert_eq!(Durability::for_batch(300), Durability::WholeFileSystem);
    let dir = TempDir::new("large");
    let storage = dir.storage();
    let names: Vec<String> = (0..300).map(|n| format!("bins-{n:03x}")).collect();
    let bodies: Vec<Vec<u8>> = names.iter().map(|n| n.as_bytes().to_vec()).collect();
    let mut batch: Vec<(MetadataFile, &[u8])> = names
        .iter()
        .zip(&bodies)
        .map(|(name, body)| (file(name, 1), body.as_slice()))
        .collect();
    let stamp = timestamp(1, 0);
    batch.push((MetadataFile::Timestamp, &stamp));
    storage.put_all(&batch).unwrap();
    assert_eq!(dir.names().len(), 302, "temporary files left behind");
    assert_eq!(
        storage.get(&role_name("bins-12b"), Version(1)).unwrap(),
        b"bins-12b"
    );
    assert_eq!(storage.get_timestamp().unwrap(), stamp);
}

#[test]
fn missing_files_are_not_found_and_name_the_path() {
    let dir = TempDir::new("missing");
    let storage = dir.storage();
    let err = storage.get(&role_name("root"), Version(3)).unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(
        err.to_string(),
        format!("{}/3.root.json does not exist", dir.path().display())
    );
    assert!(storage.get_timestamp().unwrap_err().is_not_found());
}

#[test]
fn a_role_without_files_has_no_latest_version() {
    let dir = TempDir::new("none");
    let storage = dir.storage();
    assert_eq!(storage.latest_version(&role_name("targets")).unwrap(), None);
    assert_eq!(storage.get_latest(&role_name("targets")).unwrap(), None);
}

#[test]
fn latest_is_seeded_from_the_vector_repository() {
    let dir = TempDir::new("vectors");
    let src = testdata::shared("vectors/tuf/repo-bins/2-after-add-artifacts");
    for entry in fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let storage = dir.storage();
    for (name, version) in [
        ("root", 1),
        ("targets", 1),
        ("snapshot", 2),
        ("bins-0", 1),
        ("bins-f", 2),
    ] {
        assert_eq!(
            storage.latest_version(&role_name(name)).unwrap(),
            Some(Version(version)),
            "{name}"
        );
    }
    let (version, bytes) = storage.get_latest(&role_name("snapshot")).unwrap().unwrap();
    assert_eq!(version, Version(2));
    assert_eq!(
        bytes,
        testdata::bytes("vectors/tuf/repo-bins/2-after-add-artifacts/2.snapshot.json")
    );
    assert_eq!(
        storage.get_timestamp().unwrap(),
        testdata::bytes("vectors/tuf/repo-bins/2-after-add-artifacts/timestamp.json")
    );
}

#[test]
fn the_start_listing_sees_across_gaps() {
    // A probe from nothing would stop at 1; only the listing knows about 5.
    let dir = TempDir::new("gap");
    fs::write(dir.path().join("1.targets.json"), "1").unwrap();
    fs::write(dir.path().join("5.targets.json"), "5").unwrap();
    let storage = dir.storage();
    assert_eq!(
        storage.get_latest(&role_name("targets")).unwrap(),
        Some((Version(5), b"5".to_vec()))
    );
}

#[test]
fn latest_sees_files_written_behind_the_cache() {
    let dir = TempDir::new("behind");
    let storage = dir.storage();
    storage.put(&file("snapshot", 1), b"1").unwrap();
    assert_eq!(
        storage.latest_version(&role_name("snapshot")).unwrap(),
        Some(Version(1))
    );

    // Another process writes 2..=9 directly.
    for v in 2..=9 {
        fs::write(dir.path().join(format!("{v}.snapshot.json")), v.to_string()).unwrap();
    }
    assert_eq!(
        storage.get_latest(&role_name("snapshot")).unwrap(),
        Some((Version(9), b"9".to_vec()))
    );

    // Another worker with its own cache writes 10; a role first created by
    // someone else after our start is found too.
    let other = dir.storage();
    other.put(&file("snapshot", 10), b"10").unwrap();
    other.put(&file("dev", 1), b"dev").unwrap();
    assert_eq!(
        storage.latest_version(&role_name("snapshot")).unwrap(),
        Some(Version(10))
    );
    assert_eq!(
        storage.latest_version(&role_name("dev")).unwrap(),
        Some(Version(1))
    );
}

#[test]
fn batch_is_written_in_full_and_updates_latest() {
    let dir = TempDir::new("batch");
    let storage = dir.storage();
    let stamp = timestamp(1, 0);
    let batch: Vec<(MetadataFile, &[u8])> = vec![
        (file("bins-0", 1), b"b0"),
        (file("bins-1", 1), b"b1"),
        (file("targets", 1), b"t"),
        (file("snapshot", 1), b"s"),
        (MetadataFile::Timestamp, &stamp),
    ];
    storage.put_all(&batch).unwrap();
    assert_eq!(
        dir.names(),
        set(&[
            "1.bins-0.json",
            "1.bins-1.json",
            "1.targets.json",
            "1.snapshot.json",
            "timestamp.json",
            TIMESTAMP_LOCK
        ])
    );
    assert_eq!(
        storage.get_latest(&role_name("bins-1")).unwrap(),
        Some((Version(1), b"b1".to_vec()))
    );
}

#[test]
fn version_zero_is_refused_before_anything_is_written() {
    let dir = TempDir::new("zero");
    let storage = dir.storage();
    let err = storage
        .put_all(&[(file("root", 1), b"r"), (file("dev", 0), b"d")])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "refusing to store version 0 of role 'dev': TUF versions start at 1"
    );
    assert_eq!(dir.names(), BTreeSet::new());
}

#[test]
fn readers_see_the_old_or_the_new_file_never_a_partial_one() {
    let dir = TempDir::new("atomic");
    let storage = Arc::new(dir.storage());
    let size = timestamp(1, 256 * 1024).len();
    storage
        .put(&MetadataFile::Timestamp, &timestamp(1, 256 * 1024))
        .unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (storage, done) = (Arc::clone(&storage), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut reads = 0u32;
            while !done.load(Ordering::Relaxed) {
                let seen = storage.get_timestamp().unwrap();
                assert!(
                    seen.len() >= size
                        && serde_json::from_slice::<serde_json::Value>(&seen).is_ok(),
                    "partial read of {} bytes",
                    seen.len()
                );
                reads += 1;
            }
            reads
        })
    };
    for version in 2..60 {
        storage
            .put(&MetadataFile::Timestamp, &timestamp(version, 256 * 1024))
            .unwrap();
    }
    done.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    assert_eq!(dir.names(), set(&["timestamp.json", TIMESTAMP_LOCK]));
}

#[test]
fn a_failing_batch_cleans_up_its_temporary_files() {
    let dir = TempDir::new("midbatch");
    let storage = dir.storage();
    // A directory where the second file should go: it cannot be compared.
    fs::create_dir(dir.path().join("1.targets.json")).unwrap();
    let err = storage
        .put_all(&[
            (file("bins-0", 1), b"b0"),
            (file("targets", 1), b"t"),
            (file("snapshot", 1), b"s"),
        ])
        .unwrap_err();
    let target = dir.path().join("1.targets.json");
    match &err {
        Error::Io { path, action, .. } => {
            assert_eq!(
                (path, *action),
                (&target, "compare with the file already there")
            )
        }
        other => panic!("expected an Io error, got {other:?}"),
    }
    assert!(err.to_string().starts_with(&format!(
        "{}: cannot compare with the file already there: ",
        target.display()
    )));
    // Files before the failure are in place, the rest was never linked.
    assert_eq!(dir.names(), set(&["1.bins-0.json", "1.targets.json"]));
}

#[test]
fn unreadable_entries_name_the_path_and_the_cause() {
    let dir = TempDir::new("corrupt");
    fs::create_dir(dir.path().join("3.root.json")).unwrap();
    let storage = dir.storage();
    let err = storage.get(&role_name("root"), Version(3)).unwrap_err();
    assert!(!err.is_not_found());
    assert_eq!(
        err.to_string(),
        format!(
            "{}/3.root.json: cannot read: Is a directory (os error 21)",
            dir.path().display()
        )
    );
}

#[test]
fn a_storage_path_that_is_a_file_fails_at_start() {
    let dir = TempDir::new("notadir");
    let path = dir.path().join("metadata");
    fs::write(&path, "not a directory").unwrap();
    let err = LocalStorage::open(&LocalConfig { path: path.clone() }).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: cannot create the storage directory: File exists (os error 17)",
            path.display()
        )
    );
}

#[test]
fn a_vanished_directory_fails_the_write_with_its_path() {
    let dir = TempDir::new("vanished");
    let storage = dir.storage();
    fs::remove_dir_all(dir.path()).unwrap();
    let err = storage.put(&file("root", 2), b"r").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}/2.root.json: cannot write a temporary copy: No such file or directory (os error 2)",
            dir.path().display()
        )
    );
}

/// Makes a directory refuse new entries for the test's user. Modes do not
/// stop root, so when they are not enough the immutable attribute is set.
struct ReadOnlyDir {
    path: PathBuf,
    immutable: bool,
}

impl ReadOnlyDir {
    fn new(path: &Path) -> ReadOnlyDir {
        fs::set_permissions(path, fs::Permissions::from_mode(0o555)).unwrap();
        let probe = path.join("probe");
        let immutable = fs::write(&probe, "").is_ok();
        if immutable {
            fs::remove_file(&probe).unwrap();
            let status = Command::new("chattr").arg("+i").arg(path).status().unwrap();
            assert!(status.success(), "chattr +i {} failed", path.display());
        }
        ReadOnlyDir {
            path: path.to_owned(),
            immutable,
        }
    }
}

impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        if self.immutable {
            let _ = Command::new("chattr").arg("-i").arg(&self.path).status();
        }
        let _ = fs::set_permissions(&self.path, fs::Permissions::from_mode(0o755));
    }
}

#[test]
fn permission_denied_names_the_path_and_says_what_to_check() {
    let dir = TempDir::new("denied");
    let storage = dir.storage();
    let locked = ReadOnlyDir::new(dir.path());
    let err = storage.put(&file("root", 1), b"r").unwrap_err();
    drop(locked);
    let target = dir.path().join("1.root.json");
    match &err {
        Error::Io { path, source, .. } => {
            assert_eq!(path, &target);
            assert_eq!(source.kind(), io::ErrorKind::PermissionDenied);
        }
        other => panic!("expected an Io error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "{}: cannot write a temporary copy: ",
            target.display()
        )),
        "{text}"
    );
    assert!(
        text.ends_with(" (check that the worker's user may read and write the storage directory)"),
        "{text}"
    );
    assert_eq!(dir.names(), BTreeSet::new());
}

/// What a writer whose lock expired meets: the versions it is about to
/// write were published by another writer first.
#[test]
fn a_version_another_writer_stored_is_never_replaced() {
    let dir = TempDir::new("stale");
    let storage = dir.storage();
    storage.put(&file("snapshot", 3), b"theirs").unwrap();
    let stamp = timestamp(3, 0);
    let err = storage
        .put_all(&[
            (file("bins-0", 3), b"ours"),
            (file("snapshot", 3), b"ours"),
            (MetadataFile::Timestamp, &stamp),
        ])
        .unwrap_err();
    let target = dir.path().join("3.snapshot.json");
    assert!(err.is_superseded(), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: not replaced, another writer stored other content under this version first; \
             this publication was built from an older state and is redone",
            target.display()
        )
    );
    assert_eq!(fs::read(&target).unwrap(), b"theirs");
    assert_eq!(dir.names(), set(&["3.bins-0.json", "3.snapshot.json"]));
}

#[test]
fn the_same_bytes_again_are_a_redone_write() {
    let dir = TempDir::new("redone");
    let storage = dir.storage();
    let stamp = timestamp(1, 0);
    let batch: Vec<(MetadataFile, &[u8])> = vec![
        (file("snapshot", 1), b"s"),
        (MetadataFile::Timestamp, &stamp),
    ];
    storage.put_all(&batch).unwrap();
    storage.put_all(&batch).unwrap();
    assert_eq!(
        dir.names(),
        set(&["1.snapshot.json", "timestamp.json", TIMESTAMP_LOCK])
    );
}

#[test]
fn timestamp_is_only_replaced_by_a_newer_version() {
    let dir = TempDir::new("forward");
    let storage = dir.storage();
    storage
        .put(&MetadataFile::Timestamp, &timestamp(5, 0))
        .unwrap();
    let target = dir.path().join("timestamp.json");
    for (older, ours) in [(timestamp(4, 0), 4), (timestamp(5, 1), 5)] {
        let err = storage.put(&MetadataFile::Timestamp, &older).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: not replaced, another writer stored version 5 (this write has version \
                 {ours}) first; this publication was built from an older state and is redone",
                target.display()
            )
        );
    }
    assert_eq!(storage.get_timestamp().unwrap(), timestamp(5, 0));
    storage
        .put(&MetadataFile::Timestamp, &timestamp(6, 0))
        .unwrap();
    assert_eq!(storage.get_timestamp().unwrap(), timestamp(6, 0));
}

/// Two writers (as two processes: each its own LocalStorage) race through
/// interleaved versions while a reader watches: timestamp.json never moves
/// back, whichever writer checks and renames when.
#[test]
fn racing_writers_never_move_timestamp_back() {
    let dir = TempDir::new("race");
    dir.storage()
        .put(&MetadataFile::Timestamp, &timestamp(1, 0))
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (storage, done) = (dir.storage(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut last = 0;
            while !done.load(Ordering::Relaxed) {
                let seen: serde_json::Value =
                    serde_json::from_slice(&storage.get_timestamp().unwrap()).unwrap();
                let version = seen["signed"]["version"].as_u64().unwrap();
                assert!(
                    version >= last,
                    "timestamp went from {last} back to {version}"
                );
                last = version;
            }
        })
    };
    let writers: Vec<_> = (0..2u64)
        .map(|parity| {
            let storage = dir.storage();
            std::thread::spawn(move || {
                for version in (2..600).filter(|v| v % 2 == parity) {
                    match storage.put(&MetadataFile::Timestamp, &timestamp(version, 4096)) {
                        Ok(()) => {}
                        Err(e) => assert!(e.is_superseded(), "{e}"),
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    let last: serde_json::Value =
        serde_json::from_slice(&dir.storage().get_timestamp().unwrap()).unwrap();
    assert_eq!(last["signed"]["version"], 599);
}

/// What a SIGKILL between writing and placing leaves behind.
#[test]
fn opening_removes_temporary_files_of_dead_writers_on_this_host() {
    let dir = TempDir::new("leftovers");
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let (host, live) = leftovers::writer().rsplit_once('-').unwrap();
    let dead_here = format!(".2.bins-0.json.{host}-{dead}.0.tmp");
    let live_here = format!(".2.bins-1.json.{host}-{live}.0.tmp");
    let elsewhere = format!(".2.bins-2.json.other_host-{dead}.0.tmp");
    for name in [&dead_here, &live_here, &elsewhere] {
        fs::write(dir.path().join(name), b"partial").unwrap();
    }
    dir.storage();
    assert_eq!(dir.names(), set(&[&live_here, &elsewhere]));
}
