//! From a [`Spec`] to verified bytes and an unpacked tree.
//!
//! Registry packages are downloaded from the URL the registry's metadata names and checked against the
//! digest that same metadata publishes (npm: `dist.integrity`, SRI sha512; PyPI: the file's sha256). A
//! mismatch is an [`Error::Integrity`] and nothing is unpacked. npm versions that publish only a sha1
//! `shasum` are refused: sha1 collisions are practical. Local files have no published digest; their
//! sha256 is recorded so `install` and `run` can pin them.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use url::Url;

use crate::net::Net;
use crate::spec::{Ecosystem, Spec};
use crate::sri::{Integrity, sha256_hex, verify_sha256};
use crate::unpack::{self, Layout, Limits, Unpacked};
use crate::{Error, Progress, Result};

/// A calendar day (days since 1970-01-01), enough for ages and cadences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i64);

impl Day {
    /// Parses the date part of an RFC 3339 / ISO 8601 timestamp (`2025-06-17T…`).
    pub fn parse(s: &str) -> Option<Day> {
        let d = s.get(..10)?;
        let mut it = d.split('-');
        let y: i64 = it.next()?.parse().ok()?;
        let m: i64 = it.next()?.parse().ok()?;
        let day: i64 = it.next()?.parse().ok()?;
        if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
            return None;
        }
        // Days from civil (proleptic Gregorian), Howard Hinnant's algorithm.
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Some(Day(era * 146_097 + doe - 719_468))
    }

    /// Today (UTC).
    pub fn today() -> Day {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Day(secs.div_euclid(86_400))
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let z = self.0 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// What a registry says about a package version (fields a mirror omits stay empty).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegistryInfo {
    /// The ecosystem.
    pub ecosystem: Ecosystem,
    /// Package name.
    pub name: String,
    /// This version.
    pub version: String,
    /// The registry's latest version.
    pub latest: Option<String>,
    /// Maintainers / owners.
    pub maintainers: Vec<String>,
    /// Who published this version (npm `_npmUser`).
    pub publisher: Option<String>,
    /// When this version was published.
    pub published: Option<Day>,
    /// The first release of the package.
    pub first_release: Option<Day>,
    /// Every release's day, sorted.
    pub release_dates: Vec<Day>,
    /// Number of versions.
    pub version_count: usize,
    /// The repository URL as declared.
    pub repository: Option<String>,
    /// npm `repository.directory` (monorepos).
    pub repository_directory: Option<String>,
    /// npm: `Some(Some(predicate))` when `dist.attestations` is present, `Some(None)` when absent; PyPI:
    /// `None` (not checked).
    pub provenance: Option<Option<String>>,
    /// Deprecation message (npm) or yank reason (PyPI).
    pub deprecated: Option<String>,
    /// PyPI: the file is yanked.
    pub yanked: bool,
    /// Declared license.
    pub license: Option<String>,
    /// npm `scripts`.
    pub scripts: std::collections::BTreeMap<String, String>,
    /// Declared dependencies: name → range (npm) or requirement (PyPI).
    pub dependencies: std::collections::BTreeMap<String, String>,
    /// One-line description.
    pub description: Option<String>,
}

/// Where the registries are (defaults: the public ones; tests point at a loopback stand-in).
#[derive(Debug, Clone)]
pub struct Registries {
    /// npm registry base (`https://registry.npmjs.org`).
    pub npm: Url,
    /// PyPI base (`https://pypi.org`), serving `/pypi/<name>/json` and `/simple/`.
    pub pypi: Url,
}

impl Default for Registries {
    fn default() -> Registries {
        Registries {
            npm: Url::parse("https://registry.npmjs.org").expect("static URL"),
            pypi: Url::parse("https://pypi.org").expect("static URL"),
        }
    }
}

/// The kind of artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    /// An npm package tarball.
    NpmTarball,
    /// A Python wheel.
    Wheel,
    /// A Python source distribution.
    Sdist,
    /// A directory on disk.
    Directory,
}

