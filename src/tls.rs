//! The TLS client settings of the connections the worker makes itself
//! (PostgreSQL, RabbitMQ): rustls with ring, so the image stays one static
//! binary. Certificates are always verified. Trusted CAs come from a CA file
//! named for one connection, else from `SSL_CERT_FILE`/`SSL_CERT_DIR` as
//! OpenSSL and Python read them, else from the system bundle. The Redis and
//! S3 clients load the same system bundle and variables themselves.
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};

/// What the server's certificate must prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Signed by a trusted CA and issued for the host name connected to.
    Full,
    /// Signed by a trusted CA, whatever host name it names (PostgreSQL's
    /// `verify-ca`, for servers reached by an address their certificate
    /// does not list).
    ChainOnly,
}

#[derive(Debug)]
pub enum Error {
    CaFile { path: PathBuf, reason: String },
    NoTrustedCertificates { reason: String },
    Rustls(rustls::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::CaFile { path, reason } => write!(
                f,
                "cannot use {} as trusted CA certificates: {reason}",
                path.display()
            ),
            Error::NoTrustedCertificates { reason } => write!(
                f,
                "no trusted CA certificates found ({reason}); install the system CA bundle \
                 or name a PEM file in SSL_CERT_FILE"
            ),
            Error::Rustls(e) => write!(f, "TLS settings: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// A client configuration trusting `ca_file` (PEM) when given, else the
/// default trust store.
pub fn client_config(ca_file: Option<&Path>, verify: Verify) -> Result<ClientConfig, Error> {
    let roots = Arc::new(match ca_file {
        Some(path) => roots_from_file(path)?,
        None => default_roots()?,
    });
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(Error::Rustls)?;
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
        .build()
        .map_err(|e| Error::Rustls(rustls::Error::General(e.to_string())))?;
    let config = match verify {
        Verify::Full => builder.with_webpki_verifier(webpki),
        Verify::ChainOnly => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki))),
    };
    Ok(config.with_no_client_auth())
}

/// A configuration that can never complete a handshake, for connections
/// configured without TLS whose client type still wants one.
pub fn unused_config() -> ClientConfig {
    ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(RootCertStore::empty()))
        .map(|b| b.with_no_client_auth())
        .unwrap_or_else(|_| unreachable!("ring supports rustls' default protocol versions"))
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, Error> {
    let failed = |reason: String| Error::CaFile {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| failed(e.to_string()))?;
    if certs.is_empty() {
        return Err(failed("it holds no PEM certificate".into()));
    }
    let mut store = RootCertStore::empty();
    for cert in certs {
        store.add(cert).map_err(|e| failed(e.to_string()))?;
    }
    Ok(store)
}

/// `SSL_CERT_FILE`/`SSL_CERT_DIR` when set, else the system bundle. Entries
/// rustls cannot parse are skipped, as OpenSSL skips them.
fn default_roots() -> Result<RootCertStore, Error> {
    let found = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    store.add_parsable_certificates(found.certs);
    if store.is_empty() {
        let reason = match found.errors.first() {
            Some(e) => e.to_string(),
            None => "the system bundle is empty".into(),
        };
        return Err(Error::NoTrustedCertificates { reason });
    }
    Ok(store)
}

/// Accepts a certificate for another host name, and nothing else: the
/// chain is checked before the name, so only a name mismatch is forgiven.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// What to do when `error` (or what caused it) is a server certificate
/// that did not verify; None for any other failure.
pub fn certificate_hint(error: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut next = Some(error);
    while let Some(e) = next {
        // io::Error hides the error it wraps from source(); look inside.
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        let rustls = inner.unwrap_or(e).downcast_ref::<rustls::Error>();
        if let Some(rustls::Error::InvalidCertificate(_)) = rustls {
            return Some(
                "the server's certificate must be signed by a trusted CA (SSL_CERT_FILE, or \
                 the system bundle) and name the host connected to",
            );
        }
        next = inner.or_else(|| e.source());
    }
    None
}
