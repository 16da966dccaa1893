//! Image-folder data sets on small generated trees: CINIC-10's PNG class folders
//! and an ImageNet layout reduced to Restricted ImageNet's nine super-classes;
//! the decoded-image cache (used, invalidated); bad images and folders.

use crate::common;
use common::formats::{self, Gen};
use minima::data::imagenet::SUPER_CLASSES;
use minima::data::load::{load, Options};
use minima::data::Dataset;
use std::path::Path;
use std::time::{Duration, SystemTime};
use tch::{Device, Kind};

fn opts(root: &Path) -> Options {
    Options {
        root: Some(root.to_path_buf()),
        ..Options::default()
    }
}

fn ok(name: &str, root: &Path) -> Dataset {
    load(name, &opts(root), Device::Cpu).unwrap_or_else(|e| panic!("{e:#}"))
}

fn err(name: &str, root: &Path) -> String {
    format!(
        "{:#}",
        load(name, &opts(root), Device::Cpu).expect_err("loading should fail")
    )
}

fn bytes(t: &tch::Tensor) -> Vec<u8> {
    Vec::<u8>::try_from(t.flatten(0, -1)).unwrap()
}

fn ints(t: &tch::Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t).unwrap()
}

/// A temporary folder for an ImageNet layout's 2000 class folders: on tmpfs where
/// there is one, since deleting that many folders takes seconds on some disks.
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap())
}

/// Replaces a file's bytes but keeps its size and modification time.
fn swap_in_place(path: &Path, bytes: &[u8]) {
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().len(), bytes.len() as u64);
    std::fs::write(path, bytes).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(mtime).unwrap();
}

#[test]
fn cinic_reads_train_and_test_and_caches_the_decoded_images() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (train, test) = formats::cinic(root, 2, 5);
    // valid/ is not read: a broken file there changes nothing.
    std::fs::write(root.join("valid/cat/img00000.png"), b"not a png").unwrap();
    let d = ok("cinic10", root);
    assert_eq!(d.train.x.size(), [20, 3, 32, 32]);
    assert_eq!(bytes(&d.train.x), train.pixels);
    assert_eq!(ints(&d.train.y), train.labels);
    assert_eq!(bytes(&d.test.x), test.pixels);
    assert_eq!(ints(&d.test.y), test.labels);
    assert_eq!(d.classes, formats::CIFAR10_NAMES);
    let cache = root.join(".minima-cache/train.images");
    assert!(cache.is_file() && root.join(".minima-cache/test.images").is_file());

    // The second load reads the cache: a PNG changed without a new size or
    // modification time is not decoded again.
    let png = root.join("train/dog/img00001.png");
    let original = std::fs::read(&png).unwrap();
    swap_in_place(&png, &vec![7u8; original.len()]);
    let again = ok("cinic10", root);
    assert!(again.train.x.equal(&d.train.x) && again.train.y.equal(&d.train.y));

    // A new modification time invalidates the cache: the file is decoded (and is
    // now garbage, which is named).
    let f = std::fs::File::options().write(true).open(&png).unwrap();
    f.set_modified(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    let e = err("cinic10", root);
    assert!(e.contains(&png.display().to_string()), "{e}");

    // A new image in its place is decoded and cached.
    let mut gen = Gen::new(99);
    let new_pixels = gen.bytes(3072);
    formats::image_file(&png, 32, 32, &new_pixels);
    let d = ok("cinic10", root);
    assert_eq!(bytes(&d.train.x.get(11)), new_pixels);

    // A damaged cache file is decoded again, not trusted.
    let full = std::fs::read(&cache).unwrap();
    std::fs::write(&cache, &full[..full.len() / 2]).unwrap();
    let d2 = ok("cinic10", root);
    assert!(d2.train.x.equal(&d.train.x));
    assert_eq!(
        std::fs::read(&cache).unwrap().len(),
        full.len(),
        "rewritten"
    );
}

#[test]
fn cinic_grey_images_become_rgb_and_bad_images_and_folders_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    formats::cinic(root, 1, 6);
    let grey = root.join("test/bird/img00000.png");
    let mut gen = Gen::new(1);
    let values = gen.bytes(1024);
    image::save_buffer(&grey, &values, 32, 32, image::ColorType::L8).unwrap();
    let d = ok("cinic10", root);
    let img = d.test.x.get(2);
    for ch in 0..3 {
        assert_eq!(bytes(&img.get(ch)), values, "channel {ch}");
    }

    let wrong = root.join("train/ship/img00000.png");
    formats::image_file(&wrong, 31, 32, &gen.bytes(3 * 31 * 32));
    let e = err("cinic10", root);
    assert!(
        e.contains(&format!(
            "{}: expected a 32×32 image, found 31×32",
            wrong.display()
        )),
        "{e}"
    );
    std::fs::remove_file(&wrong).unwrap();
    let e = err("cinic10", root);
    assert!(
        e.contains(&format!(
            "{}: empty class folder",
            root.join("train/ship").display()
        )),
        "{e}"
    );
    std::fs::remove_dir(root.join("train/ship")).unwrap();
    let e = err("cinic10", root);
    assert!(e.contains("missing: [\"ship\"], unexpected: []"), "{e}");
    std::fs::create_dir(root.join("train/ship")).unwrap();
    std::fs::write(root.join("train/ship/a.png"), b"\x89PNG\r\n\x1a\n broken").unwrap();
    let e = err("cinic10", root);
    assert!(e.contains("train/ship/a.png: cannot decode"), "{e}");
}

