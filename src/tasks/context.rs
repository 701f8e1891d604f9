//! What every action works with: the services of the deployment and the
//! repository's metadata, loaded, re-signed and published in the order that
//! keeps clients consistent.
//!
//! Publishing order is the one rule everything here serves: delegated roles
//! first, then targets, snapshot, and timestamp last, each written
//! atomically, with the lock re-checked just before the writes. A client
//! that reads at any moment sees either the old chain or the new one.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Error;
use crate::db::Db;
use crate::kms::{load_online_signer, SignerConfig};
use crate::lock::{LockClient, LockGuard, LockKey, LOCK_TARGETS};
use crate::settings::{BootstrapState, SettingName, SettingValue, SettingsStore};
use crate::storage::{MetadataFile, Storage};
use crate::tuf::metadata::{MetaFile, Root, Signed, Snapshot, Targets, Timestamp};
use crate::tuf::{Key, KeyId, Metadata, RoleName, Signer, UtcTime, Version};

pub type Result<T> = std::result::Result<T, Error>;

/// The services an action needs, shared by all pool threads.
pub struct Context {
    settings: Mutex<SettingsStore>,
    pub db: Db,
    pub storage: Box<dyn Storage>,
    locks: LockClient,
    pub lock_timeout: Duration,
    signer_config: SignerConfig,
    signers: Mutex<HashMap<KeyId, Arc<dyn Signer>>>,
    /// The newest snapshot as last parsed or published. With 16384 bins it
    /// is most of a round's parsing, and a stored version never changes, so
    /// it stays valid as long as storage has no newer version.
    snapshot: Mutex<Option<Metadata<Snapshot>>>,
}

impl Context {
    pub fn new(
        settings: SettingsStore,
        db: Db,
        storage: Box<dyn Storage>,
        locks: LockClient,
        lock_timeout: Duration,
        signer_config: SignerConfig,
    ) -> Context {
        Context {
            settings: Mutex::new(settings),
            db,
            storage,
            locks,
            lock_timeout,
            signer_config,
            signers: Mutex::new(HashMap::new()),
            snapshot: Mutex::new(None),
        }
    }

    /// The newest snapshot in storage, parsed once per version. The cached
    /// copy is handed out, not cloned (16384 entries): the round that takes
    /// it gives its successor back with [`Context::remember_snapshot`], and
    /// any other reader meanwhile parses the file.
    pub fn load_snapshot(&self) -> Result<Metadata<Snapshot>> {
        let name = role_name("snapshot")?;
        let latest = self.storage.latest_version(&name)?;
        let cached = self
            .snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match cached.filter(|md| Some(md.version()) == latest) {
            Some(md) => Ok(md),
            None => self.load::<Snapshot>("snapshot"),
        }
    }

    /// Keeps a snapshot this process has just committed to storage.
    pub fn remember_snapshot(&self, snapshot: Metadata<Snapshot>) {
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Some(snapshot);
    }

    /// The settings store; reads are always fresh (the API writes too).
    pub fn settings(&self) -> MutexGuard<'_, SettingsStore> {
        // A panic elsewhere cannot leave the store half-written: every
        // operation is one Redis command.
        self.settings
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn setting_int(&self, name: &str) -> Result<Option<i64>> {
        Ok(self.settings().get_fresh_int(&SettingName::new(name))?)
    }

    pub fn set_setting(&self, name: &str, value: SettingValue) -> Result<()> {
        Ok(self.settings().set(&SettingName::new(name), &value)?)
    }

    pub fn set_setting_json<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<()> {
        Ok(self.settings().set_json(&SettingName::new(name), value)?)
    }

    pub fn bootstrap_state(&self) -> Result<BootstrapState> {
        Ok(self.settings().bootstrap_state()?)
    }

    /// `LOCK_TARGETS`, shared with Python workers of the same deployment.
    pub fn lock_targets(&self) -> Result<LockGuard> {
        // A holder keeps it at most `lock_timeout`, so waiting twice that
        // (plus a margin) means something is wrong, not just busy.
        let deadline = Instant::now() + self.lock_timeout * 2 + Duration::from_secs(1);
        Ok(self
            .locks
            .acquire(&LockKey::new(LOCK_TARGETS), self.lock_timeout, deadline)?)
    }

