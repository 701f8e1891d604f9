//! Threshold verification of a role's signatures by its delegator, decided
//! as python-tuf's `verify_delegate` does: only keys the delegator lists for
//! the role count, each at most once, and a bad signature simply does not
//! count (it is not an error by itself).
use std::collections::{BTreeMap, BTreeSet};

use super::crypto::PublicKey;
use super::hashbins::HashBins;
use super::metadata::{Metadata, Root, Signature, Signed, Targets};
use super::{Error, Key, KeyId, Result};

/// Which of a role's keys signed a payload, against its threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub role: String,
    pub threshold: u32,
    pub signed: BTreeSet<KeyId>,
    pub unsigned: BTreeSet<KeyId>,
}

impl Verification {
    pub fn is_verified(&self) -> bool {
        self.signed.len() as u64 >= u64::from(self.threshold)
    }

    /// `Ok` when the threshold is met, else python-tuf's error text.
    pub fn into_result(self) -> Result<Verification> {
        if self.is_verified() {
            Ok(self)
        } else {
            Err(Error::Unsigned {
                role: self.role,
                signed: self.signed.len(),
                threshold: self.threshold,
            })
        }
    }
}

/// The keys and threshold a delegator assigns to one role.
pub struct RoleSpec<'a> {
    pub name: &'a str,
    pub keys: &'a BTreeMap<KeyId, Key>,
    pub keyids: &'a [KeyId],
    pub threshold: u32,
}

impl RoleSpec<'_> {
    /// Counts the valid signatures over `payload` (the canonical signed
    /// bytes). Keys missing from the delegator or unusable are skipped.
    pub fn verify(&self, payload: &[u8], signatures: &[Signature]) -> Verification {
        let mut result = Verification {
            role: self.name.to_owned(),
            threshold: self.threshold,
            signed: BTreeSet::new(),
            unsigned: BTreeSet::new(),
        };
        for keyid in self.keyids {
            let Some(key) = self.keys.get(keyid) else {
                continue;
            };
            let valid = signatures
                .iter()
                .find(|s| &s.keyid == keyid)
                .is_some_and(|sig| {
                    PublicKey::from_key(key).is_ok_and(|pk| pk.verify(payload, &sig.sig))
                });
            if valid {
                result.signed.insert(keyid.clone());
            } else {
                result.unsigned.insert(keyid.clone());
            }
        }
        result
    }
}

impl Root {
    /// The spec of a top-level role (`root`, `targets`, `snapshot`, `timestamp`).
    pub fn role_spec<'a>(&'a self, role: &'a str) -> Result<RoleSpec<'a>> {
        let keys = self.roles.get(role).ok_or_else(|| Error::UnknownRole {
            delegator: "root".into(),
            role: role.into(),
        })?;
        Ok(RoleSpec {
            name: role,
            keys: &self.keys,
            keyids: &keys.keyids,
            threshold: keys.threshold,
        })
    }

    /// Verifies a top-level role's metadata against this root.
    pub fn verify_delegate<T: Signed>(
        &self,
        role: &str,
        delegate: &Metadata<T>,
    ) -> Result<Verification> {
        let payload = delegate.signed_bytes()?;
        self.role_spec(role)?
            .verify(&payload, &delegate.signatures)
            .into_result()
    }
}

impl Targets {
    /// The spec of a role delegated by this targets metadata, custom or bin.
    pub fn role_spec<'a>(&'a self, role: &'a str) -> Result<RoleSpec<'a>> {
        let unknown = || Error::UnknownRole {
            delegator: "targets".into(),
            role: role.into(),
        };
        let delegations = self.delegations.as_ref().ok_or_else(unknown)?;
        if let Some(roles) = &delegations.roles {
            let found = roles.iter().find(|r| r.name == role).ok_or_else(unknown)?;
            return Ok(RoleSpec {
                name: role,
                keys: &delegations.keys,
                keyids: &found.keyids,
                threshold: found.threshold,
            });
        }
        let succinct = delegations.succinct_roles.as_ref().ok_or_else(unknown)?;
        let bins = HashBins::new(succinct.bit_length, &succinct.name_prefix)?;
        if !bins.is_bin_role(role) {
            return Err(unknown());
        }
        Ok(RoleSpec {
            name: role,
            keys: &delegations.keys,
            keyids: &succinct.keyids,
            threshold: succinct.threshold,
        })
    }

