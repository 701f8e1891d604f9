//! Domain types of the `rstuf_target_roles` / `rstuf_target_files` rows.
//!
//! Times are `SystemTime` stored as naive UTC (`timestamp without time zone`),
//! which is what upstream's rows hold; PostgreSQL keeps microseconds, so a
//! value read back is the value written truncated to whole microseconds.
use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::tuf::{RoleName, Version};

/// The path of an artifact (target file) as the API sends it; unique in
/// `rstuf_target_files`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ArtifactPath(pub String);

impl ArtifactPath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ArtifactPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ArtifactPath {
    fn from(s: &str) -> Self {
        ArtifactPath(s.to_owned())
    }
}

/// `rstuf_target_roles.id`; the CLI's import refers to roles by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleId(pub i32);

/// `rstuf_target_files.id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub i32);

/// Which change of an artifact a row records; the PostgreSQL enum
/// `targetaction`. A published REMOVE row stays in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetAction {
    Add,
    Remove,
}

impl TargetAction {
    /// Reads a `targetaction` enum label.
    pub fn from_label(label: &str) -> Option<TargetAction> {
        match label {
            "ADD" => Some(TargetAction::Add),
            "REMOVE" => Some(TargetAction::Remove),
            _ => None,
        }
    }
}

/// Identifies one state of a file row (PostgreSQL's `xmin`, which changes on
/// every update). Marking a file published with the stamp read before signing
/// leaves the row unpublished if an add/remove changed it meanwhile, so that
/// change is published by the next run instead of being lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RowStamp(pub i64);

/// A file row in the state it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileStamp {
    pub id: FileId,
    pub stamp: RowStamp,
}

/// A row of `rstuf_target_roles`: a delegated targets role (top-level roles
/// never have a row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRole {
    pub id: RoleId,
    pub name: RoleName,
    pub expires: SystemTime,
    pub version: Version,
    pub active: bool,
    pub last_update: Option<SystemTime>,
}

/// A row of `rstuf_target_files`.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetFile {
    pub id: FileId,
    pub path: ArtifactPath,
    /// The payload's `info` object as stored (`length`, `hashes`, `custom`).
    pub info: serde_json::Value,
    pub published: bool,
    pub action: TargetAction,
    pub last_update: Option<SystemTime>,
    pub role: Option<RoleId>,
    pub stamp: RowStamp,
}

impl TargetFile {
    pub fn file_stamp(&self) -> FileStamp {
        FileStamp {
            id: self.id,
            stamp: self.stamp,
        }
    }
}

/// An active role with every file row that points at it (ADD and REMOVE,
/// published or not): what publishing a role needs.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleFiles {
    pub role: TargetRole,
    pub files: Vec<TargetFile>,
}

impl RoleFiles {
    /// The files the role's metadata lists: rows whose last action is ADD.
    pub fn added(&self) -> impl Iterator<Item = &TargetFile> {
        self.files.iter().filter(|f| f.action == TargetAction::Add)
    }

    /// The rows a publication of this role settles.
    pub fn unpublished(&self) -> Vec<FileStamp> {
        self.files
            .iter()
            .filter(|f| !f.published)
            .map(TargetFile::file_stamp)
            .collect()
    }
}

/// A role row to create (active, with `last_update` = now).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRole {
    pub name: RoleName,
    pub expires: SystemTime,
    pub version: Version,
}

/// An artifact to add (or re-add) under the role responsible for its path.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFile {
    pub path: ArtifactPath,
    pub info: serde_json::Value,
    pub role: RoleId,
}

/// The version and expiry a role's newest persisted metadata file carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleUpdate {
    pub name: RoleName,
    pub version: Version,
    pub expires: SystemTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::role_name;

    #[test]
    fn action_labels_are_the_enum_labels() {
        assert_eq!(TargetAction::from_label("ADD"), Some(TargetAction::Add));
        assert_eq!(
            TargetAction::from_label("REMOVE"),
            Some(TargetAction::Remove)
        );
        assert_eq!(TargetAction::from_label("add"), None);
    }

    fn file(id: i32, action: TargetAction, published: bool) -> TargetFile {
        TargetFile {
            id: FileId(id),
            path: ArtifactPath(format!("file{id}")),
            info: serde_json::json!({"length": id}),
            published,
            action,
            last_update: None,
            role: Some(RoleId(1)),
            stamp: RowStamp(100 + i64::from(id)),
        }
    }

    #[test]
    fn role_files_split_listed_and_unsettled_rows() {
        let role_files = RoleFiles {
            role: TargetRole {
                id: RoleId(1),
                name: role_name("bins-0"),
                expires: SystemTime::UNIX_EPOCH,
                version: Version(1),
                active: true,
                last_update: None,
            },
            files: vec![
                file(1, TargetAction::Add, true),
                file(2, TargetAction::Add, false),
                file(3, TargetAction::Remove, false),
                file(4, TargetAction::Remove, true),
            ],
        };
        let added: Vec<i32> = role_files.added().map(|f| f.id.0).collect();
        assert_eq!(added, vec![1, 2]);
        assert_eq!(
            role_files.unpublished(),
            vec![
                FileStamp {
                    id: FileId(2),
                    stamp: RowStamp(102)
                },
                FileStamp {
                    id: FileId(3),
                    stamp: RowStamp(103)
                },
            ]
        );
    }
}
