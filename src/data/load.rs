//! `dataset(NAME, ...)`: finds a data set's folder ([`super::root`]), picks the
//! reader for what is there, and says where it looked and how to get the data when
//! nothing is.

use super::cifar::{self, Format, Which};
use super::fetch::catalog;
use super::images::{self, Loaded, Normalize};
use super::names::Name;
use super::{cinic, idx, imagenet, root, Dataset};
use anyhow::Result;
use std::path::{Path, PathBuf};
use tch::Device;

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub root: Option<PathBuf>,
    pub normalize: Normalize,
    /// CIFAR: `None` reads the binary version when its folder is there, else python.
    pub format: Option<Format>,
    /// CIFAR-100: the 20 coarse labels instead of the 100 fine ones.
    pub coarse: bool,
    /// Fashion-MNIST: zero pixels added on each side.
    pub pad: usize,
    /// No "decoding ..." notes on stderr.
    pub quiet: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            root: None,
            normalize: Normalize::Population,
            format: None,
            coarse: false,
            pad: 0,
            quiet: true,
        }
    }
}

/// The error for an unknown name: the known ones, and the nearest as a hint.
/// "where it looked, by which rule, and how to get the data".
fn missing(name: &str, dir: &Path, why: &str, looked_for: &str) -> anyhow::Error {
    let how = match catalog::find(name).ok().and_then(|s| s.manual) {
        Some(manual) => format!("To get it: {manual}."),
        None => format!(
            "Get it with `minima data fetch {name}`, or give `root`: the folder that \
             contains {looked_for}."
        ),
    };
    anyhow::anyhow!(
        "{name}: no data in {} (chosen by {why}; the order is `root`, $MINIMA_DATA/NAME, \
         a system folder, ~/.cache/minima/data/NAME): looked for {looked_for}. {how}",
        dir.display()
    )
}

fn cifar(dir: &Path, why: &str, name: &str, which: Which, o: &Options) -> Result<Loaded> {
    let binary = which.folder(Format::Binary);
    let python = which.folder(Format::Python);
    let format = match o.format {
        Some(f) if dir.join(which.folder(f)).is_dir() => f,
        Some(f) => return Err(missing(name, dir, why, &format!("{}/", which.folder(f)))),
        None if dir.join(binary).is_dir() => Format::Binary,
        None if dir.join(python).is_dir() => Format::Python,
        None => {
            return Err(missing(
                name,
                dir,
                why,
                &format!("{binary}/ (binary) or {python}/ (python)"),
            ))
        }
    };
    cifar::load(dir, which, format)
}

/// Loads `name` onto `device`.
pub fn load(name: &str, o: &Options, device: Device) -> Result<Dataset> {
    let data_set = Name::parse(name).map_err(anyhow::Error::msg)?;
    let (dir, why) = root::resolve(name, o.root.as_deref());
    let loaded = match data_set {
        Name::Cifar10 => cifar(&dir, why, name, Which::Cifar10, o)?,
        Name::Cifar100 => cifar(&dir, why, name, Which::Cifar100 { coarse: o.coarse }, o)?,
        Name::Cinic10 => {
            if !dir.join("train").is_dir() {
                return Err(missing(name, &dir, why, "train/ and test/ (and valid/)"));
            }
            cinic::load(&dir, o.quiet)?
        }
        Name::RestrictedImagenet => {
            if !dir.join("train").is_dir() {
                return Err(missing(name, &dir, why, "train/ and val/"));
            }
            imagenet::load(&dir, o.quiet)?
        }
        Name::FashionMnist => {
            if idx::find(&dir, "train-images-idx3-ubyte").is_none() {
                return Err(missing(
                    name,
                    &dir,
                    why,
                    "train-images-idx3-ubyte[.gz] and the other three IDX files",
                ));
            }
            idx::load(&dir, o.pad)?
        }
    };
    Ok(images::dataset(name, loaded, o.normalize, device))
}
