//! Google Cloud KMS `asymmetricSign` and `getPublicKey` over its REST API,
//! authorised by a service account through the OAuth2 JWT bearer grant
//! (RFC 7523), as securesystemslib's `GCPSigner` uses the service: the
//! worker sends the digest, and ECDSA signatures come back DER, as TUF
//! stores them.
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as BASE64URL};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{with_retries, Failure, Gate, MAX_IN_FLIGHT};
use super::{base64_field, Hash};
use crate::tuf::{
    Concurrency, Error, Key, KeyId, PemSigner, PrivateKey, PublicKey, Result, Signer, UtcTime,
};

const DEFAULT_ENDPOINT: &str = "https://cloudkms.googleapis.com";
const SCOPE: &str = "https://www.googleapis.com/auth/cloudkms";
/// The JWT bearer grant type (`urn:ietf:params:oauth:grant-type:jwt-bearer`),
/// form-encoded.
const JWT_BEARER_GRANT: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";
/// The longest life Google grants an assertion.
const ASSERTION_LIFETIME_SECONDS: i64 = 3600;
/// A token is renewed this long before it expires, so that no call
/// carries one that lapses in flight.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// Where and as whom to call Cloud KMS.
#[derive(Clone)]
pub struct GcpKmsConfig {
    account: ServiceAccount,
    /// `RSTUF_GOOGLE_KMS_ENDPOINT_URL`; Google's public endpoint when unset.
    endpoint_url: Option<String>,
}

/// The fields of a service account key file the worker uses.
#[derive(Clone, Deserialize)]
struct ServiceAccount {
    client_email: String,
    private_key: String,
    token_uri: String,
}

/// Names the account, never its key.
impl fmt::Debug for GcpKmsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GcpKmsConfig({} at {:?})",
            self.account.client_email, self.endpoint_url
        )
    }
}

impl GcpKmsConfig {
    /// From the text of a service account key file (JSON, as the Cloud
    /// console downloads it).
    pub fn from_key_file(
        text: &str,
        endpoint_url: Option<String>,
    ) -> std::result::Result<GcpKmsConfig, String> {
        let account: ServiceAccount = serde_json::from_str(text).map_err(|e| {
            format!(
                "not a service account key file (JSON with client_email, private_key and \
                 token_uri): {e}"
            )
        })?;
        Ok(GcpKmsConfig {
            account,
            endpoint_url,
        })
    }
}

/// A Cloud KMS key version bound to the metadata key it signs for.
pub struct GcpKmsSigner {
    keyid: KeyId,
    key: Key,
    name: String,
    hash: Hash,
    client: Client,
}

impl fmt::Debug for GcpKmsSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GcpKmsSigner({} {})", self.name, self.keyid)
    }
}

impl GcpKmsSigner {
    /// Fetches the public half of key version `name` and checks it is
    /// `key` and signs with `key`'s scheme.
    pub fn connect(
        config: &GcpKmsConfig,
        name: &str,
        keyid: &KeyId,
        key: &Key,
    ) -> std::result::Result<GcpKmsSigner, String> {
        let public = PublicKey::from_key(key).map_err(|e| e.to_string())?;
        let client = Client::new(config)?;
        let answer = client.call("getPublicKey", &format!("v1/{name}/publicKey"), None)?;
        let pem = answer["pem"].as_str().unwrap_or_default();
        if !public.is_spki_pem(pem) {
            return Err(format!(
                "the public key of Cloud KMS key {name} is not the key root lists for this key id"
            ));
        }
        let algorithm = answer["algorithm"].as_str().unwrap_or_default();
        let hash = hash_for(algorithm, &key.scheme).ok_or_else(|| {
            format!(
                "Cloud KMS key {name} signs with {algorithm}, not with scheme {} (supported: {})",
                key.scheme,
                ALGORITHMS.map(|(a, s, _)| format!("{a} as {s}")).join(", ")
            )
        })?;
        Ok(GcpKmsSigner {
            keyid: keyid.clone(),
            key: key.clone(),
            name: name.to_owned(),
            hash,
            client,
        })
    }
}

impl Signer for GcpKmsSigner {
    fn keyid(&self) -> &KeyId {
        &self.keyid
    }

