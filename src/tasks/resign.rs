//! Re-signing delegated roles whose delegation or online key changed, and
//! the snapshot and timestamp that publish the result.
//!
//! A role signed by the online key alone gets a new version, expiry and
//! signature and is published. A role that also needs offline keys waits
//! for them in `<ROLE>_SIGNING`, signed by the online key where it has one,
//! as upstream does; its published version stays until the signing event
//! completes.
use std::collections::HashMap;

use super::context::{publish_targets, snapshot_and_timestamp, Context, Publication, Result};
use super::signing::{pending, pending_metadata, threshold_met};
use super::Error;
use crate::db::RoleUpdate;
use crate::tuf::metadata::{Signed, Targets};
use crate::tuf::RoleName;
use crate::tuf::{Concurrency, KeyId, Metadata, Signer, UtcTime};

/// How a delegated role is signed, given the online key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// The online key is the role's only key.
    Online,
    /// The online key and offline keys.
    Mixed,
    /// Offline keys only.
    Offline,
}

pub fn key_use(keyids: &[KeyId], online: &KeyId) -> KeyUse {
    match (keyids.contains(online), keyids.len()) {
        (true, 1) => KeyUse::Online,
        (true, _) => KeyUse::Mixed,
        (false, _) => KeyUse::Offline,
    }
}

impl KeyUse {
    /// Signs `md` with the online key where the role has it; a role of
    /// offline keys only is left unsigned, for its signers.
    pub fn sign<T: Signed>(self, md: &mut Metadata<T>, signer: &dyn Signer) -> Result<()> {
        match self {
            KeyUse::Offline => md.clear_signatures(),
            KeyUse::Online | KeyUse::Mixed => md.sign(signer)?,
        }
        Ok(())
    }
}

/// New versions of re-signed roles: ready to publish, or waiting for
/// offline signatures.
#[derive(Debug, Default)]
pub struct Resigned {
    pub published: Vec<(String, Metadata<Targets>)>,
    pub pending: Vec<(String, Metadata<Targets>)>,
}

/// Which roles to re-sign and whether roles without the online key count.
pub struct Resign<'a> {
    pub targets: &'a Targets,
    pub signer: &'a dyn Signer,
    /// Offline roles need new signatures when their delegation changed, but
    /// not when only the online key did.
    pub offline_too: bool,
}

impl Resign<'_> {
    /// Re-signs `roles` (with their new expiry), in parallel over the cores.
    /// Roles with no published metadata and no signing event are skipped.
    pub fn run(&self, ctx: &Context, roles: &[(String, UtcTime)]) -> Result<Resigned> {
        let outcomes = parallel(roles, self.signer.concurrency(), |(name, expires)| {
            self.one(ctx, name, *expires)
        })?;
        let mut resigned = Resigned::default();
        for (name, outcome) in roles.iter().map(|(n, _)| n).zip(outcomes) {
            match outcome {
                Some((true, md)) => resigned.published.push((name.clone(), md)),
                Some((false, md)) => resigned.pending.push((name.clone(), md)),
                None => {}
            }
        }
        Ok(resigned)
    }

    fn one(
        &self,
        ctx: &Context,
        name: &str,
        expires: UtcTime,
    ) -> Result<Option<(bool, Metadata<Targets>)>> {
        let spec = self.targets.role_spec(name)?;
        let usage = key_use(spec.keyids, self.signer.keyid());
        if usage == KeyUse::Offline && !self.offline_too {
            return Ok(None);
        }
        let mut md = match stored_or_pending(ctx, name)? {
            Some((mut md, Stored::Yes)) => {
                md.bump_version();
                md
            }
            // Never published: the copy waiting for signatures keeps its
            // version, as upstream does.
            Some((md, Stored::No)) => md,
            None => return Ok(None),
        };
        md.set_expires(expires);
        usage.sign(&mut md, self.signer)?;
        Ok(Some((threshold_met(&spec, &md)?, md)))
    }
}

/// The newest stored metadata of a delegated role, if it was ever published.
pub fn latest(ctx: &Context, role: &str) -> Result<Option<Metadata<Targets>>> {
    match ctx.storage.get_latest(&RoleName::new(role)?)? {
        Some((_, bytes)) => Ok(Some(Metadata::from_file_bytes(&bytes)?)),
        None => Ok(None),
    }
}

/// Whether a delegated role's metadata came from storage (published) or
/// from its signing event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Yes,
    No,
}

/// The newest stored metadata of a delegated role or, for one never
/// published, the copy waiting in `<ROLE>_SIGNING`.
pub fn stored_or_pending(ctx: &Context, role: &str) -> Result<Option<(Metadata<Targets>, Stored)>> {
    if let Some(md) = latest(ctx, role)? {
        return Ok(Some((md, Stored::Yes)));
    }
    match pending(ctx, role)? {
        Some(value) => Ok(Some((pending_metadata(&value, role)?, Stored::No))),
        None => Ok(None),
    }
}

