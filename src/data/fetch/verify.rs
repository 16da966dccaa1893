//! Checks a data set's folder against the catalog: `list` looks only at which files
//! exist, `verify` checks sizes, published md5s and image counts, and says exactly
//! what is wrong.

use super::catalog::{DataSet, Expect, Variant, DATA_SETS};
use crate::data::root;
use anyhow::{Context, Result};
use md5::{Digest, Md5};
use std::io::Read;
use std::path::Path;

/// Lowercase hex md5 of a file's bytes.
pub fn md5_file(path: &Path) -> Result<String> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let (_, md5) = md5_read(file).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(md5)
}

/// The number of bytes a reader yields and their lowercase hex md5.
fn md5_read(mut reader: impl Read) -> std::io::Result<(u64, String)> {
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        len += n as u64;
        hasher.update(&buf[..n]);
    }
    let hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((len, hex))
}

/// What is wrong with a gzip file's content, or None when it decompresses to
/// `size` bytes with md5 `md5`.
fn gzip_problem(root: &Path, path: &str, size: u64, md5: &str) -> Option<String> {
    let file = match std::fs::File::open(root.join(path)) {
        Ok(f) => f,
        Err(e) => return Some(format!("{path}: cannot open: {e}")),
    };
    let decoder = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file));
    match md5_read(decoder) {
        Err(e) => Some(format!(
            "{path}: cannot decompress ({e}): truncated or corrupt"
        )),
        Ok((found, _)) if found != size => Some(format!(
            "{path}: decompresses to {found} bytes, expected {size} (truncated or corrupt)"
        )),
        Ok((_, found)) if found != md5 => Some(format!(
            "{path}: content md5 {found}, expected {md5} (corrupt)"
        )),
        Ok(_) => None,
    }
}

/// What is wrong with one expected entry, or None when it is fine. `deep` also
/// checks md5s and counts images; otherwise only existence.
fn problem(root: &Path, expect: &Expect, deep: bool) -> Option<String> {
    match *expect {
        Expect::File { path, size, md5 } => {
            let full = root.join(path);
            let Ok(meta) = std::fs::metadata(&full) else {
                return Some(format!("{path}: missing"));
            };
            if !meta.is_file() {
                return Some(format!("{path}: not a file"));
            }
            if !deep {
                return None;
            }
            if let Some(size) = size.filter(|&s| s != meta.len()) {
                return Some(format!(
                    "{path}: expected {size} bytes, found {} (truncated or corrupt)",
                    meta.len()
                ));
            }
            match md5.map(|want| (want, md5_file(&full))) {
                Some((_, Err(e))) => Some(format!("{path}: {e:#}")),
                Some((want, Ok(found))) if found != want => Some(format!(
                    "{path}: expected md5 {want}, found {found} (corrupt)"
                )),
                _ => None,
            }
        }
        Expect::Gzipped { path, size, md5 } => {
            if !root.join(path).is_file() {
                return Some(format!("{path}: missing"));
            }
            deep.then(|| gzip_problem(root, path, size, md5)).flatten()
        }
        Expect::EitherFile(options) => {
            let existing = options.iter().find(|e| root.join(e.path()).exists());
            match existing {
                Some(e) => problem(root, e, deep),
                None => {
                    let names: Vec<_> = options.iter().map(Expect::path).collect();
                    Some(format!("{}: missing", names.join(" or ")))
                }
            }
        }
        Expect::Images { dir, ext, count } => {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                return Some(format!("{dir}/: missing"));
            };
            if !deep {
                return None;
            }
            let found = entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter(|e| {
                    Path::new(&e.file_name())
                        .extension()
                        .is_some_and(|x| x.eq_ignore_ascii_case(ext))
                })
                .count();
            (found != count)
                .then(|| format!("{dir}/: expected {count} .{ext} files, found {found}"))
        }
        Expect::Dir(dir) => match std::fs::read_dir(root.join(dir)).map(|mut e| e.next()) {
            Err(_) => Some(format!("{dir}/: missing")),
            Ok(None) => Some(format!("{dir}/: empty")),
            Ok(Some(_)) => None,
        },
    }
}

