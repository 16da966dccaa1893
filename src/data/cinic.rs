//! CINIC-10: `train/`, `valid/` and `test/`, each with one folder of 32×32 PNGs per
//! class (the CIFAR-10 class names). minima trains on `train/` and tests on
//! `test/`, as the paper; `valid/` is not read. Decoded once, then cached
//! ([`super::cache`]).

use super::cache;
use super::folders::{self, Fit};
use super::images::Loaded;
use super::names::Name;
use anyhow::{bail, Result};
use std::path::Path;

pub const CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Bumped when decoding changes, so older caches are not used.
const SETTINGS: &str = "cinic10 png rgb exact 32x32 v1";

fn split(root: &Path, split: &str, quiet: bool) -> Result<super::images::Images> {
    let dir = root.join(split);
    let found = folders::subfolders(&dir)?;
    if found != CLASSES {
        let missing: Vec<_> = CLASSES
            .iter()
            .filter(|c| !found.iter().any(|f| f == *c))
            .collect();
        let extra: Vec<_> = found
            .iter()
            .filter(|f| !CLASSES.contains(&f.as_str()))
            .collect();
        bail!(
            "{}: expected the class folders {}; missing: {missing:?}, unexpected: {extra:?}",
            dir.display(),
            CLASSES.join(", ")
        );
    }
    let mut files = Vec::new();
    for (label, class) in CLASSES.iter().enumerate() {
        files.extend(folders::images_in(&dir.join(class), label as i64)?);
    }
    cache::load_or_decode(
        &cache::locations(root, Name::Cinic10.as_str(), split),
        Name::Cinic10.as_str(),
        split,
        &cache::key(root, SETTINGS, &files),
        || folders::decode(&files, Fit::Exact(32)),
        (!quiet).then_some(files.len()),
    )
}

pub fn load(root: &Path, quiet: bool) -> Result<Loaded> {
    Ok(Loaded {
        train: split(root, "train", quiet)?,
        test: split(root, "test", quiet)?,
        classes: CLASSES.iter().map(|c| c.to_string()).collect(),
        describe: Vec::new(),
    })
}
