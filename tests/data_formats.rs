//! `dataset(...)` on small generated files in every file format it reads (CIFAR
//! binary and python pickles from Python 2 and 3, Fashion-MNIST IDX plain and
//! gzipped), their corrupt variants, normalisation, subsets, and the messages
//! scripts get for bad input.

use crate::common;
use common::formats::{self, Gen, Py, Python};
use common::run_text;
use minima::data::cache;
use minima::data::cifar::Format;
use minima::data::images::Normalize;
use minima::data::load::{load, Options};
use minima::data::{subset, Dataset, Inputs, Part};
use minima::results::Value;
use std::path::Path;
use tch::{Device, Kind, Tensor};

fn opts(root: &Path) -> Options {
    Options {
        root: Some(root.to_path_buf()),
        ..Options::default()
    }
}

fn ok(name: &str, o: &Options) -> Dataset {
    load(name, o, Device::Cpu).unwrap_or_else(|e| panic!("{e:#}"))
}

fn err(name: &str, o: &Options) -> String {
    format!(
        "{:#}",
        load(name, o, Device::Cpu).expect_err("loading should fail")
    )
}

fn bytes(t: &Tensor) -> Vec<u8> {
    Vec::<u8>::try_from(t.flatten(0, -1)).unwrap()
}

fn ints(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t).unwrap()
}

fn column_value(d: &Dataset, name: &str) -> Option<Value> {
    d.columns()
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Every value of each channel, scaled to [0, 1].
fn channel_values(pixels: &[u8], shape: [usize; 3]) -> Vec<Vec<f64>> {
    let [c, h, w] = shape;
    let mut out = vec![Vec::new(); c];
    for (i, plane) in pixels.chunks(h * w).enumerate() {
        out[i % c].extend(plane.iter().map(|&v| f64::from(v) / 255.0));
    }
    out
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let m = values.iter().sum::<f64>() / values.len() as f64;
    let v = values.iter().map(|x| (x - m).powi(2)).sum::<f64>() / values.len() as f64;
    (m, v.sqrt())
}

fn assert_stats(d: &Dataset, pixels: &[u8], shape: [usize; 3]) {
    let Inputs::Images { mean, std } = &d.inputs else {
        panic!("image data expected")
    };
    for (ch, values) in channel_values(pixels, shape).iter().enumerate() {
        let (m, s) = mean_std(values);
        assert!((mean[ch] - m).abs() < 1e-9, "mean {mean:?} vs {m}");
        assert!((std[ch] - s).abs() < 1e-9, "std {std:?} vs {s}");
    }
    // The model sees normalised training inputs: mean 0, std 1 per channel.
    let x = d.materialize(Part::Train).x;
    let c = shape[0] as i64;
    let per_channel = x.transpose(0, 1).reshape([c, -1]);
    let means = Vec::<f64>::try_from(per_channel.mean_dim(1, false, Kind::Double)).unwrap();
    let stds =
        Vec::<f64>::try_from(per_channel.to_kind(Kind::Double).std_dim(1, false, false)).unwrap();
    for ch in 0..c as usize {
        assert!(means[ch].abs() < 1e-4, "normalised means {means:?}");
        assert!((stds[ch] - 1.0).abs() < 1e-4, "normalised stds {stds:?}");
    }
}

#[test]
fn cifar10_binary_is_read_as_stored_and_normalised_by_its_own_stats() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = formats::cifar10_binary(dir.path(), 3, 4, 1);
    let d = ok("cifar10", &opts(dir.path()));
    assert_eq!(d.train.x.size(), [15, 3, 32, 32]);
    assert_eq!(d.train.x.kind(), Kind::Uint8);
    assert_eq!(d.test.x.size(), [4, 3, 32, 32]);
    assert_eq!(bytes(&d.train.x), train.pixels);
    assert_eq!(ints(&d.train.y), train.labels);
    assert_eq!(bytes(&d.test.x), test.pixels);
    assert_eq!(ints(&d.test.y), test.labels);
    assert_eq!(d.classes, formats::CIFAR10_NAMES);
    assert_eq!(d.input_shape(), [3, 32, 32]);
    assert_eq!(
        column_value(&d, "data_format"),
        Some(Value::Str("binary".into()))
    );
    assert_eq!(column_value(&d, "normalize"), Some(Value::Bool(true)));
    assert_stats(&d, &train.pixels, [3, 32, 32]);
}

