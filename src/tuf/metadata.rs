//! Typed TUF metadata: `Metadata<T>` envelopes around the four signed kinds.
//!
//! Two rules shape these types:
//! - Round trips are lossless. Every object keeps fields it does not know in
//!   `extra` (RSTUF's `x-rstuf-*`, anything a newer writer adds), and optional
//!   fields absent from the input stay absent, because a signature covers the
//!   exact set of fields and python-tuf does the same.
//! - Parsing enforces what python-tuf's constructors enforce (positive
//!   versions, thresholds of at least 1, unique key ids, one kind of
//!   delegation, ...), so a file the Python worker would refuse is refused
//!   here too, with a message naming the field.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::datetime::UtcTime;
use super::signer::Signer;
use super::{canonical, fileformat, Error, Key, KeyId, Result, Version};

/// The TUF specification version python-tuf 7 writes.
pub const SPEC_VERSION: &str = "1.0.31";

/// Unknown members of a JSON object, kept verbatim.
pub type Extra = Map<String, Value>;

/// The `_type` of a metadata file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MetadataType {
    Root,
    Targets,
    Snapshot,
    Timestamp,
}

impl MetadataType {
    pub const ALL: [MetadataType; 4] = [
        MetadataType::Root,
        MetadataType::Targets,
        MetadataType::Snapshot,
        MetadataType::Timestamp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MetadataType::Root => "root",
            MetadataType::Targets => "targets",
            MetadataType::Snapshot => "snapshot",
            MetadataType::Timestamp => "timestamp",
        }
    }

    pub fn from_type_str(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for MetadataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the four signed kinds share, so envelopes can be handled generically.
pub trait Signed: Serialize + DeserializeOwned {
    const TYPE: MetadataType;
    fn version(&self) -> Version;
    fn set_version(&mut self, version: Version);
    fn expires(&self) -> UtcTime;
    fn set_expires(&mut self, expires: UtcTime);
    fn spec_version(&self) -> &str;
    /// The python-tuf rules for this kind's own fields; `Err` is the reason.
    fn check_fields(&self) -> std::result::Result<(), String>;
}

/// `_type` as a zero-sized field: always written right, checked on parse.
pub struct TypeTag<T>(PhantomData<fn() -> T>);

impl<T> Default for TypeTag<T> {
    fn default() -> Self {
        TypeTag(PhantomData)
    }
}

impl<T> Clone for TypeTag<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for TypeTag<T> {}

impl<T> PartialEq for TypeTag<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> Eq for TypeTag<T> {}

impl<T: Signed> fmt::Debug for TypeTag<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TypeTag({})", T::TYPE)
    }
}

impl<T: Signed> Serialize for TypeTag<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(T::TYPE.as_str())
    }
}

impl<'de, T: Signed> Deserialize<'de> for TypeTag<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let found = String::deserialize(deserializer)?;
        if found == T::TYPE.as_str() {
            Ok(TypeTag::default())
        } else {
            Err(serde::de::Error::custom(format!(
                "_type is {found:?}, expected {:?}",
                T::TYPE.as_str()
            )))
        }
    }
}

/// One signature: key id and signature bytes as hex, exactly as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub keyid: KeyId,
    pub sig: String,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Signature {
    pub fn new(keyid: KeyId, sig: String) -> Self {
        Signature {
            keyid,
            sig,
            extra: Extra::new(),
        }
    }
}

/// A metadata file: signatures over the canonical form of `signed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata<T> {
    pub signatures: Vec<Signature>,
    pub signed: T,
    #[serde(flatten)]
    pub extra: Extra,
}

impl<T: Signed> Metadata<T> {
    /// Unsigned metadata around `signed`.
    pub fn new(signed: T) -> Self {
        Metadata {
            signatures: Vec::new(),
            signed,
            extra: Extra::new(),
        }
    }

    /// Parses a metadata file and applies python-tuf's rules.
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Self> {
        let metadata: Self = serde_json::from_slice(bytes).map_err(|e| {
            // A file of another kind usually fails on some other field first;
            // naming the real `_type` is the actionable message.
            match peek_type(bytes) {
                Ok(found) if found != T::TYPE => Error::MetadataType {
                    expected: T::TYPE.to_string(),
                    found: found.to_string(),
                },
                _ => Error::MetadataJson {
                    expected: T::TYPE.to_string(),
                    reason: e.to_string(),
                },
            }
        })?;
        metadata.check()?;
        Ok(metadata)
    }

    /// The bytes python-tuf writes to disk for this metadata.
    pub fn to_file_bytes(&self) -> Result<Vec<u8>> {
        fileformat::encode_serialize(self)
    }

    /// The canonical bytes of `signed`: what every signature covers.
    pub fn signed_bytes(&self) -> Result<Vec<u8>> {
        canonical::encode_serialize(&self.signed)
    }

    pub fn version(&self) -> Version {
        self.signed.version()
    }

