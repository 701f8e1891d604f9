//! Signing events waiting for offline keys (`<ROLE>_SIGNING` settings), the
//! online key setting, and the signature checks they need.
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::context::{Context, Result};
use super::Error;
use crate::settings::{SettingName, SettingValue};
use crate::tuf::metadata::{Signature, Signed};
use crate::tuf::verify::RoleSpec;
use crate::tuf::{Key, KeyId, Metadata};

/// The setting holding the metadata of `role` while it waits for signatures.
pub fn signing_setting(role: &str) -> String {
    format!("{}_SIGNING", role.to_uppercase())
}

/// A dict or list setting, as dynaconf's get_fresh reads it (a falsy
/// value is absent).
pub fn json_setting<T: DeserializeOwned>(ctx: &Context, name: &str) -> Result<Option<T>> {
    Ok(ctx.settings().get_fresh_json(&SettingName::new(name))?)
}

/// The metadata of a pending signing event, as stored (root or targets).
pub fn pending(ctx: &Context, role: &str) -> Result<Option<Value>> {
    json_setting(ctx, &signing_setting(role))
}

/// Stores metadata as waiting for more signatures.
pub fn set_pending<T: Signed>(ctx: &Context, role: &str, md: &Metadata<T>) -> Result<()> {
    ctx.set_setting_json(&signing_setting(role), md)
}

/// Ends the signing event of `role` (upstream writes `@none `).
pub fn clear_pending(ctx: &Context, role: &str) -> Result<()> {
    ctx.set_setting(&signing_setting(role), SettingValue::None)
}

/// Pending metadata of the type the event must hold.
pub fn pending_metadata<T: Signed>(value: &Value, role: &str) -> Result<Metadata<T>> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::Repository(e.to_string()))?;
    Metadata::from_file_bytes(&bytes).map_err(|e| {
        Error::Repository(format!(
            "setting {} does not hold usable metadata: {e}; delete the signing event \
             (delete_sign_metadata) and start it again",
            signing_setting(role)
        ))
    })
}

/// `ONLINE_KEY` as upstream stores it: the key dict plus its `keyid`.
#[derive(Serialize)]
struct OnlineKeySetting<'a> {
    #[serde(flatten)]
    key: &'a Key,
    keyid: &'a KeyId,
}

pub fn set_online_key(ctx: &Context, keyid: &KeyId, key: &Key) -> Result<()> {
    ctx.set_setting_json("ONLINE_KEY", &OnlineKeySetting { key, keyid })
}

/// Whether `signature` is a valid signature by one of the role's keys over
/// `md` (upstream's `_validate_signature`: a key the delegator does not list
/// for the role, or a bad signature, is simply invalid).
pub fn signature_is_valid<T: Signed>(
    spec: &RoleSpec,
    md: &Metadata<T>,
    signature: &Signature,
) -> Result<bool> {
    let payload = md.signed_bytes()?;
    let verdict = spec.verify(&payload, std::slice::from_ref(signature));
    Ok(verdict.signed.contains(&signature.keyid))
}

/// Whether the role's threshold is met.
pub fn threshold_met<T: Signed>(spec: &RoleSpec, md: &Metadata<T>) -> Result<bool> {
    let payload = md.signed_bytes()?;
    Ok(spec.verify(&payload, &md.signatures).is_verified())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuf::metadata::Root;
    use crate::tuf::testdata;

    const BINS_ROOT: &str = "vectors/tuf/repo-bins/1-after-bootstrap/1.root.json";

    #[test]
    fn setting_names_are_upper_case() {
        assert_eq!(signing_setting("root"), "ROOT_SIGNING");
        assert_eq!(signing_setting("tenant1-group1"), "TENANT1-GROUP1_SIGNING");
    }

    #[test]
    fn the_online_key_setting_is_the_key_dict_plus_its_id() {
        let vector = testdata::json("vectors/settings/after-bootstrap-bins.json");
        let stored = vector["steps"][2]["HGETALL DYNACONF_MAIN"]["ONLINE_KEY"]
            .as_str()
            .unwrap();
        let root = Metadata::<Root>::from_file_bytes(&testdata::bytes(BINS_ROOT)).unwrap();
        let keyid = &root.signed.roles["timestamp"].keyids[0];
        let value = SettingValue::from_serialize(&OnlineKeySetting {
            key: &root.signed.keys[keyid],
            keyid,
        })
        .unwrap();
        assert_eq!(format!("@json {}", value.to_python_json()), stored);
    }

    #[test]
    fn one_signature_counts_only_for_a_key_of_the_role() {
        let root = Metadata::<Root>::from_file_bytes(&testdata::bytes(BINS_ROOT)).unwrap();
        let spec = root.signed.role_spec("root").unwrap();
        for sig in &root.signatures {
            assert!(
                signature_is_valid(&spec, &root, sig).unwrap(),
                "{}",
                sig.keyid
            );
        }
        let mut forged = root.signatures[0].clone();
        forged.sig = root.signatures[1].sig.clone();
        assert!(!signature_is_valid(&spec, &root, &forged).unwrap());
        // The online key signs nothing for root, even with a valid signature.
        let timestamp = root.signed.role_spec("timestamp").unwrap();
        assert!(!signature_is_valid(&timestamp, &root, &root.signatures[0]).unwrap());
        assert!(threshold_met(&spec, &root).unwrap());
        let mut one = root.clone();
        one.signatures.truncate(1);
        assert!(!threshold_met(&spec, &one).unwrap());
    }
}
