//! AWSS3: metadata files as objects at the root of an S3 bucket (AWS or any
//! S3-compatible endpoint), with upstream's key names and `public-read` ACL.
//!
//! rust-s3 is used with its `sync` backend (attohttpc): every call below is a
//! plain blocking HTTP request, no async runtime is involved. Responses are
//! judged by status code, since the crate's `fail-on-err` feature is off.
//!
//! The latest version of a role is found with HEAD requests only (see
//! the `latest` module): the key starts with the version, so no prefix listing
//! can select one role, and listing the whole bucket (upstream's way) grows
//! with every version of every bin.
use std::fmt;
use std::time::Duration;

use s3::creds::Credentials;
use s3::{Bucket, Region};

use super::latest::LatestCache;
use super::{check_versions, stored_versions, Error, MetadataFile, Result, Storage};
use crate::tuf::{RoleName, Version};

/// Settings of [`AwsS3`].
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    /// None: [`S3Config::DEFAULT_REGION`].
    pub region: Option<String>,
    /// An S3-compatible service (MinIO, LocalStack); addressed path-style.
    pub endpoint_url: Option<String>,
    /// Canned ACL sent with every upload; None sends none (needed for buckets
    /// that enforce bucket-owner object ownership).
    pub acl: Option<String>,
    /// Longest one request may take once connected (connecting, and each
    /// read, are bounded at 30 s by the HTTP client), so a stalled endpoint
    /// fails the request instead of blocking its thread for good.
    pub request_timeout: Duration,
}

impl S3Config {
    pub const DEFAULT_REGION: &'static str = "us-east-1";
    /// Upstream's `AWS_S3_OBJECT_ACL` default.
    pub const DEFAULT_ACL: &'static str = "public-read";
    /// rust-s3's own default, close to boto3's 60 s read timeout.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

