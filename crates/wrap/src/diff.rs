//! Unified diffs of a config before and after, for `--dry-run` and the confirmation prompt.

use std::path::Path;

use similar::TextDiff;

/// A unified diff (3 lines of context) of `before` → `after`, headed with `path`; empty when equal.
pub fn unified(path: &Path, before: &str, after: &str) -> String {
    if before == after {
        return String::new();
    }
    let shown = path.display().to_string();
    let mut out = TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&shown, &shown)
        .to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_changed_lines_with_context_and_nothing_for_equal_texts() {
        let d = unified(Path::new("/c.json"), "a\nb\nc\n", "a\nB\nc\n");
        assert!(d.starts_with("--- /c.json\n+++ /c.json\n@@"), "{d}");
        assert!(d.contains("-b\n+B\n"), "{d}");
        assert_eq!(unified(Path::new("/c"), "x", "x"), "");
    }
}
