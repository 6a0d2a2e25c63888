//! TLS: the listener's rustls configuration from PEM files, and the small HTTPS client that fetches the
//! OAuth issuer's metadata and JWKS.
//!
//! The client speaks HTTP/1.1 over rustls with the platform trust store plus any CA files the operator
//! names (`--oauth-ca`, for a private identity provider). It accepts only `https://` URLs, caps response
//! bodies at [`MAX_BODY`] and gives up after [`TIMEOUT`]: a slow or hostile key server cannot hold the
//! gateway.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::ServeError;

/// Largest metadata or JWKS document accepted.
pub(crate) const MAX_BODY: usize = 1 << 20;
/// Time limit for one fetch (connect, handshake, response).
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The listener's TLS configuration from a PEM certificate chain and private key.
pub(crate) fn server_config(
    cert: &Path,
    key: &Path,
) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            ServeError::Config(format!(
                "cannot read the certificate chain {}: {e}",
                cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(ServeError::Config(format!(
            "{} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        ServeError::Config(format!(
            "cannot read the private key {}: {e} (expected a PEM PKCS#8, PKCS#1 or SEC1 key)",
            key.display()
        ))
    })?;
    let cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Config(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Config(format!("the TLS certificate and key do not fit: {e}")))?;
    let mut cfg = cfg;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// An HTTPS GET client for small JSON documents.
#[derive(Clone)]
pub(crate) struct HttpsClient {
    connector: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for HttpsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpsClient")
    }
}

impl HttpsClient {
    /// Trusts the platform's roots plus the certificates in `extra_ca`.
    pub(crate) fn new(extra_ca: &[PathBuf]) -> Result<HttpsClient, ServeError> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for c in native.certs {
            let _ = roots.add(c);
        }
        for path in extra_ca {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    ServeError::Config(format!("cannot read CA file {}: {e}", path.display()))
                })?;
            if certs.is_empty() {
                return Err(ServeError::Config(format!(
                    "CA file {} holds no PEM certificate",
                    path.display()
                )));
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| ServeError::Config(format!("CA file {}: {e}", path.display())))?;
            }
        }
        if roots.is_empty() {
            return Err(ServeError::Config(
                "no trusted CA certificates: the platform trust store is empty; pass --oauth-ca FILE".into(),
            ));
        }
        let cfg = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| ServeError::Config(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(HttpsClient {
            connector: tokio_rustls::TlsConnector::from(Arc::new(cfg)),
        })
    }

    /// The TLS connector (the remote-server client uses it with its own connections).
    pub(crate) fn connector(&self) -> &tokio_rustls::TlsConnector {
        &self.connector
    }

    /// GETs `url` (https only) and parses the body as JSON.
    pub(crate) async fn get_json(&self, url: &str) -> Result<serde_json::Value, String> {
        tokio::time::timeout(TIMEOUT, self.get_inner(url))
            .await
            .map_err(|_| format!("{url}: no answer within {}s", TIMEOUT.as_secs()))?
    }

    async fn get_inner(&self, url: &str) -> Result<serde_json::Value, String> {
        let u = url::Url::parse(url).map_err(|e| format!("{url}: not a URL ({e})"))?;
        if u.scheme() != "https" {
            return Err(format!("{url}: only https:// URLs are fetched"));
        }
        let host = u
            .host_str()
            .ok_or_else(|| format!("{url}: no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = u.port_or_known_default().unwrap_or(443);
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("{url}: cannot connect: {e}"))?;
        let name = ServerName::try_from(host.clone()).map_err(|e| format!("{url}: {e}"))?;
        let tls = self
            .connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("{url}: TLS: {e}"))?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let path = match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_owned(),
        };
        let authority = match u.port() {
            Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
            None => u.host_str().unwrap_or_default().to_owned(),
        };
        let req = hyper::Request::get(path)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::ACCEPT, "application/json")
            .header(hyper::header::USER_AGENT, "palisade")
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("{url}: {e}"))?;
        let res = send
            .send_request(req)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if res.status() != hyper::StatusCode::OK {
            return Err(format!("{url}: HTTP {}", res.status()));
        }
        let body = Limited::new(res.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("{url}: {e} (limit {MAX_BODY} bytes)"))?
            .to_bytes();
        serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))
    }
}
