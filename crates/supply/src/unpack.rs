//! Safe extraction of package archives (npm `.tgz`, sdist `.tar.gz`, wheel `.whl`).
//!
//! A package is hostile input. Every entry is checked before anything is written:
//! * its path must be relative, without `..`, root, drive prefixes or NUL, and at most 4096 bytes;
//! * only regular files and directories are written; a symlink or hard link is never created — one that
//!   would point outside the tree (absolute, or climbing above the root) fails the whole extraction, one
//!   that stays inside is listed in [`Unpacked::skipped_links`]; devices and FIFOs are skipped the same way;
//! * files are created with `create_new` under directories this function made itself (so no earlier entry
//!   can redirect a later one), mode 0644 or 0755, never setuid;
//! * caps on the number of entries, each file's size and the total (counted on the decompressed stream as
//!   it is read, not on the sizes the headers claim), so a tar or zip bomb fails closed.
//!
//! npm tarballs keep everything under one top directory (`package/`, sometimes another name); npm strips
//! the first component whatever it is, and so does [`Layout::StripFirst`].

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use crate::{Error, Result};

/// Extraction caps.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Entries (files, directories, links) at most.
    pub max_entries: usize,
    /// Bytes of one file at most.
    pub max_file_bytes: u64,
    /// Bytes written in total at most.
    pub max_total_bytes: u64,
}

impl Default for Limits {
    /// 50 000 entries, 256 MiB per file, 1 GiB in all: far above any real MCP server package.
    fn default() -> Limits {
        Limits {
            max_entries: 50_000,
            max_file_bytes: 256 << 20,
            max_total_bytes: 1 << 30,
        }
    }
}

/// How archive paths map to the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Strip the first path component (npm tarballs, sdists).
    StripFirst,
    /// Keep paths as they are (wheels).
    AsIs,
}

/// What was extracted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unpacked {
    /// Regular files written.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
    /// Links and special entries that stayed inside the tree and were not created (path → what).
    pub skipped_links: Vec<String>,
}

/// Checks one archive path and returns it relative to the destination (`None`: the top directory itself).
pub fn safe_relative(raw: &str, layout: Layout) -> std::result::Result<Option<PathBuf>, String> {
    if raw.contains('\0') {
        return Err(format!("entry {raw:?} contains a NUL byte"));
    }
    if raw.len() > 4096 {
        return Err("an entry path is longer than 4096 bytes".into());
    }
    let normalized = raw.replace('\\', "/");
    let p = Path::new(&normalized);
    let mut out = PathBuf::new();
    let mut first = true;
    for c in p.components() {
        match c {
            Component::Normal(n) => {
                if first && layout == Layout::StripFirst {
                    first = false;
                    continue;
                }
                first = false;
                let s = n.to_string_lossy();
                if s.len() >= 2 && s.as_bytes()[1] == b':' {
                    return Err(format!("entry {raw:?} has a drive prefix"));
                }
                out.push(n);
            }
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!("entry {raw:?} climbs out of the package with `..`"));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("entry {raw:?} is an absolute path"));
            }
        }
    }
    Ok(if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    })
}

/// Whether a link at `rel` pointing to `target` stays inside the tree (lexically).
fn link_stays_inside(rel: &Path, target: &str) -> bool {
    if target.starts_with('/') || target.starts_with('\\') || target.contains('\0') {
        return false;
    }
    let mut depth: i64 = rel.components().count() as i64 - 1;
    for c in Path::new(&target.replace('\\', "/")).components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

struct Writer<'a> {
    dest: &'a Path,
    archive: String,
    limits: Limits,
    entries: usize,
    out: Unpacked,
}

impl Writer<'_> {
    fn fail(&self, why: impl Into<String>) -> Error {
        Error::Archive {
            archive: self.archive.clone(),
            why: why.into(),
        }
    }

    fn count(&mut self) -> Result<()> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(self.fail(format!(
                "more than {} entries (an archive bomb, or not a package)",
                self.limits.max_entries
            )));
        }
        Ok(())
    }

    fn dir(&mut self, rel: &Path) -> Result<()> {
        let mut cur = self.dest.to_path_buf();
        for c in rel.components() {
            cur.push(c);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(self.fail(format!(
                        "{} is both a file and a directory in the archive",
                        rel.display()
                    )));
                }
                Err(_) => fs::create_dir(&cur).map_err(|e| Error::io(&cur, e))?,
            }
        }
        Ok(())
    }

    fn file(&mut self, rel: &Path, mode: u32, reader: &mut dyn Read) -> Result<()> {
        if let Some(parent) = rel.parent() {
            self.dir(parent)?;
        }
        let path = self.dest.join(rel);
        let perm = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
        let mut f = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(perm)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(self.fail(format!(
                    "{} appears twice (a later copy could replace what was checked)",
                    rel.display()
                )));
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let mut buf = [0u8; 64 * 1024];
        let mut written: u64 = 0;
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| self.fail(format!("{}: corrupt data ({e})", rel.display())))?;
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > self.limits.max_file_bytes {
                return Err(self.fail(format!(
                    "{} is larger than {} MiB",
                    rel.display(),
                    self.limits.max_file_bytes >> 20
                )));
            }
            if self.out.bytes + written > self.limits.max_total_bytes {
                return Err(self.fail(format!(
                    "it expands to more than {} MiB (an archive bomb?)",
                    self.limits.max_total_bytes >> 20
                )));
            }
            f.write_all(&buf[..n]).map_err(|e| Error::io(&path, e))?;
        }
        self.out.bytes += written;
        self.out.files += 1;
        Ok(())
    }

    fn link(&mut self, rel: &Path, target: &str, kind: &str) -> Result<()> {
        if !link_stays_inside(rel, target) {
            return Err(self.fail(format!(
                "{kind} {} points outside the package (to {target:?})",
                rel.display()
            )));
        }
        self.out.skipped_links.push(format!(
            "{} ({kind} to {target}, not created)",
            rel.display()
        ));
        Ok(())
    }
}

