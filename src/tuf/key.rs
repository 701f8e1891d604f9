//! Public keys as TUF metadata carries them, and their key ids.
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::canonical;
use super::types::KeyId;
use super::Result;

/// Field holding the online key's signer URI (`fn:<file>`) in RSTUF metadata.
pub const ONLINE_KEY_URI_FIELD: &str = "x-rstuf-online-key-uri";
/// Display name RSTUF puts on keys.
pub const KEY_NAME_FIELD: &str = "x-rstuf-key-name";

/// A key dict (`keytype`, `scheme`, `keyval`) plus any extra fields, which
/// are kept because signatures over root/targets cover them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub keytype: String,
    pub scheme: String,
    pub keyval: KeyVal,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `keyval`: the public value (hex for ed25519, SPKI PEM otherwise) and any
/// extra members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVal {
    pub public: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Key {
    /// The key id securesystemslib computes: sha256 of the canonical form of
    /// `{keytype, scheme, keyval}` only; extra fields do not count.
    pub fn keyid(&self) -> Result<KeyId> {
        let core = serde_json::json!({
            "keytype": self.keytype,
            "scheme": self.scheme,
            "keyval": self.keyval,
        });
        let digest = Sha256::digest(canonical::encode(&core)?);
        Ok(KeyId(hex_lower(&digest)))
    }

    /// The `x-rstuf-online-key-uri` of the online key, when present.
    pub fn online_key_uri(&self) -> Option<&str> {
        self.extra.get(ONLINE_KEY_URI_FIELD).and_then(Value::as_str)
    }
}

/// Lowercase hex, as TUF writes key ids, hashes and signatures.
pub fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tuf::testdata;

    #[test]
    fn keyids_match_securesystemslib_for_every_vector_key() {
        let doc = testdata::json("vectors/tuf/keys.json");
        let keys = doc["keys"].as_array().unwrap();
        assert!(keys.len() >= 10);
        for k in keys {
            let key: Key = serde_json::from_value(k["key_dict"].clone()).unwrap();
            let label = k["label"].as_str().unwrap();
            let canon = canonical::encode(&serde_json::to_value(&key).unwrap()).unwrap();
            assert_eq!(
                String::from_utf8(canon).unwrap(),
                k["canonical_json_hashed_for_keyid"].as_str().unwrap(),
                "{label}"
            );
            assert_eq!(
                key.keyid().unwrap().0,
                k["keyid"].as_str().unwrap(),
                "{label}"
            );
        }
    }

    #[test]
    fn extra_fields_survive_and_do_not_change_the_keyid() {
        let plain: Key = serde_json::from_str(
            r#"{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"ab"}}"#,
        )
        .unwrap();
        let named: Key = serde_json::from_str(
            r#"{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"ab"},
                "x-rstuf-key-name":"Online Key","x-rstuf-online-key-uri":"fn:k.pem"}"#,
        )
        .unwrap();
        assert_eq!(plain.keyid().unwrap(), named.keyid().unwrap());
        assert_eq!(named.online_key_uri(), Some("fn:k.pem"));
        let back = serde_json::to_value(&named).unwrap();
        assert_eq!(back["x-rstuf-key-name"], "Online Key");
    }
}
