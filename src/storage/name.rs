//! Names of metadata files, shared by every backend: `<version>.<role>.json`
//! for every role, and the unversioned `timestamp.json`.
//!
//! Unlike upstream, a role whose name starts with a digit (`2024-x`) still
//! gets the version prefix (`1.2024-x.json`): upstream writes `2024-x.json`
//! and can then never read it back (audit §1.3). Parsing splits at the first
//! dot, which a version never contains, so such names stay unambiguous.
use crate::tuf::{RoleName, Version};

/// Object key / file name of the timestamp role, overwritten on every bump.
pub const TIMESTAMP_FILE: &str = "timestamp.json";
const TIMESTAMP_ROLE: &str = "timestamp";
const SUFFIX: &str = ".json";

/// One stored metadata file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataFile {
    Versioned { role: RoleName, version: Version },
    Timestamp,
}

impl MetadataFile {
    /// The file RSTUF persists `role` at `version` in: timestamp is the one
    /// role stored unversioned, whatever its version.
    pub fn persisted(role: RoleName, version: Version) -> MetadataFile {
        if role.as_str() == TIMESTAMP_ROLE {
            MetadataFile::Timestamp
        } else {
            MetadataFile::Versioned { role, version }
        }
    }

    /// File name in a directory, also the S3 key.
    pub fn name(&self) -> String {
        match self {
            MetadataFile::Versioned { role, version } => format!("{version}.{role}{SUFFIX}"),
            MetadataFile::Timestamp => TIMESTAMP_FILE.to_owned(),
        }
    }

    /// The file a directory entry holds, or None for anything this worker
    /// would not have written (temp files, `01.root.json`, `0.x.json`,
    /// upstream's unprefixed digit-leading names).
    pub fn parse(name: &str) -> Option<MetadataFile> {
        if name == TIMESTAMP_FILE {
            return Some(MetadataFile::Timestamp);
        }
        let (version, role) = name.strip_suffix(SUFFIX)?.split_once('.')?;
        if !version.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let file = MetadataFile::Versioned {
            role: RoleName::new(role).ok()?,
            version: Version(version.parse().ok().filter(|v| *v > 0)?),
        };
        // Only the canonical spelling counts: a probe for `1.root.json` would
        // never find `01.root.json`.
        (file.name() == name).then_some(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Error;
    use crate::testutil::role_name;
    use crate::tuf::types::tests::INVALID_ROLE_NAMES;

    fn versioned(name: &str, version: u64) -> MetadataFile {
        MetadataFile::Versioned {
            role: role_name(name),
            version: Version(version),
        }
    }

    #[test]
    fn names_that_are_not_file_safe_become_storage_errors() {
        for (name, reason) in INVALID_ROLE_NAMES {
            match RoleName::new(name).map_err(Error::from) {
                Err(Error::RoleName { name: n, reason: r }) => {
                    assert_eq!((n.as_str(), r), (name, reason))
                }
                other => panic!("{name:?}: expected RoleName error, got {other:?}"),
            }
        }
    }

    #[test]
    fn error_message_names_the_role() {
        let err = Error::from(RoleName::new("a/b").unwrap_err());
        assert_eq!(
            err.to_string(),
            "role name \"a/b\" cannot be stored: it contains '/' \
             (metadata file names are <version>.<role>.json)"
        );
    }

    #[test]
    fn versioned_names_follow_the_vectors() {
        // Names taken from vectors/tuf/repo-bins and repo-custom.
        for (file, expected) in [
            (versioned("root", 1), "1.root.json"),
            (versioned("bins-a", 1), "1.bins-a.json"),
            (versioned("snapshot", 12), "12.snapshot.json"),
            (MetadataFile::Timestamp, "timestamp.json"),
        ] {
            assert_eq!(file.name(), expected);
            assert_eq!(MetadataFile::parse(expected), Some(file));
        }
    }

    #[test]
    fn vector_repository_file_names_all_parse() {
        let dir = crate::tuf::testdata::shared("vectors/tuf/repo-bins/2-after-add-artifacts");
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name != "manifest.json")
            .collect();
        assert_eq!(names.len(), 22);
        for name in &names {
            let file = MetadataFile::parse(name).unwrap_or_else(|| panic!("{name} not parsed"));
            assert_eq!(&file.name(), name);
        }
        assert_eq!(
            MetadataFile::parse("2.bins-f.json"),
            Some(versioned("bins-f", 2))
        );
    }

    #[test]
    fn digit_leading_roles_keep_the_version_prefix() {
        let file = versioned("2024-x", 3);
        assert_eq!(file.name(), "3.2024-x.json");
        assert_eq!(MetadataFile::parse("3.2024-x.json"), Some(file));
        // Upstream's unprefixed spelling is not one of ours.
        assert_eq!(MetadataFile::parse("2024-x.json"), None);
    }

    #[test]
    fn dotted_role_names_split_at_the_first_dot() {
        assert_eq!(MetadataFile::parse("7.a.b.json"), Some(versioned("a.b", 7)));
    }

    #[test]
    fn foreign_names_are_ignored() {
        for name in [
            "01.root.json",
            "0.root.json",
            "+1.root.json",
            "1.root.json.tmp",
            ".1.root.json.42.0.tmp",
            "root.json",
            "1.json",
            "1..json",
            "99999999999999999999999.root.json",
            "manifest.json",
        ] {
            assert_eq!(MetadataFile::parse(name), None, "{name}");
        }
    }

    #[test]
    fn timestamp_is_persisted_unversioned() {
        assert_eq!(
            MetadataFile::persisted(role_name("timestamp"), Version(9)),
            MetadataFile::Timestamp
        );
        assert_eq!(
            MetadataFile::persisted(role_name("snapshot"), Version(9)),
            versioned("snapshot", 9)
        );
    }
}