impl ArtifactKind {
    /// Short name.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::NpmTarball => "npm tarball",
            ArtifactKind::Wheel => "wheel",
            ArtifactKind::Sdist => "sdist",
            ArtifactKind::Directory => "directory",
        }
    }
}

/// A verified artifact.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The spec as given.
    pub spec: Spec,
    /// The ecosystem (known for registry specs; inferred for files).
    pub ecosystem: Option<Ecosystem>,
    /// Package name (from the registry, or the package's own metadata once unpacked).
    pub name: Option<String>,
    /// Version.
    pub version: Option<String>,
    /// File name (`mcp-remote-0.1.15.tgz`).
    pub filename: String,
    /// The kind.
    pub kind: ArtifactKind,
    /// The bytes (empty for a directory).
    pub bytes: Vec<u8>,
    /// sha256 of the bytes (hex); for a directory, its tree digest.
    pub sha256: String,
    /// The registry's published integrity that was verified (SRI or `sha256:<hex>`), if any.
    pub verified_against: Option<String>,
    /// The SRI sha512 of the bytes (what npm lockfiles record).
    pub sri: Option<String>,
    /// Where it came from.
    pub source: String,
    /// Registry facts.
    pub registry: Option<RegistryInfo>,
    /// A directory spec's path.
    pub dir: Option<PathBuf>,
}

/// Downloads (or reads) and verifies `spec`.
pub fn fetch(
    spec: &Spec,
    regs: &Registries,
    net: &Net,
    progress: &dyn Progress,
) -> Result<Fetched> {
    match spec {
        Spec::Registry {
            ecosystem: Ecosystem::Npm,
            name,
            version,
        } => {
            progress.step(&format!("npm:{name}: reading registry metadata"));
            let doc = crate::npm::version_doc(net, &regs.npm, name, version.as_deref())?;
            progress.done();
            let Some(integrity) = doc.integrity.clone() else {
                return Err(Error::Integrity {
                    what: format!("npm:{name}@{}", doc.version),
                    expected: "a dist.integrity sha512".into(),
                    actual: "only a sha1 shasum (or nothing) is published".into(),
                });
            };
            let parsed = Integrity::parse(&integrity)?;
            let url = Url::parse(&doc.tarball).map_err(|e| Error::Http {
                url: doc.tarball.clone(),
                message: format!("bad tarball URL ({e})"),
            })?;
            if !matches!(url.scheme(), "https" | "http") {
                return Err(Error::Http {
                    url: doc.tarball.clone(),
                    message: "the tarball URL is not http(s)".into(),
                });
            }
            let filename = url
                .path_segments()
                .and_then(|mut s| s.next_back().map(str::to_owned))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "package.tgz".into());
            progress.step(&format!("downloading {filename}"));
            let bytes = net.get_bytes(&url, &filename, progress)?;
            progress.done();
            let label = format!("npm:{name}@{} ({filename})", doc.version);
            parsed.verify(&label, &bytes)?;
            Ok(Fetched {
                spec: spec.clone(),
                ecosystem: Some(Ecosystem::Npm),
                name: Some(name.clone()),
                version: Some(doc.version.clone()),
                filename,
                kind: ArtifactKind::NpmTarball,
                sha256: sha256_hex(&bytes),
                sri: Some(Integrity::of(crate::sri::Algorithm::Sha512, &bytes)),
                verified_against: Some(integrity),
                bytes,
                source: url.to_string(),
                registry: Some(doc.info),
                dir: None,
            })
        }
        Spec::Registry {
            ecosystem: Ecosystem::PyPI,
            name,
            version,
        } => {
            progress.step(&format!("pypi:{name}: reading project metadata"));
            let file = crate::pypi::release_file(net, &regs.pypi, name, version.as_deref())?;
            progress.done();
            progress.step(&format!("downloading {}", file.filename));
            let bytes = net.get_bytes(&file.url, &file.filename, progress)?;
            progress.done();
            verify_sha256(
                &format!("pypi:{name}=={} ({})", file.version, file.filename),
                &file.sha256,
                &bytes,
            )?;
            let kind = if file.filename.ends_with(".whl") {
                ArtifactKind::Wheel
            } else {
                ArtifactKind::Sdist
            };
            Ok(Fetched {
                spec: spec.clone(),
                ecosystem: Some(Ecosystem::PyPI),
                name: Some(file.info.name.clone()),
                version: Some(file.version.clone()),
                filename: file.filename.clone(),
                kind,
                sha256: sha256_hex(&bytes),
                sri: Some(Integrity::of(crate::sri::Algorithm::Sha512, &bytes)),
                verified_against: Some(format!("sha256:{}", file.sha256)),
                bytes,
                source: file.url.to_string(),
                registry: Some(file.info),
                dir: None,
            })
        }
        Spec::Path(p) => local(spec, p),
    }
}

