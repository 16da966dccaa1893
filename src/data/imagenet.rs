//! Restricted ImageNet (Tsipras et al., "Robustness may be at odds with accuracy"):
//! the ImageNet classes in nine index ranges, each range one super-class, from an
//! ImageFolder layout (`train/` and `val/`, one folder per WordNet id). A class's
//! index is the rank of its folder among the 1000 sorted folder names, as
//! torchvision's ImageFolder numbers them. Images are resized to 32×32 as the
//! paper did (filter: [`Fit::Resize`]), decoded once, then cached.

use super::cache;
use super::folders::{self, Fit};
use super::images::{Images, Loaded};
use super::names::Name;
use anyhow::{bail, Result};
use std::path::Path;

/// (super-class, first and last ImageNet class index, inclusive), in label order:
/// the ranges of the `robustness` library's RestrictedImageNet.
pub const SUPER_CLASSES: [(&str, usize, usize); 9] = [
    ("dog", 151, 268),
    ("cat", 281, 285),
    ("frog", 30, 32),
    ("turtle", 33, 37),
    ("bird", 80, 100),
    ("primate", 365, 382),
    ("fish", 389, 397),
    ("crab", 118, 121),
    ("insect", 300, 319),
];

pub const SIDE: u32 = 32;

/// Bumped when decoding changes, so older caches are not used.
const SETTINGS: &str = "restricted_imagenet rgb resize 32x32 triangle v1";

pub fn super_class(index: usize) -> Option<i64> {
    SUPER_CLASSES
        .iter()
        .position(|&(_, lo, hi)| (lo..=hi).contains(&index))
        .map(|i| i as i64)
}

fn split(root: &Path, split: &str, wnids: &[String], quiet: bool) -> Result<Images> {
    let dir = root.join(split);
    let mut files = Vec::new();
    for (index, wnid) in wnids.iter().enumerate() {
        if let Some(label) = super_class(index) {
            files.extend(folders::images_in(&dir.join(wnid), label)?);
        }
    }
    cache::load_or_decode(
        &cache::locations(root, Name::RestrictedImagenet.as_str(), split),
        Name::RestrictedImagenet.as_str(),
        split,
        &cache::key(root, SETTINGS, &files),
        || folders::decode(&files, Fit::Resize(SIDE)),
        (!quiet).then_some(files.len()),
    )
}

pub fn load(root: &Path, quiet: bool) -> Result<Loaded> {
    let wnids = folders::subfolders(&root.join("train"))?;
    if wnids.len() != 1000 {
        bail!(
            "{}: expected the 1000 ImageNet class folders (class indices are ranks among \
             them), found {}",
            root.join("train").display(),
            wnids.len()
        );
    }
    let val = folders::subfolders(&root.join("val"))?;
    if val != wnids {
        let missing = wnids.iter().find(|w| !val.contains(w));
        let extra = val.iter().find(|w| !wnids.contains(w));
        bail!(
            "{}: the class folders differ from train/'s (first missing: {}, first unexpected: \
             {}); val/ must be sorted into the same WordNet-id folders",
            root.join("val").display(),
            missing.map_or("none", |s| s.as_str()),
            extra.map_or("none", |s| s.as_str())
        );
    }
    Ok(Loaded {
        train: split(root, "train", &wnids, quiet)?,
        test: split(root, "val", &wnids, quiet)?,
        classes: SUPER_CLASSES
            .iter()
            .map(|(c, _, _)| c.to_string())
            .collect(),
        describe: Vec::new(),
    })
}