#[test]
fn normalize_false_leaves_pixels_in_0_1() {
    let dir = tempfile::tempdir().unwrap();
    let (train, _) = formats::cifar10_binary(dir.path(), 2, 2, 2);
    let d = ok(
        "cifar10",
        &Options {
            normalize: Normalize::None,
            ..opts(dir.path())
        },
    );
    assert_eq!(
        d.inputs,
        Inputs::Images {
            mean: vec![0.0; 3],
            std: vec![1.0; 3]
        }
    );
    let x = d.materialize(Part::Train).x;
    let want = Tensor::from_slice(&train.pixels).to_kind(Kind::Float) / 255.0;
    assert!(x.flatten(0, -1).allclose(&want, 1e-6, 1e-7, false));
    assert_eq!(column_value(&d, "normalize"), Some(Value::Bool(false)));
}

#[test]
fn cifar10_pickles_from_python_2_and_3_read_as_written() {
    for python in [Python::Two, Python::Three] {
        let dir = tempfile::tempdir().unwrap();
        let (train, test) = formats::cifar10_python(dir.path(), 2, 3, 7, python);
        let d = ok("cifar10", &opts(dir.path()));
        assert_eq!(bytes(&d.train.x), train.pixels, "{python:?}");
        assert_eq!(ints(&d.train.y), train.labels, "{python:?}");
        assert_eq!(bytes(&d.test.x), test.pixels, "{python:?}");
        assert_eq!(ints(&d.test.y), test.labels, "{python:?}");
        assert_eq!(d.classes, formats::CIFAR10_NAMES);
        assert_eq!(
            column_value(&d, "data_format"),
            Some(Value::Str("python".into()))
        );
    }
}

#[test]
fn large_pickles_use_long_memo_indices_and_batched_appends() {
    // 1500 labels: two APPENDS batches; > 255 memo entries from the file names.
    let dir = tempfile::tempdir().unwrap();
    let (train, _) = formats::cifar10_python(dir.path(), 300, 1, 3, Python::Two);
    let d = ok("cifar10", &opts(dir.path()));
    assert_eq!(ints(&d.train.y), train.labels);
    assert_eq!(d.train.len(), 1500);
}

#[test]
fn binary_is_preferred_and_format_chooses() {
    let dir = tempfile::tempdir().unwrap();
    let (bin, _) = formats::cifar10_binary(dir.path(), 1, 1, 10);
    let (py, _) = formats::cifar10_python(dir.path(), 1, 1, 20, Python::Three);
    assert_ne!(bin.pixels, py.pixels);
    assert_eq!(bytes(&ok("cifar10", &opts(dir.path())).train.x), bin.pixels);
    let python = Options {
        format: Some(Format::Python),
        ..opts(dir.path())
    };
    assert_eq!(bytes(&ok("cifar10", &python).train.x), py.pixels);

    let only_py = tempfile::tempdir().unwrap();
    formats::cifar10_python(only_py.path(), 1, 1, 20, Python::Three);
    let e = err(
        "cifar10",
        &Options {
            format: Some(Format::Binary),
            ..opts(only_py.path())
        },
    );
    assert!(e.contains("looked for cifar-10-batches-bin/"), "{e}");
}

#[test]
fn cifar100_fine_labels_by_default_coarse_on_request() {
    let bin = tempfile::tempdir().unwrap();
    let (train, test) = formats::cifar100_binary(bin.path(), 6, 3, 4);
    let py = tempfile::tempdir().unwrap();
    formats::cifar100_python(py.path(), 6, 3, 4, Python::Three);
    for root in [bin.path(), py.path()] {
        let fine = ok("cifar100", &opts(root));
        assert_eq!(ints(&fine.train.y), train.labels);
        assert_eq!(ints(&fine.test.y), test.labels);
        assert_eq!(bytes(&fine.train.x), train.pixels);
        assert_eq!(fine.classes, formats::cifar100_names(false));
        assert_eq!(
            column_value(&fine, "label_kind"),
            Some(Value::Str("fine".into()))
        );
        let coarse = ok(
            "cifar100",
            &Options {
                coarse: true,
                ..opts(root)
            },
        );
        assert_eq!(ints(&coarse.train.y), train.coarse);
        assert_eq!(ints(&coarse.test.y), test.coarse);
        assert_eq!(coarse.classes, formats::cifar100_names(true));
        assert_eq!(
            column_value(&coarse, "label_kind"),
            Some(Value::Str("coarse".into()))
        );
    }
}

