use super::*;

#[test]
fn ids_are_stable() {
    let ids: Vec<&str> = RULES.iter().map(|r| r.meta.id).collect();
    assert_eq!(
        ids,
        [
            "secret-in-args",
            "secret-in-env",
            "secret-in-header",
            "secret-in-url",
            "secrets-file-readable-by-others",
            "config-writable-by-others",
            "config-readable-by-others",
            "curl-pipe-shell",
            "container-privileged",
            "broad-filesystem-root",
            "insecure-remote-url",
            "project-auto-enable",
            "shell-wrapper",
            "unpinned-package",
            "image-not-pinned-by-digest",
            "sensitive-env-passthrough",
            "npx-auto-yes",
            "container-not-hardened",
            "remote-without-auth",
            "not-wrapped",
            "config-parse-error",
            "tools-never-reviewed",
        ],
        "rule ids are a public API: add new ones, never rename or remove"
    );
}
