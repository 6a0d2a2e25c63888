//! `palisade token create|list|revoke`: client tokens for `palisade serve`.
//!
//! A token is printed once, as the last line of stdout, and never stored: the store keeps its SHA-256
//! (see `palisade_serve::auth::tokens` for the format). `palisade serve` re-reads the store when it
//! changes, so a revocation applies to the next request.

use anyhow::Result;
use palisade_serve::{TokenError, TokenInfo, TokenStore};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::ExitStatus;
use crate::cli::Format;
use crate::dirs;
use crate::settings::ConfigError;

/// The default lifetime of a token: short-lived unless asked otherwise.
pub(crate) const DEFAULT_TTL: &str = "24h";

/// The token store: `--tokens FILE` or `$XDG_STATE_HOME/palisade/tokens.json`.
pub(crate) fn store(path: Option<PathBuf>) -> Result<TokenStore> {
    Ok(TokenStore::new(match path {
        Some(p) => p,
        None => dirs::state()?.join("tokens.json"),
    }))
}

fn config(e: TokenError) -> anyhow::Error {
    match e {
        TokenError::Invalid(_) | TokenError::NotFound(_) => ConfigError(e.to_string()).into(),
        other => other.into(),
    }
}

fn when(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn create(
    path: Option<PathBuf>,
    client: &str,
    scopes: Vec<String>,
    ttl: &str,
) -> Result<ExitStatus> {
    let ttl = humantime::parse_duration(ttl).map_err(|e| {
        ConfigError(format!(
            "--ttl {ttl:?}: {e}; use a duration like 8h, 30d or 90min"
        ))
    })?;
    let defaulted = scopes.is_empty();
    let scopes = if defaulted {
        vec!["mcp:*".to_owned()]
    } else {
        scopes
    };
    let store = store(path)?;
    let (info, token) = store.create(client, &scopes, ttl).map_err(config)?;
    if defaulted {
        eprintln!(
            "palisade: the token may use every server and tool (mcp:*); narrow it with --scope mcp:SERVER or mcp:SERVER:TOOL"
        );
    }
    eprintln!(
        "palisade: this is the only time the token is shown; palisade keeps only its hash in {}",
        store.path().display()
    );
    println!("id:      {}", info.id);
    println!("client:  {}", info.client);
    println!("scopes:  {}", info.scopes.join(" "));
    println!("expires: {}", when(info.expires));
    println!("{token}");
    Ok(ExitStatus::Success)
}

pub(crate) fn list(path: Option<PathBuf>, format: Format) -> Result<ExitStatus> {
    let store = store(path)?;
    let tokens = store.list().map_err(config)?;
    let now = now();
    match format {
        Format::Json => {
            let v: Vec<_> = tokens.iter().map(|t| token_json(t, now)).collect();
            println!("{}", serde_json::to_string_pretty(&json!({"tokens": v}))?);
        }
        Format::Text => {
            if tokens.is_empty() {
                println!(
                    "no tokens in {}; create one with `palisade token create --client NAME --scope mcp:SERVER`",
                    store.path().display()
                );
            }
            for t in &tokens {
                println!(
                    "{}  {:<8} {:<20} expires {}  {}",
                    t.id,
                    t.state(now),
                    t.client,
                    when(t.expires),
                    t.scopes.join(" ")
                );
            }
        }
    }
    Ok(ExitStatus::Success)
}

fn token_json(t: &TokenInfo, now: u64) -> serde_json::Value {
    json!({
        "id": t.id,
        "client": t.client,
        "scopes": t.scopes,
        "state": t.state(now),
        "created": when(t.created),
        "expires": when(t.expires),
        "revoked": t.revoked.map(when),
    })
}

pub(crate) fn revoke(path: Option<PathBuf>, id: &str) -> Result<ExitStatus> {
    let store = store(path)?;
    let t = store.revoke(id).map_err(config)?;
    println!("revoked {} (client {})", t.id, t.client);
    Ok(ExitStatus::Success)
}