    pub fn expires(&self) -> UtcTime {
        self.signed.expires()
    }

    pub fn bump_version(&mut self) {
        self.signed.set_version(self.signed.version().next());
    }

    pub fn set_expires(&mut self, expires: UtcTime) {
        self.signed.set_expires(expires);
    }

    pub fn clear_signatures(&mut self) {
        self.signatures.clear();
    }

    /// Adds a signature, replacing one by the same key in its place, as
    /// python-tuf's keyid-keyed (insertion-ordered) dict does.
    pub fn add_signature(&mut self, keyid: KeyId, sig: String) {
        match self.signatures.iter_mut().find(|s| s.keyid == keyid) {
            Some(existing) => *existing = Signature::new(keyid, sig),
            None => self.signatures.push(Signature::new(keyid, sig)),
        }
    }

    /// Signs with `signer`, replacing every other signature, as python-tuf's
    /// `Metadata.sign(signer)` does: online roles carry exactly one.
    pub fn sign(&mut self, signer: &dyn Signer) -> Result<()> {
        let sig = signer.sign_hex(&self.signed_bytes()?)?;
        self.signatures.clear();
        self.signatures
            .push(Signature::new(signer.keyid().clone(), sig));
        Ok(())
    }

    fn check(&self) -> Result<()> {
        let mut seen = BTreeSet::new();
        if let Some(dup) = self.signatures.iter().find(|s| !seen.insert(&s.keyid)) {
            return Err(Error::DuplicateSignature {
                keyid: dup.keyid.to_string(),
            });
        }
        check_common(&self.signed)
            .and_then(|()| self.signed.check_fields())
            .map_err(|reason| Error::InvalidMetadata {
                role_type: T::TYPE.to_string(),
                reason,
            })
    }
}

/// The `_type` of a metadata file, without parsing the rest into types.
pub fn peek_type(bytes: &[u8]) -> Result<MetadataType> {
    #[derive(Deserialize)]
    struct Envelope {
        signed: TypeOnly,
    }
    #[derive(Deserialize)]
    struct TypeOnly {
        #[serde(rename = "_type")]
        type_name: String,
    }
    let expected = "root, targets, snapshot or timestamp";
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(|e| Error::MetadataJson {
        expected: expected.to_owned(),
        reason: e.to_string(),
    })?;
    let found = envelope.signed.type_name;
    MetadataType::from_type_str(&found).ok_or_else(|| Error::MetadataType {
        expected: expected.to_owned(),
        found,
    })
}

fn check_common<T: Signed>(signed: &T) -> std::result::Result<(), String> {
    if signed.version().0 == 0 {
        return Err("version must be at least 1, got 0".to_owned());
    }
    check_spec_version(signed.spec_version())
}

/// python-tuf accepts `X.Y` or `X.Y.Z` with major version 1.
fn check_spec_version(spec_version: &str) -> std::result::Result<(), String> {
    let parts: Vec<&str> = spec_version.split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !(2..=3).contains(&parts.len()) || !parts.iter().all(numeric) {
        return Err(format!("cannot parse spec_version {spec_version:?}"));
    }
    if parts[0] != "1" {
        return Err(format!(
            "unsupported spec_version {spec_version:?} (major version must be 1)"
        ));
    }
    Ok(())
}

/// Implements [`Signed`]'s accessors for a kind with the common fields.
macro_rules! signed_kind {
    ($kind:ident, $check:path) => {
        impl Signed for $kind {
            const TYPE: MetadataType = MetadataType::$kind;

            fn version(&self) -> Version {
                self.version
            }

            fn set_version(&mut self, version: Version) {
                self.version = version;
            }

            fn expires(&self) -> UtcTime {
                self.expires
            }

            fn set_expires(&mut self, expires: UtcTime) {
                self.expires = expires;
            }

            fn spec_version(&self) -> &str {
                &self.spec_version
            }

            fn check_fields(&self) -> std::result::Result<(), String> {
                $check(self)
            }
        }
    };
}

/// Keys allowed to sign for a role, and how many must.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    pub keyids: Vec<KeyId>,
    pub threshold: u32,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    #[serde(rename = "_type")]
    type_tag: TypeTag<Root>,
    pub spec_version: String,
    pub version: Version,
    pub expires: UtcTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent_snapshot: Option<bool>,
    pub keys: BTreeMap<KeyId, Key>,
    pub roles: BTreeMap<String, RoleKeys>,
    #[serde(flatten)]
    pub extra: Extra,
}

signed_kind!(Root, check_root);

fn check_root(root: &Root) -> std::result::Result<(), String> {
    let names: Vec<&str> = root.roles.keys().map(String::as_str).collect();
    if names != ["root", "snapshot", "targets", "timestamp"] {
        return Err(format!(
            "roles must be exactly root, snapshot, targets and timestamp, found {names:?}"
        ));
    }
    root.roles.iter().try_for_each(|(name, role)| {
        check_keyids_threshold(&role.keyids, role.threshold)
            .map_err(|reason| format!("roles.{name}: {reason}"))
    })
}