fn prepare(dest: &Path) -> Result<()> {
    fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    let empty = fs::read_dir(dest)
        .map_err(|e| Error::io(dest, e))?
        .next()
        .is_none();
    if !empty {
        return Err(Error::Store(format!(
            "{} is not empty; packages are unpacked into a fresh directory",
            dest.display()
        )));
    }
    Ok(())
}

/// Extracts a gzip-compressed tar into the empty (or new) directory `dest`.
pub fn unpack_tar_gz(
    bytes: &[u8],
    archive: &str,
    dest: &Path,
    layout: Layout,
    limits: Limits,
) -> Result<Unpacked> {
    prepare(dest)?;
    let gz = flate2::read::GzDecoder::new(bytes);
    let mut tar = tar::Archive::new(gz);
    let mut w = Writer {
        dest,
        archive: archive.to_owned(),
        limits,
        entries: 0,
        out: Unpacked::default(),
    };
    let entries = tar
        .entries()
        .map_err(|e| w.fail(format!("not a tar archive ({e})")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| w.fail(format!("corrupt tar ({e})")))?;
        w.count()?;
        let raw = entry.path_bytes();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let kind = entry.header().entry_type();
        // pax/GNU metadata entries carry no file.
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            continue;
        }
        let rel = safe_relative(&raw, layout).map_err(|why| w.fail(why))?;
        let Some(rel) = rel else { continue };
        if kind.is_dir() {
            w.dir(&rel)?;
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            let mode = entry.header().mode().unwrap_or(0o644);
            w.file(&rel, mode, &mut entry)?;
        } else if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let label = if kind.is_symlink() {
                "symlink"
            } else {
                "hard link"
            };
            // A hard link's target is an archive path (with the top component), not a relative one.
            let target = if kind.is_hard_link() {
                match safe_relative(&target, layout) {
                    Ok(Some(t)) => {
                        let up = "../".repeat(rel.components().count().saturating_sub(1));
                        format!("{up}{}", t.display())
                    }
                    _ => format!("/{target}"),
                }
            } else {
                target
            };
            w.link(&rel, &target, label)?;
        } else {
            w.out.skipped_links.push(format!(
                "{} (special file {:?}, not created)",
                rel.display(),
                kind
            ));
        }
    }
    Ok(w.out)
}

