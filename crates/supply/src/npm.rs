//! The npm registry's documented JSON: the packument (`GET /<name>`, scoped names with `/` as `%2f`) and
//! the version document inside it (`versions[v]`: `dist.integrity`, `dist.tarball`, `dist.attestations`,
//! `scripts`, `dependencies`, `repository`, `_npmUser`), plus `time` and `maintainers`.
//!
//! Mirrors omit fields (the one reachable from this machine has no `maintainers`); every field is
//! optional here and a missing one is reported as missing, never guessed.

use std::collections::BTreeMap;

use serde_json::Value;
use url::Url;

use crate::fetch::{Day, RegistryInfo};
use crate::net::Net;
use crate::spec::Ecosystem;
use crate::{Error, Result};

/// The registry URL of a package's packument.
pub fn packument_url(registry: &Url, name: &str) -> Result<Url> {
    let escaped = name.replace('/', "%2f");
    let base = registry.as_str().trim_end_matches('/');
    Url::parse(&format!("{base}/{escaped}"))
        .map_err(|e| Error::Usage(format!("bad registry URL: {e}")))
}

/// What the registry says about one version.
#[derive(Debug, Clone)]
pub struct VersionDoc {
    /// The exact version.
    pub version: String,
    /// `dist.integrity` (SRI).
    pub integrity: Option<String>,
    /// `dist.tarball`.
    pub tarball: String,
    /// The version document, as served.
    pub doc: Value,
    /// Registry facts for the report.
    pub info: RegistryInfo,
}

/// Fetches the packument and picks `version` (`None`: `dist-tags.latest`).
pub fn version_doc(
    net: &Net,
    registry: &Url,
    name: &str,
    version: Option<&str>,
) -> Result<VersionDoc> {
    let url = packument_url(registry, name)?;
    let pack = net.get_json(&url)?.ok_or_else(|| {
        Error::NotFound(format!(
            "npm has no package named {name:?} ({url}); check the spelling (typosquats differ by a letter)"
        ))
    })?;
    let latest = pack
        .pointer("/dist-tags/latest")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let version = match version {
        Some(v) => v.to_owned(),
        None => latest.clone().ok_or_else(|| {
            Error::NotFound(format!("npm:{name} has no `latest` tag; name a version"))
        })?,
    };
    let doc = pack
        .get("versions")
        .and_then(|v| v.get(&version))
        .cloned()
        .ok_or_else(|| {
            let mut known: Vec<&String> = pack
                .get("versions")
                .and_then(Value::as_object)
                .map(|m| m.keys().collect())
                .unwrap_or_default();
            known.sort_by(|a, b| {
                crate::version::compare(Ecosystem::Npm, a, b).unwrap_or(std::cmp::Ordering::Equal)
            });
            let tail: Vec<&str> = known.iter().rev().take(5).map(|s| s.as_str()).collect();
            Error::NotFound(format!(
                "npm:{name} has no version {version}; recent versions: {}",
                tail.join(", ")
            ))
        })?;
    let integrity = doc
        .pointer("/dist/integrity")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let tarball = doc
        .pointer("/dist/tarball")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Http {
            url: url.to_string(),
            message: format!("version {version} has no dist.tarball"),
        })?
        .to_owned();
    let info = registry_info(&pack, &doc, name, &version, latest);
    Ok(VersionDoc {
        version,
        integrity,
        tarball,
        doc,
        info,
    })
}