fn check_keyids_threshold(keyids: &[KeyId], threshold: u32) -> std::result::Result<(), String> {
    let mut seen = BTreeSet::new();
    if let Some(dup) = keyids.iter().find(|k| !seen.insert(*k)) {
        return Err(format!("keyid {dup} is listed more than once"));
    }
    if threshold == 0 {
        return Err("threshold must be at least 1".to_owned());
    }
    Ok(())
}

/// Length and hashes of a target file, plus `custom` and anything else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetFile {
    pub length: u64,
    pub hashes: BTreeMap<String, String>,
    /// Kept even when `null`: python-tuf treats `custom` as an ordinary
    /// unrecognized field and writes back whatever was there.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub custom: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

fn present<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    #[serde(rename = "_type")]
    type_tag: TypeTag<Targets>,
    pub spec_version: String,
    pub version: Version,
    pub expires: UtcTime,
    pub targets: BTreeMap<String, TargetFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegations: Option<Delegations>,
    #[serde(flatten)]
    pub extra: Extra,
}

signed_kind!(Targets, check_targets);

impl Targets {
    /// An empty targets role (no artifacts, no delegations).
    pub fn new(version: Version, expires: UtcTime) -> Self {
        Targets {
            type_tag: TypeTag::default(),
            spec_version: SPEC_VERSION.to_owned(),
            version,
            expires,
            targets: BTreeMap::new(),
            delegations: None,
            extra: Extra::new(),
        }
    }
}

fn check_targets(targets: &Targets) -> std::result::Result<(), String> {
    for (path, file) in &targets.targets {
        check_hashes(&file.hashes).map_err(|reason| format!("targets[{path:?}]: {reason}"))?;
    }
    match &targets.delegations {
        Some(delegations) => {
            check_delegations(delegations).map_err(|reason| format!("delegations: {reason}"))
        }
        None => Ok(()),
    }
}

fn check_hashes(hashes: &BTreeMap<String, String>) -> std::result::Result<(), String> {
    if hashes.is_empty() {
        return Err("hashes must not be empty".to_owned());
    }
    Ok(())
}

/// The roles a targets role hands paths to: either a list of named roles or
/// TAP 15 hash bins, never both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegations {
    pub keys: BTreeMap<KeyId, Key>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<DelegatedRole>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succinct_roles: Option<SuccinctRoles>,
    #[serde(flatten)]
    pub extra: Extra,
}

