//! AWS KMS `Sign` and `GetPublicKey` over its JSON protocol, signed with
//! SigV4, as securesystemslib's `AWSSigner` uses them: the worker sends the
//! digest (`MessageType: DIGEST`), so metadata of any size fits the 4 KiB
//! message limit.
use std::fmt;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use attohttpc::header::HeaderName;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::sigv4::{self, Scope};
use crate::tuf::{Error, Key, KeyId, PublicKey, Result, Signer, UtcTime};

/// At most this many calls of one signer in flight: signing 16384 bins from
/// every pool thread must not trip the account's request quota.
const MAX_IN_FLIGHT: usize = 8;
/// Throttled or failing calls are retried this often, backing off from
/// [`FIRST_BACKOFF`], doubling each time.
const ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
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
            "Message": BASE64.encode((self.algorithm.digest)(msg)),
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
}

/// A TUF scheme and the KMS signing algorithm that produces it. KMS ECDSA
/// signatures are DER, the encoding securesystemslib writes and verifies.
#[derive(Clone, Copy)]
struct Algorithm {
    scheme: &'static str,
    kms: &'static str,
    digest: fn(&[u8]) -> Vec<u8>,
}

impl Algorithm {
    const ALL: [Algorithm; 8] = [
        Algorithm::new("rsassa-pss-sha256", "RSASSA_PSS_SHA_256", sha256),
        Algorithm::new("rsassa-pss-sha384", "RSASSA_PSS_SHA_384", sha384),
        Algorithm::new("rsassa-pss-sha512", "RSASSA_PSS_SHA_512", sha512),
        Algorithm::new("rsa-pkcs1v15-sha256", "RSASSA_PKCS1_V1_5_SHA_256", sha256),
        Algorithm::new("rsa-pkcs1v15-sha384", "RSASSA_PKCS1_V1_5_SHA_384", sha384),
        Algorithm::new("rsa-pkcs1v15-sha512", "RSASSA_PKCS1_V1_5_SHA_512", sha512),
        Algorithm::new("ecdsa-sha2-nistp256", "ECDSA_SHA_256", sha256),
        Algorithm::new("ecdsa-sha2-nistp384", "ECDSA_SHA_384", sha384),
    ];

    const fn new(scheme: &'static str, kms: &'static str, digest: fn(&[u8]) -> Vec<u8>) -> Self {
        Algorithm {
            scheme,
            kms,
            digest,
        }
    }

    fn for_scheme(scheme: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.scheme == scheme)
    }
}

fn sha256(msg: &[u8]) -> Vec<u8> {
    Sha256::digest(msg).to_vec()
}

fn sha384(msg: &[u8]) -> Vec<u8> {
    Sha384::digest(msg).to_vec()
}

fn sha512(msg: &[u8]) -> Vec<u8> {
    Sha512::digest(msg).to_vec()
}

fn base64_field(answer: &Value, field: &str) -> std::result::Result<Vec<u8>, String> {
    answer[field]
        .as_str()
        .and_then(|text| BASE64.decode(text).ok())
        .ok_or_else(|| format!("KMS answered without a base64 {field}"))
}

/// Signed JSON calls to one KMS endpoint, at most [`MAX_IN_FLIGHT`] at once.
struct Client {
    config: AwsKmsConfig,
    region: String,
    url: String,
    host: String,
    in_flight: Mutex<usize>,
    slot_freed: Condvar,
}

/// How one attempt at a call ended.
enum Failure {
    /// Throttled or a server/transport fault: worth another attempt.
    Transient(String),
    Permanent(String),
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
            in_flight: Mutex::new(0),
            slot_freed: Condvar::new(),
        })
    }

    /// Calls `action`, retrying throttling and server faults with backoff.
    fn call(&self, action: &str, request: &Value) -> std::result::Result<Value, String> {
        let body = request.to_string();
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            match self.attempt(action, body.as_bytes()) {
                Ok(answer) => return Ok(answer),
                Err(Failure::Transient(why)) if attempt < ATTEMPTS => {
                    log::warn!("KMS {action} failed ({why}); retrying in {backoff:?}");
                    std::thread::sleep(backoff);
                    backoff *= 2;
                }
                Err(Failure::Transient(why)) => {
                    return Err(format!("{action} failed {ATTEMPTS} times, last: {why}"))
                }
                Err(Failure::Permanent(why)) => return Err(format!("{action}: {why}")),
            }
        }
        unreachable!("the last attempt returns")
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
        let mut request = attohttpc::post(&self.url)
            .timeout(REQUEST_TIMEOUT)
            .bytes(body);
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| Failure::Permanent(format!("header {name}: {e}")))?;
            request = request.header(name, value);
        }
        let _slot = self.take_slot();
        let response = request
            .send()
            .map_err(|e| Failure::Transient(format!("cannot reach {}: {e}", self.url)))?;
        let status = response.status();
        let text = response
            .text()
            .map_err(|e| Failure::Transient(format!("reading the answer: {e}")))?;
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
        if status.as_u16() == 429 || status.is_server_error() || kind.contains("Throttling") {
            Err(Failure::Transient(why))
        } else {
            Err(Failure::Permanent(why))
        }
    }

    fn take_slot(&self) -> Slot<'_> {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        while *in_flight >= MAX_IN_FLIGHT {
            in_flight = self
                .slot_freed
                .wait(in_flight)
                .unwrap_or_else(|p| p.into_inner());
        }
        *in_flight += 1;
        Slot(self)
    }
}

/// One call in flight; frees its place when dropped.
struct Slot<'a>(&'a Client);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.0.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        *in_flight -= 1;
        self.0.slot_freed.notify_one();
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