    /// The newest stored version of a role's metadata.
    pub fn load<T: Signed>(&self, role: &str) -> Result<Metadata<T>> {
        let bytes = if role == "timestamp" {
            self.storage.read(&MetadataFile::Timestamp)?
        } else {
            let name = role_name(role)?;
            match self.storage.get_latest(&name)? {
                Some((_, bytes)) => bytes,
                None => {
                    return Err(Error::Repository(format!(
                        "no metadata stored for role '{role}'; is the repository bootstrapped?"
                    )))
                }
            }
        };
        Ok(Metadata::from_file_bytes(&bytes)?)
    }

    /// A signer for the online key (cached per key id: loading parses PEM
    /// or asks the KMS for the public key).
    pub fn online_signer(&self) -> Result<Arc<dyn Signer>> {
        let (keyid, key) = self.online_key()?;
        self.signer_for(&keyid, &key)
    }

    pub fn signer_for(&self, keyid: &KeyId, key: &Key) -> Result<Arc<dyn Signer>> {
        let mut cache = self.signers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(signer) = cache.get(keyid) {
            return Ok(signer.clone());
        }
        let signer: Arc<dyn Signer> =
            Arc::from(load_online_signer(&self.signer_config, keyid, key)?);
        cache.insert(keyid.clone(), signer.clone());
        Ok(signer)
    }

    /// The online key as trusted root names it (the timestamp role's key).
    pub fn online_key(&self) -> Result<(KeyId, Key)> {
        let root = self.load::<Root>("root")?;
        online_key_of(&root.signed)
    }

    /// Now plus the `<ROLE>_EXPIRATION` days of the settings.
    pub fn expiry_for(&self, setting_role: &str) -> Result<UtcTime> {
        let name = format!("{}_EXPIRATION", setting_role.to_uppercase());
        let days = self.setting_int(&name)?.ok_or_else(|| {
            Error::Repository(format!(
                "setting {name} is missing or 0; set an expiration policy with update_settings"
            ))
        })?;
        Ok(UtcTime::now()?.add_days(days)?)
    }
}

/// The online key of a root: the one key of its timestamp role.
pub fn online_key_of(root: &Root) -> Result<(KeyId, Key)> {
    let keyid = root
        .roles
        .get("timestamp")
        .and_then(|r| r.keyids.first())
        .ok_or_else(|| Error::Repository("root has no timestamp key".into()))?;
    let key = root.keys.get(keyid).ok_or_else(|| {
        Error::Repository(format!("root lists timestamp key {keyid} but not the key"))
    })?;
    Ok((keyid.clone(), key.clone()))
}

pub fn role_name(role: &str) -> Result<RoleName> {
    Ok(RoleName::new(role)?)
}

/// New metadata to make visible together, kept in publishing order.
#[derive(Default)]
pub struct Publication {
    files: Vec<(MetadataFile, Vec<u8>)>,
    /// The snapshot being published, cached by the context once it is
    /// stored (parsing a 16384-entry snapshot again is most of a round).
    snapshot: Option<Metadata<Snapshot>>,
}

