//! The data sets `minima data` knows: the official archives, and the files a
//! complete copy holds (with the sizes and md5s that are published or follow from
//! the format), so `verify` can say exactly what is wrong.

use crate::data::names::Name;
use anyhow::{bail, Result};

/// One downloadable archive.
#[derive(Debug, Clone, Copy)]
pub struct Archive<'a> {
    pub url: &'a str,
    /// File name the archive is saved under (the last part of `url`).
    pub file: &'a str,
    pub md5: Option<&'a str>,
    pub size: Option<u64>,
}

/// Something a complete copy of a data set holds, relative to its root folder.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// A file, with its exact size and md5 where they are known.
    File {
        path: &'static str,
        size: Option<u64>,
        md5: Option<&'static str>,
    },
    /// A gzip file, checked by what it holds: the size and md5 of the decompressed
    /// bytes. Repackaged copies (Debian's) are re-gzipped, so the .gz bytes and
    /// their md5 differ from the original download while the content is the same.
    Gzipped {
        path: &'static str,
        size: u64,
        md5: &'static str,
    },
    /// One of several spellings of a file (e.g. gzipped or not), any of which will do.
    EitherFile(&'static [Expect]),
    /// A folder holding exactly `count` files with the extension `ext`.
    Images {
        dir: &'static str,
        ext: &'static str,
        count: usize,
    },
    /// A folder that must exist and not be empty.
    Dir(&'static str),
}

impl Expect {
    /// The path this expectation is named by in messages (the first spelling).
    pub fn path(&self) -> &'static str {
        match self {
            Expect::File { path, .. } | Expect::Gzipped { path, .. } => path,
            Expect::EitherFile(options) => options.first().map_or("", Expect::path),
            Expect::Images { dir, .. } | Expect::Dir(dir) => dir,
        }
    }
}

/// One on-disk format of a data set; `fetch --format LABEL` picks it.
#[derive(Debug)]
pub struct Variant {
    pub format: &'static str,
    /// The folder (below the data set's root) the files live in; "" for the root.
    pub folder: &'static str,
    pub archive: Option<Archive<'static>>,
    pub files: &'static [Expect],
}

#[derive(Debug)]
pub struct DataSet {
    pub name: &'static str,
    /// How to get it when `minima data fetch` cannot.
    pub manual: Option<&'static str>,
    /// The first variant is what `fetch` gets by default.
    pub variants: &'static [Variant],
}

impl DataSet {
    pub fn variant(&self, format: Option<&str>) -> Result<&Variant> {
        let Some(format) = format else {
            return Ok(&self.variants[0]);
        };
        match self.variants.iter().find(|v| v.format == format) {
            Some(v) => Ok(v),
            None => bail!(
                "{} has no format `{format}`; its formats: {}",
                self.name,
                self.formats()
            ),
        }
    }

    pub fn formats(&self) -> String {
        let names: Vec<_> = self.variants.iter().map(|v| v.format).collect();
        names.join(", ")
    }
}

pub fn find(name: &str) -> Result<&'static DataSet> {
    let name = Name::parse(name).map_err(anyhow::Error::msg)?;
    match DATA_SETS.iter().find(|d| d.name == name.as_str()) {
        Some(d) => Ok(d),
        None => bail!("{}: not in the download catalog", name.as_str()),
    }
}

const fn file(path: &'static str, size: u64) -> Expect {
    Expect::File {
        path,
        size: Some(size),
        md5: None,
    }
}

const fn present(path: &'static str) -> Expect {
    Expect::File {
        path,
        size: None,
        md5: None,
    }
}

const fn checked(path: &'static str, size: Option<u64>, md5: &'static str) -> Expect {
    Expect::File {
        path,
        size,
        md5: Some(md5),
    }
}

const fn gzipped(path: &'static str, size: u64, md5: &'static str) -> Expect {
    Expect::Gzipped { path, size, md5 }
}

/// CIFAR-10 binary: 10000 records of 1 label byte + 3072 pixel bytes per batch.
const CIFAR10_BATCH: u64 = 10_000 * (1 + 3072);
/// CIFAR-100 binary: coarse label, fine label, 3072 pixel bytes per record.
const CIFAR100_RECORD: u64 = 2 + 3072;

/// CINIC-10: train/, valid/ and test/, 9000 PNGs per class in each.
const CINIC_FILES: [Expect; 30] = {
    let mut out = [Expect::Dir(""); 30];
    let mut i = 0;
    while i < 30 {
        out[i] = Expect::Images {
            dir: CINIC_DIRS[i],
            ext: "png",
            count: 9000,
        };
        i += 1;
    }
    out
};