    /// Verifies a delegated targets role against this delegator.
    pub fn verify_delegate(
        &self,
        role: &str,
        delegate: &Metadata<Targets>,
    ) -> Result<Verification> {
        let payload = delegate.signed_bytes()?;
        self.role_spec(role)?
            .verify(&payload, &delegate.signatures)
            .into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuf::metadata::{peek_type, MetadataType};
    use crate::tuf::testdata;

    fn verify_case(delegator: &[u8], role: &str, delegate: &[u8]) -> Result<Verification> {
        match peek_type(delegator).unwrap() {
            MetadataType::Root => {
                let root = Metadata::<Root>::from_file_bytes(delegator).unwrap().signed;
                match peek_type(delegate).unwrap() {
                    MetadataType::Root => root.verify_delegate(
                        role,
                        &Metadata::<Root>::from_file_bytes(delegate).unwrap(),
                    ),
                    MetadataType::Targets => root.verify_delegate(
                        role,
                        &Metadata::<Targets>::from_file_bytes(delegate).unwrap(),
                    ),
                    other => panic!("no case delegates {other}"),
                }
            }
            MetadataType::Targets => {
                let targets = Metadata::<Targets>::from_file_bytes(delegator)
                    .unwrap()
                    .signed;
                targets.verify_delegate(
                    role,
                    &Metadata::<Targets>::from_file_bytes(delegate).unwrap(),
                )
            }
            other => panic!("{other} delegates nothing"),
        }
    }

    #[test]
    fn every_case_gets_python_tufs_verdict() {
        let doc = testdata::json("vectors/tuf/verification/cases.json");
        let cases = doc["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 16);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let file = |k: &str| {
                testdata::bytes(&format!(
                    "vectors/tuf/verification/{}",
                    case[k].as_str().unwrap()
                ))
            };
            let role = case["role"].as_str().unwrap();
            let got = verify_case(&file("delegator_file"), role, &file("delegate_file"));
            match case["python_tuf_error"].as_str() {
                None => {
                    assert!(case["expected_valid"].as_bool().unwrap(), "{name}");
                    let ok = got.unwrap_or_else(|e| panic!("{name}: {e}"));
                    let signers: BTreeSet<KeyId> = case["signed_by_keyids"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|k| KeyId::from(k.as_str().unwrap()))
                        .collect();
                    assert!(ok.signed.is_subset(&signers), "{name}: {:?}", ok.signed);
                    assert!(
                        ok.signed.len() as u64 >= case["threshold"].as_u64().unwrap(),
                        "{name}"
                    );
                }
                Some(expected) => {
                    assert!(!case["expected_valid"].as_bool().unwrap(), "{name}");
                    assert_eq!(got.unwrap_err().to_string(), expected, "{name}");
                }
            }
        }
    }

    #[test]
    fn a_role_the_delegator_does_not_know_is_an_error() {
        let bytes = testdata::bytes("vectors/tuf/verification/bin-valid.delegator.json");
        let targets = Metadata::<Targets>::from_file_bytes(&bytes).unwrap().signed;
        assert!(targets.role_spec("bins-f").is_ok());
        let err = targets.role_spec("bins-g").err().unwrap();
        assert_eq!(err.to_string(), "targets delegates no role named bins-g");
    }

    #[test]
    fn duplicate_signature_entries_for_one_key_count_once() {
        let bytes = testdata::bytes("vectors/tuf/verification/root-below-threshold.delegate.json");
        let mut md = Metadata::<Root>::from_file_bytes(&bytes).unwrap();
        let dup = md.signatures[0].clone();
        md.signatures.push(dup);
        let err = md.signed.verify_delegate("root", &md).unwrap_err();
        assert_eq!(err.to_string(), "root was signed by 1/2 keys");
    }
}