#[test]
fn restricted_imagenet_maps_class_ranges_to_super_classes_and_resizes() {
    let dir = scratch();
    let root = dir.path();
    let mut filled: Vec<usize> = SUPER_CLASSES
        .iter()
        .flat_map(|&(_, lo, hi)| lo..=hi)
        .collect();
    filled.sort_unstable();
    // One class outside the ranges has images; it must be left out.
    formats::imagenet(root, &[filled.clone(), vec![0]].concat(), 1, 40, 30);
    std::fs::write(root.join("train/n00000151/notes.txt"), b"ignored").unwrap();
    let d = ok("restricted_imagenet", root);
    assert_eq!(d.train.x.size(), [filled.len() as i64, 3, 32, 32]);
    assert_eq!(d.test.len(), filled.len() as i64);
    let names: Vec<&str> = SUPER_CLASSES.iter().map(|s| s.0).collect();
    assert_eq!(d.classes, names);
    let labels = ints(&d.train.y);
    for (label, &(name, lo, hi)) in SUPER_CLASSES.iter().enumerate() {
        let n = labels.iter().filter(|&&l| l == label as i64).count();
        assert_eq!(n, hi - lo + 1, "{name}");
    }
    // Images come in class-index order; each is a flat colour, which resizing
    // keeps (up to JPEG's rounding).
    for (j, &index) in filled.iter().enumerate() {
        let want = formats::flat_colour(index, 0);
        let img = d.train.x.get(j as i64).to_kind(Kind::Int64);
        let lo = Vec::<i64>::try_from(img.amin([1, 2], false)).unwrap();
        let hi = Vec::<i64>::try_from(img.amax([1, 2], false)).unwrap();
        for ch in 0..3 {
            let w = i64::from(want[ch]);
            assert!(
                (lo[ch] - w).abs() <= 4 && (hi[ch] - w).abs() <= 4,
                "class {index} channel {ch}: {}..{} vs {w}",
                lo[ch],
                hi[ch]
            );
        }
        let expected = SUPER_CLASSES
            .iter()
            .position(|&(_, a, b)| (a..=b).contains(&index))
            .unwrap();
        assert_eq!(labels[j], expected as i64);
    }
    assert!(root.join(".minima-cache/val.images").is_file());

    let empty = root.join("val").join(formats::wnid(151));
    std::fs::remove_file(empty.join(format!("{}_0.JPEG", formats::wnid(151)))).unwrap();
    let e = err("restricted_imagenet", root);
    assert!(
        e.contains(&format!("{}: empty class folder", empty.display())),
        "{e}"
    );

    std::fs::rename(&empty, root.join("val/zzz")).unwrap();
    let e = err("restricted_imagenet", root);
    assert!(
        e.contains("first missing: n00000151, first unexpected: zzz"),
        "{e}"
    );

    std::fs::remove_dir_all(root.join("train").join(formats::wnid(999))).unwrap();
    let e = err("restricted_imagenet", root);
    assert!(
        e.contains("expected the 1000 ImageNet class folders"),
        "{e}"
    );
    assert!(e.contains("found 999"), "{e}");
}

#[test]
fn downscaling_averages_instead_of_sampling() {
    // A 64×64 image of alternating black and white columns: an antialiased 2×
    // reduction gives mid grey everywhere, point sampling would give black or
    // white.
    let dir = scratch();
    let root = dir.path();
    let filled: Vec<usize> = SUPER_CLASSES
        .iter()
        .flat_map(|&(_, lo, hi)| lo..=hi)
        .collect();
    formats::imagenet(root, &filled, 1, 8, 8);
    let stripes: Vec<u8> = (0..3 * 64 * 64)
        .map(|i| if i % 2 == 0 { 0 } else { 255 })
        .collect();
    let file = root.join("train/n00000030/stripes.png");
    formats::image_file(&file, 64, 64, &stripes);
    let d = ok("restricted_imagenet", root);
    // The stripes image sorts after n00000030_0.JPEG, so it is the second image.
    let img = d.train.x.get(1).to_kind(Kind::Int64);
    let (lo, hi) = (img.min().int64_value(&[]), img.max().int64_value(&[]));
    assert!(
        (100..=155).contains(&lo) && (100..=155).contains(&hi),
        "{lo}..{hi}"
    );
}
