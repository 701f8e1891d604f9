//! Reading the API's payloads: fields by name, role names and metadata, with
//! errors that name the field, so a bad payload fails before anything is
//! written.
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::context::Result;
use super::Error;
use crate::tuf::metadata::{MetadataType, Signed};
use crate::tuf::Metadata;

/// A file name holds `<version>.<role>.json`; 200 bytes keep it well below
/// the 255 bytes file systems allow.
const MAX_ROLE_NAME: usize = 200;

/// The member `name` of an object; absent and `null` are both "missing", as
/// Python's `payload.get(name) is None` treats them.
pub fn member<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

/// A member the action cannot do without; `field` is its path for messages.
pub fn required<'a>(obj: &'a Value, name: &str, field: &str) -> Result<&'a Value> {
    member(obj, name).ok_or_else(|| Error::payload(field, "is missing"))
}

/// A member that must be a string.
pub fn string<'a>(obj: &'a Value, name: &str, field: &str) -> Result<&'a str> {
    required(obj, name, field)?
        .as_str()
        .ok_or_else(|| Error::payload(field, "must be a string"))
}

/// A list of role names; each item is named `<field>[i]` in messages.
pub fn role_names(items: &[Value], field: &str) -> Result<Vec<String>> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_str()
                .map(str::to_owned)
                .ok_or_else(|| Error::payload(format!("{field}[{i}]"), "must be a role name"))
        })
        .collect()
}

/// A value of a serde type, the parser's complaint attached to the field.
pub fn parse<T: DeserializeOwned>(value: &Value, field: &str) -> Result<T> {
    T::deserialize(value).map_err(|e| Error::payload(field, e.to_string()))
}

/// Metadata sent in a payload, checked like a file read from storage.
pub fn metadata<T: Signed>(value: &Value, field: &str) -> Result<Metadata<T>> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::payload(field, e.to_string()))?;
    Metadata::from_file_bytes(&bytes).map_err(|e| Error::payload(field, e.to_string()))
}

/// A whole number of days of an expiration policy; it must give a date
/// TUF can write (years up to 9999).
pub fn days(value: &Value, field: &str) -> Result<i64> {
    let days = value
        .as_i64()
        .filter(|d| *d >= 1)
        .ok_or_else(|| Error::payload(field, "must be a whole number of days, at least 1"))?;
    crate::tuf::UtcTime::now()
        .and_then(|now| now.add_days(days))
        .map_err(|e| Error::payload(field, format!("{days} days from now: {e}")))?;
    Ok(days)
}

/// A delegated role name as the API allows it (`[a-zA-Z0-9_-]`): it
/// becomes part of file names and settings keys, so anything else could
/// escape the storage directory or collide with another setting.
pub fn check_role_name(name: &str, field: &str) -> Result<()> {
    let safe = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if name.is_empty() || !name.chars().all(safe) {
        return Err(Error::payload(
            field,
            format!("role name {name:?} must be letters, digits, '_' or '-'"),
        ));
    }
    if name.len() > MAX_ROLE_NAME {
        return Err(Error::payload(
            field,
            format!("role name is longer than {MAX_ROLE_NAME} characters"),
        ));
    }
    if MetadataType::from_type_str(name).is_some() {
        return Err(Error::payload(
            field,
            format!("{name:?} is a top-level role, not a delegated one"),
        ));
    }
    Ok(())
}

/// A role named in a signing request: a top-level role or a delegated one.
pub fn check_signing_role(name: &str, field: &str) -> Result<()> {
    match MetadataType::from_type_str(name) {
        Some(_) => Ok(()),
        None => check_role_name(name, field),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(e: Error) -> String {
        e.to_string()
    }

    #[test]
    fn null_counts_as_missing() {
        let payload = json!({"a": null, "b": 1});
        assert!(member(&payload, "a").is_none());
        assert_eq!(member(&payload, "b"), Some(&json!(1)));
        assert_eq!(
            message(required(&payload, "a", "settings.a").unwrap_err()),
            "payload field 'settings.a': is missing"
        );
        assert_eq!(
            message(string(&payload, "b", "role").unwrap_err()),
            "payload field 'role': must be a string"
        );
    }

    #[test]
    fn role_names_are_the_apis_alphabet() {
        for ok in ["dev", "tenant1-group1", "A_b-9", "2024-x"] {
            check_role_name(ok, "r").unwrap();
        }
        let cases = [
            ("", "role name \"\" must be letters, digits, '_' or '-'"),
            (
                "a/b",
                "role name \"a/b\" must be letters, digits, '_' or '-'",
            ),
            ("..", "role name \"..\" must be letters, digits, '_' or '-'"),
            (
                "a\0",
                "role name \"a\\0\" must be letters, digits, '_' or '-'",
            ),
            (
                "a.b",
                "role name \"a.b\" must be letters, digits, '_' or '-'",
            ),
            (
                "targets",
                "\"targets\" is a top-level role, not a delegated one",
            ),
        ];
        for (name, reason) in cases {
            assert_eq!(
                message(check_role_name(name, "roles[0].name").unwrap_err()),
                format!("payload field 'roles[0].name': {reason}")
            );
        }
        assert!(check_role_name(&"a".repeat(201), "r").is_err());
        check_signing_role("root", "role").unwrap();
        assert!(check_signing_role("../x", "role").is_err());
    }

    #[test]
    fn expiration_days_must_be_positive_and_representable() {
        assert_eq!(days(&json!(365), "x").unwrap(), 365);
        for bad in [json!(0), json!(-1), json!("30"), json!(1.5)] {
            assert_eq!(
                message(days(&bad, "roles.root.expiration").unwrap_err()),
                "payload field 'roles.root.expiration': must be a whole number of days, at least 1"
            );
        }
        let far = message(days(&json!(5_000_000), "x").unwrap_err());
        assert!(
            far.starts_with("payload field 'x': 5000000 days from now: "),
            "{far}"
        );
    }

    #[test]
    fn metadata_errors_name_the_field() {
        let err = metadata::<crate::tuf::metadata::Root>(&json!({"signed": {}}), "metadata.root")
            .unwrap_err();
        assert!(
            message(err).starts_with("payload field 'metadata.root': cannot parse root metadata"),
        );
    }
}
