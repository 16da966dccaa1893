//! Fashion-MNIST's IDX files, gzipped or not (told apart by the gzip magic bytes,
//! not the name): `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
//! `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each possibly ending `.gz`.
//!
//! IDX: two zero bytes, a type byte (0x08: unsigned bytes), the number of
//! dimensions, each dimension as a big-endian u32, then the values row-major.

use super::cache;
use super::folders::File;
use super::images::{Images, Loaded};
use super::names::Name;
use crate::results::Value as Col;
use anyhow::{bail, Context, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

pub const CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

const SIDE: usize = 28;

/// The file `stem` or `stem.gz` in `dir`, preferring the uncompressed one.
pub fn find(dir: &Path, stem: &str) -> Option<PathBuf> {
    [stem.to_string(), format!("{stem}.gz")]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

fn required(dir: &Path, stem: &str) -> Result<PathBuf> {
    find(dir, stem)
        .with_context(|| format!("{}: neither {stem} nor {stem}.gz is there", dir.display()))
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Whether the file starts with gzip's magic bytes.
fn gzipped(path: &Path) -> bool {
    let mut start = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut start))
        .is_ok_and(|()| start == GZIP_MAGIC)
}

/// The file's bytes, gunzipped when they start with gzip's magic bytes.
fn read(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len() * 2);
    GzDecoder::new(raw.as_slice())
        .read_to_end(&mut out)
        .with_context(|| {
            format!(
                "cannot decompress {} ({} bytes): the gzip stream is truncated or corrupt",
                path.display(),
                raw.len()
            )
        })?;
    Ok(out)
}

/// The dimensions and values of an IDX file of unsigned bytes with `ndims` dimensions.
fn parse(path: &Path, bytes: &[u8], ndims: usize) -> Result<(Vec<usize>, Vec<u8>)> {
    let header = 4 + 4 * ndims;
    let magic = [0, 0, 0x08, ndims as u8];
    if bytes.len() < header || bytes[..4] != magic {
        bail!(
            "{}: not an IDX file of unsigned bytes with {ndims} dimensions: expected a header \
             starting {magic:02x?} ({header} bytes), found {:02x?} ({} bytes in all)",
            path.display(),
            &bytes[..bytes.len().min(4)],
            bytes.len()
        );
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|d| u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize)
        .collect();
    let want = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let found = bytes.len() - header;
    if want != Some(found) {
        bail!(
            "{}: the header promises {} = {} bytes of values, found {found}: the file is \
             truncated or corrupt",
            path.display(),
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("×"),
            want.map_or("more than 2^64".into(), |w| w.to_string())
        );
    }
    Ok((dims, bytes[header..].to_vec()))
}

/// The cache key's settings (cache.rs): what decoding gives, with a version.
const SETTINGS: &str = "idx u8 28x28 v1";

/// One split (`prefix` train or t10k). Gzipped files are decoded once and then
/// read from the cache (data/cache.rs; about a sixth of a start-up went into
/// gunzipping Fashion-MNIST); uncompressed ones are read as they are.
fn split(dir: &Path, prefix: &str) -> Result<Images> {
    let images_path = required(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = required(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let decode = || decode(&images_path, &labels_path);
    if !gzipped(&images_path) && !gzipped(&labels_path) {
        return decode();
    }
    let files = [File::at(&images_path, 0)?, File::at(&labels_path, 1)?];
    let name = Name::FashionMnist.as_str();
    // The user's cache only: Fashion-MNIST usually comes from a system package
    // (/usr/share/datasets), where a run as root should not write.
    let [_, user] = cache::locations(dir, name, prefix);
    cache::load_or_decode(
        &[user],
        name,
        prefix,
        &cache::key(dir, SETTINGS, &files),
        decode,
        None,
    )
}

/// The images and labels of one split from its two IDX files, checked.
fn decode(images_path: &Path, labels_path: &Path) -> Result<Images> {
    let (dims, pixels) = parse(images_path, &read(images_path)?, 3)?;
    if dims[1..] != [SIDE, SIDE] {
        bail!(
            "{}: expected {SIDE}×{SIDE} images, found {}×{}",
            images_path.display(),
            dims[1],
            dims[2]
        );
    }
    let (label_dims, labels) = parse(labels_path, &read(labels_path)?, 1)?;
    if label_dims[0] != dims[0] {
        bail!(
            "{} has {} labels but {} has {} images",
            labels_path.display(),
            label_dims[0],
            images_path.display(),
            dims[0]
        );
    }
    let images = Images {
        pixels,
        labels: labels.into_iter().map(i64::from).collect(),
        shape: [1, SIDE, SIDE],
    };
    images.check_labels(CLASSES.len(), &labels_path.display().to_string())?;
    Ok(images)
}

/// Train (60,000) and test (10,000) images, each padded by `pad` zero pixels on
/// every side (`pad: 2` gives the 32×32 inputs CIFAR architectures expect).
pub fn load(dir: &Path, pad: usize) -> Result<Loaded> {
    Ok(Loaded {
        train: split(dir, "train")?.padded(pad),
        test: split(dir, "t10k")?.padded(pad),
        classes: CLASSES.iter().map(|c| c.to_string()).collect(),
        describe: vec![("pad".into(), Col::Int(pad as i64))],
    })
}
