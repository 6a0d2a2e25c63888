//! HTTPS for registries and the OSV API: blocking (one download at a time needs no runtime), the system
//! trust store (registries here sit behind an intercepting proxy whose CA only `/etc/ssl/certs` knows;
//! `SSL_CERT_FILE`/`SSL_CERT_DIR` are honoured), timeouts, and size caps so a hostile endpoint cannot
//! exhaust memory. `--offline` is enforced here: every request fails before it is made.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use url::Url;

use crate::{Error, Progress, Result};

/// Largest JSON document accepted (npm packuments of busy packages reach tens of MiB).
pub const MAX_JSON_BYTES: u64 = 64 << 20;
/// Largest artifact accepted.
pub const MAX_ARTIFACT_BYTES: u64 = 256 << 20;

/// A configured HTTP client.
pub struct Net {
    agent: Option<ureq::Agent>,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("offline", &self.agent.is_none())
            .finish()
    }
}

impl Net {
    /// A client using the system trust store, or (`offline`) one that refuses every request.
    pub fn new(offline: bool) -> Result<Net> {
        if offline {
            return Ok(Net { agent: None });
        }
        let loaded = rustls_native_certs::load_native_certs();
        let certs: Vec<ureq::tls::Certificate<'static>> = loaded
            .certs
            .iter()
            .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        if certs.is_empty() {
            return Err(Error::Http {
                url: "(system trust store)".into(),
                message: format!(
                    "no CA certificates found ({}); install ca-certificates or set SSL_CERT_FILE",
                    loaded
                        .errors
                        .first()
                        .map_or("none readable".to_owned(), ToString::to_string)
                ),
            });
        }
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)))
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_global(Some(Duration::from_secs(300)))
            .http_status_as_error(false)
            .user_agent(concat!("palisade/", env!("CARGO_PKG_VERSION")))
            .max_redirects(5)
            .build();
        Ok(Net {
            agent: Some(config.into()),
        })
    }

    /// Whether requests are refused.
    pub fn offline(&self) -> bool {
        self.agent.is_none()
    }

    fn agent(&self, url: &Url) -> Result<&ureq::Agent> {
        self.agent
            .as_ref()
            .ok_or_else(|| Error::Offline(format!("fetching {url} needs the network")))
    }

    /// GETs a JSON document; `Ok(None)` for 404.
    pub fn get_json(&self, url: &Url) -> Result<Option<Value>> {
        let agent = self.agent(url)?;
        let resp = agent
            .get(url.as_str())
            .header("Accept", "application/json")
            .call()
            .map_err(|e| http(url, e))?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        let body = read_body(url, resp, MAX_JSON_BYTES, None)?;
        if status != 200 {
            return Err(status_error(url, status, &body));
        }
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| Error::Http {
                url: url.to_string(),
                message: format!("the answer is not JSON ({e})"),
            })
    }

    /// POSTs JSON and reads JSON back.
    pub fn post_json(&self, url: &Url, body: &Value) -> Result<Value> {
        let agent = self.agent(url)?;
        let resp = agent
            .post(url.as_str())
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .send(serde_json::to_vec(body).unwrap_or_default())
            .map_err(|e| http(url, e))?;
        let status = resp.status().as_u16();
        let bytes = read_body(url, resp, MAX_JSON_BYTES, None)?;
        if status != 200 {
            return Err(status_error(url, status, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::Http {
            url: url.to_string(),
            message: format!("the answer is not JSON ({e})"),
        })
    }

    /// GETs an artifact, reporting progress.
    pub fn get_bytes(&self, url: &Url, label: &str, progress: &dyn Progress) -> Result<Vec<u8>> {
        let agent = self.agent(url)?;
        let resp = agent.get(url.as_str()).call().map_err(|e| http(url, e))?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Err(Error::NotFound(format!("{url}: 404 Not Found")));
        }
        let bytes = read_body(url, resp, MAX_ARTIFACT_BYTES, Some((label, progress)))?;
        if status != 200 {
            return Err(status_error(url, status, &bytes));
        }
        Ok(bytes)
    }
}

fn http(url: &Url, e: ureq::Error) -> Error {
    Error::Http {
        url: url.to_string(),
        message: e.to_string(),
    }
}

fn status_error(url: &Url, status: u16, body: &[u8]) -> Error {
    let text: String = String::from_utf8_lossy(body).chars().take(200).collect();
    Error::Http {
        url: url.to_string(),
        message: format!("HTTP {status}: {}", text.trim()),
    }
}

fn read_body(
    url: &Url,
    resp: ureq::http::Response<ureq::Body>,
    cap: u64,
    progress: Option<(&str, &dyn Progress)>,
) -> Result<Vec<u8>> {
    let total = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if total.is_some_and(|t| t > cap) {
        return Err(Error::Http {
            url: url.to_string(),
            message: format!("the answer is larger than {} MiB", cap >> 20),
        });
    }
    let mut reader = resp.into_body().into_with_config().limit(cap + 1).reader();
    let mut out = Vec::with_capacity(total.unwrap_or(0).min(cap) as usize);
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf).map_err(|e| Error::Http {
            url: url.to_string(),
            message: format!("reading the answer failed ({e})"),
        })?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.len() as u64 > cap {
            return Err(Error::Http {
                url: url.to_string(),
                message: format!("the answer is larger than {} MiB", cap >> 20),
            });
        }
        if let Some((label, p)) = progress {
            p.bytes(label, out.len() as u64, total);
        }
    }
    Ok(out)
}
