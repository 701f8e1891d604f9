//! The one error type of the TUF core. Messages name the thing at fault
//! (role, keyid, file, field) so an operator can act on them.
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    // --- json & metadata -------------------------------------------------
    /// A value that canonical JSON cannot represent (floats, for instance).
    CanonicalJson(String),
    /// A value the on-disk metadata format cannot represent (floats).
    FileFormat(String),
    /// A timestamp string that is not exactly `YYYY-MM-DDTHH:MM:SSZ`.
    TimeFormat { input: String, reason: String },
    /// A date or time that does not exist, or lies outside years 1..=9999
    /// (the range of Python's datetime).
    TimeOutOfRange(String),
    /// Bytes that are not JSON of the expected metadata shape.
    MetadataJson { expected: String, reason: String },
    /// A metadata file whose `signed._type` is not the one asked for.
    MetadataType { expected: String, found: String },
    /// Metadata that parses but breaks a rule python-tuf enforces.
    InvalidMetadata { role_type: String, reason: String },
    /// Two signatures by the same key id (python-tuf refuses such files).
    DuplicateSignature { keyid: String },

    // --- keys & signing --------------------------------------------------
    /// A key dict that cannot be used (unknown type/scheme, bad public value).
    Key { keyid: String, reason: String },
    /// PEM text that is not a usable unencrypted private key.
    PrivateKey(String),
    /// The online key's file: unreadable, encrypted, malformed, or not the
    /// key metadata lists for `keyid`.
    KeyFile {
        keyid: String,
        path: String,
        reason: String,
    },
    /// An online key URI (`x-rstuf-online-key-uri`) that cannot be used.
    SignerUri {
        keyid: String,
        uri: String,
        reason: String,
    },
    /// The crypto library failed to sign.
    Sign { keyid: String, reason: String },

    // --- delegation & verification ---------------------------------------
    /// A number of hash bins that RSTUF does not support.
    BinCount(u64),
    /// Fewer valid signatures than the role's threshold.
    Unsigned {
        role: String,
        signed: usize,
        threshold: u32,
    },
    /// A delegator that does not delegate the named role.
    UnknownRole { delegator: String, role: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // --- json & metadata
            Error::CanonicalJson(what) => write!(f, "cannot encode as canonical JSON: {what}"),
            Error::FileFormat(what) => write!(f, "cannot write metadata file JSON: {what}"),
            Error::TimeFormat { input, reason } => write!(
                f,
                "invalid timestamp {input:?}: {reason} (expected YYYY-MM-DDTHH:MM:SSZ, UTC)"
            ),
            Error::TimeOutOfRange(what) => write!(f, "time out of range: {what}"),
            Error::MetadataJson { expected, reason } => {
                write!(f, "cannot parse {expected} metadata: {reason}")
            }
            Error::MetadataType { expected, found } => write!(
                f,
                "expected {expected} metadata, but signed._type is {found:?}"
            ),
            Error::InvalidMetadata { role_type, reason } => {
                write!(f, "invalid {role_type} metadata: {reason}")
            }
            Error::DuplicateSignature { keyid } => write!(
                f,
                "metadata has more than one signature by key {keyid}; \
                 each key may sign only once"
            ),

            // --- keys & signing
            Error::Key { keyid, reason } => write!(f, "key {keyid}: {reason}"),
            Error::PrivateKey(reason) => write!(f, "private key: {reason}"),
            Error::KeyFile {
                keyid,
                path,
                reason,
            } => write!(f, "online key {keyid}: key file {path}: {reason}"),
            Error::SignerUri { keyid, uri, reason } => {
                write!(f, "online key {keyid}: signer URI '{uri}': {reason}")
            }
            Error::Sign { keyid, reason } => write!(f, "signing with key {keyid}: {reason}"),

            // --- delegation & verification
            Error::BinCount(n) => write!(
                f,
                "number of hash bins must be a power of two from 2 to 16384, got {n}"
            ),
            Error::Unsigned {
                role,
                signed,
                threshold,
            } => {
                write!(f, "{role} was signed by {signed}/{threshold} keys")
            }
            Error::UnknownRole { delegator, role } => {
                write!(f, "{delegator} delegates no role named {role}")
            }
        }
    }
}

impl std::error::Error for Error {}