const CINIC_DIRS: [&str; 30] = [
    "train/airplane",
    "train/automobile",
    "train/bird",
    "train/cat",
    "train/deer",
    "train/dog",
    "train/frog",
    "train/horse",
    "train/ship",
    "train/truck",
    "valid/airplane",
    "valid/automobile",
    "valid/bird",
    "valid/cat",
    "valid/deer",
    "valid/dog",
    "valid/frog",
    "valid/horse",
    "valid/ship",
    "valid/truck",
    "test/airplane",
    "test/automobile",
    "test/bird",
    "test/cat",
    "test/deer",
    "test/dog",
    "test/frog",
    "test/horse",
    "test/ship",
    "test/truck",
];

pub static DATA_SETS: &[DataSet] = &[
    DataSet {
        name: Name::Cifar10.as_str(),
        manual: None,
        variants: &[
            Variant {
                format: "binary",
                folder: "cifar-10-batches-bin",
                archive: Some(Archive {
                    url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                    file: "cifar-10-binary.tar.gz",
                    md5: Some("c32a1d4ab5d03f1284b67883e8d87530"),
                    size: Some(170_052_171),
                }),
                files: &[
                    file("cifar-10-batches-bin/data_batch_1.bin", CIFAR10_BATCH),
                    file("cifar-10-batches-bin/data_batch_2.bin", CIFAR10_BATCH),
                    file("cifar-10-batches-bin/data_batch_3.bin", CIFAR10_BATCH),
                    file("cifar-10-batches-bin/data_batch_4.bin", CIFAR10_BATCH),
                    file("cifar-10-batches-bin/data_batch_5.bin", CIFAR10_BATCH),
                    file("cifar-10-batches-bin/test_batch.bin", CIFAR10_BATCH),
                    present("cifar-10-batches-bin/batches.meta.txt"),
                ],
            },
            // Sizes and md5s of the pickles as torchvision checks them.
            Variant {
                format: "python",
                folder: "cifar-10-batches-py",
                archive: Some(Archive {
                    url: "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                    file: "cifar-10-python.tar.gz",
                    md5: Some("c58f30108f718f92721af3b95e74349a"),
                    size: Some(170_498_071),
                }),
                files: &[
                    checked(
                        "cifar-10-batches-py/data_batch_1",
                        Some(31_035_704),
                        "c99cafc152244af753f735de768cd75f",
                    ),
                    checked(
                        "cifar-10-batches-py/data_batch_2",
                        Some(31_035_320),
                        "d4bba439e000b95fd0a9bffe97cbabec",
                    ),
                    checked(
                        "cifar-10-batches-py/data_batch_3",
                        Some(31_035_999),
                        "54ebc095f3ab1f0389bbae665268c751",
                    ),
                    checked(
                        "cifar-10-batches-py/data_batch_4",
                        Some(31_035_696),
                        "634d18415352ddfa80567beed471001a",
                    ),
                    checked(
                        "cifar-10-batches-py/data_batch_5",
                        Some(31_035_623),
                        "482c414d41f54cd18b22e5b47cb7c3cb",
                    ),
                    checked(
                        "cifar-10-batches-py/test_batch",
                        Some(31_035_526),
                        "40351d587109b95175f43aff81a1287e",
                    ),
                    checked(
                        "cifar-10-batches-py/batches.meta",
                        Some(158),
                        "5ff9c542aee3614f3951f8cda6e48888",
                    ),
                ],
            },
        ],
    },
    DataSet {
        name: Name::Cifar100.as_str(),
        manual: None,
        variants: &[
            Variant {
                format: "binary",
                folder: "cifar-100-binary",
                archive: Some(Archive {
                    url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
                    file: "cifar-100-binary.tar.gz",
                    md5: Some("03b5dce01913d631647c71ecec9e9cb8"),
                    size: None,
                }),
                files: &[
                    file("cifar-100-binary/train.bin", 50_000 * CIFAR100_RECORD),
                    file("cifar-100-binary/test.bin", 10_000 * CIFAR100_RECORD),
                    present("cifar-100-binary/fine_label_names.txt"),
                    present("cifar-100-binary/coarse_label_names.txt"),
                ],
            },
            Variant {
                format: "python",
                folder: "cifar-100-python",
                archive: Some(Archive {
                    url: "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                    file: "cifar-100-python.tar.gz",
                    md5: Some("eb9058c3a382ffc7106e4002c42a8d85"),
                    size: Some(169_001_437),
                }),
                files: &[
                    checked(
                        "cifar-100-python/train",
                        None,
                        "16019d7e3df5f24257cddd939b257f8d",
                    ),
                    checked(
                        "cifar-100-python/test",
                        None,
                        "f0ef6b0ae62326f3e7ffdfab6717acfc",
                    ),
                    checked(
                        "cifar-100-python/meta",
                        None,
                        "7973b15100ade9c7d40fb424638fde48",
                    ),
                ],
            },
        ],
    },
    DataSet {
        name: Name::Cinic10.as_str(),
        manual: None,
        variants: &[Variant {
            format: "png",
            folder: "",
            // No checksum is published with the archive: the download must match the
            // server's Content-Length, gunzip checks its CRC-32 and length, and the
            // unpacked tree must hold 9000 PNGs per class and split.
            archive: Some(Archive {
                url: "https://datashare.ed.ac.uk/bitstream/handle/10283/3192/CINIC-10.tar.gz",
                file: "CINIC-10.tar.gz",
                md5: None,
                size: None,
            }),
            files: &CINIC_FILES,
        }],
    },
    DataSet {
        name: Name::FashionMnist.as_str(),
        manual: Some(
            "install Debian's package (`apt install dataset-fashion-mnist`), or put the \
             four IDX files (gzipped or not) in the folder shown by `minima data list`",
        ),
        // The md5s of the unpacked IDX files (a header plus one byte per pixel or
        // label), as published with the data set's loaders (e.g. Keras, TFDS); a
        // .gz file is checked by what it decompresses to.
        variants: &[Variant {
            format: "idx",
            folder: "",
            archive: None,
            files: &[
                Expect::EitherFile(&[
                    gzipped(
                        "train-images-idx3-ubyte.gz",
                        16 + 60_000 * 784,
                        "f4a8712d7a061bf5bd6d2ca38dc4d50a",
                    ),
                    checked(
                        "train-images-idx3-ubyte",
                        Some(16 + 60_000 * 784),
                        "f4a8712d7a061bf5bd6d2ca38dc4d50a",
                    ),
                ]),
                Expect::EitherFile(&[
                    gzipped(
                        "train-labels-idx1-ubyte.gz",
                        8 + 60_000,
                        "9018921c3c673c538a1fc5bad174d6f9",
                    ),
                    checked(
                        "train-labels-idx1-ubyte",
                        Some(8 + 60_000),
                        "9018921c3c673c538a1fc5bad174d6f9",
                    ),
                ]),
                Expect::EitherFile(&[
                    gzipped(
                        "t10k-images-idx3-ubyte.gz",
                        16 + 10_000 * 784,
                        "8181f5470baa50b63fa0f6fddb340f0a",
                    ),
                    checked(
                        "t10k-images-idx3-ubyte",
                        Some(16 + 10_000 * 784),
                        "8181f5470baa50b63fa0f6fddb340f0a",
                    ),
                ]),
                Expect::EitherFile(&[
                    gzipped(
                        "t10k-labels-idx1-ubyte.gz",
                        8 + 10_000,
                        "15d484375f8d13e6eb1aabb0c3f46965",
                    ),
                    checked(
                        "t10k-labels-idx1-ubyte",
                        Some(8 + 10_000),
                        "15d484375f8d13e6eb1aabb0c3f46965",
                    ),
                ]),
            ],
        }],
    },
    DataSet {
        name: Name::RestrictedImagenet.as_str(),
        manual: Some(
            "ImageNet needs an account at image-net.org: put its train/ and val/ class \
             folders (WordNet ids) in the folder shown by `minima data list`",
        ),
        variants: &[Variant {
            format: "folders",
            folder: "",
            archive: None,
            files: &[Expect::Dir("train"), Expect::Dir("val")],
        }],
    },
];

