//! PyPI's project JSON (`GET /pypi/<name>/json`): `info`, `releases[version][]` with each file's
//! `digests.sha256`, `ownership.roles`. The per-version JSON (`/pypi/<name>/<version>/json`) is not used:
//! the project document has every release, and some mirrors (this machine's) serve only it.
//!
//! Which file is audited: a pure wheel (`*-none-any.whl`) when the release has one (what pip installs on
//! any platform), else the sdist, else the first wheel. The report names the file.

use serde_json::Value;
use url::Url;

use crate::fetch::{Day, RegistryInfo};
use crate::net::Net;
use crate::spec::{Ecosystem, normalize_pypi};
use crate::{Error, Result};

/// The chosen release file.
#[derive(Debug, Clone)]
pub struct ReleaseFile {
    /// The exact version.
    pub version: String,
    /// File name.
    pub filename: String,
    /// Absolute download URL.
    pub url: Url,
    /// Expected sha256 (hex).
    pub sha256: String,
    /// Registry facts.
    pub info: RegistryInfo,
}

/// The project JSON URL.
pub fn project_url(index: &Url, name: &str) -> Result<Url> {
    let base = index.as_str().trim_end_matches('/');
    Url::parse(&format!("{base}/pypi/{}/json", normalize_pypi(name)))
        .map_err(|e| Error::Usage(format!("bad PyPI URL: {e}")))
}

/// Fetches the project JSON and picks the file to audit.
pub fn release_file(
    net: &Net,
    index: &Url,
    name: &str,
    version: Option<&str>,
) -> Result<ReleaseFile> {
    let url = project_url(index, name)?;
    let doc = net.get_json(&url)?.ok_or_else(|| {
        Error::NotFound(format!(
            "PyPI has no project named {name:?} ({url}); check the spelling (typosquats differ by a letter)"
        ))
    })?;
    let latest = doc
        .pointer("/info/version")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let version = match version {
        Some(v) => v.to_owned(),
        None => latest
            .clone()
            .ok_or_else(|| Error::NotFound(format!("pypi:{name} names no latest version")))?,
    };
    let releases = doc.get("releases").and_then(Value::as_object);
    // Versions are compared as PEP 440 says (`1.0` is `1.0.0`).
    let files = releases
        .and_then(|r| {
            r.get(&version).or_else(|| {
                r.iter()
                    .find(|(k, _)| {
                        crate::version::compare(Ecosystem::PyPI, k, &version)
                            == Some(std::cmp::Ordering::Equal)
                    })
                    .map(|(_, v)| v)
            })
        })
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            Error::NotFound(format!(
                "pypi:{name} has no files for version {version} (latest: {})",
                latest.as_deref().unwrap_or("unknown")
            ))
        })?;
    let name_of = |f: &Value| {
        f.get("filename")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let pick = files
        .iter()
        .find(|f| name_of(f).ends_with("-none-any.whl"))
        .or_else(|| {
            files
                .iter()
                .find(|f| f.get("packagetype").and_then(Value::as_str) == Some("sdist"))
        })
        .or_else(|| files.first())
        .ok_or_else(|| Error::NotFound(format!("pypi:{name}=={version} has no files")))?;
    let filename = name_of(pick);
    let sha256 = pick
        .pointer("/digests/sha256")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Http {
            url: url.to_string(),
            message: format!("{filename} has no sha256 digest; refusing an unverifiable download"),
        })?
        .to_owned();
    let raw_url = pick.get("url").and_then(Value::as_str).unwrap_or("");
    let file_url = url.join(raw_url).map_err(|e| Error::Http {
        url: url.to_string(),
        message: format!("{filename} has a bad URL {raw_url:?} ({e})"),
    })?;
    let info = registry_info(&doc, name, &version, latest, pick);
    Ok(ReleaseFile {
        version,
        filename,
        url: file_url,
        sha256,
        info,
    })
}

fn registry_info(
    doc: &Value,
    name: &str,
    version: &str,
    latest: Option<String>,
    file: &Value,
) -> RegistryInfo {
    let day_of = |f: &Value| {
        f.get("upload_time_iso_8601")
            .or_else(|| f.get("upload_time"))
            .and_then(Value::as_str)
            .and_then(Day::parse)
    };
    let mut release_dates = Vec::new();
    let mut published = None;
    let mut count = 0;
    if let Some(r) = doc.get("releases").and_then(Value::as_object) {
        for (v, files) in r {
            let first = files
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(day_of)
                .min();
            if let Some(d) = first {
                count += 1;
                release_dates.push(d);
                if v == version {
                    published = Some(d);
                }
            }
        }
    }
    release_dates.sort();
    let info = doc.get("info").cloned().unwrap_or(Value::Null);
    let mut maintainers: Vec<String> = doc
        .pointer("/ownership/roles")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("user").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if maintainers.is_empty() {
        for k in ["maintainer", "author"] {
            if let Some(s) = info
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                maintainers.push(s.to_owned());
            }
        }
    }
    let urls = info.get("project_urls").and_then(Value::as_object);
    let repository = urls
        .and_then(|u| {
            [
                "Repository",
                "Source",
                "Source Code",
                "Code",
                "repository",
                "source",
                "GitHub",
                "Homepage",
                "homepage",
            ]
            .iter()
            .find_map(|k| u.get(*k).and_then(Value::as_str))
        })
        .or_else(|| info.get("home_page").and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let requires: Vec<String> = info
        .get("requires_dist")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let yanked = file.get("yanked").and_then(Value::as_bool).unwrap_or(false);
    RegistryInfo {
        ecosystem: Ecosystem::PyPI,
        name: name.to_owned(),
        version: version.to_owned(),
        latest,
        maintainers,
        publisher: None,
        published,
        first_release: release_dates.first().copied(),
        version_count: count,
        release_dates,
        repository,
        repository_directory: None,
        provenance: None,
        deprecated: file
            .get("yanked_reason")
            .and_then(Value::as_str)
            .filter(|_| yanked)
            .map(str::to_owned),
        yanked,
        license: info
            .get("license")
            .and_then(Value::as_str)
            .map(str::to_owned),
        scripts: Default::default(),
        dependencies: requires
            .into_iter()
            .map(|r| {
                let n: String = r
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                    .collect();
                (n, r)
            })
            .collect(),
        description: info
            .get("summary")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_file_urls_resolve_against_the_json_url() {
        let idx = Url::parse("https://pypi.org").unwrap();
        let u = project_url(&idx, "MCP_Server_Fetch").unwrap();
        assert_eq!(u.as_str(), "https://pypi.org/pypi/mcp-server-fetch/json");
        assert_eq!(
            u.join("../../packages/packages/38/x.whl").unwrap().as_str(),
            "https://pypi.org/packages/packages/38/x.whl"
        );
    }
}
