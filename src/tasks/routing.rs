//! Which delegated role is responsible for an artifact path, as the newest
//! top-level targets metadata delegates: a hash bin, or the first custom
//! role whose paths match (upstream takes the first match and does not walk
//! deeper levels). Parsed once per targets version, not once per task.
use std::sync::{Arc, Mutex};

use super::context::{role_name, Context, Result};
use crate::tuf::hashbins::HashBins;
use crate::tuf::metadata::{DelegatedRole, Targets};
use crate::tuf::paths::PathSpec;
use crate::tuf::{Metadata, Version};

/// The delegations of one targets version.
#[derive(Debug, Clone, PartialEq)]
pub enum Router {
    Bins(HashBins),
    Roles(Vec<DelegatedRole>),
    /// Targets delegates nothing: no path has a responsible role.
    Nothing,
}

impl Router {
    pub fn of(targets: &Targets) -> crate::tuf::Result<Router> {
        let Some(delegations) = &targets.delegations else {
            return Ok(Router::Nothing);
        };
        if let Some(succinct) = &delegations.succinct_roles {
            return Ok(Router::Bins(HashBins::new(
                succinct.bit_length,
                &succinct.name_prefix,
            )?));
        }
        Ok(Router::Roles(delegations.roles.clone().unwrap_or_default()))
    }

    /// The role responsible for `path`, if any.
    pub fn role_for(&self, path: &str) -> Option<String> {
        match self {
            Router::Bins(bins) => Some(bins.role_for_path(path)),
            Router::Roles(roles) => roles
                .iter()
                .find(|role| spec(role).is_some_and(|s| s.matches(path)))
                .map(|role| role.name.clone()),
            Router::Nothing => None,
        }
    }
}

fn spec(role: &DelegatedRole) -> Option<PathSpec<'_>> {
    match (&role.paths, &role.path_hash_prefixes) {
        (Some(patterns), _) => Some(PathSpec::Patterns(patterns)),
        (None, Some(prefixes)) => Some(PathSpec::HashPrefixes(prefixes)),
        (None, None) => None,
    }
}

/// The router of the newest targets metadata; re-read only when a newer
/// targets version appears (one existence probe per call otherwise).
pub fn current(ctx: &Context) -> Result<Arc<Router>> {
    static CACHE: Mutex<Option<(Version, Arc<Router>)>> = Mutex::new(None);
    let name = role_name("targets")?;
    let Some(version) = ctx.storage.latest_version(&name)? else {
        // Same as loading: names the missing bootstrap.
        ctx.load::<Targets>("targets")?;
        return Ok(Arc::new(Router::Nothing));
    };
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((cached, router)) = cache.as_ref() {
        if *cached == version {
            return Ok(router.clone());
        }
    }
    let targets = Metadata::<Targets>::from_file_bytes(&ctx.storage.get(&name, version)?)?;
    let router = Arc::new(Router::of(&targets.signed)?);
    *cache = Some((version, router.clone()));
    Ok(router)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::tuf::testdata;

    /// The signed part of `1.targets.json` of a vector repository folder
    /// (the routing and round tests read the same ones).
    pub(crate) fn targets(folder: &str) -> Targets {
        let bytes = testdata::bytes(&format!("{folder}/1.targets.json"));
        Metadata::<Targets>::from_file_bytes(&bytes).unwrap().signed
    }

    #[test]
    fn hash_bins_route_every_path_like_the_vectors() {
        let router = Router::of(&targets("vectors/tuf/repo-bins/1-after-bootstrap")).unwrap();
        // repo-bins/2-after-add-artifacts put both artifacts in bins-f.
        assert_eq!(router.role_for("file1.tar.gz").as_deref(), Some("bins-f"));
        assert_eq!(
            router.role_for("café/文件-😀.txt").as_deref(),
            Some("bins-f")
        );
        let table = &testdata::json("vectors/tuf/hash-bins.json")["tables"][1];
        assert_eq!(table["number_of_bins"], 16);
        for m in table["mapping"].as_array().unwrap() {
            assert_eq!(
                router.role_for(m["path"].as_str().unwrap()).as_deref(),
                m["role"].as_str()
            );
        }
    }

    #[test]
    fn custom_roles_take_the_first_match_and_leave_the_rest_unrouted() {
        let folder = "vectors/tuf/repo-custom/1-after-bootstrap-and-signing";
        let router = Router::of(&targets(folder)).unwrap();
        let route = |p: &str| router.role_for(p);
        assert_eq!(route("dev/app.bin").as_deref(), Some("dev"));
        assert_eq!(route("production/app.bin").as_deref(), Some("production"));
        assert_eq!(route("top.txt").as_deref(), Some("default"));
        // `*` matches one path segment only; nothing catches deeper paths.
        assert_eq!(route("other/sub/x.txt"), None);
        assert_eq!(route("dev/sub/app.bin"), None);
    }

    #[test]
    fn targets_without_delegations_route_nothing() {
        let mut t = targets("vectors/tuf/repo-bins/1-after-bootstrap");
        t.delegations = None;
        assert_eq!(Router::of(&t).unwrap().role_for("a"), None);
    }
}