#[test]
fn corrupt_cifar_binary_files_are_named_with_sizes() {
    let dir = tempfile::tempdir().unwrap();
    formats::cifar10_binary(dir.path(), 2, 2, 5);
    let folder = dir.path().join("cifar-10-batches-bin");
    let batch = folder.join("data_batch_2.bin");
    let full = std::fs::read(&batch).unwrap();
    std::fs::write(&batch, &full[..full.len() - 10]).unwrap();
    let e = err("cifar10", &opts(dir.path()));
    assert!(e.contains(&batch.display().to_string()), "{e}");
    assert!(e.contains("3073-byte records"), "{e}");
    assert!(
        e.contains("30730000 bytes for an official file of 10000 images"),
        "{e}"
    );
    assert!(
        e.contains(&format!("found {} bytes", full.len() - 10)),
        "{e}"
    );
    std::fs::write(&batch, &full).unwrap();

    let test = folder.join("test_batch.bin");
    let mut bad = std::fs::read(&test).unwrap();
    bad[3073] = 12; // the second record's label
    std::fs::write(&test, &bad).unwrap();
    let e = err("cifar10", &opts(dir.path()));
    assert!(
        e.contains(&format!(
            "{}: example 1 has label 12, but there are 10 classes",
            test.display()
        )),
        "{e}"
    );

    std::fs::remove_file(folder.join("data_batch_4.bin")).unwrap();
    let e = err("cifar10", &opts(dir.path()));
    assert!(e.contains("cannot read"), "{e}");
    assert!(e.contains("data_batch_4.bin"), "{e}");

    std::fs::write(folder.join("batches.meta.txt"), "a\nb\n").unwrap();
    let e = err("cifar10", &opts(dir.path()));
    assert!(
        e.contains("batches.meta.txt: expected 10 class names, found 2"),
        "{e}"
    );
}

fn write_pickle(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn corrupt_or_foreign_pickles_are_refused_with_file_and_opcode() {
    let dir = tempfile::tempdir().unwrap();
    formats::cifar10_python(dir.path(), 2, 2, 6, Python::Two);
    let folder = dir.path().join("cifar-10-batches-py");
    let batch = folder.join("data_batch_1");
    let full = std::fs::read(&batch).unwrap();
    let expect = |needles: &[&str]| {
        let e = err("cifar10", &opts(dir.path()));
        for n in needles {
            assert!(e.contains(n), "`{n}` not in: {e}");
        }
    };
    let name = batch.display().to_string();

    write_pickle(&batch, &full[..full.len() / 2]);
    expect(&[
        &name,
        "not a readable pickle: truncated",
        &format!("found {}", full.len() / 2),
    ]);

    // What `pickle.dumps(os.system("ls"))`-style payloads look like: never run.
    write_pickle(
        &batch,
        b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.",
    );
    expect(&[
        &name,
        "refusing global `os.system`",
        "opcode 0x63 'c' at byte 2",
    ]);

    write_pickle(
        &batch,
        b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00}\x94.",
    );
    expect(&[&name, "pickle protocol 4 is not supported", "at byte 0"]);

    write_pickle(
        &batch,
        b"\x80\x02}q\x00(X\x01\x00\x00\x00aG?\xf0\x00\x00\x00\x00\x00\x00u.",
    );
    expect(&[&name, "unsupported pickle opcode", "0x47 'G' at byte 12"]);

    let short = Py::Dict(vec![
        ("data", Py::U8Array(vec![2, 3072], vec![0; 3072])),
        ("labels", Py::Ints(vec![0, 1])),
    ]);
    write_pickle(&batch, &formats::pickle(&short, Python::Three));
    expect(&[
        &name,
        "array data is 3072 bytes, but shape [2, 3072] of `|u1` needs 6144",
    ]);

    let mismatched = Py::Dict(vec![
        ("data", Py::U8Array(vec![2, 3072], vec![0; 6144])),
        ("labels", Py::Ints(vec![0])),
    ]);
    write_pickle(&batch, &formats::pickle(&mismatched, Python::Two));
    expect(&[&name, "`data` has 2 images but `labels` has 1 labels"]);

    let wrong_shape = Py::Dict(vec![
        ("data", Py::U8Array(vec![2, 1024], vec![0; 2048])),
        ("labels", Py::Ints(vec![0, 1])),
    ]);
    write_pickle(&batch, &formats::pickle(&wrong_shape, Python::Two));
    expect(&[&name, "shape [n, 3072], found `|u1` of shape [2, 1024]"]);

    let bad_label = Py::Dict(vec![
        ("data", Py::U8Array(vec![1, 3072], vec![0; 3072])),
        ("labels", Py::Ints(vec![10])),
    ]);
    write_pickle(&batch, &formats::pickle(&bad_label, Python::Three));
    expect(&[&name, "example 0 has label 10, but there are 10 classes"]);

    let no_labels = Py::Dict(vec![("data", Py::U8Array(vec![1, 3072], vec![0; 3072]))]);
    write_pickle(&batch, &formats::pickle(&no_labels, Python::Three));
    expect(&[&name, "the dict has no `labels` entry"]);
}

