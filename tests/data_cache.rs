//! Where decoded images are cached when the data folder cannot hold the cache.
//! One test in its own process, because it sets XDG_CACHE_HOME.

mod common;
use common::formats;
use minima::data::cache;
use minima::data::load::{load, Options};
use tch::Device;

#[test]
fn a_data_folder_that_cannot_hold_the_cache_uses_the_user_cache() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    std::env::set_var("XDG_CACHE_HOME", home.path());
    let root = data.path();
    formats::cinic(root, 1, 3);
    // A file where the cache folder would go: nothing can be written there.
    std::fs::write(root.join(".minima-cache"), b"").unwrap();
    let o = Options {
        root: Some(root.to_path_buf()),
        ..Options::default()
    };
    let first = load("cinic10", &o, Device::Cpu).unwrap();
    let [local, fallback] = cache::locations(root, "cinic10", "train");
    assert!(!local.exists());
    assert!(
        fallback.starts_with(home.path().join("minima/decoded")),
        "{}",
        fallback.display()
    );
    assert!(fallback.is_file());
    // The second load reads it: swap a PNG for garbage of the same size and time.
    let png = root.join("train/cat/img00000.png");
    let meta = std::fs::metadata(&png).unwrap();
    std::fs::write(&png, vec![0u8; meta.len() as usize]).unwrap();
    let f = std::fs::File::options().write(true).open(&png).unwrap();
    f.set_modified(meta.modified().unwrap()).unwrap();
    let second = load("cinic10", &o, Device::Cpu).unwrap();
    assert!(second.train.x.equal(&first.train.x));
}