    /// Settings with upstream's defaults for everything optional.
    pub fn new(bucket: &str, access_key: &str, secret_key: &str) -> S3Config {
        S3Config {
            bucket: bucket.to_owned(),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            region: None,
            endpoint_url: None,
            acl: Some(S3Config::DEFAULT_ACL.to_owned()),
            request_timeout: S3Config::DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

// Written by hand so the secret key never reaches a log line.
impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .field("acl", &self.acl)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

#[derive(Debug)]
pub struct AwsS3 {
    /// Reads and probes: no ACL header on requests that do not take one.
    reader: Box<Bucket>,
    writer: Box<Bucket>,
    endpoint: String,
    latest: LatestCache,
    request_timeout: Duration,
}

/// AWS regions missing from rust-s3's list are reached at their standard
/// endpoint instead of at a host named after the region.
fn region(config: &S3Config) -> Region {
    let name = config.region.as_deref().unwrap_or(S3Config::DEFAULT_REGION);
    match (&config.endpoint_url, name.parse::<Region>()) {
        (Some(endpoint), _) => Region::Custom {
            region: name.to_owned(),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
        },
        (None, Ok(Region::Custom { .. }) | Err(_)) => Region::Custom {
            region: name.to_owned(),
            endpoint: format!("https://s3.{name}.amazonaws.com"),
        },
        (None, Ok(known)) => known,
    }
}

fn config_error(config: &S3Config, reason: String) -> Error {
    Error::S3Config {
        bucket: config.bucket.clone(),
        reason,
    }
}

fn buckets(config: &S3Config) -> Result<(Box<Bucket>, Box<Bucket>)> {
    // Built field by field: Credentials::new would fall back to the process
    // environment and instance metadata when a key is empty.
    let credentials = Credentials {
        access_key: Some(config.access_key.clone()),
        secret_key: Some(config.secret_key.clone()),
        security_token: None,
        session_token: None,
        expiration: None,
    };
    let mut reader = Bucket::new(&config.bucket, region(config), credentials)
        .map_err(|e| config_error(config, e.to_string()))?;
    if config.endpoint_url.is_some() {
        reader.set_path_style();
    }
    reader.set_request_timeout(Some(config.request_timeout));
    let mut writer = reader.clone();
    if let Some(acl) = &config.acl {
        let value = acl
            .parse()
            .map_err(|e| config_error(config, format!("ACL {acl:?} is not a header value: {e}")))?;
        writer.extra_headers.insert("x-amz-acl", value);
    }
    Ok((reader, writer))
}

/// Text of the first `<tag>` element of an S3 XML error body.
fn xml_element(body: &[u8], tag: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&format!("</{tag}>"))?;
    Some(text[start..start + len].to_owned())
}

/// `HTTP <status> <Code>: <Message>` of an S3 error answer, or the start of
/// a body that is not S3's XML (a proxy's error page).
fn error_summary(status: u16, body: &[u8]) -> String {
    match (xml_element(body, "Code"), xml_element(body, "Message")) {
        (Some(code), Some(message)) => format!("HTTP {status} {code}: {message}"),
        (Some(code), None) => format!("HTTP {status} {code}"),
        _ => {
            let text = String::from_utf8_lossy(body);
            let start: String = text.trim().chars().take(200).collect();
            if start.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {start}")
            }
        }
    }
}

/// The HTTP client's words, and for a timeout which limits applied. The
/// client reports its whole-request timeout as std's `TimedOut` ("timed
/// out") and its 30 s read timeout as the socket's `EAGAIN`.
fn transport_detail(e: &s3::error::S3Error, request_timeout: Duration) -> String {
    let text = e.to_string();
    let timed_out = text.ends_with("timed out") || text.ends_with("(os error 11)");
    match timed_out {
        true => format!(
            "{text}: the endpoint did not answer in time (RSTUF_AWS_REQUEST_TIMEOUT is {}s; \
             a single read waits at most {}s)",
            request_timeout.as_secs_f64(),
            HTTP_READ_TIMEOUT.as_secs()
        ),
        false => text,
    }
}

/// attohttpc's read timeout, which rust-s3 leaves at its default.
const HTTP_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Without s3:ListBucket, S3 answers 403 instead of 404 for a missing key,
/// which makes every probe for a version that does not exist yet fail.
const FORBIDDEN_HINT: &str = "; check the credentials, and that they have s3:GetObject, \
     s3:PutObject and s3:ListBucket (without it S3 answers 403 for missing keys)";

fn status_detail(status: u16, body: &[u8]) -> String {
    let summary = error_summary(status, body);
    if status == 403 {
        format!("{summary}{FORBIDDEN_HINT}")
    } else {
        summary
    }
}

impl AwsS3 {
    /// Build the client and check that the bucket exists (upstream does the
    /// same at start), so a typo fails the worker before its first task.
    pub fn connect(config: &S3Config) -> Result<AwsS3> {
        let (reader, writer) = buckets(config)?;
        let storage = AwsS3 {
            endpoint: reader.url(),
            reader,
            writer,
            latest: LatestCache::default(),
            request_timeout: config.request_timeout,
        };
        storage.check_bucket()?;
        Ok(storage)
    }

    /// A request that got no answer: the endpoint is down or hung.
    fn unanswered(&self, key: &str, action: &'static str, e: s3::error::S3Error) -> Error {
        self.failure(key, action, transport_detail(&e, self.request_timeout))
    }

    fn failure(&self, key: &str, action: &'static str, detail: String) -> Error {
        Error::S3 {
            bucket: self.reader.name.clone(),
            key: key.to_owned(),
            action,
            detail,
        }
    }

    /// HEAD on the bucket root is a HeadBucket request: 200, 404 or 403.
    fn check_bucket(&self) -> Result<()> {
        let action = "check the bucket";
        let (_, status) = self
            .reader
            .head_object("")
            .map_err(|e| self.unanswered("", action, e))?;
        match status {
            200 => Ok(()),
            404 => Err(Error::BucketMissing {
                bucket: self.reader.name.clone(),
                endpoint: self.endpoint.clone(),
            }),
            _ => Err(self.failure("", action, status_detail(status, &[]))),
        }
    }

    fn exists(&self, key: &str) -> Result<bool> {
        let action = "check for";
        let (_, status) = self
            .reader
            .head_object(key)
            .map_err(|e| self.unanswered(key, action, e))?;
        match status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.failure(key, action, status_detail(status, &[]))),
        }
    }

    fn upload(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let action = "upload";
        let response = self
            .writer
            .put_object(key, bytes)
            .map_err(|e| self.unanswered(key, action, e))?;
        match response.status_code() {
            200 => Ok(()),
            // rust-s3 keeps only the ETag of an upload answer, not the body.
            status => Err(self.failure(key, action, status_detail(status, &[]))),
        }
    }
}

