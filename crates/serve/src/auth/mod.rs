//! Authentication: who is calling. On by default; `--no-auth` exists only for loopback.
//!
//! A request carries `Authorization: Bearer TOKEN`. A token starting with `palisade_` is a
//! palisade-issued client token ([`tokens`]); anything else is an OAuth access token checked as a JWT
//! against the configured issuer ([`jwt`]). Either way the result is a [`Principal`] with a name for the
//! audit trail, a stable key sessions are bound to, and [`crate::scope::Scopes`]. The token itself
//! stays here: nothing of the `Authorization` header ever reaches a server behind palisade.

pub mod jwt;
pub mod tokens;

use hyper::HeaderMap;
use std::sync::Arc;

use crate::scope::Principal;
use jwt::OAuth;
use tokens::{TOKEN_PREFIX, TokenVerifier};

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthError {
    /// No bearer token: 401 without an error code (RFC 6750 §3.1).
    Missing,
    /// A token was presented and refused: 401 `invalid_token`, with the reason for the audit trail.
    Invalid(String),
}

/// The configured ways to authenticate.
#[derive(Debug)]
pub(crate) struct Auth {
    pub(crate) no_auth: bool,
    pub(crate) tokens: Option<TokenVerifier>,
    pub(crate) oauth: Option<OAuth>,
}

impl Auth {
    /// Authenticates a request for the resource `audience` (its canonical URI).
    pub(crate) async fn authenticate(
        &self,
        headers: &HeaderMap,
        audience: &str,
    ) -> Result<Arc<Principal>, AuthError> {
        if self.no_auth {
            return Ok(Arc::new(Principal::anonymous()));
        }
        let Some(value) = headers.get(hyper::header::AUTHORIZATION) else {
            return Err(AuthError::Missing);
        };
        let value = value
            .to_str()
            .map_err(|_| AuthError::Invalid("authorization-malformed".into()))?;
        let (scheme, token) = value
            .split_once(' ')
            .ok_or_else(|| AuthError::Invalid("authorization-malformed".into()))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Invalid(format!(
                "authorization-scheme: {scheme}"
            )));
        }
        let token = token.trim();
        if token.starts_with(TOKEN_PREFIX) {
            let Some(v) = &self.tokens else {
                return Err(AuthError::Invalid(
                    "palisade tokens are not accepted here".into(),
                ));
            };
            return v
                .verify(token, tokens::unix_now())
                .map(Arc::new)
                .map_err(|r| AuthError::Invalid(r.as_str().into()));
        }
        match &self.oauth {
            Some(o) => o
                .validate(token, audience)
                .await
                .map(Arc::new)
                .map_err(AuthError::Invalid),
            None => Err(AuthError::Invalid(
                "not a palisade token, and no OAuth issuer is configured (--oauth-issuer)".into(),
            )),
        }
    }
}