fn check_delegations(delegations: &Delegations) -> std::result::Result<(), String> {
    match (&delegations.roles, &delegations.succinct_roles) {
        (Some(roles), None) => check_delegated_roles(roles),
        (None, Some(succinct)) => {
            check_succinct_roles(succinct).map_err(|reason| format!("succinct_roles: {reason}"))
        }
        _ => Err("exactly one of roles and succinct_roles must be set".to_owned()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegatedRole {
    pub name: String,
    pub keyids: Vec<KeyId>,
    pub threshold: u32,
    pub terminating: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hash_prefixes: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

fn check_delegated_roles(roles: &[DelegatedRole]) -> std::result::Result<(), String> {
    let mut seen = BTreeSet::new();
    roles.iter().enumerate().try_for_each(|(i, role)| {
        let at = format!("roles[{i}] ({:?})", role.name);
        if role.name.is_empty() || MetadataType::from_type_str(&role.name).is_some() {
            return Err(format!(
                "{at}: a delegated role cannot be unnamed or use a top-level role name"
            ));
        }
        if !seen.insert(role.name.as_str()) {
            return Err(format!("{at}: role name appears more than once"));
        }
        if role.paths.is_some() == role.path_hash_prefixes.is_some() {
            return Err(format!(
                "{at}: exactly one of paths and path_hash_prefixes must be set"
            ));
        }
        check_keyids_threshold(&role.keyids, role.threshold)
            .map_err(|reason| format!("{at}: {reason}"))
    })
}

/// TAP 15 hash-bin delegation: `2^bit_length` roles named
/// `<name_prefix>-<hex>`, all sharing these keys and threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuccinctRoles {
    pub bit_length: u8,
    pub name_prefix: String,
    pub keyids: Vec<KeyId>,
    pub threshold: u32,
    #[serde(flatten)]
    pub extra: Extra,
}

fn check_succinct_roles(succinct: &SuccinctRoles) -> std::result::Result<(), String> {
    if !(1..=32).contains(&succinct.bit_length) {
        return Err(format!(
            "bit_length must be from 1 to 32, got {}",
            succinct.bit_length
        ));
    }
    check_keyids_threshold(&succinct.keyids, succinct.threshold)
}

/// What snapshot and timestamp record about another metadata file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaFile {
    pub version: Version,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl MetaFile {
    /// Version only, as RSTUF writes it (no length, no hashes).
    pub fn new(version: Version) -> Self {
        MetaFile {
            version,
            length: None,
            hashes: None,
            extra: Extra::new(),
        }
    }
}

fn check_meta(meta: &BTreeMap<String, MetaFile>) -> std::result::Result<(), String> {
    meta.iter().try_for_each(|(name, file)| {
        let at = format!("meta[{name:?}]");
        if file.version.0 == 0 {
            return Err(format!("{at}: version must be at least 1, got 0"));
        }
        match &file.hashes {
            Some(hashes) => check_hashes(hashes).map_err(|reason| format!("{at}: {reason}")),
            None => Ok(()),
        }
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(rename = "_type")]
    type_tag: TypeTag<Snapshot>,
    pub spec_version: String,
    pub version: Version,
    pub expires: UtcTime,
    pub meta: BTreeMap<String, MetaFile>,
    #[serde(flatten)]
    pub extra: Extra,
}

signed_kind!(Snapshot, check_snapshot);

impl Snapshot {
    /// A snapshot listing nothing yet; the caller fills `meta`.
    pub fn new(version: Version, expires: UtcTime) -> Self {
        Snapshot {
            type_tag: TypeTag::default(),
            spec_version: SPEC_VERSION.to_owned(),
            version,
            expires,
            meta: BTreeMap::new(),
            extra: Extra::new(),
        }
    }
}

fn check_snapshot(snapshot: &Snapshot) -> std::result::Result<(), String> {
    check_meta(&snapshot.meta)
}

/// Key of the snapshot entry in timestamp's `meta`.
pub const SNAPSHOT_META_NAME: &str = "snapshot.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamp {
    #[serde(rename = "_type")]
    type_tag: TypeTag<Timestamp>,
    pub spec_version: String,
    pub version: Version,
    pub expires: UtcTime,
    pub meta: BTreeMap<String, MetaFile>,
    #[serde(flatten)]
    pub extra: Extra,
}

signed_kind!(Timestamp, check_timestamp);

impl Timestamp {
    pub fn new(version: Version, expires: UtcTime, snapshot: MetaFile) -> Self {
        Timestamp {
            type_tag: TypeTag::default(),
            spec_version: SPEC_VERSION.to_owned(),
            version,
            expires,
            meta: BTreeMap::from([(SNAPSHOT_META_NAME.to_owned(), snapshot)]),
            extra: Extra::new(),
        }
    }

    /// The snapshot entry (always present in a parsed timestamp).
    pub fn snapshot_meta(&self) -> Option<&MetaFile> {
        self.meta.get(SNAPSHOT_META_NAME)
    }
}

fn check_timestamp(timestamp: &Timestamp) -> std::result::Result<(), String> {
    if timestamp.snapshot_meta().is_none() {
        return Err(format!("meta must contain {SNAPSHOT_META_NAME:?}"));
    }
    check_meta(&timestamp.meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuf::fileformat::tests::vector_metadata_files;
    use crate::tuf::testdata;
    use serde_json::json;

    const BINS_1: &str = "vectors/tuf/repo-bins/1-after-bootstrap";
    const BINS_2: &str = "vectors/tuf/repo-bins/2-after-add-artifacts";
    const CUSTOM_1: &str = "vectors/tuf/repo-custom/1-after-bootstrap-and-signing";

    /// File bytes and signed bytes after a typed parse.
    fn typed_round_trip<T: Signed>(bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let md = Metadata::<T>::from_file_bytes(bytes).unwrap();
        (md.to_file_bytes().unwrap(), md.signed_bytes().unwrap())
    }

    fn round_trip(bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
        match peek_type(bytes).unwrap() {
            MetadataType::Root => typed_round_trip::<Root>(bytes),
            MetadataType::Targets => typed_round_trip::<Targets>(bytes),
            MetadataType::Snapshot => typed_round_trip::<Snapshot>(bytes),
            MetadataType::Timestamp => typed_round_trip::<Timestamp>(bytes),
        }
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn manifest_files_round_trip_with_exact_signed_bytes() {
        let mut checked = 0;
        for folder in [BINS_1, BINS_2, CUSTOM_1] {
            let manifest = testdata::json(&format!("{folder}/manifest.json"));
            for entry in manifest["files"].as_array().unwrap() {
                let name = entry["file"].as_str().unwrap();
                let bytes = testdata::bytes(&format!("{folder}/{name}"));
                assert_eq!(bytes.len() as u64, entry["length"].as_u64().unwrap());
                let (file, signed) = round_trip(&bytes);
                assert_eq!(text(file), text(bytes), "{folder}/{name}");
                assert_eq!(
                    text(signed),
                    entry["signed_canonical_utf8"].as_str().unwrap(),
                    "{folder}/{name}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 20 + 22 + 7);
    }

    #[test]
    fn every_vector_metadata_file_round_trips() {
        let files = vector_metadata_files();
        let verification = files
            .iter()
            .filter(|(rel, _)| rel.contains("/verification/"))
            .count();
        assert_eq!(verification, 25);
        for (rel, bytes) in files {
            assert_eq!(text(round_trip(&bytes).0), text(bytes), "{rel}");
        }
    }

    #[test]
    fn peek_type_reads_each_kind() {
        let cases = [
            ("1.root.json", MetadataType::Root),
            ("1.targets.json", MetadataType::Targets),
            ("1.bins-3.json", MetadataType::Targets),
            ("1.snapshot.json", MetadataType::Snapshot),
            ("timestamp.json", MetadataType::Timestamp),
        ];
        for (name, kind) in cases {
            let bytes = testdata::bytes(&format!("{BINS_1}/{name}"));
            assert_eq!(peek_type(&bytes).unwrap(), kind, "{name}");
        }
        let err = peek_type(br#"{"signed": {"_type": "mirrors"}}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected root, targets, snapshot or timestamp metadata, but signed._type is \"mirrors\""
        );
        assert!(matches!(
            peek_type(b"{\"signatures\": []}"),
            Err(Error::MetadataJson { .. })
        ));
    }

    #[test]
    fn parsed_fields_have_the_vector_values() {
        let root =
            Metadata::<Root>::from_file_bytes(&testdata::bytes(&format!("{BINS_1}/1.root.json")))
                .unwrap();
        assert_eq!(root.signatures.len(), 3);
        assert_eq!(root.signed.consistent_snapshot, Some(true));
        assert_eq!(root.signed.roles["root"].threshold, 2);
        let online =
            KeyId::from("9e5a93a998845599e5065a1164a0bd9cbfec78b12bb38730a46bc24825c6a4c1");
        assert_eq!(
            root.signed.roles["timestamp"].keyids,
            std::slice::from_ref(&online)
        );
        assert_eq!(
            root.signed.keys[&online].online_key_uri(),
            Some("fn:online-ed25519.pem")
        );

        let targets = Metadata::<Targets>::from_file_bytes(&testdata::bytes(&format!(
            "{BINS_1}/1.targets.json"
        )))
        .unwrap();
        let delegations = targets.signed.delegations.unwrap();
        assert!(delegations.roles.is_none());
        let succinct = delegations.succinct_roles.unwrap();
        assert_eq!(
            (succinct.bit_length, succinct.name_prefix.as_str()),
            (4, "bins")
        );

        let custom = Metadata::<Targets>::from_file_bytes(&testdata::bytes(&format!(
            "{CUSTOM_1}/1.targets.json"
        )))
        .unwrap();
        let roles = custom.signed.delegations.unwrap().roles.unwrap();
        let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["dev", "production", "default"]);
        assert_eq!(roles[1].extra["x-rstuf-expire-policy"], json!(7));
        assert_eq!(roles[0].paths.as_deref(), Some(&["dev/*".to_owned()][..]));
    }

    /// Rebuilds repo-bins/2's new files from repo-bins/1 with the mutators
    /// the worker uses, taking only the signatures from the vectors.
    #[test]
    fn worker_mutations_reproduce_the_after_add_artifacts_files() {
        let old_bin = testdata::bytes(&format!("{BINS_1}/1.bins-f.json"));
        let new_bin = testdata::bytes(&format!("{BINS_2}/2.bins-f.json"));
        let expected = Metadata::<Targets>::from_file_bytes(&new_bin).unwrap();

        let mut bin = Metadata::<Targets>::from_file_bytes(&old_bin).unwrap();
        bin.bump_version();
        assert_eq!(bin.version(), Version(2));
        let index = testdata::json("vectors/tuf/repo-bins/artifacts/index.json");
        for artifact in index["artifacts"].as_array().unwrap() {
            let info = json!({
                "length": artifact["length"],
                "hashes": {"sha256": artifact["sha256"]},
                "custom": {"added_by_task_id": "7a634b556f784ae88785d36425f9a218"},
            });
            let path = artifact["path"].as_str().unwrap().to_owned();
            bin.signed
                .targets
                .insert(path, serde_json::from_value(info).unwrap());
        }
        bin.clear_signatures();
        let sig = &expected.signatures[0];
        bin.add_signature(sig.keyid.clone(), sig.sig.clone());
        assert_eq!(text(bin.to_file_bytes().unwrap()), text(new_bin));

        let expires = UtcTime::parse("2036-01-01T00:00:00Z").unwrap();
        let new_timestamp = testdata::bytes(&format!("{BINS_2}/timestamp.json"));
        let signed_by = Metadata::<Timestamp>::from_file_bytes(&new_timestamp).unwrap();
        let mut timestamp = Metadata::new(Timestamp::new(
            Version(2),
            expires,
            MetaFile::new(Version(2)),
        ));
        timestamp.add_signature(
            signed_by.signatures[0].keyid.clone(),
            signed_by.signatures[0].sig.clone(),
        );
        assert_eq!(
            text(timestamp.to_file_bytes().unwrap()),
            text(new_timestamp)
        );

        let new_snapshot = testdata::bytes(&format!("{BINS_2}/2.snapshot.json"));
        let signed_by = Metadata::<Snapshot>::from_file_bytes(&new_snapshot).unwrap();
        let mut snapshot = Metadata::new(Snapshot::new(Version(2), expires));
        snapshot
            .signed
            .meta
            .insert("targets.json".to_owned(), MetaFile::new(Version(1)));
        for bin in 0..16 {
            let version = Version(if bin == 15 { 2 } else { 1 });
            snapshot
                .signed
                .meta
                .insert(format!("bins-{bin:x}.json"), MetaFile::new(version));
        }
        snapshot.signatures = signed_by.signatures;
        assert_eq!(text(snapshot.to_file_bytes().unwrap()), text(new_snapshot));
    }

    #[test]
    fn a_changed_field_changes_both_outputs() {
        let bytes = testdata::bytes(&format!("{BINS_1}/1.bins-0.json"));
        let original = Metadata::<Targets>::from_file_bytes(&bytes).unwrap();
        let mut changed = original.clone();
        changed.bump_version();
        assert_eq!(
            text(changed.signed_bytes().unwrap()),
            r#"{"_type":"targets","expires":"2036-01-01T00:00:00Z","spec_version":"1.0.31","targets":{},"version":2}"#
        );
        let file = text(changed.to_file_bytes().unwrap());
        assert_eq!(
            file,
            text(bytes).replace("\"version\": 1", "\"version\": 2")
        );

        changed.set_expires(UtcTime::parse("2036-01-01T00:00:01Z").unwrap());
        assert!(
            text(changed.signed_bytes().unwrap()).contains(r#""expires":"2036-01-01T00:00:01Z""#)
        );
        assert_ne!(
            changed.signed_bytes().unwrap(),
            original.signed_bytes().unwrap()
        );
    }

    #[test]
    fn add_signature_replaces_in_place_and_keeps_order() {
        let mut md = Metadata::new(Targets::new(
            Version(1),
            UtcTime::parse("2036-01-01T00:00:00Z").unwrap(),
        ));
        md.add_signature(KeyId::from("bb"), "01".to_owned());
        md.add_signature(KeyId::from("aa"), "02".to_owned());
        md.add_signature(KeyId::from("bb"), "03".to_owned());
        let pairs: Vec<(&str, &str)> = md
            .signatures
            .iter()
            .map(|s| (s.keyid.as_str(), s.sig.as_str()))
            .collect();
        assert_eq!(pairs, [("bb", "03"), ("aa", "02")]);
        md.clear_signatures();
        assert!(md.signatures.is_empty());
    }

    /// Adds `"x-custom": <marker>` to an object found by a JSON pointer.
    fn mark(doc: &mut Value, pointer: &str, marker: &str) {
        doc.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("no {pointer}"))
            .as_object_mut()
            .unwrap()
            .insert(
                "x-custom".to_owned(),
                json!({"marker": marker, "n": [1, null]}),
            );
    }

    fn assert_unknown_fields_survive<T: Signed>(file: &str, pointers: &[&str]) {
        let mut doc: Value = serde_json::from_slice(&testdata::bytes(file)).unwrap();
        for (i, pointer) in pointers.iter().enumerate() {
            mark(&mut doc, pointer, &format!("m{i}"));
        }
        let bytes = fileformat::encode(&doc).unwrap();
        let md = Metadata::<T>::from_file_bytes(&bytes).unwrap();
        assert_eq!(
            text(md.to_file_bytes().unwrap()),
            text(bytes.clone()),
            "{file}"
        );
        let canonical = canonical::encode(&doc["signed"]).unwrap();
        assert_eq!(md.signed_bytes().unwrap(), canonical, "{file}");
        let signed_markers = pointers.iter().filter(|p| p.starts_with("/signed")).count();
        assert_eq!(
            text(canonical).matches("\"x-custom\"").count(),
            signed_markers
        );
    }

    #[test]
    fn unknown_fields_survive_at_every_level() {
        assert_unknown_fields_survive::<Targets>(
            &format!("{CUSTOM_1}/1.targets.json"),
            &[
                "",
                "/signatures/0",
                "/signed",
                "/signed/delegations",
                "/signed/delegations/roles/2",
                "/signed/delegations/keys/c6d8bf2e4f48b41ac2ce8eca21415ca8ef68c133b47fc33df03d4070a7e1e9cc",
                "/signed/delegations/keys/c6d8bf2e4f48b41ac2ce8eca21415ca8ef68c133b47fc33df03d4070a7e1e9cc/keyval",
            ],
        );
        assert_unknown_fields_survive::<Targets>(
            &format!("{BINS_2}/2.bins-f.json"),
            &[
                "/signed/targets/file1.tar.gz",
                "/signed/targets/file1.tar.gz/custom",
            ],
        );
        assert_unknown_fields_survive::<Targets>(
            &format!("{BINS_1}/1.targets.json"),
            &["/signed/delegations/succinct_roles"],
        );
        assert_unknown_fields_survive::<Root>(
            &format!("{BINS_1}/1.root.json"),
            &["/signed", "/signed/roles/snapshot", "/signatures/2"],
        );
        assert_unknown_fields_survive::<Snapshot>(
            &format!("{BINS_1}/1.snapshot.json"),
            &["/signed", "/signed/meta/bins-a.json"],
        );
        assert_unknown_fields_survive::<Timestamp>(
            &format!("{BINS_1}/timestamp.json"),
            &["/signed/meta/snapshot.json"],
        );
    }

    #[test]
    fn optional_fields_stay_as_given() {
        let base = json!({
            "signatures": [],
            "signed": {
                "_type": "snapshot", "expires": "2036-01-01T00:00:00Z",
                "spec_version": "1.0", "version": 3,
                "meta": {
                    "a.json": {"version": 1},
                    "b.json": {"version": 2, "length": 0, "hashes": {"sha256": "ab"}}
                }
            }
        });
        let bytes = fileformat::encode(&base).unwrap();
        let md = Metadata::<Snapshot>::from_file_bytes(&bytes).unwrap();
        assert_eq!(md.signed.meta["a.json"], MetaFile::new(Version(1)));
        assert_eq!(md.signed.meta["b.json"].length, Some(0));
        assert_eq!(md.to_file_bytes().unwrap(), bytes);

        // Root without consistent_snapshot, and a target whose custom is null.
        let mut root: Value = testdata::json(&format!("{BINS_1}/1.root.json"));
        root["signed"]
            .as_object_mut()
            .unwrap()
            .remove("consistent_snapshot");
        let bytes = fileformat::encode(&root).unwrap();
        let md = Metadata::<Root>::from_file_bytes(&bytes).unwrap();
        assert_eq!(md.signed.consistent_snapshot, None);
        assert_eq!(md.to_file_bytes().unwrap(), bytes);

        let mut bin = testdata::json(&format!("{BINS_2}/2.bins-f.json"));
        bin["signed"]["targets"]["file1.tar.gz"]["custom"] = Value::Null;
        let bytes = fileformat::encode(&bin).unwrap();
        let md = Metadata::<Targets>::from_file_bytes(&bytes).unwrap();
        assert_eq!(md.signed.targets["file1.tar.gz"].custom, Some(Value::Null));
        assert_eq!(md.to_file_bytes().unwrap(), bytes);
    }

    #[test]
    fn duplicate_signature_keyids_are_refused() {
        let mut doc = testdata::json(&format!("{BINS_1}/1.bins-0.json"));
        let first = doc["signatures"][0].clone();
        doc["signatures"].as_array_mut().unwrap().push(first);
        let err =
            Metadata::<Targets>::from_file_bytes(&fileformat::encode(&doc).unwrap()).unwrap_err();
        assert_eq!(
            err,
            Error::DuplicateSignature {
                keyid: "9e5a93a998845599e5065a1164a0bd9cbfec78b12bb38730a46bc24825c6a4c1"
                    .to_owned()
            }
        );
    }

    #[test]
    fn a_file_of_another_kind_names_its_type() {
        let bytes = testdata::bytes(&format!("{BINS_1}/1.root.json"));
        let err = Metadata::<Targets>::from_file_bytes(&bytes).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected targets metadata, but signed._type is \"root\""
        );
        let bytes = testdata::bytes(&format!("{BINS_1}/1.bins-0.json"));
        assert_eq!(
            Metadata::<Snapshot>::from_file_bytes(&bytes).unwrap_err(),
            Error::MetadataType {
                expected: "snapshot".to_owned(),
                found: "targets".to_owned()
            }
        );
    }

    #[test]
    fn malformed_json_and_fields_are_reported() {
        let cases: [(&[u8], &str); 4] = [
            (b"{", "cannot parse targets metadata: EOF while parsing"),
            (
                br#"{"signatures": [], "signed": {"_type": "targets", "spec_version": "1.0.31", "version": 1, "expires": "2036-01-01", "targets": {}}}"#,
                "cannot parse targets metadata: invalid timestamp \"2036-01-01\"",
            ),
            (
                br#"{"signatures": [], "signed": {"_type": "targets", "spec_version": "1.0.31", "version": 1, "expires": "2036-01-01T00:00:00Z"}}"#,
                "cannot parse targets metadata: missing field `targets`",
            ),
            (
                br#"{"signatures": [], "signed": {"_type": "targets", "spec_version": "1.0.31", "version": -1, "expires": "2036-01-01T00:00:00Z", "targets": {}}}"#,
                "cannot parse targets metadata: invalid value: integer `-1`",
            ),
        ];
        for (bytes, message) in cases {
            let err = Metadata::<Targets>::from_file_bytes(bytes).unwrap_err();
            assert!(matches!(err, Error::MetadataJson { .. }), "{err}");
            assert!(err.to_string().starts_with(message), "{err}");
        }
    }

    /// Applies `edit` to a vector file and returns the parse error text.
    fn invalid<T: Signed + fmt::Debug>(file: &str, edit: impl FnOnce(&mut Value)) -> String {
        let mut doc = testdata::json(file);
        edit(&mut doc);
        let err = Metadata::<T>::from_file_bytes(&fileformat::encode(&doc).unwrap()).unwrap_err();
        assert!(matches!(err, Error::InvalidMetadata { .. }), "{err}");
        err.to_string()
    }

    #[test]
    fn python_tuf_rules_are_enforced() {
        let root = format!("{BINS_1}/1.root.json");
        let bins = format!("{BINS_1}/1.targets.json");
        let custom = format!("{CUSTOM_1}/1.targets.json");
        let snapshot = format!("{BINS_1}/1.snapshot.json");
        let timestamp = format!("{BINS_1}/timestamp.json");
        let checks = [
            (
                invalid::<Root>(&root, |d| d["signed"]["version"] = json!(0)),
                "invalid root metadata: version must be at least 1, got 0",
            ),
            (
                invalid::<Root>(&root, |d| d["signed"]["spec_version"] = json!("2.0.0")),
                "invalid root metadata: unsupported spec_version \"2.0.0\" (major version must be 1)",
            ),
            (
                invalid::<Root>(&root, |d| d["signed"]["spec_version"] = json!("1.0.x")),
                "invalid root metadata: cannot parse spec_version \"1.0.x\"",
            ),
            (
                invalid::<Root>(&root, |d| {
                    d["signed"]["roles"].as_object_mut().unwrap().remove("snapshot");
                }),
                "invalid root metadata: roles must be exactly root, snapshot, targets and timestamp, found [\"root\", \"targets\", \"timestamp\"]",
            ),
            (
                invalid::<Root>(&root, |d| d["signed"]["roles"]["root"]["threshold"] = json!(0)),
                "invalid root metadata: roles.root: threshold must be at least 1",
            ),
            (
                invalid::<Root>(&root, |d| {
                    let ids = &mut d["signed"]["roles"]["targets"]["keyids"];
                    let id = ids[0].clone();
                    ids.as_array_mut().unwrap().push(id);
                }),
                "invalid root metadata: roles.targets: keyid 9e5a93a998845599e5065a1164a0bd9cbfec78b12bb38730a46bc24825c6a4c1 is listed more than once",
            ),
            (
                invalid::<Targets>(&bins, |d| {
                    d["signed"]["delegations"]["roles"] = json!([]);
                }),
                "invalid targets metadata: delegations: exactly one of roles and succinct_roles must be set",
            ),
            (
                invalid::<Targets>(&bins, |d| {
                    d["signed"]["delegations"]["succinct_roles"]["bit_length"] = json!(33);
                }),
                "invalid targets metadata: delegations: succinct_roles: bit_length must be from 1 to 32, got 33",
            ),
            (
                invalid::<Targets>(&custom, |d| {
                    d["signed"]["delegations"]["roles"][1]["path_hash_prefixes"] = json!(["ab"]);
                }),
                "invalid targets metadata: delegations: roles[1] (\"production\"): exactly one of paths and path_hash_prefixes must be set",
            ),
            (
                invalid::<Targets>(&custom, |d| {
                    d["signed"]["delegations"]["roles"][2]["name"] = json!("dev");
                }),
                "invalid targets metadata: delegations: roles[2] (\"dev\"): role name appears more than once",
            ),
            (
                invalid::<Targets>(&custom, |d| {
                    d["signed"]["delegations"]["roles"][0]["name"] = json!("snapshot");
                }),
                "invalid targets metadata: delegations: roles[0] (\"snapshot\"): a delegated role cannot be unnamed or use a top-level role name",
            ),
            (
                invalid::<Targets>(&format!("{BINS_2}/2.bins-f.json"), |d| {
                    d["signed"]["targets"]["file1.tar.gz"]["hashes"] = json!({});
                }),
                "invalid targets metadata: targets[\"file1.tar.gz\"]: hashes must not be empty",
            ),
            (
                invalid::<Snapshot>(&snapshot, |d| {
                    d["signed"]["meta"]["bins-2.json"]["version"] = json!(0);
                }),
                "invalid snapshot metadata: meta[\"bins-2.json\"]: version must be at least 1, got 0",
            ),
            (
                invalid::<Timestamp>(&timestamp, |d| {
                    let meta = d["signed"]["meta"].as_object_mut().unwrap();
                    let entry = meta.remove("snapshot.json").unwrap();
                    meta.insert("snapshot.json.bak".to_owned(), entry);
                }),
                "invalid timestamp metadata: meta must contain \"snapshot.json\"",
            ),
        ];
        for (got, want) in checks {
            assert_eq!(got, want);
        }
    }
}
