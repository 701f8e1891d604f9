//! AWS Signature Version 4 for one JSON POST: what every KMS call carries.
use ring::hmac;
use sha2::{Digest, Sha256};

use crate::tuf::datetime::Civil;
use crate::tuf::key::hex_lower;

/// The credentials and scope a request is signed for.
pub struct Scope<'a> {
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// The headers to send with a POST of `body` to `/` on `host`: the signed
/// ones, `X-Amz-Date` and `Authorization`.
pub fn sign_post(
    scope: &Scope,
    host: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    now: Civil,
) -> Vec<(String, String)> {
    let date = format!("{:04}{:02}{:02}", now.year, now.month, now.day);
    let stamp = format!("{date}T{:02}{:02}{:02}Z", now.hour, now.minute, now.second);
    let mut signed: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_owned()))
        .chain([
            ("host".into(), host.to_owned()),
            ("x-amz-date".into(), stamp.clone()),
        ])
        .collect();
    signed.sort();
    let names = signed
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = signed
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let canonical = format!(
        "POST\n/\n\n{canonical_headers}\n{names}\n{}",
        sha256_hex(body)
    );
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{credential_scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let key = [date.as_str(), scope.region, scope.service, "aws4_request"]
        .iter()
        .fold(
            format!("AWS4{}", scope.secret_key).into_bytes(),
            |key, part| hmac_sha256(&key, part.as_bytes()),
        );
    let signature = hex_lower(&hmac_sha256(&key, to_sign.as_bytes()));
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={names}, \
         Signature={signature}",
        scope.access_key
    );
    signed.push(("authorization".into(), authorization));
    signed
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, data).as_ref().to_vec()
}

fn sha256_hex(data: &[u8]) -> String {
    hex_lower(&Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values from botocore's `SigV4Auth` over the same request.
    #[test]
    fn signs_a_kms_call_as_botocore_does() {
        let scope = Scope {
            access_key: "AKIDEXAMPLE",
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            region: "eu-west-1",
            service: "kms",
        };
        let body = br#"{"KeyId":"k","Message":"bQ==","MessageType":"DIGEST","SigningAlgorithm":"ECDSA_SHA_256"}"#;
        let now = Civil {
            year: 2026,
            month: 11,
            day: 25,
            hour: 8,
            minute: 7,
            second: 9,
        };
        let headers = sign_post(
            &scope,
            "kms.eu-west-1.amazonaws.com",
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", "TrentService.Sign"),
            ],
            body,
            now,
        );
        let get = |name: &str| &headers.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(get("x-amz-date"), "20261125T080709Z");
        assert_eq!(
            get("authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/eu-west-1/kms/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
             Signature=8c860a943732ddc9e9c8b712d847e9028ae0eccf7ccabc033294a8093554ae13"
        );
    }
}
