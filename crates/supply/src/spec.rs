//! What the user names: `npm:NAME@VER`, `pypi:NAME==VER`, or a local path.
//!
//! Versions are exact: a range (`^1.2`, `>=1`) is refused, because the point of an audit is a verdict about
//! one artifact. Leaving the version out means "the registry's latest", which the report then names.

use std::fmt;
use std::path::PathBuf;

use crate::{Error, Result};

/// A package ecosystem (OSV spells them `npm` and `PyPI`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Ecosystem {
    /// The npm registry.
    #[default]
    Npm,
    /// The Python Package Index.
    PyPI,
}

impl Ecosystem {
    /// The OSV ecosystem name (also the advisory-db subdirectory).
    pub fn osv_name(self) -> &'static str {
        match self {
            Ecosystem::Npm => "npm",
            Ecosystem::PyPI => "PyPI",
        }
    }

    /// The spec prefix (`npm`, `pypi`).
    pub fn prefix(self) -> &'static str {
        match self {
            Ecosystem::Npm => "npm",
            Ecosystem::PyPI => "pypi",
        }
    }

    /// The name as registries compare it: PyPI names are case-insensitive with `-`, `_`, `.` equivalent
    /// (PEP 503); npm names are compared exactly.
    pub fn normalize(self, name: &str) -> String {
        match self {
            Ecosystem::Npm => name.to_owned(),
            Ecosystem::PyPI => normalize_pypi(name),
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.osv_name())
    }
}

/// PEP 503 normalization: lower case, runs of `-`, `_`, `.` become one `-`.
pub fn normalize_pypi(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// A package to audit or install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// A package in a registry, at a version (`None`: the latest).
    Registry {
        /// Which registry.
        ecosystem: Ecosystem,
        /// The name as given (npm: with its `@scope/`).
        name: String,
        /// The exact version.
        version: Option<String>,
    },
    /// A directory, `.tgz`, `.tar.gz` or `.whl` on disk.
    Path(PathBuf),
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spec::Registry {
                ecosystem: Ecosystem::Npm,
                name,
                version,
            } => match version {
                Some(v) => write!(f, "npm:{name}@{v}"),
                None => write!(f, "npm:{name}"),
            },
            Spec::Registry {
                ecosystem: Ecosystem::PyPI,
                name,
                version,
            } => match version {
                Some(v) => write!(f, "pypi:{name}=={v}"),
                None => write!(f, "pypi:{name}"),
            },
            Spec::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

const SPEC_HELP: &str =
    "write npm:NAME@VERSION, pypi:NAME==VERSION, or the path of a directory, .tgz, .tar.gz or .whl";

impl Spec {
    /// Parses a spec. A string without a known prefix is a path, which must exist.
    pub fn parse(s: &str) -> Result<Spec> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("npm:") {
            return parse_npm(rest);
        }
        if let Some(rest) = s.strip_prefix("pypi:") {
            return parse_pypi(rest);
        }
        if s.is_empty() {
            return Err(Error::Usage(format!("empty package spec; {SPEC_HELP}")));
        }
        let path = PathBuf::from(s);
        if path.exists() {
            return Ok(Spec::Path(path));
        }
        if let Some((prefix, _)) = s.split_once(':')
            && !prefix.contains('/')
            && prefix.len() > 1
        {
            return Err(Error::Usage(format!(
                "unknown package source `{prefix}:` in {s:?}; {SPEC_HELP}"
            )));
        }
        let example = if s.contains('/') && !s.starts_with('@') || s.starts_with('.') {
            String::new()
        } else {
            format!(" (e.g. npm:{s}@1.0.0)")
        };
        Err(Error::Usage(format!(
            "{s:?} is not a file or directory; {SPEC_HELP}{example}"
        )))
    }

    /// The ecosystem, when it is a registry spec.
    pub fn ecosystem(&self) -> Option<Ecosystem> {
        match self {
            Spec::Registry { ecosystem, .. } => Some(*ecosystem),
            Spec::Path(_) => None,
        }
    }
}

fn parse_npm(rest: &str) -> Result<Spec> {
    // `@scope/name@1.2.3`: the version separator is the last `@` after the scope.
    let (name, version) = match rest.strip_prefix('@') {
        Some(scoped) => match scoped.rsplit_once('@') {
            Some((n, v)) => (format!("@{n}"), Some(v)),
            None => (rest.to_owned(), None),
        },
        None => match rest.rsplit_once('@') {
            Some((n, v)) => (n.to_owned(), Some(v)),
            None => (rest.to_owned(), None),
        },
    };
    validate_npm_name(&name)?;
    let version = match version {
        Some("") => {
            return Err(Error::Usage(format!(
                "npm:{rest}: the version after `@` is empty; write npm:{name}@1.2.3, or leave `@` out for the latest"
            )));
        }
        Some(v) => Some(exact_version(v, &format!("npm:{name}@"))?),
        None => None,
    };
    Ok(Spec::Registry {
        ecosystem: Ecosystem::Npm,
        name,
        version,
    })
}

