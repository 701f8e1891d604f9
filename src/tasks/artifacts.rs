//! The payload of add_artifacts and remove_artifacts, checked before
//! anything is written: a bad entry fails the whole task naming the field
//! (`artifacts[3].info.hashes`), so a half-applied payload cannot happen.
use serde_json::{Map, Value};

use super::Error;
use crate::db::ArtifactPath;

/// Longest artifact path accepted, in bytes (Linux's PATH_MAX).
pub const MAX_PATH_BYTES: usize = 4096;
/// Most artifacts one task may carry.
pub const MAX_ARTIFACTS: usize = 100_000;
/// Most hash algorithms one artifact may list, and the longest name/digest.
const MAX_HASHES: usize = 16;
const MAX_HASH_TEXT: usize = 1024;
/// Largest `custom` object, serialized.
const MAX_CUSTOM_BYTES: usize = 64 * 1024;

type Checked<T> = Result<T, Error>;

/// An artifact to add: its path and the `info` stored as given.
#[derive(Debug, Clone, PartialEq)]
pub struct NewArtifact {
    pub path: ArtifactPath,
    pub info: Value,
}

/// `payload.artifacts` when present and not null.
pub fn artifacts_of(payload: &Value) -> Option<&Value> {
    payload.get("artifacts").filter(|v| !v.is_null())
}

/// The list of artifacts, bounded.
pub fn list(value: &Value) -> Checked<&[Value]> {
    let items = value
        .as_array()
        .ok_or_else(|| Error::payload("artifacts", "must be a list"))?;
    if items.len() > MAX_ARTIFACTS {
        return Err(Error::payload(
            "artifacts",
            format!(
                "has {} entries; at most {MAX_ARTIFACTS} per task",
                items.len()
            ),
        ));
    }
    Ok(items)
}

/// Upstream publishes only when `publish_artifacts` is absent or exactly
/// `true` (`payload.get("publish_artifacts", True) is True`).
pub fn publish_requested(payload: &Value) -> bool {
    match payload.get("publish_artifacts") {
        None => true,
        Some(flag) => flag == &Value::Bool(true),
    }
}

/// `artifacts` of add_artifacts: objects with `path` and `info`.
pub fn new_artifacts(items: &[Value]) -> Checked<Vec<NewArtifact>> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("artifacts[{i}]");
            let object = item
                .as_object()
                .ok_or_else(|| Error::payload(&at, "must be an object with path and info"))?;
            let path = path(&format!("{at}.path"), object.get("path"))?;
            let info = info(&format!("{at}.info"), object.get("info"))?;
            Ok(NewArtifact { path, info })
        })
        .collect()
}

/// `artifacts` of remove_artifacts: paths.
pub fn paths(items: &[Value]) -> Checked<Vec<ArtifactPath>> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| path(&format!("artifacts[{i}]"), Some(item)))
        .collect()
}

/// A relative path a client can resolve: no `..` segment, not absolute,
/// no NUL, bounded.
fn path(field: &str, value: Option<&Value>) -> Checked<ArtifactPath> {
    let path = match value {
        None => return Err(Error::payload(field, "is missing")),
        Some(Value::String(path)) => path,
        Some(_) => return Err(Error::payload(field, "must be a string")),
    };
    let reason = if path.is_empty() {
        Some("must not be empty".to_owned())
    } else if path.len() > MAX_PATH_BYTES {
        Some(format!(
            "is {} bytes long; at most {MAX_PATH_BYTES}",
            path.len()
        ))
    } else if path.contains('\0') {
        Some("must not contain NUL".to_owned())
    } else if path.starts_with('/') {
        Some(format!("{path:?} is absolute; artifact paths are relative"))
    } else if path.split('/').any(|segment| segment == "..") {
        Some(format!("{path:?} has a '..' segment"))
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::payload(field, reason)),
        None => Ok(ArtifactPath(path.clone())),
    }
}

/// A TUF target file description: `length`, `hashes`, optional `custom`.
fn info(field: &str, value: Option<&Value>) -> Checked<Value> {
    let object = match value {
        None | Some(Value::Null) => return Err(Error::payload(field, "is missing")),
        Some(Value::Object(object)) => object,
        Some(_) => return Err(Error::payload(field, "must be an object")),
    };
    if !object.get("length").is_some_and(Value::is_u64) {
        return Err(Error::payload(
            format!("{field}.length"),
            "must be a non-negative whole number",
        ));
    }
    hashes(&format!("{field}.hashes"), object.get("hashes"))?;
    match object.get("custom") {
        None | Some(Value::Null) => {}
        Some(custom @ Value::Object(_)) if custom.to_string().len() <= MAX_CUSTOM_BYTES => {}
        Some(Value::Object(_)) => {
            return Err(Error::payload(
                format!("{field}.custom"),
                format!("is larger than {MAX_CUSTOM_BYTES} bytes"),
            ))
        }
        Some(_) => {
            return Err(Error::payload(
                format!("{field}.custom"),
                "must be an object",
            ))
        }
    }
    Ok(Value::Object(object.clone()))
}