/// How much of one format is on disk.
#[derive(Debug, PartialEq)]
pub enum Presence {
    Complete,
    Absent,
    /// Some entries are there; the problems with the others.
    Partial(Vec<String>),
}

pub fn presence(root: &Path, variant: &Variant, deep: bool) -> Presence {
    let problems: Vec<String> = variant
        .files
        .iter()
        .filter_map(|e| problem(root, e, deep))
        .collect();
    let all_missing = variant.files.iter().all(|e| match problem(root, e, false) {
        Some(p) => p.ends_with(": missing"),
        None => false,
    });
    if problems.is_empty() {
        Presence::Complete
    } else if all_missing {
        Presence::Absent
    } else {
        Presence::Partial(problems)
    }
}

/// Where a format's files are, for messages.
pub fn location(root: &Path, variant: &Variant) -> String {
    match variant.folder {
        "" => root.display().to_string(),
        folder => root.join(folder).display().to_string(),
    }
}

/// The table `minima data list` prints: every known data set and format, where it
/// is read from and whether its files are there.
pub fn list() -> Vec<String> {
    let mut lines = vec![format!(
        "{:<20} {:<8} {:<10} FOLDER (chosen by)",
        "DATA SET", "FORMAT", "STATUS"
    )];
    for set in DATA_SETS {
        let (dir, why) = root::resolve(set.name, None);
        for variant in set.variants {
            let status = match presence(&dir, variant, false) {
                Presence::Complete => "present".to_string(),
                Presence::Absent => "missing".to_string(),
                Presence::Partial(_) => "partial".to_string(),
            };
            lines.push(format!(
                "{:<20} {:<8} {:<10} {} ({why})",
                set.name,
                variant.format,
                status,
                location(&dir, variant)
            ));
        }
    }
    lines
}

/// The outcome of `minima data verify`: lines to print and whether all is well.
#[derive(Debug)]
pub struct Report {
    pub lines: Vec<String>,
    pub ok: bool,
}