fn local(spec: &Spec, p: &Path) -> Result<Fetched> {
    let filename = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string());
    let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
    if meta.is_dir() {
        let (eco, name, version) = local_identity(p);
        return Ok(Fetched {
            spec: spec.clone(),
            ecosystem: eco,
            name,
            version,
            filename,
            kind: ArtifactKind::Directory,
            bytes: Vec::new(),
            sha256: crate::store::tree_digest(p)?,
            sri: None,
            verified_against: None,
            source: p.display().to_string(),
            registry: None,
            dir: Some(p.to_path_buf()),
        });
    }
    if meta.len() > crate::net::MAX_ARTIFACT_BYTES {
        return Err(Error::Usage(format!(
            "{} is larger than {} MiB",
            p.display(),
            crate::net::MAX_ARTIFACT_BYTES >> 20
        )));
    }
    let kind = if filename.ends_with(".whl") {
        ArtifactKind::Wheel
    } else if filename.ends_with(".tgz") {
        ArtifactKind::NpmTarball
    } else if filename.ends_with(".tar.gz") {
        // An sdist has PKG-INFO at its top; npm pack output has package/package.json. Told apart after
        // unpacking; start with the name's hint.
        ArtifactKind::Sdist
    } else {
        return Err(Error::Usage(format!(
            "{}: not a directory, .tgz, .tar.gz or .whl",
            p.display()
        )));
    };
    let bytes = std::fs::read(p).map_err(|e| Error::io(p, e))?;
    Ok(Fetched {
        spec: spec.clone(),
        ecosystem: match kind {
            ArtifactKind::NpmTarball => Some(Ecosystem::Npm),
            ArtifactKind::Wheel => Some(Ecosystem::PyPI),
            _ => None,
        },
        name: None,
        version: None,
        filename,
        kind,
        sha256: sha256_hex(&bytes),
        sri: Some(Integrity::of(crate::sri::Algorithm::Sha512, &bytes)),
        verified_against: None,
        bytes,
        source: p.display().to_string(),
        registry: None,
        dir: None,
    })
}

/// Name, version and ecosystem from a package directory's own metadata (`package.json`, `PKG-INFO`,
/// `*.dist-info/METADATA`, `pyproject.toml`).
pub fn local_identity(dir: &Path) -> (Option<Ecosystem>, Option<String>, Option<String>) {
    if let Ok(text) = std::fs::read_to_string(dir.join("package.json"))
        && let Ok(v) = serde_json::from_str::<Value>(&text)
    {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        return (Some(Ecosystem::Npm), s("name"), s("version"));
    }
    let mut metadata = vec![dir.join("PKG-INFO")];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with(".dist-info") {
                metadata.insert(0, e.path().join("METADATA"));
            }
        }
    }
    for m in metadata {
        if let Ok(text) = std::fs::read_to_string(&m) {
            let field = |k: &str| {
                text.lines()
                    .take_while(|l| !l.is_empty())
                    .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_owned()))
            };
            return (Some(Ecosystem::PyPI), field("Name:"), field("Version:"));
        }
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("pyproject.toml"))
        && let Ok(v) = text.parse::<toml::Table>()
    {
        let p = v.get("project");
        let s = |k: &str| {
            p.and_then(|p| p.get(k))
                .and_then(|x| x.as_str())
                .map(str::to_owned)
        };
        return (Some(Ecosystem::PyPI), s("name"), s("version"));
    }
    (None, None, None)
}

