//! AWS KMS `Sign` and `GetPublicKey` over its JSON protocol, signed with
//! SigV4, as securesystemslib's `AWSSigner` uses them: the worker sends the
//! digest (`MessageType: DIGEST`), so metadata of any size fits the 4 KiB
//! message limit.
use std::fmt;

use attohttpc::header::HeaderName;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Value};

use super::http::{with_retries, Failure, Gate, MAX_IN_FLIGHT};
use super::sigv4::{self, Scope};
use super::{base64_field, Hash};
use crate::tuf::{Concurrency, Error, Key, KeyId, PublicKey, Result, Signer, UtcTime};

const DEFAULT_REGION: &str = "us-east-1";

/// Where and as whom to call KMS.
#[derive(Clone)]
pub struct AwsKmsConfig {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `RSTUF_AWS_DEFAULT_REGION`; us-east-1 when unset.
    pub region: Option<String>,
    /// `RSTUF_AWS_ENDPOINT_URL`; the region's public endpoint when unset.
    pub endpoint_url: Option<String>,
}

/// Names the access key, never the secret.
impl fmt::Debug for AwsKmsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AwsKmsConfig({} in {:?} at {:?})",
            self.access_key_id, self.region, self.endpoint_url
        )
    }
}

/// A KMS signing key bound to the metadata key it signs for.
pub struct AwsKmsSigner {
    keyid: KeyId,
    key: Key,
    kms_key: String,
    algorithm: Algorithm,
    client: Client,
}

impl fmt::Debug for AwsKmsSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AwsKmsSigner({} {})", self.kms_key, self.keyid)
    }
}

impl AwsKmsSigner {
    /// Fetches the public half of `kms_key` and checks it is `key`, so a
    /// wrong URI fails here rather than in every client's verification.
    pub fn connect(
        config: &AwsKmsConfig,
        kms_key: &str,
        keyid: &KeyId,
        key: &Key,
    ) -> std::result::Result<AwsKmsSigner, String> {
        let algorithm = Algorithm::for_scheme(&key.scheme).ok_or_else(|| {
            format!(
                "AWS KMS cannot sign with scheme {} (supported: {})",
                key.scheme,
                Algorithm::ALL.map(|a| a.scheme).join(", ")
            )
        })?;
        let public = PublicKey::from_key(key).map_err(|e| e.to_string())?;
        let client = Client::new(config)?;
        let answer = client.call("GetPublicKey", &json!({ "KeyId": kms_key }))?;
        let der = base64_field(&answer, "PublicKey")?;
        if !public.is_spki_der(&der) {
            return Err(format!(
                "the public key of KMS key {kms_key} is not the key root lists for this key id"
            ));
        }
        let offered = answer["SigningAlgorithms"].as_array();
        if !offered.is_some_and(|algs| algs.iter().any(|a| a == algorithm.kms)) {
            return Err(format!(
                "KMS key {kms_key} does not offer {} (scheme {})",
                algorithm.kms, algorithm.scheme
            ));
        }
        Ok(AwsKmsSigner {
            keyid: keyid.clone(),
            key: key.clone(),
            kms_key: kms_key.to_owned(),
            algorithm,
            client,
        })
    }
}

impl Signer for AwsKmsSigner {
    fn keyid(&self) -> &KeyId {
        &self.keyid
    }

    fn public_key(&self) -> &Key {
        &self.key
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let request = json!({
            "KeyId": self.kms_key,
            "Message": BASE64.encode(self.algorithm.hash.digest(msg)),
            "MessageType": "DIGEST",
            "SigningAlgorithm": self.algorithm.kms,
        });
        self.client
            .call("Sign", &request)
            .and_then(|answer| base64_field(&answer, "Signature"))
            .map_err(|reason| Error::Sign {
                keyid: self.keyid.to_string(),
                reason: format!("AWS KMS key {}: {reason}", self.kms_key),
            })
    }

    fn concurrency(&self) -> Concurrency {
        Concurrency::Network(MAX_IN_FLIGHT)
    }
}

/// A TUF scheme and the KMS signing algorithm that produces it. KMS ECDSA
/// signatures are DER, the encoding securesystemslib writes and verifies.
#[derive(Clone, Copy)]
struct Algorithm {
    scheme: &'static str,
    kms: &'static str,
    hash: Hash,
}