fn registry_info(
    pack: &Value,
    doc: &Value,
    name: &str,
    version: &str,
    latest: Option<String>,
) -> RegistryInfo {
    let time = pack.get("time").and_then(Value::as_object);
    let mut release_dates: Vec<Day> = Vec::new();
    let mut published = None;
    if let Some(t) = time {
        for (k, v) in t {
            if k == "created" || k == "modified" {
                continue;
            }
            if let Some(d) = v.as_str().and_then(Day::parse) {
                release_dates.push(d);
                if k == version {
                    published = Some(d);
                }
            }
        }
    }
    release_dates.sort();
    let created = time
        .and_then(|t| t.get("created"))
        .and_then(Value::as_str)
        .and_then(Day::parse);
    let first_release = match (created, release_dates.first().copied()) {
        (Some(c), Some(f)) => Some(c.min(f)),
        (a, b) => a.or(b),
    };
    let mut maintainers: Vec<String> = pack
        .get("maintainers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| m.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let publisher = doc
        .pointer("/_npmUser/name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if maintainers.is_empty()
        && let Some(m) = doc.get("maintainers").and_then(Value::as_array)
    {
        maintainers = m
            .iter()
            .filter_map(|m| m.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect();
    }
    let (repository, repository_directory) = match doc.get("repository").or(pack.get("repository"))
    {
        Some(Value::String(s)) => (Some(s.clone()), None),
        Some(Value::Object(o)) => (
            o.get("url").and_then(Value::as_str).map(str::to_owned),
            o.get("directory")
                .and_then(Value::as_str)
                .map(str::to_owned),
        ),
        _ => (None, None),
    };
    let attestations = doc.pointer("/dist/attestations").filter(|v| !v.is_null());
    let provenance = attestations.map(|a| {
        a.pointer("/provenance/predicateType")
            .and_then(Value::as_str)
            .unwrap_or("attestation present")
            .to_owned()
    });
    let scripts: BTreeMap<String, String> = doc
        .get("scripts")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let dependencies: BTreeMap<String, String> = doc
        .get("dependencies")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    RegistryInfo {
        ecosystem: Ecosystem::Npm,
        name: name.to_owned(),
        version: version.to_owned(),
        latest,
        maintainers,
        publisher,
        published,
        first_release,
        version_count: pack
            .get("versions")
            .and_then(Value::as_object)
            .map_or(0, |m| m.len()),
        release_dates,
        repository,
        repository_directory,
        provenance: Some(provenance),
        deprecated: doc
            .get("deprecated")
            .and_then(Value::as_str)
            .map(str::to_owned),
        yanked: false,
        license: doc
            .get("license")
            .and_then(Value::as_str)
            .map(str::to_owned),
        scripts,
        dependencies,
        description: doc
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

/// Install-time lifecycle scripts npm runs (`preinstall`, `install`, `postinstall`; `prepare` runs for
/// git and local installs). A `binding.gyp` without an `install` script makes npm run `node-gyp rebuild`.
pub const INSTALL_SCRIPTS: &[&str] = &["preinstall", "install", "postinstall"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_names_are_escaped_in_the_url() {
        let r = Url::parse("https://registry.npmjs.org/").unwrap();
        assert_eq!(
            packument_url(&r, "@modelcontextprotocol/server-filesystem")
                .unwrap()
                .as_str(),
            "https://registry.npmjs.org/@modelcontextprotocol%2fserver-filesystem"
        );
    }

    #[test]
    fn registry_info_reads_what_is_there_and_leaves_the_rest_empty() {
        let pack = serde_json::json!({
            "dist-tags": {"latest": "1.1.0"},
            "time": {"created": "2025-01-02T00:00:00.000Z", "1.0.0": "2025-01-02T00:00:00.000Z",
                     "1.1.0": "2025-03-01T10:00:00+00:00"},
            "versions": {"1.0.0": {}, "1.1.0": {}},
        });
        let doc = serde_json::json!({
            "repository": {"type": "git", "url": "git+https://github.com/o/r.git", "directory": "src/x"},
            "scripts": {"postinstall": "node x.js"},
            "dist": {"attestations": {"provenance": {"predicateType": "https://slsa.dev/provenance/v1"}}},
        });
        let i = registry_info(&pack, &doc, "x", "1.1.0", Some("1.1.0".into()));
        assert_eq!(i.published.unwrap().to_string(), "2025-03-01");
        assert_eq!(i.first_release.unwrap().to_string(), "2025-01-02");
        assert_eq!(i.repository_directory.as_deref(), Some("src/x"));
        assert_eq!(
            i.provenance,
            Some(Some("https://slsa.dev/provenance/v1".into()))
        );
        assert!(i.maintainers.is_empty());
        assert_eq!(i.scripts["postinstall"], "node x.js");
    }
}
