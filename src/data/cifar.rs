//! CIFAR-10 and CIFAR-100 in their official binary and python versions, in the
//! folders torchvision uses below the data set's root (`cifar-10-batches-bin/`,
//! `cifar-10-batches-py/`, `cifar-100-binary/`, `cifar-100-python/`).
//!
//! Binary: fixed-size records, a label byte (CIFAR-100: coarse then fine) then
//! 3072 pixel bytes (1024 red, 1024 green, 1024 blue, rows top to bottom), which is
//! already CHW. Python: pickled dicts whose `data` is a uint8 numpy array of shape
//! [n, 3072] in the same order, read by [`super::pickle`] without executing it.

use super::images::{Images, Loaded};
use super::pickle::{self, Value};
use crate::results::Value as Col;
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;

const SHAPE: [usize; 3] = [3, 32, 32];
const PIXELS: usize = 3 * 32 * 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Binary,
    Python,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Binary => "binary",
            Format::Python => "python",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Cifar10,
    /// `coarse`: the 20 super-class labels instead of the 100 fine ones.
    Cifar100 {
        coarse: bool,
    },
}

impl Which {
    pub fn folder(self, format: Format) -> &'static str {
        match (self, format) {
            (Which::Cifar10, Format::Binary) => "cifar-10-batches-bin",
            (Which::Cifar10, Format::Python) => "cifar-10-batches-py",
            (Which::Cifar100 { .. }, Format::Binary) => "cifar-100-binary",
            (Which::Cifar100 { .. }, Format::Python) => "cifar-100-python",
        }
    }

    fn classes(self) -> usize {
        match self {
            Which::Cifar10 => 10,
            Which::Cifar100 { coarse: true } => 20,
            Which::Cifar100 { coarse: false } => 100,
        }
    }
}

/// Reads train (CIFAR-10: the five data batches in order) and test splits.
pub fn load(root: &Path, which: Which, format: Format) -> Result<Loaded> {
    let dir = root.join(which.folder(format));
    let (train, test, classes) = match format {
        Format::Binary => load_binary(&dir, which)?,
        Format::Python => load_python(&dir, which)?,
    };
    let mut describe = vec![("data_format".into(), Col::Str(format.as_str().into()))];
    if let Which::Cifar100 { coarse } = which {
        let kind = if coarse { "coarse" } else { "fine" };
        describe.push(("label_kind".into(), Col::Str(kind.into())));
    }
    Ok(Loaded {
        train,
        test,
        classes,
        describe,
    })
}

fn check_names(names: Vec<String>, which: Which, source: &Path) -> Result<Vec<String>> {
    if names.len() != which.classes() {
        bail!(
            "{}: expected {} class names, found {}",
            source.display(),
            which.classes(),
            names.len()
        );
    }
    Ok(names)
}

fn load_binary(dir: &Path, which: Which) -> Result<(Images, Images, Vec<String>)> {
    let (train_files, test_file, names_file, label_bytes, label_at): (Vec<String>, _, _, _, _) =
        match which {
            Which::Cifar10 => (
                (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
                "test_batch.bin",
                "batches.meta.txt",
                1,
                0,
            ),
            Which::Cifar100 { coarse } => (
                vec!["train.bin".into()],
                "test.bin",
                if coarse {
                    "coarse_label_names.txt"
                } else {
                    "fine_label_names.txt"
                },
                2,
                usize::from(!coarse),
            ),
        };
    let names_path = dir.join(names_file);
    let text = std::fs::read_to_string(&names_path)
        .with_context(|| format!("cannot read {}", names_path.display()))?;
    let names = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let classes = check_names(names, which, &names_path)?;
    let per_train_file = 50_000 / train_files.len();
    let mut train = Images::new(SHAPE);
    for f in &train_files {
        let path = dir.join(f);
        train.extend(read_records(
            &path,
            label_bytes,
            label_at,
            which,
            per_train_file,
        )?);
    }
    let test = read_records(&dir.join(test_file), label_bytes, label_at, which, 10_000)?;
    Ok((train, test, classes))
}

/// Records of `label_bytes` label bytes (the label used at `label_at`) and 3072
/// pixel bytes; the official file holds `official` of them. Any whole number of
/// records is read, so small files made for tests work; a size that is not a
/// whole number of records is a truncated or corrupt file.
fn read_records(
    path: &Path,
    label_bytes: usize,
    label_at: usize,
    which: Which,
    official: usize,
) -> Result<Images> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let record = label_bytes + PIXELS;
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        bail!(
            "{}: expected a whole number of {record}-byte records ({} bytes for an official \
             file of {official} images), found {} bytes: the file is truncated or corrupt",
            path.display(),
            official * record,
            bytes.len()
        );
    }
    let n = bytes.len() / record;
    let mut out = Images::new(SHAPE);
    out.pixels.reserve_exact(n * PIXELS);
    out.labels.reserve_exact(n);
    for r in bytes.chunks_exact(record) {
        out.labels.push(i64::from(r[label_at]));
        out.pixels.extend_from_slice(&r[label_bytes..]);
    }
    out.check_labels(which.classes(), &path.display().to_string())?;
    Ok(out)
}