    fn public_key(&self) -> &Key {
        &self.key
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let body = json!({
            "digest": { self.hash.name(): BASE64.encode(self.hash.digest(msg)) },
        });
        let path = format!("v1/{}:asymmetricSign", self.name);
        self.client
            .call("asymmetricSign", &path, Some(&body))
            .and_then(|answer| base64_field(&answer, "signature"))
            .map_err(|reason| Error::Sign {
                keyid: self.keyid.to_string(),
                reason: format!("Cloud KMS key {}: {reason}", self.name),
            })
    }

    fn concurrency(&self) -> Concurrency {
        Concurrency::Network(MAX_IN_FLIGHT)
    }
}

/// Cloud KMS signing algorithms, the TUF scheme each produces, and the
/// digest it signs.
const ALGORITHMS: [(&str, &str, Hash); 10] = [
    ("EC_SIGN_P256_SHA256", "ecdsa-sha2-nistp256", Hash::Sha256),
    ("EC_SIGN_P384_SHA384", "ecdsa-sha2-nistp384", Hash::Sha384),
    (
        "RSA_SIGN_PSS_2048_SHA256",
        "rsassa-pss-sha256",
        Hash::Sha256,
    ),
    (
        "RSA_SIGN_PSS_3072_SHA256",
        "rsassa-pss-sha256",
        Hash::Sha256,
    ),
    (
        "RSA_SIGN_PSS_4096_SHA256",
        "rsassa-pss-sha256",
        Hash::Sha256,
    ),
    (
        "RSA_SIGN_PSS_4096_SHA512",
        "rsassa-pss-sha512",
        Hash::Sha512,
    ),
    (
        "RSA_SIGN_PKCS1_2048_SHA256",
        "rsa-pkcs1v15-sha256",
        Hash::Sha256,
    ),
    (
        "RSA_SIGN_PKCS1_3072_SHA256",
        "rsa-pkcs1v15-sha256",
        Hash::Sha256,
    ),
    (
        "RSA_SIGN_PKCS1_4096_SHA256",
        "rsa-pkcs1v15-sha256",
        Hash::Sha256,
    ),
    (
        "RSA_SIGN_PKCS1_4096_SHA512",
        "rsa-pkcs1v15-sha512",
        Hash::Sha512,
    ),
];

fn hash_for(algorithm: &str, scheme: &str) -> Option<Hash> {
    ALGORITHMS
        .into_iter()
        .find(|(a, s, _)| *a == algorithm && *s == scheme)
        .map(|(_, _, hash)| hash)
}

/// Authorised JSON calls to one Cloud KMS endpoint.
struct Client {
    base: String,
    account: ServiceAccount,
    /// The account's key, signing assertions with RS256.
    assertion_signer: PemSigner,
    token: Mutex<Option<Token>>,
    gate: Gate,
}

/// An access token and when to stop using it.
struct Token {
    value: String,
    renew_at: Instant,
}

impl Client {
    fn new(config: &GcpKmsConfig) -> std::result::Result<Client, String> {
        let base = config
            .endpoint_url
            .as_deref()
            .unwrap_or(DEFAULT_ENDPOINT)
            .trim_end_matches('/')
            .to_owned();
        Ok(Client {
            base,
            account: config.account.clone(),
            assertion_signer: rs256_signer(&config.account.private_key)?,
            token: Mutex::new(None),
            gate: Gate::new(),
        })
    }

    /// Calls `path` (GET, or POST of `body`), retrying throttling, server
    /// faults and a token the service no longer takes.
    fn call(
        &self,
        what: &str,
        path: &str,
        body: Option<&Value>,
    ) -> std::result::Result<Value, String> {
        let url = format!("{}/{path}", self.base);
        with_retries(what, || {
            let token = self.token()?;
            let (status, text) = match body {
                Some(body) => self.gate.exchange(
                    &url,
                    attohttpc::post(&url)
                        .bearer_auth(token)
                        .header("Content-Type", "application/json")
                        .bytes(body.to_string()),
                ),
                None => self
                    .gate
                    .exchange(&url, attohttpc::get(&url).bearer_auth(token)),
            }?;
            let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if status.is_success() {
                return Ok(answer);
            }
            let error = &answer["error"];
            let why = format!(
                "HTTP {status} {}: {}",
                error["status"].as_str().unwrap_or_default(),
                error["message"].as_str().unwrap_or(&text)
            );
            if status == attohttpc::StatusCode::UNAUTHORIZED {
                self.forget_token();
                return Err(Failure::Transient(why));
            }
            Err(Failure::of_status(status, false, why))
        })
    }