/// The archive URL, with `mirror` (for tests and local copies) replacing the server.
pub fn url(archive: &Archive, mirror: Option<&str>) -> String {
    match mirror {
        Some(base) => format!("{}/{}", base.trim_end_matches('/'), archive.file),
        None => archive.url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_files_match_their_urls_and_formats_are_unique() {
        for set in DATA_SETS {
            let mut formats: Vec<_> = set.variants.iter().map(|v| v.format).collect();
            formats.sort_unstable();
            formats.dedup();
            assert_eq!(formats.len(), set.variants.len(), "{}", set.name);
            for v in set.variants {
                if let Some(a) = v.archive {
                    assert!(a.url.ends_with(&format!("/{}", a.file)), "{}", a.url);
                    assert!(a.md5.is_none_or(|m| m.len() == 32), "{}", a.file);
                }
                for e in v.files {
                    assert!(e.path().starts_with(v.folder), "{}", e.path());
                }
            }
        }
    }

    #[test]
    fn unknown_names_and_formats_list_the_known_ones() {
        let err = find("imagenet").unwrap_err().to_string();
        assert!(err.contains("`imagenet`") && err.contains("cifar10, cifar100, cinic10"));
        let err = find("cifar10").unwrap().variant(Some("png")).unwrap_err();
        assert!(err.to_string().contains("binary, python"), "{err}");
        assert_eq!(
            find("cifar10").unwrap().variant(None).unwrap().format,
            "binary"
        );
    }
}
