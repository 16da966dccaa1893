//! Decoded image folders and gzipped IDX files (Fashion-MNIST) cached as one
//! flat file per split, so only the first load decodes:
//! `ROOT/.minima-cache/SPLIT.images` next to the data, or
//! `~/.cache/minima/decoded/NAME-HASH/SPLIT.images` (HASH: of the root's path)
//! when the data folder is read-only (`locations`; the caller picks which of
//! the two it uses: Fashion-MNIST only the second).
//!
//! A cache file is used only when its key matches: the md5 of the decoding
//! settings and, for every file in order, its path below the root, label, size
//! and modification time. Adding, removing, renaming, replacing or touching an
//! image, or changing the settings, gives another key, and the split is decoded
//! again and the cache rewritten. A damaged or foreign cache file is also just
//! decoded again.
//!
//! Layout: `minima-images\n`, format version (u32), key (32 hex bytes), n (u64),
//! c, h, w (u32), n labels (i64), n·c·h·w pixel bytes; little-endian.

use super::folders::File;
use super::images::Images;
use anyhow::{Context, Result};
use md5::{Digest, Md5};
use std::fs;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 14] = b"minima-images\n";
const VERSION: u32 = 1;
const HEADER: usize = 14 + 4 + 32 + 8 + 12;

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key of `files` below `root` decoded with `settings`.
pub fn key(root: &Path, settings: &str, files: &[File]) -> String {
    let mut h = Md5::new();
    h.update(settings.as_bytes());
    for f in files {
        let rel = f.path.strip_prefix(root).unwrap_or(&f.path);
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(f.label.to_le_bytes());
        h.update(f.size.to_le_bytes());
        h.update(f.modified_ns.to_le_bytes());
    }
    hex(&h.finalize())
}

/// Where a split's cache may be: next to the data first, then the user's cache.
pub fn locations(root: &Path, name: &str, split: &str) -> [PathBuf; 2] {
    let file = format!("{split}.images");
    let absolute = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let tag = hex(&Md5::digest(absolute.to_string_lossy().as_bytes()))[..12].to_string();
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    [
        root.join(".minima-cache").join(&file),
        base.join("minima")
            .join("decoded")
            .join(format!("{name}-{tag}"))
            .join(file),
    ]
}

/// The cached images at `path` if the file is whole and has `key`.
pub fn read(path: &Path, key: &str) -> Option<Images> {
    let mut f = fs::File::open(path).ok()?;
    let total = f.metadata().ok()?.len();
    let mut header = [0u8; HEADER];
    f.read_exact(&mut header).ok()?;
    let u32_at = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().unwrap_or_default());
    if &header[..14] != MAGIC || u32_at(14) != VERSION || &header[18..50] != key.as_bytes() {
        return None;
    }
    let n = u64::from_le_bytes(header[50..58].try_into().ok()?) as usize;
    let shape = [
        u32_at(58) as usize,
        u32_at(62) as usize,
        u32_at(66) as usize,
    ];
    let pixels = n.checked_mul(shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?)?;
    let size = n.checked_mul(8)?.checked_add(pixels)?.checked_add(HEADER)?;
    if total != size as u64 {
        return None;
    }
    let mut labels = vec![0u8; 8 * n];
    f.read_exact(&mut labels).ok()?;
    let mut images = Images::new(shape);
    images.labels = labels
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default()))
        .collect();
    images.pixels = vec![0u8; pixels];
    f.read_exact(&mut images.pixels).ok()?;
    Some(images)
}

/// Writes `images` to `path` atomically (temporary file, then rename).
pub fn write(path: &Path, key: &str, images: &Images) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut w = BufWriter::new(fs::File::create(&tmp)?);
        w.write_all(MAGIC)?;
        w.write_all(&VERSION.to_le_bytes())?;
        w.write_all(key.as_bytes())?;
        w.write_all(&(images.len() as u64).to_le_bytes())?;
        for d in images.shape {
            w.write_all(&(d as u32).to_le_bytes())?;
        }
        for l in &images.labels {
            w.write_all(&l.to_le_bytes())?;
        }
        w.write_all(&images.pixels)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// One split of a data set: from the first of `places` (`locations`) whose
/// cache has `key`, else `decode`d and cached in the first that takes it; with
/// `announce` (the image count), says that it decodes.
pub fn load_or_decode(
    places: &[PathBuf],
    name: &str,
    split: &str,
    key: &str,
    decode: impl FnOnce() -> Result<Images>,
    announce: Option<usize>,
) -> Result<Images> {
    if let Some(images) = places.iter().find_map(|p| read(p, key)) {
        return Ok(images);
    }
    if let Some(n) = announce {
        eprintln!("{name}: decoding {n} {split} images (once; cached afterwards)");
    }
    let images = decode()?;
    let mut failures = Vec::new();
    for p in places {
        match write(p, key, &images) {
            Ok(()) => return Ok(images),
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    eprintln!(
        "{name}: could not cache the decoded {split} images ({}); the next load decodes again",
        failures.join("; ")
    );
    Ok(images)
}
