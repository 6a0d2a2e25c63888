//! The supply-chain rule registry: every finding `palisade audit` can produce, with a stable id (a public
//! API: never renamed, never reused), a default severity, what it means and how to fix it. SARIF `rules[]`
//! and `docs/audit.md` are generated from / checked against this list.

use palisade_scan::{RuleMeta, rule};

rule!(
    KNOWN_VULNERABILITY,
    "known-vulnerability",
    High,
    "The package version has a published advisory",
    "An advisory (OSV: GitHub, PyPA, npm) lists this exact version as affected; the severity is the advisory's.",
    "Use the fixed version the advisory names, or another package."
);
rule!(
    VULNERABLE_DEPENDENCY,
    "vulnerable-dependency",
    High,
    "A dependency in the resolved tree has a published advisory",
    "The package pulls in a dependency version an advisory lists as affected; whether the server reaches the vulnerable code is not known.",
    "Use a release of the package that resolves to the fixed dependency, or override the dependency."
);
rule!(
    INSTALL_SCRIPT,
    "install-script",
    Medium,
    "The package runs code at install time",
    "npm runs preinstall/install/postinstall scripts (and node-gyp for binding.gyp) with the installing user's rights, before anything is sandboxed; most supply-chain malware starts here.",
    "Install with `palisade install` (scripts are never run); read the script if the package needs it."
);
rule!(
    DEPENDENCY_INSTALL_SCRIPT,
    "dependency-install-script",
    Low,
    "A dependency runs code at install time",
    "A package in the tree declares install scripts (package-lock `hasInstallScript`); `npx` would run them.",
    "Install with `palisade install` (scripts are never run); if the dependency needs a native build, review it."
);
rule!(
    SETUP_PY_CODE,
    "setup-py-code",
    Medium,
    "setup.py does more than declare metadata",
    "An sdist's setup.py runs at install or build time; process execution, network access, encoded blobs or file writes there run with the user's rights.",
    "Prefer a wheel release; read setup.py before installing from source."
);
rule!(
    TYPOSQUAT,
    "typosquat",
    High,
    "The name is one keystroke away from a well-known MCP server",
    "Registry typosquats copy a popular package's name with a dropped, doubled or swapped character, or its name under another scope, and ship malware.",
    "Check the exact name against the server's documentation; install the real package."
);
rule!(
    NO_REPOSITORY,
    "no-repository",
    Low,
    "The package declares no source repository",
    "Without a repository link the published code cannot be compared with its source or its history.",
    "Prefer packages whose source is public and linked from the registry."
);
rule!(
    REPOSITORY_MISMATCH,
    "repository-mismatch",
    Medium,
    "The repository link does not look like this package's",
    "Copying a popular project's repository link borrows its reputation; the name of the repository, its owner or its directory should relate to the package.",
    "Open the repository and check that it publishes this package."
);
rule!(
    NO_PROVENANCE,
    "no-provenance",
    Low,
    "No provenance attestation for this npm version",
    "npm provenance (a Sigstore-signed SLSA statement in dist.attestations) ties a tarball to the CI run and commit that built it; without it the tarball may have been built anywhere.",
    "Prefer versions published with `npm publish --provenance`; ask the maintainers to enable it."
);
rule!(
    NEW_PACKAGE,
    "new-package",
    Medium,
    "The package is less than 30 days old",
    "Most malicious packages are removed within days of publication; a brand-new package has no history to judge.",
    "Wait, or review the code (`palisade audit` static analysis) before trusting it."
);
rule!(
    FRESH_RELEASE,
    "fresh-release",
    Low,
    "This version was published in the last 7 days",
    "Compromised maintainer accounts publish malicious versions of trusted packages; they are usually caught within days.",
    "Pin the previous version for a few days, or review the diff."
);
rule!(
    DEPRECATED,
    "deprecated",
    Medium,
    "The version is deprecated or yanked",
    "The publisher withdrew this version (npm deprecation, PyPI yank), often for a bug or a security issue.",
    "Use the version the deprecation message recommends."
);
rule!(
    NO_MAINTAINERS,
    "no-maintainers-listed",
    Info,
    "The registry lists no maintainers",
    "Who can publish new versions is unknown from the registry's answer (mirrors may omit it).",
    "Check the package page on the registry itself."
);
rule!(
    ARCHIVE_LINKS,
    "archive-links",
    Low,
    "The archive contains links or special files",
    "Package archives normally hold regular files only; links were not created when unpacking.",
    "Look at the listed entries; a link inside a package is unusual."
);

/// Every rule, in id order.
pub fn all() -> Vec<&'static RuleMeta> {
    let mut v = vec![
        &KNOWN_VULNERABILITY,
        &VULNERABLE_DEPENDENCY,
        &INSTALL_SCRIPT,
        &DEPENDENCY_INSTALL_SCRIPT,
        &SETUP_PY_CODE,
        &TYPOSQUAT,
        &NO_REPOSITORY,
        &REPOSITORY_MISMATCH,
        &NO_PROVENANCE,
        &NEW_PACKAGE,
        &FRESH_RELEASE,
        &DEPRECATED,
        &NO_MAINTAINERS,
        &ARCHIVE_LINKS,
    ];
    v.sort_by_key(|r| r.id);
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_rule_is_documented() {
        let doc = include_str!("../../../docs/audit.md");
        for r in super::all() {
            assert!(
                doc.contains(&format!("| `{}` |", r.id)),
                "docs/audit.md lacks a row for {}",
                r.id
            );
        }
    }

    #[test]
    fn ids_are_unique_and_stable() {
        let ids: Vec<&str> = super::all().iter().map(|r| r.id).collect();
        assert_eq!(
            ids,
            [
                "archive-links",
                "dependency-install-script",
                "deprecated",
                "fresh-release",
                "install-script",
                "known-vulnerability",
                "new-package",
                "no-maintainers-listed",
                "no-provenance",
                "no-repository",
                "repository-mismatch",
                "setup-py-code",
                "typosquat",
                "vulnerable-dependency",
            ]
        );
    }
}