impl Algorithm {
    const ALL: [Algorithm; 8] = [
        Algorithm::new("rsassa-pss-sha256", "RSASSA_PSS_SHA_256", Hash::Sha256),
        Algorithm::new("rsassa-pss-sha384", "RSASSA_PSS_SHA_384", Hash::Sha384),
        Algorithm::new("rsassa-pss-sha512", "RSASSA_PSS_SHA_512", Hash::Sha512),
        Algorithm::new(
            "rsa-pkcs1v15-sha256",
            "RSASSA_PKCS1_V1_5_SHA_256",
            Hash::Sha256,
        ),
        Algorithm::new(
            "rsa-pkcs1v15-sha384",
            "RSASSA_PKCS1_V1_5_SHA_384",
            Hash::Sha384,
        ),
        Algorithm::new(
            "rsa-pkcs1v15-sha512",
            "RSASSA_PKCS1_V1_5_SHA_512",
            Hash::Sha512,
        ),
        Algorithm::new("ecdsa-sha2-nistp256", "ECDSA_SHA_256", Hash::Sha256),
        Algorithm::new("ecdsa-sha2-nistp384", "ECDSA_SHA_384", Hash::Sha384),
    ];

    const fn new(scheme: &'static str, kms: &'static str, hash: Hash) -> Self {
        Algorithm { scheme, kms, hash }
    }

    fn for_scheme(scheme: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.scheme == scheme)
    }
}

/// Signed JSON calls to one KMS endpoint.
struct Client {
    config: AwsKmsConfig,
    region: String,
    url: String,
    host: String,
    gate: Gate,
}

impl Client {
    fn new(config: &AwsKmsConfig) -> std::result::Result<Client, String> {
        let region = config
            .region
            .clone()
            .unwrap_or_else(|| DEFAULT_REGION.to_owned());
        let url = config
            .endpoint_url
            .clone()
            .unwrap_or_else(|| format!("https://kms.{region}.amazonaws.com"));
        let host = url
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or_default().to_owned())
            .filter(|host| !host.is_empty())
            .ok_or_else(|| format!("RSTUF_AWS_ENDPOINT_URL {url:?} is not an http(s) URL"))?;
        Ok(Client {
            config: config.clone(),
            region,
            url,
            host,
            gate: Gate::new(),
        })
    }

    /// Calls `action`, retrying throttling and server faults with backoff.
    fn call(&self, action: &str, request: &Value) -> std::result::Result<Value, String> {
        let body = request.to_string();
        with_retries(action, || self.attempt(action, body.as_bytes()))
    }

    fn attempt(&self, action: &str, body: &[u8]) -> std::result::Result<Value, Failure> {
        let target = format!("TrentService.{action}");
        let headers = sigv4::sign_post(
            &Scope {
                access_key: &self.config.access_key_id,
                secret_key: &self.config.secret_access_key,
                region: &self.region,
                service: "kms",
            },
            &self.host,
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", &target),
            ],
            body,
            UtcTime::now()
                .map_err(|e| Failure::Permanent(e.to_string()))?
                .civil(),
        );
        let mut request = attohttpc::post(&self.url).bytes(body);
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| Failure::Permanent(format!("header {name}: {e}")))?;
            request = request.header(name, value);
        }
        let (status, text) = self.gate.exchange(&self.url, request)?;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(answer);
        }
        let kind = answer["__type"].as_str().unwrap_or_default();
        let message = answer["message"]
            .as_str()
            .or(answer["Message"].as_str())
            .unwrap_or(&text);
        let why = format!("HTTP {status} {kind}: {message}");
        Err(Failure::of_status(status, kind.contains("Throttling"), why))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// A KMS stand-in answering each request with the next of `answers`
    /// (status, body); returns its URL and, once done, the targets asked for.
    fn stand_in(answers: Vec<(u16, &'static str)>) -> (String, std::thread::JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = std::thread::spawn(move || {
            for (status, body) in &answers {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream);
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = n.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                reader.read_exact(&mut vec![0; length]).unwrap();
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                reader.get_mut().write_all(reply.as_bytes()).unwrap();
            }
            answers.len()
        });
        (url, served)
    }

    fn client(url: String) -> Client {
        Client::new(&AwsKmsConfig {
            access_key_id: "a".into(),
            secret_access_key: "s".into(),
            region: None,
            endpoint_url: Some(url),
        })
        .unwrap()
    }

    #[test]
    fn throttling_and_server_faults_are_retried() {
        let (url, served) = stand_in(vec![
            (
                400,
                r#"{"__type":"ThrottlingException","message":"slow down"}"#,
            ),
            (429, "{}"),
            (503, "{}"),
            (200, r#"{"Signature":"AQI="}"#),
        ]);
        let answer = client(url).call("Sign", &json!({})).unwrap();
        assert_eq!(base64_field(&answer, "Signature").unwrap(), [1, 2]);
        assert_eq!(served.join().unwrap(), 4);
    }

    #[test]
    fn other_refusals_are_not_retried() {
        let (url, served) = stand_in(vec![(
            400,
            r#"{"__type":"AccessDeniedException","message":"no"}"#,
        )]);
        let err = client(url).call("Sign", &json!({})).unwrap_err();
        assert_eq!(err, "Sign: HTTP 400 Bad Request AccessDeniedException: no");
        assert_eq!(served.join().unwrap(), 1);
    }
}
