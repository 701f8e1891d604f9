//! Small domain types shared across the core.
use std::fmt;

use serde::{Deserialize, Serialize};

/// A key id as it appears in metadata. Verifiers use it as given (a forged
/// or non-hex id is still an id), so it is not validated here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(pub String);

impl KeyId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for KeyId {
    fn from(s: &str) -> Self {
        KeyId(s.to_owned())
    }
}

/// The name of a TUF role (`root`, `bins-3f`, `my-role`). Role names become
/// parts of metadata file names and S3 keys, so only names that are safe
/// there exist: not empty, no '/', no "..", no control characters (S3
/// cannot return those in its XML listings).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoleName(String);

impl RoleName {
    pub fn new(name: impl Into<String>) -> Result<RoleName, InvalidRoleName> {
        let name = name.into();
        match unsafe_reason(&name) {
            Some(reason) => Err(InvalidRoleName { name, reason }),
            None => Ok(RoleName(name)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why `name` would escape a storage directory or make an unusable name.
fn unsafe_reason(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.contains('/') {
        Some("it contains '/'")
    } else if name.contains("..") {
        Some("it contains '..'")
    } else if name.chars().any(char::is_control) {
        Some("it contains a control character")
    } else {
        None
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for RoleName {
    type Error = InvalidRoleName;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        RoleName::new(name)
    }
}

impl From<RoleName> for String {
    fn from(name: RoleName) -> String {
        name.0
    }
}

/// A string that cannot be a [`RoleName`], and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRoleName {
    pub name: String,
    pub reason: &'static str,
}

impl fmt::Display for InvalidRoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid role name {:?}: {}", self.name, self.reason)
    }
}

impl std::error::Error for InvalidRoleName {}

/// A metadata version number (TUF versions start at 1).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct Version(pub u64);

impl Version {
    pub fn next(self) -> Version {
        Version(self.0 + 1)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Names that are not file safe, with the reason given; other modules'
    /// tests check their own errors carry the same.
    pub(crate) const INVALID_ROLE_NAMES: [(&str, &str); 6] = [
        ("", "it is empty"),
        ("a/b", "it contains '/'"),
        ("..", "it contains '..'"),
        ("x..y", "it contains '..'"),
        ("nul\0", "it contains a control character"),
        ("tab\t", "it contains a control character"),
    ];

    #[test]
    fn role_names_that_are_not_file_safe_are_refused_with_the_reason() {
        for (name, reason) in INVALID_ROLE_NAMES {
            assert_eq!(
                RoleName::new(name),
                Err(InvalidRoleName {
                    name: name.to_owned(),
                    reason
                })
            );
        }
        assert_eq!(
            RoleName::new("a/b").unwrap_err().to_string(),
            "invalid role name \"a/b\": it contains '/'"
        );
    }

    #[test]
    fn role_names_serialize_as_strings_and_deserialize_through_validation() {
        // Names from vectors/tuf/repo-bins and repo-custom.
        for name in ["root", "bins-3f", "2024-x", "a.b"] {
            let role = RoleName::new(name).unwrap();
            assert_eq!(role.as_str(), name);
            assert_eq!(role.to_string(), name);
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<RoleName>(&json).unwrap(), role);
        }
        let err = serde_json::from_str::<RoleName>("\"../etc\"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid role name \"../etc\": it contains '/'"
        );
    }
}