#[test]
fn fashion_mnist_idx_plain_or_gzipped_and_padded() {
    for gz in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (train, test) = formats::fashion_mnist(dir.path(), 7, 3, gz, 9);
        let d = ok("fashion_mnist", &opts(dir.path()));
        assert_eq!(d.train.x.size(), [7, 1, 28, 28]);
        assert_eq!(bytes(&d.train.x), train.pixels);
        assert_eq!(ints(&d.train.y), train.labels);
        assert_eq!(bytes(&d.test.x), test.pixels);
        assert_eq!(d.classes[0], "T-shirt/top");
        assert_eq!(d.classes.len(), 10);
        assert_stats(&d, &train.pixels, [1, 28, 28]);

        let padded = ok(
            "fashion_mnist",
            &Options {
                pad: 2,
                ..opts(dir.path())
            },
        );
        assert_eq!(padded.input_shape(), [1, 32, 32]);
        assert_eq!(column_value(&padded, "pad"), Some(Value::Int(2)));
        let inner = padded.train.x.narrow(2, 2, 28).narrow(3, 2, 28);
        assert_eq!(bytes(&inner), train.pixels);
        let total: i64 = padded
            .train
            .x
            .to_kind(Kind::Int64)
            .sum(Kind::Int64)
            .int64_value(&[]);
        let inside: i64 = train.pixels.iter().map(|&v| i64::from(v)).sum();
        assert_eq!(total, inside, "the border is zero");
        assert_stats(&padded, &bytes(&padded.train.x), [1, 32, 32]);
        if gz {
            // The gzipped files were cached in the user's cache (tests/
            // data_cache.rs checks how): this temporary folder's entry goes.
            let [_, user] = cache::locations(dir.path(), "fashion_mnist", "train");
            let folder = user.parent().unwrap();
            assert!(folder.join("t10k.images").is_file());
            std::fs::remove_dir_all(folder).unwrap();
        }
    }
}

#[test]
fn corrupt_idx_files_are_named_with_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let images = root.join("train-images-idx3-ubyte");
    let labels = root.join("train-labels-idx1-ubyte");
    let e = |needles: &[&str]| {
        let e = err("fashion_mnist", &opts(root));
        for n in needles {
            assert!(e.contains(n), "`{n}` not in: {e}");
        }
    };
    formats::fashion_mnist(root, 5, 2, true, 1);
    let gz = root.join("train-images-idx3-ubyte.gz");
    let full = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &full[..full.len() - 20]).unwrap();
    e(&[
        &gz.display().to_string(),
        "cannot decompress",
        "truncated or corrupt",
    ]);
    std::fs::remove_file(&gz).unwrap();

    let mut gen = Gen::new(3);
    formats::idx(&images, &[5, 28, 28], &gen.bytes(5 * 784 - 20), false);
    e(&[
        &images.display().to_string(),
        "5×28×28 = 3920 bytes of values, found 3900",
    ]);

    formats::idx(&images, &[5, 27, 27], &gen.bytes(5 * 729), false);
    e(&["expected 28×28 images, found 27×27"]);

    formats::idx(&images, &[5, 28, 28], &gen.bytes(5 * 784), false);
    std::fs::remove_file(root.join("train-labels-idx1-ubyte.gz")).unwrap();
    formats::idx(&labels, &[4], &[0, 1, 2, 3], false);
    e(&["has 4 labels but", "has 5 images"]);

    formats::idx(&labels, &[5], &[0, 1, 2, 3, 10], false);
    e(&[
        &labels.display().to_string(),
        "example 4 has label 10, but there are 10 classes",
    ]);

    std::fs::write(&labels, b"\x00\x00\x08\x03\x00\x00").unwrap();
    e(&["not an IDX file of unsigned bytes with 1 dimensions"]);
}