impl Publication {
    /// Appends a file; callers add delegated roles, then targets, snapshot
    /// and timestamp, which is the order they become visible in.
    pub fn add<T: Signed>(&mut self, role: &str, md: &Metadata<T>) -> Result<()> {
        let file = MetadataFile::persisted(role_name(role)?, md.version());
        self.files.push((file, md.to_file_bytes()?));
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Writes everything, after making sure this worker still holds the
    /// lock (a holder that lost it must not overwrite newer metadata) and
    /// that the task was not ended by its time limit meanwhile.
    pub fn commit(self, ctx: &Context, lock: Option<&mut LockGuard>) -> Result<()> {
        super::fence::check()?;
        if let Some(lock) = lock {
            lock.extend()?;
        }
        let files: Vec<(MetadataFile, &[u8])> = self
            .files
            .iter()
            .map(|(f, b)| (f.clone(), b.as_slice()))
            .collect();
        ctx.storage.put_all(&files)?;
        if let Some(snapshot) = self.snapshot {
            ctx.remember_snapshot(snapshot);
        }
        Ok(())
    }
}

/// Bumps version and expiry and signs with the online key.
fn bump_and_sign<T: Signed>(
    md: &mut Metadata<T>,
    expires: UtcTime,
    signer: &dyn Signer,
) -> Result<()> {
    md.bump_version();
    md.set_expires(expires);
    md.sign(signer)?;
    Ok(())
}

/// Adds `targets` to `publication` with a new version and expiry; returns
/// what the snapshot records for it.
pub fn publish_targets(
    ctx: &Context,
    targets: &mut Metadata<Targets>,
    signer: &dyn Signer,
    publication: &mut Publication,
) -> Result<(String, Version)> {
    bump_and_sign(targets, ctx.expiry_for("targets")?, signer)?;
    publication.add("targets", targets)?;
    Ok(("targets".to_owned(), targets.version()))
}

/// A new snapshot, recording `changed` versions and forgetting `removed`
/// roles, and the timestamp pointing at it, added to `publication` in that
/// order.
pub fn snapshot_and_timestamp(
    ctx: &Context,
    changed: &[(String, Version)],
    removed: &[String],
    signer: &dyn Signer,
    publication: &mut Publication,
) -> Result<Version> {
    let mut snapshot = ctx.load_snapshot()?;
    publish_snapshot(ctx, &mut snapshot, changed, removed, signer, publication)?;
    let mut timestamp = ctx.load::<Timestamp>("timestamp")?;
    let version = snapshot.version();
    publish_timestamp(ctx, &mut timestamp, version, signer, publication)?;
    publication.snapshot = Some(snapshot);
    Ok(version)
}

/// Records `changed` versions in `snapshot` and forgets `removed` roles,
/// then adds it to `publication` with a new version and expiry.
pub fn publish_snapshot(
    ctx: &Context,
    snapshot: &mut Metadata<Snapshot>,
    changed: &[(String, Version)],
    removed: &[String],
    signer: &dyn Signer,
    publication: &mut Publication,
) -> Result<()> {
    for role in removed {
        snapshot.signed.meta.remove(&format!("{role}.json"));
    }
    for (role, version) in changed {
        snapshot
            .signed
            .meta
            .insert(format!("{role}.json"), MetaFile::new(*version));
    }
    bump_and_sign(snapshot, ctx.expiry_for("snapshot")?, signer)?;
    publication.add("snapshot", snapshot)
}

/// Points `timestamp` at snapshot `version` and adds it to `publication`
/// with a new version and expiry.
pub fn publish_timestamp(
    ctx: &Context,
    timestamp: &mut Metadata<Timestamp>,
    version: Version,
    signer: &dyn Signer,
    publication: &mut Publication,
) -> Result<()> {
    timestamp
        .signed
        .meta
        .insert("snapshot.json".into(), MetaFile::new(version));
    bump_and_sign(timestamp, ctx.expiry_for("timestamp")?, signer)?;
    publication.add("timestamp", timestamp)
}

/// Records `targets` as TRUSTED_TARGETS (the API's `GET /metadata/sign`).
pub fn remember_targets(ctx: &Context, targets: &Metadata<Targets>) -> Result<()> {
    ctx.set_setting_json("TRUSTED_TARGETS", targets)
}

// --- Used by the artifact actions and the bump (issue 5, helper B) --------

impl Context {
    /// Takes the lock `key` if it is free, without waiting (the bump's
    /// `BOR`, which a second run skips rather than waits for).
    pub fn try_lock(&self, key: &str, ttl: Duration) -> Result<Option<LockGuard>> {
        Ok(self.locks.try_acquire(&LockKey::new(key), ttl)?)
    }
}

impl Publication {
    /// Appends a file encoded elsewhere: roles re-signed in parallel encode
    /// themselves on the thread that signed them.
    pub fn add_encoded(&mut self, file: MetadataFile, bytes: Vec<u8>) {
        self.files.push((file, bytes));
    }
}

/// Releases `LOCK_TARGETS` after the work it guarded was committed. The
/// commit itself re-checked the lock, so a lock found expired now changes
/// nothing that was written: it is worth a warning, not a failed task.
pub fn release_after_commit(lock: LockGuard) {
    if let Err(e) = lock.release() {
        log::warn!("{e}; the publication before it was committed while the lock was held");
    }
}
