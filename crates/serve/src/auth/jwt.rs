//! OAuth 2.1 resource server: access tokens are JWTs signed by the configured issuer.
//!
//! # What a token must satisfy
//! * Its header `alg` is on the allowlist [`ALLOWED`]: asymmetric signatures only. `none` and every HMAC
//!   algorithm are refused before any key is looked at, so a token "signed" with a public key as an HMAC
//!   secret (the RS/HS confusion) never verifies. The key's own `alg`, when the JWKS states one, must
//!   equal the header's, and the key type must fit the algorithm family.
//! * Its `kid` names a key of the issuer's JWKS (fetched over HTTPS, see [`crate::tls`]). An unknown `kid`
//!   triggers one re-fetch (key rotation), at most once per [`OAuthConfig::refresh`] (default
//!   [`REFETCH_EVERY`]), so garbage tokens cannot make palisade hammer the issuer. Keys are also refreshed when older than [`MAX_AGE`].
//! * `iss` equals the configured issuer; `aud` contains this resource's canonical URI (RFC 8707), so a
//!   token minted for another service is useless here; `exp` is in the future and `nbf` (if present) in
//!   the past, with [`LEEWAY`] for clock skew.
//!
//! The client is named by `client_id`, else `azp`, else `sub`; scopes come from `scope` (space separated)
//! or `scp` (string or array), in the vocabulary of [`crate::scope`].

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

use crate::ServeError;
use crate::scope::{Principal, Scopes};
use crate::tls::HttpsClient;

/// Accepted signature algorithms.
pub const ALLOWED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY: Duration = Duration::from_secs(30);
/// By default, an unknown `kid` re-fetches the JWKS at most this often.
pub const REFETCH_EVERY: Duration = Duration::from_secs(30);
/// Keys older than this are re-fetched on the next token.
pub const MAX_AGE: Duration = Duration::from_secs(3600);

/// Where the issuer's keys come from.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// The issuer (`iss`), an `https://` URL.
    pub issuer: String,
    /// The JWKS URL; `None` discovers it from the issuer's metadata (RFC 8414, then OpenID Connect).
    pub jwks_uri: Option<String>,
    /// Extra trusted CA certificates (PEM files) for the issuer's endpoints.
    pub ca_files: Vec<PathBuf>,
    /// The shortest interval between two JWKS fetches caused by unknown key ids.
    pub refresh: Duration,
}

struct Keys {
    set: Vec<Jwk>,
    fetched: Instant,
    last_try: Instant,
}

/// Validates access tokens of one issuer.
pub(crate) struct OAuth {
    issuer: String,
    jwks_uri: String,
    client: HttpsClient,
    refresh: Duration,
    keys: Mutex<Keys>,
}

impl std::fmt::Debug for OAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth")
            .field("issuer", &self.issuer)
            .field("jwks_uri", &self.jwks_uri)
            .finish()
    }
}

impl OAuth {
    /// Resolves the JWKS URL and fetches the keys once: a misconfigured issuer stops palisade at start,
    /// not at the first client.
    pub(crate) async fn new(cfg: &OAuthConfig) -> Result<OAuth, ServeError> {
        let issuer_url = url::Url::parse(&cfg.issuer)
            .map_err(|e| ServeError::Config(format!("--oauth-issuer {}: {e}", cfg.issuer)))?;
        if issuer_url.scheme() != "https" {
            return Err(ServeError::Config(format!(
                "--oauth-issuer {} must be an https:// URL",
                cfg.issuer
            )));
        }
        let client = HttpsClient::new(&cfg.ca_files)?;
        let jwks_uri = match &cfg.jwks_uri {
            Some(u) => u.clone(),
            None => discover(&client, &cfg.issuer).await?,
        };
        let set = fetch(&client, &jwks_uri)
            .await
            .map_err(|e| ServeError::Config(format!("cannot fetch the issuer's JWKS: {e}")))?;
        let now = Instant::now();
        Ok(OAuth {
            issuer: cfg.issuer.clone(),
            jwks_uri,
            client,
            refresh: cfg.refresh,
            keys: Mutex::new(Keys {
                set,
                fetched: now,
                last_try: now,
            }),
        })
    }

