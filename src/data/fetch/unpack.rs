//! Unpacks a .tar.gz into a folder, refusing every entry that could write outside
//! it: absolute paths, `..` components, symbolic and hard links, device files.
//! Entries go to a staging folder first and are moved into place only when the
//! whole archive unpacked, so a refused or corrupt archive leaves nothing behind.

use anyhow::{bail, Context, Result};
use flate2::read::GzDecoder;
use std::fs::File;
use std::io::BufReader;
use std::path::{Component, Path, PathBuf};
use tar::EntryType;

/// Why an entry must not be unpacked, if it must not.
fn refusal(path: &Path, kind: EntryType) -> Option<&'static str> {
    for part in path.components() {
        match part {
            Component::RootDir | Component::Prefix(_) => return Some("absolute path"),
            Component::ParentDir => return Some("`..` would leave the target folder"),
            Component::CurDir | Component::Normal(_) => {}
        }
    }
    match kind {
        EntryType::Regular | EntryType::Continuous | EntryType::Directory => None,
        EntryType::Symlink => Some("symbolic link"),
        EntryType::Link => Some("hard link"),
        _ => Some("not a regular file or folder"),
    }
}

/// Unpacks `archive` into `target`; returns the top-level names it put there
/// (replacing anything of the same name).
pub fn unpack(archive: &Path, target: &Path) -> Result<Vec<PathBuf>> {
    let name = archive
        .file_name()
        .map_or_else(|| "archive".into(), |n| n.to_string_lossy().into_owned());
    let staging = target.join(format!(".unpacking-{name}"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("cannot remove {}", staging.display()))?;
    }
    std::fs::create_dir_all(&staging)
        .with_context(|| format!("cannot create {}", staging.display()))?;
    let result = unpack_into(archive, &staging).and_then(|()| move_into(&staging, target));
    let _ = std::fs::remove_dir_all(&staging);
    result
}

fn unpack_into(archive: &Path, staging: &Path) -> Result<()> {
    let file = File::open(archive).with_context(|| format!("cannot open {}", archive.display()))?;
    let mut tar = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
    let corrupt = || format!("{} is corrupt or truncated", archive.display());
    for entry in tar.entries().with_context(corrupt)? {
        let mut entry = entry.with_context(corrupt)?;
        let kind = entry.header().entry_type();
        // pax global headers carry metadata only.
        if kind == EntryType::XGlobalHeader {
            continue;
        }
        let path = entry.path().with_context(corrupt)?.into_owned();
        if let Some(why) = refusal(&path, kind) {
            bail!(
                "refusing archive entry `{}` in {}: {why}; nothing was unpacked",
                path.display(),
                archive.display()
            );
        }
        // unpack_in re-checks that the entry stays inside `staging`.
        let inside = entry.unpack_in(staging).map_err(|e| {
            use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
            let what = match e.kind() {
                UnexpectedEof | InvalidData | InvalidInput => corrupt(),
                _ => format!("cannot write what {} holds", archive.display()),
            };
            anyhow::Error::new(e).context(format!("{what} (at entry `{}`)", path.display()))
        })?;
        if !inside {
            bail!(
                "refusing archive entry `{}` in {}: it would leave the target folder",
                path.display(),
                archive.display()
            );
        }
    }
    // tar stops at its end marker; reading on to the end makes gunzip check the
    // CRC-32 and length trailer of the whole stream.
    std::io::copy(&mut tar.into_inner(), &mut std::io::sink()).with_context(corrupt)?;
    Ok(())
}

fn move_into(staging: &Path, target: &Path) -> Result<Vec<PathBuf>> {
    let mut moved = Vec::new();
    let entries =
        std::fs::read_dir(staging).with_context(|| format!("cannot read {}", staging.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", staging.display()))?;
        let dest = target.join(entry.file_name());
        let replaced = match std::fs::symlink_metadata(&dest) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&dest),
            Ok(_) => std::fs::remove_file(&dest),
            Err(_) => Ok(()),
        };
        replaced.with_context(|| format!("cannot replace {}", dest.display()))?;
        std::fs::rename(entry.path(), &dest)
            .with_context(|| format!("cannot move unpacked files to {}", dest.display()))?;
        moved.push(PathBuf::from(entry.file_name()));
    }
    moved.sort();
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_relative_files_and_folders_pass() {
        let ok = |p: &str, k| refusal(Path::new(p), k).is_none();
        assert!(ok(
            "cifar-10-batches-bin/data_batch_1.bin",
            EntryType::Regular
        ));
        assert!(ok("./train/cat/", EntryType::Directory));
        assert!(!ok("a/../../b", EntryType::Regular));
        assert!(!ok("/etc/passwd", EntryType::Regular));
        assert!(!ok("a/link", EntryType::Symlink));
        assert!(!ok("a/hard", EntryType::Link));
        assert!(!ok("a/dev", EntryType::Char));
    }
}