/// Now plus each role's expiration policy: `BINS_EXPIRATION` for hash bins,
/// `<ROLE>_EXPIRATION` for custom roles (each setting read once).
pub fn expiries(ctx: &Context, roles: &[String], bins: bool) -> Result<Vec<(String, UtcTime)>> {
    let mut by_setting: HashMap<String, UtcTime> = HashMap::new();
    roles
        .iter()
        .map(|role| {
            let setting = if bins { "bins" } else { role.as_str() };
            let expires = match by_setting.get(setting) {
                Some(expires) => *expires,
                None => {
                    let expires = ctx.expiry_for(setting)?;
                    by_setting.insert(setting.to_owned(), expires);
                    expires
                }
            };
            Ok((role.clone(), expires))
        })
        .collect()
}

/// The database rows of re-published roles get their new version and
/// expiry, as the stored files have them.
pub fn record_versions(ctx: &Context, published: &[(String, Metadata<Targets>)]) -> Result<()> {
    if published.is_empty() {
        return Ok(());
    }
    let updates = published
        .iter()
        .map(|(name, md)| {
            Ok(RoleUpdate {
                name: super::context::role_name(name.as_str())?,
                version: md.version(),
                expires: md.expires().to_system_time(),
            })
        })
        .collect::<Result<Vec<RoleUpdate>>>()?;
    ctx.db.update_roles(&updates)?;
    Ok(())
}

/// Below this many items per core, spawning threads costs more than
/// signing on the CPU saves.
const ITEMS_PER_THREAD: usize = 32;

/// Runs `work` (which signs with a signer of `concurrency`) over `items`,
/// keeping the order of `items`: on every core for a CPU-bound signer, on
/// as many threads as it takes requests in flight for a remote one, whose
/// round trips would otherwise follow one another.
pub fn parallel<T: Sync, R: Send>(
    items: &[T],
    concurrency: Concurrency,
    work: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let threads = match concurrency {
        Concurrency::Cpu => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            cores.min(items.len() / ITEMS_PER_THREAD)
        }
        Concurrency::Network(in_flight) => in_flight.min(items.len()),
    }
    .max(1);
    if threads == 1 {
        return items.iter().map(work).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(work).collect::<Result<Vec<R>>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for handle in handles {
            let part = handle
                .join()
                .map_err(|_| Error::Repository("a signing thread panicked".into()))??;
            out.extend(part);
        }
        Ok(out)
    })
}

/// Adds to `publication`, in publishing order: `roles`, `targets` with a
/// new version and expiry, and a snapshot recording both (and forgetting
/// `removed` roles) with its timestamp.
pub fn publish_with_targets(
    ctx: &Context,
    roles: &[(String, Metadata<Targets>)],
    targets: &mut Metadata<Targets>,
    removed: &[String],
    signer: &dyn Signer,
    publication: &mut Publication,
) -> Result<()> {
    let mut changed = Vec::with_capacity(roles.len() + 1);
    for (name, md) in roles {
        publication.add(name, md)?;
        changed.push((name.clone(), md.version()));
    }
    changed.push(publish_targets(ctx, targets, signer, publication)?);
    snapshot_and_timestamp(ctx, &changed, removed, signer, publication)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_use_follows_the_online_key() {
        let online = KeyId::from("on");
        let off = KeyId::from("off");
        assert_eq!(
            key_use(std::slice::from_ref(&online), &online),
            KeyUse::Online
        );
        assert_eq!(
            key_use(&[off.clone(), online.clone()], &online),
            KeyUse::Mixed
        );
        assert_eq!(key_use(&[off], &online), KeyUse::Offline);
        assert_eq!(key_use(&[], &online), KeyUse::Offline);
    }

    #[test]
    fn parallel_keeps_order_and_reports_the_first_error() {
        let items: Vec<u32> = (0..1000).collect();
        for concurrency in [Concurrency::Cpu, Concurrency::Network(8)] {
            let doubled = parallel(&items, concurrency, |n| Ok(n * 2)).unwrap();
            assert_eq!(doubled, items.iter().map(|n| n * 2).collect::<Vec<_>>());
            let err = parallel(&items, concurrency, |n| {
                if *n == 700 {
                    Err(Error::Repository(format!("item {n}")))
                } else {
                    Ok(*n)
                }
            })
            .unwrap_err();
            assert_eq!(err.to_string(), "item 700");
            let none = parallel(&Vec::<u32>::new(), concurrency, |n| Ok(*n)).unwrap();
            assert!(none.is_empty());
        }
    }

    /// A remote signer gets its requests in flight even for a few roles on
    /// a machine with fewer cores.
    #[test]
    fn network_signers_get_one_thread_per_request_in_flight() {
        let threads_used = |items: usize, concurrency| {
            let items: Vec<usize> = (0..items).collect();
            let ids = parallel(&items, concurrency, |_| Ok(std::thread::current().id())).unwrap();
            ids.into_iter()
                .collect::<std::collections::HashSet<_>>()
                .len()
        };
        assert_eq!(threads_used(16, Concurrency::Network(8)), 8);
        assert_eq!(threads_used(3, Concurrency::Network(8)), 3);
        assert_eq!(threads_used(16, Concurrency::Cpu), 1);
    }
}