#[test]
fn subsets_are_balanced_deterministic_and_copies_of_the_parent_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (train, _) = formats::fashion_mnist(dir.path(), 300, 5, false, 11);
    let d = ok("fashion_mnist", &opts(dir.path()));
    let counts = |s: &Dataset| {
        let mut c = vec![0; 10];
        for l in ints(&s.train.y) {
            c[l as usize] += 1;
        }
        c
    };
    let a = subset::subset(&d, 50, 1, true).unwrap();
    assert_eq!(counts(&a), vec![5; 10]);
    let again = subset::subset(&d, 50, 1, true).unwrap();
    assert!(a.train.x.equal(&again.train.x) && a.train.y.equal(&again.train.y));
    let other = subset::subset(&d, 50, 2, true).unwrap();
    assert!(
        !a.train.x.equal(&other.train.x),
        "another seed, another subset"
    );

    let chosen = subset::choose(&train.labels, &d.classes, 50, 1, true).unwrap();
    assert!(chosen.windows(2).all(|w| w[0] < w[1]), "distinct, in order");
    let index = Tensor::from_slice(&chosen);
    assert!(a.train.x.equal(&d.train.x.index_select(0, &index)));
    assert!(a.test.x.equal(&d.test.x), "the test split is unchanged");
    assert_eq!(a.inputs, d.inputs, "normalised as the full set");
    assert_eq!(column_value(&a, "subset_seed"), Some(Value::Int(1)));
    assert_eq!(
        column_value(&a, "subset_stratified"),
        Some(Value::Bool(true))
    );
    assert_eq!(column_value(&a, "n_train"), Some(Value::Int(50)));

    let b = subset::subset(&d, 53, 4, true).unwrap();
    let c = counts(&b);
    assert_eq!(c.iter().sum::<i64>(), 53);
    assert_eq!(c.iter().filter(|&&n| n == 6).count(), 3, "{c:?}");
    assert_eq!(c.iter().filter(|&&n| n == 5).count(), 7, "{c:?}");

    let plain = subset::subset(&d, 53, 4, false).unwrap();
    assert_eq!(plain.train.len(), 53);
    let want = subset::choose(&train.labels, &d.classes, 53, 4, false).unwrap();
    assert_eq!(
        bytes(&plain.train.x),
        bytes(&d.train.x.index_select(0, &Tensor::from_slice(&want)))
    );

    // More per class than the rarest class has.
    let mut per_class = [0; 10];
    for &l in &train.labels {
        per_class[l as usize] += 1;
    }
    let (rare, &fewest) = per_class
        .iter()
        .enumerate()
        .min_by_key(|(_, &n)| n)
        .unwrap();
    let e = format!(
        "{:#}",
        subset::subset(&d, 10 * (fewest + 1), 0, true).unwrap_err()
    );
    assert!(
        e.contains(&format!(
            "needs {} examples of class `{}`, but the training split has {fewest}",
            fewest + 1,
            d.classes[rare]
        )),
        "{e}"
    );
    let e = format!("{:#}", subset::subset(&d, 301, 0, false).unwrap_err());
    assert!(
        e.contains("n = 301 is out of range: the training split has 300"),
        "{e}"
    );
    let e = format!("{:#}", subset::subset(&a, 10, 0, true).unwrap_err());
    assert!(e.contains("already a subset"), "{e}");
}

fn script_error(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    run_text(dir.path(), text).expect_err("the script should fail")
}