impl Storage for AwsS3 {
    fn read(&self, file: &MetadataFile) -> Result<Vec<u8>> {
        let key = file.name();
        let action = "download";
        let response = self
            .reader
            .get_object(&key)
            .map_err(|e| self.unanswered(&key, action, e))?;
        let body = response.bytes();
        match response.status_code() {
            200 => Ok(body.to_vec()),
            // A vanished bucket must not read as "this version does not exist".
            404 if xml_element(body, "Code").as_deref() != Some("NoSuchBucket") => {
                Err(Error::NotFound {
                    location: format!("s3://{}/{key}", self.reader.name),
                })
            }
            status => Err(self.failure(&key, action, status_detail(status, body))),
        }
    }

    fn latest_version(&self, role: &RoleName) -> Result<Option<Version>> {
        self.latest.latest(role, |version| {
            self.exists(
                &MetadataFile::Versioned {
                    role: role.clone(),
                    version,
                }
                .name(),
            )
        })
    }

    /// Uploads one after the other, so files become visible in order.
    fn put_all(&self, files: &[(MetadataFile, &[u8])]) -> Result<()> {
        check_versions(files)?;
        for (file, bytes) in files {
            self.upload(&file.name(), bytes)?;
        }
        for (role, version) in stored_versions(files) {
            self.latest.record(role, version);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_error_bodies_are_summarised() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code>\
            <Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(
            error_summary(404, body),
            "HTTP 404 NoSuchBucket: The specified bucket does not exist"
        );
        assert_eq!(error_summary(500, b""), "HTTP 500");
        assert_eq!(error_summary(502, b"Bad gateway"), "HTTP 502: Bad gateway");
    }

    #[test]
    fn forbidden_says_which_permissions_to_check() {
        assert_eq!(
            status_detail(403, b""),
            "HTTP 403; check the credentials, and that they have s3:GetObject, \
             s3:PutObject and s3:ListBucket (without it S3 answers 403 for missing keys)"
        );
    }

    #[test]
    fn region_and_endpoint() {
        let mut config = S3Config::new("b", "a", "s");
        assert_eq!(region(&config), Region::UsEast1);
        config.region = Some("eu-west-1".into());
        assert_eq!(region(&config), Region::EuWest1);
        config.region = Some("mx-central-9".into());
        assert_eq!(
            region(&config),
            Region::Custom {
                region: "mx-central-9".into(),
                endpoint: "https://s3.mx-central-9.amazonaws.com".into()
            }
        );
        config.endpoint_url = Some("http://127.0.0.1:9000/".into());
        assert_eq!(
            region(&config),
            Region::Custom {
                region: "mx-central-9".into(),
                endpoint: "http://127.0.0.1:9000".into()
            }
        );
    }

    #[test]
    fn custom_endpoints_are_path_style_and_only_uploads_carry_the_acl() {
        let mut config = S3Config::new("meta", "a", "s");
        config.endpoint_url = Some("http://127.0.0.1:9000".into());
        let (reader, writer) = buckets(&config).unwrap();
        assert_eq!(reader.url(), "http://127.0.0.1:9000/meta");
        assert!(reader.extra_headers.is_empty());
        assert_eq!(writer.extra_headers["x-amz-acl"], "public-read");
        assert_eq!(writer.request_timeout(), Some(Duration::from_secs(60)));
    }

    #[test]
    fn an_acl_that_is_not_a_header_value_is_a_config_error() {
        let mut config = S3Config::new("meta", "a", "s");
        config.acl = Some("public\nread".into());
        let err = buckets(&config).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "S3 storage for bucket 'meta' is misconfigured: ACL \"public\\nread\" is not a header value"
            ),
            "{err}"
        );
    }

    #[test]
    fn debug_output_hides_the_secret_key() {
        let config = S3Config::new("meta", "AKIA", "very-secret");
        let text = format!("{config:?}");
        assert!(
            text.contains("AKIA") && !text.contains("very-secret"),
            "{text}"
        );
    }
}