fn hashes(field: &str, value: Option<&Value>) -> Checked<()> {
    let hashes: &Map<String, Value> = value
        .and_then(Value::as_object)
        .ok_or_else(|| Error::payload(field, "must be an object of algorithm: digest"))?;
    if hashes.is_empty() || hashes.len() > MAX_HASHES {
        return Err(Error::payload(
            field,
            format!("must list 1 to {MAX_HASHES} digests"),
        ));
    }
    for (algorithm, digest) in hashes {
        let fits = |s: &str| !s.is_empty() && s.len() <= MAX_HASH_TEXT;
        if !fits(algorithm) || !digest.as_str().is_some_and(fits) {
            return Err(Error::payload(
                format!("{field}.{algorithm}"),
                format!("must be a non-empty string digest of at most {MAX_HASH_TEXT} characters"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn add_error(items: Value) -> String {
        new_artifacts(items.as_array().unwrap())
            .unwrap_err()
            .to_string()
    }

    fn info_ok() -> Value {
        json!({"length": 1, "hashes": {"sha256": "00"}})
    }

    #[test]
    fn the_api_payload_is_accepted_as_sent() {
        let doc = crate::tuf::testdata::json("vectors/payloads/add_artifacts.json");
        let payload = &doc["kwargs"]["payload"];
        let artifacts = new_artifacts(list(artifacts_of(payload).unwrap()).unwrap()).unwrap();
        let paths: Vec<&str> = artifacts.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(paths, ["file1.tar.gz", "café/文件-😀.txt"]);
        assert_eq!(artifacts[0].info, payload["artifacts"][0]["info"]);
        assert!(publish_requested(payload));
    }

    #[test]
    fn only_a_true_or_missing_flag_publishes() {
        assert!(publish_requested(&json!({})));
        assert!(publish_requested(&json!({"publish_artifacts": true})));
        for other in [json!(false), json!(null), json!(1), json!("true")] {
            assert!(!publish_requested(&json!({"publish_artifacts": other})));
        }
    }

    #[test]
    fn bad_paths_are_named() {
        let cases = [
            (json!([{"info": info_ok()}]), "payload field 'artifacts[0].path': is missing"),
            (json!([{"path": 3, "info": info_ok()}]), "payload field 'artifacts[0].path': must be a string"),
            (json!([{"path": "", "info": info_ok()}]), "payload field 'artifacts[0].path': must not be empty"),
            (json!([{"path": "a/../b", "info": info_ok()}]), "payload field 'artifacts[0].path': \"a/../b\" has a '..' segment"),
            (json!([{"path": "/etc/x", "info": info_ok()}]), "payload field 'artifacts[0].path': \"/etc/x\" is absolute; artifact paths are relative"),
            (json!([{"path": "a\u{0}b", "info": info_ok()}]), "payload field 'artifacts[0].path': must not contain NUL"),
            (json!(["x"]), "payload field 'artifacts[0]': must be an object with path and info"),
        ];
        for (items, expected) in cases {
            assert_eq!(add_error(items), expected);
        }
        let long = "a".repeat(MAX_PATH_BYTES + 1);
        assert_eq!(
            add_error(json!([{"path": long, "info": info_ok()}])),
            "payload field 'artifacts[0].path': is 4097 bytes long; at most 4096"
        );
        // Dots that are not a whole segment are ordinary names.
        assert!(new_artifacts(&[json!({"path": "a/..b/c..", "info": info_ok()})]).is_ok());
    }

    #[test]
    fn bad_infos_are_named() {
        let entry =
            |info: Value| json!([{"path": "ok", "info": info}, {"path": "x", "info": info}]);
        let cases = [
            (json!(null), "payload field 'artifacts[0].info': is missing"),
            (json!([1]), "payload field 'artifacts[0].info': must be an object"),
            (json!({"hashes": {"sha256": "00"}}), "payload field 'artifacts[0].info.length': must be a non-negative whole number"),
            (json!({"length": -1, "hashes": {"sha256": "00"}}), "payload field 'artifacts[0].info.length': must be a non-negative whole number"),
            (json!({"length": 1.5, "hashes": {"sha256": "00"}}), "payload field 'artifacts[0].info.length': must be a non-negative whole number"),
            (json!({"length": 1}), "payload field 'artifacts[0].info.hashes': must be an object of algorithm: digest"),
            (json!({"length": 1, "hashes": {}}), "payload field 'artifacts[0].info.hashes': must list 1 to 16 digests"),
            (json!({"length": 1, "hashes": {"sha256": 5}}), "payload field 'artifacts[0].info.hashes.sha256': must be a non-empty string digest of at most 1024 characters"),
            (json!({"length": 1, "hashes": {"sha256": "00"}, "custom": "x"}), "payload field 'artifacts[0].info.custom': must be an object"),
        ];
        for (info, expected) in cases {
            assert_eq!(add_error(entry(info)), expected);
        }
    }

    #[test]
    fn remove_takes_paths_only() {
        assert_eq!(
            paths(&[json!("a"), json!("b/c")]).unwrap(),
            [ArtifactPath::from("a"), ArtifactPath::from("b/c")]
        );
        assert_eq!(
            paths(&[json!("a"), json!({"path": "b"})])
                .unwrap_err()
                .to_string(),
            "payload field 'artifacts[1]': must be a string"
        );
        assert_eq!(
            list(&json!({"a": 1})).unwrap_err().to_string(),
            "payload field 'artifacts': must be a list"
        );
    }
}