#[test]
fn scripts_load_view_and_train_on_a_data_set() {
    let dir = tempfile::tempdir().unwrap();
    formats::cifar10_binary(dir.path(), 20, 4, 3);
    let root = dir.path().display();
    let script = format!(
        r#"
        let d = dataset("cifar10", #{{ root: "{root}" }});
        if d.input_shape != [3, 32, 32] || d.n_train != 100 || d.num_classes != 10 {{ throw "shape"; }}
        if d.mean.len() != 3 || d.std.len() != 3 || d.mean[0] <= 0.0 {{ throw "stats"; }}
        let s = d.subset(10, #{{ seed: 2 }});
        if s.class_counts != [1, 1, 1, 1, 1, 1, 1, 1, 1, 1] {{ throw "balance"; }}
        let r = random_labels(s, #{{ replicas: 2, zero_out: 0.1 }});
        if r.n_train != 20 {{ throw "replicas"; }}
        let m = model(#{{ arch: "mlp", hidden: [8] }}, d);
        let run = train(m, r, #{{ epochs: 1, batch_size: 8, augment: true }});
        record(run);
        "#
    );
    run_text(&dir.path().join("out"), &script).unwrap();
    let summary = std::fs::read(dir.path().join("out/summary/000000.parquet")).unwrap();
    let text = String::from_utf8_lossy(&summary);
    for col in [
        "subset_seed",
        "subset_stratified",
        "data_format",
        "normalize",
        "replicas",
    ] {
        assert!(text.contains(col), "summary lacks {col}");
    }
}

#[test]
fn bad_names_keys_and_folders_say_what_and_where() {
    let e = script_error("let d = dataset(\"cifar\");");
    assert!(
        e.contains("unknown data set `cifar` (did you mean `cifar10`?)"),
        "{e}"
    );
    assert!(
        e.contains("known: cifar10, cifar100, cinic10, restricted_imagenet, fashion_mnist"),
        "{e}"
    );
    assert!(e.contains("test.rhai:1:9"), "{e}");

    let e = script_error("dataset(\"cifar10\", #{ labels: \"coarse\" });");
    assert!(
        e.contains("dataset(\"cifar10\") options: unknown key `labels`; allowed keys: root, normalize, format"),
        "{e}"
    );
    let e = script_error("dataset(\"cifar100\", #{ labels: \"medium\" });");
    assert!(
        e.contains("`labels` = \"medium\" is not one of: fine, coarse"),
        "{e}"
    );
    let e = script_error("dataset(\"fashion_mnist\", #{ pad: 20 });");
    assert!(
        e.contains("`pad` = 20 is out of range: must be at least 0 and at most 16"),
        "{e}"
    );
    let e = script_error("dataset(\"cinic10\", #{ root: 3 });");
    assert!(
        e.contains("`root` must be a string, found an integer"),
        "{e}"
    );

    let e = script_error("dataset(\"cifar10\", #{ root: \"/no/such/folder\" });");
    assert!(
        e.contains("cifar10: no data in /no/such/folder (chosen by the `root` option"),
        "{e}"
    );
    assert!(
        e.contains("looked for cifar-10-batches-bin/ (binary) or cifar-10-batches-py/ (python)"),
        "{e}"
    );
    assert!(e.contains("`minima data fetch cifar10`"), "{e}");
    let e = script_error("dataset(\"fashion_mnist\", #{ root: \"/no/such/folder\" });");
    assert!(e.contains("train-images-idx3-ubyte[.gz]"), "{e}");
    assert!(e.contains("apt install dataset-fashion-mnist"), "{e}");
    let e = script_error("dataset(\"restricted_imagenet\", #{ root: \"/no/such\" });");
    assert!(
        e.contains("looked for train/ and val/") && e.contains("image-net.org"),
        "{e}"
    );
    let e = script_error("dataset(\"cinic10\", #{ root: \"/no/such\" });");
    assert!(e.contains("`minima data fetch cinic10`"), "{e}");

    let e = script_error("let d = toy(); d.subset(0);");
    assert!(e.contains("n = 0 is out of range"), "{e}");
    let e = script_error("let d = toy(); d.subset(4, #{ sed: 1 });");
    assert!(
        e.contains("subset options: unknown key `sed` (did you mean `seed`?)"),
        "{e}"
    );
    let e = script_error("let d = random_labels(toy()); d.subset(4);");
    assert!(e.contains("take the subset of the original data"), "{e}");
    let e = script_error("let d = toy(); print(d.mean);");
    assert!(e.contains("toy has feature inputs, not images"), "{e}");
}