fn read_pickle(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    pickle::load(&bytes).map_err(|e| anyhow!("{}: not a readable pickle: {e}", path.display()))
}

fn entry(dict: &Value, key: &str, path: &Path) -> Result<Value> {
    if !matches!(dict, Value::Dict(_)) {
        bail!(
            "{}: expected a pickled dict, found {}",
            path.display(),
            dict.kind()
        );
    }
    dict.get(key)
        .ok_or_else(|| anyhow!("{}: the dict has no `{key}` entry", path.display()))
}

fn strings(v: &Value, key: &str, path: &Path) -> Result<Vec<String>> {
    let items = v
        .items()
        .ok_or_else(|| anyhow!("{}: `{key}` is {}, not a list", path.display(), v.kind()))?;
    items
        .iter()
        .map(|s| {
            s.text().ok_or_else(|| {
                anyhow!(
                    "{}: `{key}` holds {}, not strings",
                    path.display(),
                    s.kind()
                )
            })
        })
        .collect()
}

fn load_python(dir: &Path, which: Which) -> Result<(Images, Images, Vec<String>)> {
    let (train_files, test_file, meta_file, names_key, labels_key): (Vec<String>, _, _, _, _) =
        match which {
            Which::Cifar10 => (
                (1..=5).map(|i| format!("data_batch_{i}")).collect(),
                "test_batch",
                "batches.meta",
                "label_names",
                "labels",
            ),
            Which::Cifar100 { coarse } => (
                vec!["train".into()],
                "test",
                "meta",
                if coarse {
                    "coarse_label_names"
                } else {
                    "fine_label_names"
                },
                if coarse {
                    "coarse_labels"
                } else {
                    "fine_labels"
                },
            ),
        };
    let meta_path = dir.join(meta_file);
    let meta = read_pickle(&meta_path)?;
    let names = strings(&entry(&meta, names_key, &meta_path)?, names_key, &meta_path)?;
    let classes = check_names(names, which, &meta_path)?;
    let mut train = Images::new(SHAPE);
    for f in &train_files {
        train.extend(read_batch(&dir.join(f), labels_key, which)?);
    }
    let test = read_batch(&dir.join(test_file), labels_key, which)?;
    Ok((train, test, classes))
}

fn read_batch(path: &Path, labels_key: &str, which: Which) -> Result<Images> {
    let batch = read_pickle(path)?;
    let data = entry(&batch, "data", path)?;
    let array = data.array().ok_or_else(|| {
        anyhow!(
            "{}: `data` is {}, not a numpy array",
            path.display(),
            data.kind()
        )
    })?;
    let n = array.shape.first().copied().unwrap_or(0);
    if array.descr != "|u1" || array.shape != [n, PIXELS] || array.fortran {
        bail!(
            "{}: `data` should be a C-ordered uint8 array of shape [n, {PIXELS}], found `{}` \
             of shape {:?}{}",
            path.display(),
            array.descr,
            array.shape,
            if array.fortran {
                " (Fortran order)"
            } else {
                ""
            }
        );
    }
    let labels = entry(&batch, labels_key, path)?;
    let labels = labels
        .items()
        .ok_or_else(|| {
            anyhow!(
                "{}: `{labels_key}` is {}, not a list",
                path.display(),
                labels.kind()
            )
        })?
        .iter()
        .map(|l| {
            l.int().ok_or_else(|| {
                anyhow!(
                    "{}: `{labels_key}` holds {}, not integers",
                    path.display(),
                    l.kind()
                )
            })
        })
        .collect::<Result<Vec<i64>>>()?;
    if labels.len() != n {
        bail!(
            "{}: `data` has {n} images but `{labels_key}` has {} labels",
            path.display(),
            labels.len()
        );
    }
    let images = Images {
        pixels: array.data.to_vec(),
        labels,
        shape: SHAPE,
    };
    images.check_labels(which.classes(), &path.display().to_string())?;
    Ok(images)
}