    /// The cached access token, or a new one when it is about to expire.
    /// One caller fetches while the others wait for its token.
    fn token(&self) -> std::result::Result<String, Failure> {
        let mut cached = self.token.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(token.value.clone());
        }
        let token = self.fetch_token()?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    fn forget_token(&self) {
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn fetch_token(&self) -> std::result::Result<Token, Failure> {
        // The assertion is base64url and dots: nothing to escape.
        let form = format!(
            "grant_type={JWT_BEARER_GRANT}&assertion={}",
            self.assertion()?
        );
        let url = &self.account.token_uri;
        let request = attohttpc::post(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .bytes(form);
        let (status, text) = self.gate.exchange(url, request)?;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let why = format!(
                "token request for {} refused: HTTP {status} {}: {}",
                self.account.client_email,
                answer["error"].as_str().unwrap_or_default(),
                answer["error_description"].as_str().unwrap_or(&text)
            );
            return Err(Failure::of_status(status, false, why));
        }
        let value = answer["access_token"].as_str().ok_or_else(|| {
            Failure::Permanent(format!(
                "the token endpoint {url} answered without access_token"
            ))
        })?;
        let lifetime = Duration::from_secs(answer["expires_in"].as_u64().unwrap_or(0));
        Ok(Token {
            value: value.to_owned(),
            renew_at: Instant::now() + lifetime.saturating_sub(RENEW_BEFORE_EXPIRY),
        })
    }

    /// A JWT asking for a Cloud KMS token for the account, signed with
    /// its key (RS256).
    fn assertion(&self) -> std::result::Result<String, Failure> {
        let now = UtcTime::now()
            .map_err(|e| Failure::Permanent(e.to_string()))?
            .unix_seconds();
        let header = json!({"alg": "RS256", "typ": "JWT"});
        let claims = json!({
            "iss": self.account.client_email,
            "scope": SCOPE,
            "aud": self.account.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECONDS,
        });
        let input = format!(
            "{}.{}",
            BASE64URL.encode(header.to_string()),
            BASE64URL.encode(claims.to_string())
        );
        let signature = self
            .assertion_signer
            .sign(input.as_bytes())
            .map_err(|e| Failure::Permanent(e.to_string()))?;
        Ok(format!("{input}.{}", BASE64URL.encode(signature)))
    }
}

/// RS256 is RSASSA-PKCS1-v1_5 with SHA-256: the account's RSA key under
/// the TUF scheme that signs so.
fn rs256_signer(private_pem: &str) -> std::result::Result<PemSigner, String> {
    let problem = |why: String| format!("the service account's private_key: {why}");
    let private = PrivateKey::from_pem(private_pem).map_err(|e| problem(e.to_string()))?;
    let mut key = private.key_dict();
    if key.keytype != "rsa" {
        return Err(problem(format!("a {} key, not RSA", key.keytype)));
    }
    key.scheme = "rsa-pkcs1v15-sha256".into();
    let keyid = key.keyid().map_err(|e| problem(e.to_string()))?;
    PemSigner::new(private, &keyid, &key).map_err(|e| problem(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_pair_with_the_scheme_they_produce() {
        assert_eq!(
            hash_for("EC_SIGN_P384_SHA384", "ecdsa-sha2-nistp384"),
            Some(Hash::Sha384)
        );
        assert_eq!(
            hash_for("RSA_SIGN_PSS_4096_SHA512", "rsassa-pss-sha512"),
            Some(Hash::Sha512)
        );
        assert_eq!(
            hash_for("RSA_SIGN_PKCS1_2048_SHA256", "rsassa-pss-sha256"),
            None
        );
        assert_eq!(
            hash_for("EC_SIGN_SECP256K1_SHA256", "ecdsa-sha2-nistp256"),
            None
        );
    }
}