pub fn verify(set: &DataSet, dir: &Path) -> Report {
    let mut lines = Vec::new();
    let mut complete = 0;
    let mut broken = false;
    for variant in set.variants {
        let at = location(dir, variant);
        match presence(dir, variant, true) {
            Presence::Complete => {
                complete += 1;
                lines.push(format!(
                    "{} {}: ok ({} entries checked in {at})",
                    set.name,
                    variant.format,
                    variant.files.len()
                ));
            }
            Presence::Absent => lines.push(format!("{} {}: not present", set.name, variant.format)),
            Presence::Partial(problems) => {
                broken = true;
                lines.push(format!("{} {}: PROBLEMS in {at}", set.name, variant.format));
                lines.extend(problems.into_iter().map(|p| format!("  {p}")));
            }
        }
        let Some(archive) = variant.archive else {
            continue;
        };
        let part = dir.join(format!("{}.part", archive.file));
        if let Ok(meta) = std::fs::metadata(&part) {
            lines.push(format!(
                "  {}: incomplete download ({} bytes); `minima data fetch {}` resumes it",
                part.display(),
                meta.len(),
                set.name
            ));
        }
        let kept = dir.join(archive.file);
        if let (true, Some(want)) = (kept.is_file(), archive.md5) {
            match md5_file(&kept) {
                Ok(found) if found == want => lines.push(format!("  {}: md5 ok", kept.display())),
                Ok(found) => {
                    broken = true;
                    lines.push(format!(
                        "  {}: expected md5 {want}, found {found} (corrupt)",
                        kept.display()
                    ));
                }
                Err(e) => {
                    broken = true;
                    lines.push(format!("  {e:#}"));
                }
            }
        }
    }
    if complete == 0 && !broken {
        let how = match set.manual {
            Some(manual) => manual.to_string(),
            None => format!("get it with `minima data fetch {}`", set.name),
        };
        lines.push(format!("no {} files in {}; {how}", set.name, dir.display()));
    }
    Report {
        lines,
        ok: complete > 0 && !broken,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_of_a_known_string() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"The quick brown fox jumps over the lazy dog").unwrap();
        // The widely published md5 of this sentence.
        assert_eq!(md5_file(&path).unwrap(), "9e107d9d372bb6826bd81d3542a419d6");
        let err = md5_file(&dir.path().join("nope")).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn either_spelling_counts_and_sizes_are_checked() {
        let set = super::super::catalog::find("fashion_mnist").unwrap();
        let variant = &set.variants[0];
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(presence(dir.path(), variant, true), Presence::Absent);
        let raw = [
            ("train-images-idx3-ubyte", 16 + 60_000 * 784),
            ("train-labels-idx1-ubyte", 8 + 60_000),
            ("t10k-images-idx3-ubyte", 16 + 10_000 * 784),
            ("t10k-labels-idx1-ubyte", 8 + 10_000 - 1),
        ];
        for (name, len) in raw {
            let f = std::fs::File::create(dir.path().join(name)).unwrap();
            f.set_len(len).unwrap();
        }
        assert_eq!(presence(dir.path(), variant, false), Presence::Complete);
        let Presence::Partial(problems) = presence(dir.path(), variant, true) else {
            panic!("all-zero files pass")
        };
        // Right sizes but zero bytes: the content md5 is wrong; the short file is
        // named by its size first.
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("train-images-idx3-ubyte: expected md5 f4a8"));
        assert_eq!(
            problems[3],
            "t10k-labels-idx1-ubyte: expected 10008 bytes, found 10007 (truncated or corrupt)"
        );
    }

    /// `content` gzipped with the given level, with or without a file name in the
    /// header: different .gz bytes for the same content.
    fn gzip(content: &[u8], level: u32, named: bool) -> Vec<u8> {
        use std::io::Write;
        let mut builder = flate2::GzBuilder::new();
        if named {
            builder = builder.filename("x");
        }
        let mut enc = builder.write(Vec::new(), flate2::Compression::new(level));
        enc.write_all(content).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn gzip_files_are_checked_by_their_content() {
        let content: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let want = md5_read(&content[..]).unwrap();
        assert_eq!(want.0, 50_000);
        let expect = |path| Expect::Gzipped {
            path,
            size: 50_000,
            md5: Box::leak(want.1.clone().into_boxed_str()),
        };
        let fast = gzip(&content, 1, false);
        let best = gzip(&content, 9, true);
        assert_ne!(fast, best);
        std::fs::write(dir.path().join("fast.gz"), &fast).unwrap();
        std::fs::write(dir.path().join("best.gz"), &best).unwrap();
        assert_eq!(problem(dir.path(), &expect("fast.gz"), true), None);
        assert_eq!(problem(dir.path(), &expect("best.gz"), true), None);

        std::fs::write(dir.path().join("cut.gz"), &best[..best.len() / 2]).unwrap();
        let cut = problem(dir.path(), &expect("cut.gz"), true).unwrap();
        assert!(cut.starts_with("cut.gz: cannot decompress"), "{cut}");
        assert!(cut.ends_with("truncated or corrupt"), "{cut}");

        let mut changed = content.clone();
        changed[123] ^= 1;
        std::fs::write(dir.path().join("changed.gz"), gzip(&changed, 6, false)).unwrap();
        let bad = problem(dir.path(), &expect("changed.gz"), true).unwrap();
        assert!(bad.starts_with("changed.gz: content md5 "), "{bad}");
        std::fs::write(dir.path().join("short.gz"), gzip(&content[1..], 6, false)).unwrap();
        let short = problem(dir.path(), &expect("short.gz"), true).unwrap();
        assert!(
            short.contains("decompresses to 49999 bytes, expected 50000"),
            "{short}"
        );
        assert_eq!(
            problem(dir.path(), &expect("none.gz"), true),
            Some("none.gz: missing".into())
        );
    }

    /// Debian's `dataset-fashion-mnist` (installed by scripts/bootstrap.sh) is
    /// re-gzipped: its .gz md5s differ from the upstream download's, its content not.
    #[test]
    fn the_debian_fashion_mnist_package_passes() {
        let dir = Path::new("/usr/share/datasets/fashion-mnist");
        assert!(
            dir.join("train-images-idx3-ubyte.gz").is_file(),
            "install dataset-fashion-mnist (scripts/bootstrap.sh)"
        );
        let report = verify(super::super::catalog::find("fashion_mnist").unwrap(), dir);
        assert!(report.ok, "{:?}", report.lines);
    }
}
