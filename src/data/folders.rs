//! Image-folder data sets (CINIC-10, ImageNet): listing class folders the way
//! torchvision's ImageFolder does (sorted names; class index = rank), and decoding
//! the images on every core into uint8 RGB planes.

use super::images::Images;
use crate::kit::interrupt;
use anyhow::{anyhow, bail, Context, Result};
use image::imageops::FilterType;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// File extensions read as images (case-insensitive); other files are ignored, as
/// ImageFolder ignores them.
const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// One image file, with what the cache key needs to notice a change.
#[derive(Debug, Clone)]
pub struct File {
    pub path: PathBuf,
    pub label: i64,
    pub size: u64,
    /// Modification time in nanoseconds since 1970 (0 where the system has none).
    pub modified_ns: u128,
}

impl File {
    fn of(path: PathBuf, label: i64, meta: &std::fs::Metadata) -> File {
        let modified_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        File {
            path,
            label,
            size: meta.len(),
            modified_ns,
        }
    }

    /// The file at `path`, labelled `label`, as its metadata describes it now.
    pub fn at(path: &Path, label: i64) -> Result<File> {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(File::of(path.to_path_buf(), label, &meta))
    }
}

/// Sub-folder names of `dir`, sorted bytewise as ImageFolder sorts them; hidden
/// folders (such as minima's `.minima-cache`) are skipped.
pub fn subfolders(dir: &Path) -> Result<Vec<String>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut names = Vec::new();
    for e in entries {
        let e = e.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && e.path().is_dir() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// The image files of one class folder, sorted by name, all labelled `label`.
/// A folder without images is an error, not a class with no examples.
pub fn images_in(dir: &Path, label: i64) -> Result<Vec<File>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut files = Vec::new();
    for e in entries {
        let e = e.with_context(|| format!("cannot read {}", dir.display()))?;
        let path = e.path();
        let is_image = path
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| EXTENSIONS.iter().any(|ok| x.eq_ignore_ascii_case(ok)));
        if !is_image {
            continue;
        }
        let meta = e
            .metadata()
            .with_context(|| format!("cannot read {}", path.display()))?;
        if !meta.is_file() {
            continue;
        }
        files.push(File::of(path, label, &meta));
    }
    if files.is_empty() {
        bail!(
            "{}: empty class folder (no .png, .jpg or .jpeg files)",
            dir.display()
        );
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// How decoded images are brought to `side`×`side`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Every image must already be this size (CINIC-10).
    Exact(u32),
    /// The whole image is resized to this size, aspect ratio not kept, with the
    /// `image` crate's Triangle filter: bilinear, its support widened by the
    /// downscaling factor, i.e. antialiased like PIL's BILINEAR that torchvision's
    /// `Resize((32, 32))` uses (close to it, not bit-identical).
    Resize(u32),
}

impl Fit {
    fn side(self) -> u32 {
        match self {
            Fit::Exact(s) | Fit::Resize(s) => s,
        }
    }
}

fn decode_one(file: &File, fit: Fit, out: &mut [u8]) -> Result<()> {
    let img = image::io::Reader::open(&file.path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| anyhow!("cannot read {}: {e}", file.path.display()))?
        .decode()
        .map_err(|e| anyhow!("{}: cannot decode: {e}", file.path.display()))?;
    // Grey, palette, alpha and 16-bit images become 8-bit RGB, as PIL's
    // convert("RGB") in ImageFolder's loader.
    let rgb = img.to_rgb8();
    let side = fit.side();
    let rgb = match fit {
        Fit::Exact(_) if rgb.dimensions() != (side, side) => bail!(
            "{}: expected a {side}×{side} image, found {}×{}",
            file.path.display(),
            rgb.width(),
            rgb.height()
        ),
        Fit::Exact(_) => rgb,
        Fit::Resize(_) => image::imageops::resize(&rgb, side, side, FilterType::Triangle),
    };
    let plane = (side * side) as usize;
    for (i, px) in rgb.pixels().enumerate() {
        for (ch, &v) in px.0.iter().enumerate() {
            out[ch * plane + i] = v;
        }
    }
    Ok(())
}

/// Decodes `files` into RGB images on every core; the first failure in file
/// order is returned. Polls Ctrl-C between images.
pub fn decode(files: &[File], fit: Fit) -> Result<Images> {
    let side = fit.side() as usize;
    let len = 3 * side * side;
    let mut images = Images::new([3, side, side]);
    images.pixels = vec![0u8; files.len() * len];
    images.labels = files.iter().map(|f| f.label).collect();
    if files.is_empty() {
        return Ok(images);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = files.len().div_ceil(threads);
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let workers: Vec<_> = files
            .chunks(per)
            .zip(images.pixels.chunks_mut(per * len))
            .map(|(files, out)| {
                s.spawn(move || -> Result<()> {
                    for (f, o) in files.iter().zip(out.chunks_exact_mut(len)) {
                        interrupt::check()?;
                        decode_one(f, fit, o)?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow!("an image decoding thread panicked")))
            })
            .collect()
    });
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(images)
}