/// Extracts a zip (wheel) into the empty (or new) directory `dest`.
pub fn unpack_zip(bytes: &[u8], archive: &str, dest: &Path, limits: Limits) -> Result<Unpacked> {
    prepare(dest)?;
    let mut w = Writer {
        dest,
        archive: archive.to_owned(),
        limits,
        entries: 0,
        out: Unpacked::default(),
    };
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| w.fail(format!("not a zip archive ({e})")))?;
    if zip.len() > limits.max_entries {
        return Err(w.fail(format!("more than {} entries", limits.max_entries)));
    }
    for i in 0..zip.len() {
        let mut f = zip
            .by_index(i)
            .map_err(|e| w.fail(format!("corrupt zip ({e})")))?;
        w.count()?;
        let raw = String::from_utf8_lossy(f.name_raw()).into_owned();
        let rel = safe_relative(&raw, Layout::AsIs).map_err(|why| w.fail(why))?;
        let Some(rel) = rel else { continue };
        let mode = f.unix_mode().unwrap_or(0o644);
        if f.is_dir() {
            w.dir(&rel)?;
        } else if mode & 0o170000 == 0o120000 {
            let mut target = String::new();
            f.read_to_string(&mut target)
                .map_err(|e| w.fail(format!("corrupt link ({e})")))?;
            w.link(&rel, &target, "symlink")?;
        } else {
            w.file(&rel, mode, &mut f)?;
        }
    }
    Ok(w.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar.gz from (path, kind, data/target) triples, written with raw headers so hostile paths survive.
    pub(crate) fn tgz(entries: &[(&str, char, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut h = tar::Header::new_old();
            {
                let name = &mut h.as_old_mut().name;
                name[..path.len()].copy_from_slice(path.as_bytes());
            }
            h.set_mode(0o644);
            match kind {
                'f' => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(data.len() as u64);
                }
                'd' => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                }
                'l' | 'h' => {
                    h.set_entry_type(if *kind == 'l' {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    });
                    h.set_size(0);
                    let ln = &mut h.as_old_mut().linkname;
                    ln[..data.len()].copy_from_slice(data);
                }
                _ => unreachable!(),
            }
            h.set_cksum();
            let body: &[u8] = if *kind == 'f' { data } else { &[] };
            b.append(&h, body).unwrap();
        }
        let raw = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn unpacks_an_npm_tarball_under_its_top_directory() {
        let d = tempfile::tempdir().unwrap();
        let t = tgz(&[
            ("package/package.json", 'f', b"{}"),
            ("package/dist/index.js", 'f', b"console.log(1)"),
        ]);
        let u =
            unpack_tar_gz(&t, "p.tgz", d.path(), Layout::StripFirst, Limits::default()).unwrap();
        assert_eq!(u.files, 2);
        assert_eq!(
            fs::read_to_string(d.path().join("dist/index.js")).unwrap(),
            "console.log(1)"
        );
    }

    #[test]
    fn refuses_traversal_absolute_paths_and_escaping_links() {
        for (entries, want) in [
            (vec![("package/../../evil", 'f', &b"x"[..])], "climbs out"),
            (vec![("/etc/passwd", 'f', &b"x"[..])], "absolute"),
            (
                vec![("package/link", 'l', &b"/etc/passwd"[..])],
                "points outside",
            ),
            (
                vec![("package/a/link", 'l', &b"../../x"[..])],
                "points outside",
            ),
            (
                vec![("package/hl", 'h', &b"../outside"[..])],
                "points outside",
            ),
        ] {
            let d = tempfile::tempdir().unwrap();
            let t = tgz(&entries);
            let e = unpack_tar_gz(
                &t,
                "evil.tgz",
                d.path(),
                Layout::StripFirst,
                Limits::default(),
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains(want) && e.contains("evil.tgz"), "{e}");
        }
        // Nothing landed outside: the parent of the temp dirs has no `evil`.
        assert!(!std::env::temp_dir().join("evil").exists());
    }

    #[test]
    fn links_inside_the_tree_are_listed_not_created() {
        let d = tempfile::tempdir().unwrap();
        let t = tgz(&[("package/a.js", 'f', b"1"), ("package/b.js", 'l', b"a.js")]);
        let u =
            unpack_tar_gz(&t, "p.tgz", d.path(), Layout::StripFirst, Limits::default()).unwrap();
        assert_eq!(u.skipped_links.len(), 1, "{u:?}");
        assert!(fs::symlink_metadata(d.path().join("b.js")).is_err());
    }

    #[test]
    fn a_tar_bomb_fails_closed_on_decompressed_bytes() {
        let d = tempfile::tempdir().unwrap();
        let zeros = vec![0u8; 3 << 20];
        let t = tgz(&[("package/zeros.bin", 'f', &zeros)]);
        assert!(t.len() < 64 << 10, "compresses well: {}", t.len());
        let limits = Limits {
            max_entries: 10,
            max_file_bytes: 1 << 20,
            max_total_bytes: 2 << 20,
        };
        let e = unpack_tar_gz(&t, "bomb.tgz", d.path(), Layout::StripFirst, limits)
            .unwrap_err()
            .to_string();
        assert!(e.contains("larger than 1 MiB"), "{e}");
        let many: Vec<(String, char, &[u8])> = (0..20)
            .map(|i| (format!("package/f{i}"), 'f', &b"x"[..]))
            .collect();
        let many: Vec<(&str, char, &[u8])> =
            many.iter().map(|(a, b, c)| (a.as_str(), *b, *c)).collect();
        let d2 = tempfile::tempdir().unwrap();
        let e = unpack_tar_gz(
            &tgz(&many),
            "many.tgz",
            d2.path(),
            Layout::StripFirst,
            limits,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("more than 10 entries"), "{e}");
    }

    #[test]
    fn duplicate_entries_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let t = tgz(&[("package/a", 'f', b"1"), ("package/a", 'f', b"2")]);
        let e = unpack_tar_gz(
            &t,
            "dup.tgz",
            d.path(),
            Layout::StripFirst,
            Limits::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("appears twice"), "{e}");
    }

    #[test]
    fn unpacks_a_wheel_and_refuses_traversal_in_zip() {
        use zip::write::SimpleFileOptions;
        let mk = |name: &str| {
            let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            z.start_file(name, SimpleFileOptions::default()).unwrap();
            z.write_all(b"print(1)").unwrap();
            z.finish().unwrap().into_inner()
        };
        let d = tempfile::tempdir().unwrap();
        let u = unpack_zip(&mk("pkg/__init__.py"), "w.whl", d.path(), Limits::default()).unwrap();
        assert_eq!(u.files, 1);
        let d2 = tempfile::tempdir().unwrap();
        let e = unpack_zip(&mk("../x.py"), "w.whl", d2.path(), Limits::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("climbs out"), "{e}");
    }
}