/// Unpacks `f` into the fresh directory `dest` (a directory spec is copied, with the same checks as an
/// archive: regular files and directories only). Fills in the name, version and ecosystem from the
/// package's own metadata when the spec did not give them.
pub fn unpack_into(f: &mut Fetched, dest: &Path) -> Result<Unpacked> {
    let u = match f.kind {
        ArtifactKind::NpmTarball | ArtifactKind::Sdist => unpack::unpack_tar_gz(
            &f.bytes,
            &f.filename,
            dest,
            Layout::StripFirst,
            Limits::default(),
        )?,
        ArtifactKind::Wheel => unpack::unpack_zip(&f.bytes, &f.filename, dest, Limits::default())?,
        ArtifactKind::Directory => {
            let src = f.dir.clone().unwrap_or_default();
            copy_tree(&src, dest)?
        }
    };
    let (eco, name, version) = local_identity(dest);
    if f.kind == ArtifactKind::Sdist && eco == Some(Ecosystem::Npm) {
        f.kind = ArtifactKind::NpmTarball;
    }
    if f.ecosystem.is_none() || f.kind == ArtifactKind::NpmTarball {
        f.ecosystem = f.ecosystem.or(eco);
        if f.kind == ArtifactKind::NpmTarball {
            f.ecosystem = Some(Ecosystem::Npm);
        }
    }
    if f.name.is_none() {
        f.name = name;
    }
    if f.version.is_none() {
        f.version = version;
    }
    Ok(u)
}

/// Copies a directory tree with the extraction rules (no links followed or created, caps).
fn copy_tree(src: &Path, dest: &Path) -> Result<Unpacked> {
    std::fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    let limits = Limits::default();
    let mut out = Unpacked::default();
    let mut stack = vec![PathBuf::new()];
    let mut entries = 0usize;
    while let Some(rel) = stack.pop() {
        let dir = src.join(&rel);
        let rd = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        for e in rd {
            let e = e.map_err(|e| Error::io(&dir, e))?;
            entries += 1;
            if entries > limits.max_entries {
                return Err(Error::Archive {
                    archive: src.display().to_string(),
                    why: format!("more than {} entries", limits.max_entries),
                });
            }
            let name = e.file_name();
            // VCS metadata and installed dependencies are not the package.
            if rel.as_os_str().is_empty() && (name == ".git" || name == "node_modules") {
                continue;
            }
            let r = rel.join(&name);
            let ft = e.file_type().map_err(|err| Error::io(e.path(), err))?;
            if ft.is_dir() {
                std::fs::create_dir(dest.join(&r)).map_err(|err| Error::io(dest.join(&r), err))?;
                stack.push(r);
            } else if ft.is_file() {
                let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                out.bytes += len;
                if len > limits.max_file_bytes || out.bytes > limits.max_total_bytes {
                    return Err(Error::Archive {
                        archive: src.display().to_string(),
                        why: "it is too large".into(),
                    });
                }
                std::fs::copy(e.path(), dest.join(&r)).map_err(|err| Error::io(e.path(), err))?;
                out.files += 1;
            } else {
                out.skipped_links.push(format!(
                    "{} (link or special file, not copied)",
                    r.display()
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_through_the_calendar() {
        for s in ["1970-01-01", "2000-02-29", "2025-06-17", "2026-12-31"] {
            let d = Day::parse(&format!("{s}T00:00:00Z")).unwrap();
            assert_eq!(d.to_string(), s);
        }
        assert_eq!(
            Day::parse("2025-07-09").unwrap().0 - Day::parse("2025-07-01").unwrap().0,
            8
        );
        assert!(Day::parse("2025-13-01").is_none());
    }
}