/// npm's naming rules (the ones that matter for URLs and safety): lower case, URL-safe, at most 214
/// characters, `@scope/name` with both parts non-empty, no leading `.` or `_`.
pub fn validate_npm_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::Usage(format!(
            "{name:?} is not a valid npm package name: {why}"
        )))
    };
    if name.is_empty() || name.len() > 214 {
        return bad("it must be 1 to 214 characters");
    }
    let (scope, base) = match name.strip_prefix('@') {
        Some(s) => match s.split_once('/') {
            Some((sc, b)) => (Some(sc), b),
            None => return bad("a scoped name is @scope/name"),
        },
        None => (None, name),
    };
    for part in scope.into_iter().chain([base]) {
        if part.is_empty() {
            return bad("empty scope or name");
        }
        if part.starts_with('.') || part.starts_with('_') {
            return bad("it may not start with `.` or `_`");
        }
        if !part
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._~".contains(c))
        {
            return bad("only lower-case letters, digits and - . _ ~ are allowed");
        }
    }
    Ok(())
}

fn parse_pypi(rest: &str) -> Result<Spec> {
    let (name, version) = match rest.split_once("==") {
        Some((n, v)) => (n.trim(), Some(v.trim())),
        None => {
            if rest.contains(['<', '>', '~', '!', '=', '@']) {
                return Err(Error::Usage(format!(
                    "pypi:{rest}: only an exact version is accepted; write pypi:NAME==1.2.3"
                )));
            }
            (rest.trim(), None)
        }
    };
    validate_pypi_name(name)?;
    let version = match version {
        Some("") => {
            return Err(Error::Usage(format!(
                "pypi:{rest}: the version after `==` is empty"
            )));
        }
        Some(v) => Some(exact_version(v, &format!("pypi:{name}=="))?),
        None => None,
    };
    Ok(Spec::Registry {
        ecosystem: Ecosystem::PyPI,
        name: name.to_owned(),
        version,
    })
}

/// PEP 508 names: ASCII letters and digits, with `-`, `_`, `.` inside.
pub fn validate_pypi_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{name:?} is not a valid PyPI project name (letters, digits, and - _ . inside)"
        )))
    }
}

fn exact_version(v: &str, what: &str) -> Result<String> {
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.+_!".contains(c))
        && v.starts_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(v.to_owned())
    } else {
        Err(Error::Usage(format!(
            "{what}{v}: only an exact version is accepted (no ranges, tags or spaces), e.g. {what}1.2.3"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(e: Ecosystem, n: &str, v: Option<&str>) -> Spec {
        Spec::Registry {
            ecosystem: e,
            name: n.into(),
            version: v.map(Into::into),
        }
    }

    #[test]
    fn accepts_scoped_npm_and_pypi_specs() {
        assert_eq!(
            Spec::parse("npm:@modelcontextprotocol/server-filesystem@2026.8.31").unwrap(),
            reg(
                Ecosystem::Npm,
                "@modelcontextprotocol/server-filesystem",
                Some("2026.8.31")
            )
        );
        assert_eq!(
            Spec::parse("npm:mcp-remote@0.1.15").unwrap(),
            reg(Ecosystem::Npm, "mcp-remote", Some("0.1.15"))
        );
        assert_eq!(
            Spec::parse("npm:@scope/x").unwrap(),
            reg(Ecosystem::Npm, "@scope/x", None)
        );
        assert_eq!(
            Spec::parse("pypi:mcp-server-fetch==2026.10.24").unwrap(),
            reg(Ecosystem::PyPI, "mcp-server-fetch", Some("2026.10.24"))
        );
        assert_eq!(
            Spec::parse("npm:mcp-remote@0.1.15").unwrap().to_string(),
            "npm:mcp-remote@0.1.15"
        );
    }

    #[test]
    fn rejects_ranges_bad_names_and_unknown_sources() {
        for bad in [
            "npm:mcp-remote@^0.1",
            "npm:Bad/Name@1.0.0",
            "npm:@scope@1.0.0",
            "npm:../etc@1.0.0",
            "pypi:mcp>=1.0",
            "pypi:-x==1",
            "cargo:ripgrep@14",
            "definitely-not-a-path-xyz",
            "npm:x@",
        ] {
            let e = Spec::parse(bad).unwrap_err();
            assert!(e.is_usage(), "{bad}: {e}");
        }
    }

    #[test]
    fn normalizes_pypi_names() {
        assert_eq!(normalize_pypi("MCP_Server.Fetch"), "mcp-server-fetch");
        assert_eq!(normalize_pypi("a--b__c"), "a-b-c");
    }
}
