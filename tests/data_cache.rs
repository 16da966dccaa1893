//! Where decoded images are cached: next to an image folder, or in the user's
//! cache when the folder cannot hold it, and for gzipped IDX files always in
//! the user's cache. These tests run in their own process, because they set
//! XDG_CACHE_HOME (once, to one folder for all of them).

mod common;
use common::formats;
use minima::data::cache;
use minima::data::load::{load, Options};
use std::path::Path;
use std::sync::OnceLock;
use tch::Device;

/// The user's cache of this process: a temporary folder.
fn user_cache() -> &'static Path {
    static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    HOME.get_or_init(|| {
        let home = tempfile::tempdir().unwrap();
        std::env::set_var("XDG_CACHE_HOME", home.path());
        home
    })
    .path()
}

fn options(root: &Path) -> Options {
    Options {
        root: Some(root.to_path_buf()),
        ..Options::default()
    }
}

/// Rewrites `path` with zeros, keeping its size and modification time: a
/// cache keyed by those is still used, and the file no longer decodes.
fn spoil_keeping_size_and_time(path: &Path) {
    let meta = std::fs::metadata(path).unwrap();
    std::fs::write(path, vec![0u8; meta.len() as usize]).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(meta.modified().unwrap()).unwrap();
}

#[test]
fn a_data_folder_that_cannot_hold_the_cache_uses_the_user_cache() {
    let data = tempfile::tempdir().unwrap();
    let home = user_cache();
    let root = data.path();
    formats::cinic(root, 1, 3);
    // A file where the cache folder would go: nothing can be written there.
    std::fs::write(root.join(".minima-cache"), b"").unwrap();
    let o = options(root);
    let first = load("cinic10", &o, Device::Cpu).unwrap();
    let [local, fallback] = cache::locations(root, "cinic10", "train");
    assert!(!local.exists());
    assert!(
        fallback.starts_with(home.join("minima/decoded")),
        "{}",
        fallback.display()
    );
    assert!(fallback.is_file());
    // The second load reads it: swap a PNG for garbage of the same size and time.
    spoil_keeping_size_and_time(&root.join("train/cat/img00000.png"));
    let second = load("cinic10", &o, Device::Cpu).unwrap();
    assert!(second.train.x.equal(&first.train.x));
}

#[test]
fn gzipped_idx_files_are_decoded_once_into_the_user_cache() {
    let data = tempfile::tempdir().unwrap();
    let home = user_cache();
    let root = data.path();
    formats::fashion_mnist(root, 20, 10, true, 7);
    let first = load("fashion_mnist", &options(root), Device::Cpu).unwrap();
    for split in ["train", "t10k"] {
        let [local, user] = cache::locations(root, "fashion_mnist", split);
        assert!(
            !local.exists(),
            "{split}: nothing is written next to the data"
        );
        assert!(
            user.starts_with(home.join("minima/decoded")) && user.is_file(),
            "{split}: {}",
            user.display()
        );
    }
    // The second load reads the cache.
    spoil_keeping_size_and_time(&root.join("train-images-idx3-ubyte.gz"));
    let second = load("fashion_mnist", &options(root), Device::Cpu).unwrap();
    assert!(second.train.x.equal(&first.train.x));
    assert!(second.test.x.equal(&first.test.x));
    // Other files (another time, other images) are decoded again.
    formats::fashion_mnist(root, 20, 10, true, 8);
    let third = load("fashion_mnist", &options(root), Device::Cpu).unwrap();
    assert!(!third.train.x.equal(&first.train.x));

    // Uncompressed files are read as they are, with no cache.
    let plain = tempfile::tempdir().unwrap();
    formats::fashion_mnist(plain.path(), 20, 10, false, 7);
    let unzipped = load("fashion_mnist", &options(plain.path()), Device::Cpu).unwrap();
    assert!(unzipped.train.x.equal(&first.train.x));
    let [_, user] = cache::locations(plain.path(), "fashion_mnist", "train");
    assert!(!user.exists(), "{}", user.display());
}