    /// The issuer, for the protected-resource metadata.
    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Validates `token` for `audience`. The error is a short reason for the audit trail.
    pub(crate) async fn validate(&self, token: &str, audience: &str) -> Result<Principal, String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("jwt-malformed: {e}"))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(format!("jwt-alg-refused: {:?}", header.alg));
        }
        let jwk = self.key(header.kid.as_deref()).await?;
        if let Some(key_alg) = jwk.common.key_algorithm {
            let same = format!("{key_alg:?}") == format!("{:?}", header.alg);
            if !same {
                return Err(format!(
                    "jwt-alg-mismatch: token {:?}, key {key_alg:?}",
                    header.alg
                ));
            }
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("jwt-key-unusable: {e}"))?;
        let mut v = Validation::new(header.alg);
        v.algorithms = vec![header.alg];
        v.leeway = LEEWAY.as_secs();
        v.validate_exp = true;
        v.validate_nbf = true;
        v.set_audience(&[audience]);
        v.set_issuer(&[&self.issuer]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Value>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            let why = match e.kind() {
                K::ExpiredSignature => "jwt-expired",
                K::ImmatureSignature => "jwt-not-yet-valid",
                K::InvalidAudience => "jwt-wrong-audience",
                K::InvalidIssuer => "jwt-wrong-issuer",
                K::InvalidSignature => "jwt-bad-signature",
                K::InvalidAlgorithm => "jwt-alg-refused",
                K::MissingRequiredClaim(_) => "jwt-missing-claim",
                _ => "jwt-invalid",
            };
            format!("{why}: {e}")
        })?;
        let c = data.claims;
        let name = ["client_id", "azp", "sub"]
            .iter()
            .find_map(|k| c.get(*k).and_then(Value::as_str))
            .unwrap_or("unknown")
            .to_owned();
        let sub = c
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or(&name)
            .to_owned();
        let mut scopes: Vec<String> = Vec::new();
        if let Some(s) = c.get("scope").and_then(Value::as_str) {
            scopes.extend(s.split_whitespace().map(str::to_owned));
        }
        match c.get("scp") {
            Some(Value::String(s)) => scopes.extend(s.split_whitespace().map(str::to_owned)),
            Some(Value::Array(a)) => {
                scopes.extend(a.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            _ => {}
        }
        let scopes = Scopes::parse(scopes.iter().map(String::as_str))
            .map_err(|e| format!("jwt-bad-scope: {e}"))?;
        Ok(Principal {
            name,
            key: format!("jwt:{}#{sub}", self.issuer),
            scopes,
        })
    }

    /// The key for `kid`, re-fetching the JWKS on an unknown kid (rate limited) or stale keys.
    async fn key(&self, kid: Option<&str>) -> Result<Jwk, String> {
        let mut keys = self.keys.lock().await;
        let now = Instant::now();
        if now.duration_since(keys.fetched) > MAX_AGE
            && now.duration_since(keys.last_try) > self.refresh
        {
            self.refresh(&mut keys, now).await;
        }
        if let Some(k) = pick(&keys.set, kid) {
            return Ok(k);
        }
        if now.duration_since(keys.last_try) > self.refresh {
            self.refresh(&mut keys, now).await;
            if let Some(k) = pick(&keys.set, kid) {
                return Ok(k);
            }
        }
        Err(match kid {
            Some(k) => format!("jwt-unknown-kid: {k}"),
            None => "jwt-no-kid: the token names no key and the JWKS has several".into(),
        })
    }

    async fn refresh(&self, keys: &mut Keys, now: Instant) {
        keys.last_try = now;
        match fetch(&self.client, &self.jwks_uri).await {
            Ok(set) => {
                keys.set = set;
                keys.fetched = now;
            }
            Err(e) => eprintln!("palisade: warning: cannot refresh the issuer's JWKS: {e}"),
        }
    }
}

/// The key named `kid`; without a kid, the only key (if there is exactly one).
fn pick(set: &[Jwk], kid: Option<&str>) -> Option<Jwk> {
    match kid {
        Some(k) => set
            .iter()
            .find(|j| j.common.key_id.as_deref() == Some(k))
            .cloned(),
        None if set.len() == 1 => set.first().cloned(),
        None => None,
    }
}

async fn fetch(client: &HttpsClient, uri: &str) -> Result<Vec<Jwk>, String> {
    let v = client.get_json(uri).await?;
    // Keys of types this crate cannot represent are skipped, not fatal: a JWKS may hold encryption keys.
    let keys = v
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{uri}: not a JWKS (no \"keys\" array)"))?;
    let mut out = Vec::new();
    for k in keys {
        if let Ok(set) = serde_json::from_value::<JwkSet>(serde_json::json!({"keys": [k]})) {
            out.extend(set.keys);
        }
    }
    if out.is_empty() {
        return Err(format!("{uri}: the JWKS holds no usable key"));
    }
    Ok(out)
}

/// The JWKS URL from the issuer's metadata: RFC 8414 first, then OpenID Connect discovery.
async fn discover(client: &HttpsClient, issuer: &str) -> Result<String, ServeError> {
    let base = issuer.trim_end_matches('/');
    let candidates = [
        format!("{base}/.well-known/oauth-authorization-server"),
        format!("{base}/.well-known/openid-configuration"),
    ];
    let mut errors = Vec::new();
    for url in &candidates {
        match client.get_json(url).await {
            Ok(meta) => {
                if let Some(u) = meta.get("jwks_uri").and_then(Value::as_str) {
                    return Ok(u.to_owned());
                }
                errors.push(format!("{url}: no jwks_uri"));
            }
            Err(e) => errors.push(e),
        }
    }
    Err(ServeError::Config(format!(
        "cannot discover the issuer's JWKS ({}); pass --oauth-jwks-uri URL",
        errors.join("; ")
    )))
}
