//! The dense engine (src/train/dense/) against the libtorch path it replaces
//! for mlps on the CPU: the same steps, evaluations and runs, to rounding.

use crate::common;
use minima::data::random_labels::{random_labels, RandomLabelOptions};
use minima::data::toy::{toy, ToyOptions};
use minima::data::{Dataset, Part};
use minima::metrics::evaluate::evaluate;
use minima::models::{Arch, Model, ModelSpec};
use minima::train::dense::Dense;
use minima::train::sgd::{Sgd, SgdOptions};
use minima::train::step::{train_step, Batch, BatchTotals};
use tch::{Device, Kind, Tensor};

fn mlp(hidden: &[i64], inputs: i64, classes: i64) -> Model {
    let spec = ModelSpec {
        arch: Arch::Mlp,
        hidden: hidden.to_vec(),
        width: 1.0,
        input_shape: vec![inputs],
        classes,
        seed: 4,
    };
    Model::new(spec, Device::Cpu).unwrap()
}

fn toy_data(seed: i64) -> Dataset {
    toy(
        &ToyOptions {
            n_train: 30,
            n_test: 40,
            seed,
            ..ToyOptions::defaults().unwrap()
        },
        Device::Cpu,
    )
}

/// Largest |a − b| / (|b| + 1e-3) over all parameters.
/// The paper's SOTA SGD settings (momentum 0.9, L2 5e-4) at `lr`.
fn sota_sgd(lr: f64) -> SgdOptions {
    SgdOptions {
        lr,
        momentum: 0.9,
        dampening: 0.0,
        weight_decay: 5e-4,
        nesterov: false,
    }
}

fn max_relative_difference(a: &Model, b: &Model) -> f64 {
    a.parameters()
        .iter()
        .zip(b.parameters())
        .map(|(x, y)| {
            let d = (x - &y).abs() / (y.abs() + 1e-3);
            d.max().double_value(&[])
        })
        .fold(0.0, f64::max)
}

/// Trains two copies of `init` for `epochs` epochs on `data`, one through the
/// libtorch step and one through the dense engine, with the same batches of 7.
fn both_ways(
    init: &Model,
    data: &Dataset,
    o: SgdOptions,
    epochs: i64,
    augment: bool,
) -> (Model, Model, f64, f64) {
    both_ways_at(init, data, o, (epochs, augment), (7, 1))
}

/// `both_ways` with batches of `batch` rows and the engine on `threads` threads.
fn both_ways_at(
    init: &Model,
    data: &Dataset,
    o: SgdOptions,
    (epochs, augment): (i64, bool),
    (batch, threads): (i64, usize),
) -> (Model, Model, f64, f64) {
    let mut losses = [0.0; 2];
    let models = [init.copy().unwrap(), init.copy().unwrap()];
    for (k, model) in models.iter().enumerate() {
        let mut params = model.parameters();
        let mut sgd = Sgd::new(o, params.len()).unwrap();
        let mut dense = if k == 1 {
            Dense::for_model(model).map(|d| d.with_threads(threads))
        } else {
            None
        };
        assert_eq!(dense.is_some(), k == 1, "an mlp on the CPU gets the engine");
        let n = data.epoch_len(augment);
        let mut totals = BatchTotals::new(Device::Cpu);
        for epoch in 0..epochs {
            let order =
                minima::rng::seeded(epoch, || Tensor::randperm(n, (Kind::Int64, Device::Cpu)));
            let mut start = 0;
            while start < n {
                let len = batch.min(n - start);
                let batch = Batch {
                    index: &order.narrow(0, start, len),
                    augment_seed: augment.then_some(epoch * 1000 + start),
                    autocast: None,
                };
                train_step(
                    model,
                    &mut params,
                    &mut sgd,
                    data,
                    batch,
                    &mut totals,
                    dense.as_mut(),
                );
                start += len;
            }
        }
        losses[k] = totals.read(n * epochs).loss;
    }
    let [a, b] = models;
    (a, b, losses[0], losses[1])
}

#[test]
fn dense_steps_follow_the_libtorch_steps_for_every_sgd_variant() {
    let data = toy_data(1);
    let init = mlp(&[100, 100], 2, 2);
    let variants = [
        (0.0, 0.0, 0.0, false),
        (0.9, 5e-4, 0.0, false),
        (0.9, 0.1, 0.1, false),
        (0.5, 1e-3, 0.0, true),
    ];
    for (momentum, weight_decay, dampening, nesterov) in variants {
        let o = SgdOptions {
            lr: 0.05,
            momentum,
            dampening,
            weight_decay,
            nesterov,
        };
        let (torch, dense, torch_loss, dense_loss) = both_ways(&init, &data, o, 5, false);
        let diff = max_relative_difference(&dense, &torch);
        assert!(diff < 1e-4, "{o:?}: parameters differ by {diff:e}");
        assert!(
            (torch_loss - dense_loss).abs() < 1e-5 * torch_loss.abs().max(1.0),
            "{o:?}: batch loss {dense_loss} vs {torch_loss}"
        );
        // The run moved: the comparison is not between two unchanged models.
        assert!(max_relative_difference(&dense, &init) > 1e-3);
    }
}

#[test]
fn batches_split_across_threads_take_the_libtorch_step_and_repeat() {
    // Batches of 128 rows are shared by the engine's threads (64 rows each on two,
    // 42 or 43 on three) and their gradients summed: the same step to rounding.
    let data = toy(
        &ToyOptions {
            n_train: 512,
            n_test: 40,
            seed: 5,
            ..ToyOptions::defaults().unwrap()
        },
        Device::Cpu,
    );
    let init = mlp(&[100, 100], 2, 2);
    let o = sota_sgd(0.05);
    let mut runs = Vec::new();
    for threads in [1, 2, 3, 2] {
        let (torch, dense, torch_loss, dense_loss) =
            both_ways_at(&init, &data, o, (4, false), (128, threads));
        let diff = max_relative_difference(&dense, &torch);
        assert!(
            diff < 1e-4,
            "{threads} threads: parameters differ by {diff:e}"
        );
        assert!(
            (torch_loss - dense_loss).abs() < 1e-5 * torch_loss,
            "{threads} threads: batch loss {dense_loss} vs {torch_loss}"
        );
        assert!(
            max_relative_difference(&dense, &init) > 1e-3,
            "the run moved"
        );
        runs.push(dense);
    }
    let same = runs[1]
        .parameters()
        .iter()
        .zip(runs[3].parameters())
        .all(|(a, b)| a.equal(&b));
    assert!(same, "two runs on two threads are bit for bit the same");
}

#[test]
fn augmented_and_image_batches_take_the_same_step() {
    // The toy's noise augmentation goes through `train_batch` and then the engine.
    let data = toy_data(2);
    let o = sota_sgd(0.1);
    let (torch, dense, ..) = both_ways(&mlp(&[16], 2, 2), &data, o, 3, true);
    assert!(max_relative_difference(&dense, &torch) < 1e-4);
    // uint8 images, scaled and normalised per channel, through a deeper mlp.
    let images = minima::data::Split {
        x: minima::rng::seeded(3, || {
            Tensor::randint(256, [40, 1, 4, 4], (Kind::Uint8, Device::Cpu))
        }),
        y: minima::rng::seeded(4, || Tensor::randint(3, [40], (Kind::Int64, Device::Cpu))),
    };
    let data = Dataset {
        name: "images".into(),
        train: minima::data::Split {
            x: images.x.shallow_clone(),
            y: images.y.shallow_clone(),
        },
        test: images,
        classes: vec!["a".into(), "b".into(), "c".into()],
        inputs: minima::data::Inputs::Images {
            mean: vec![0.4],
            std: vec![0.3],
        },
        augmentation: minima::data::Augmentation::None,
        relabel: None,
        describe: Vec::new(),
    };
    let (torch, dense, ..) = both_ways(&mlp(&[20, 12, 9], 16, 3), &data, o, 3, false);
    assert!(max_relative_difference(&dense, &torch) < 1e-4);
}

#[test]
fn dense_evaluation_equals_metrics_evaluate_on_plain_and_random_label_splits() {
    let data = toy_data(3);
    let relabelled = random_labels(
        &data,
        &RandomLabelOptions {
            replicas: 3,
            zero_out: 0.5,
            seed: 9,
        },
    );
    let model = mlp(&[50], 2, 2);
    let mut dense = Dense::for_model(&model).unwrap();
    for d in [&data, &relabelled] {
        for part in [Part::Train, Part::Test] {
            // Twice: the second reads the split the first kept.
            for _ in 0..2 {
                let want = evaluate(&model, d, part);
                let got = dense.evaluate(&model, d, part);
                assert!(
                    (got.loss - want.loss).abs() < 1e-6,
                    "{part:?}: {got:?} vs {want:?}"
                );
                assert_eq!(got.acc, want.acc, "{part:?}");
            }
        }
        dense = Dense::for_model(&model).unwrap();
    }
    // A split kept by one evaluation is not reused for another data set that shares
    // its storage: here the first 10 and then all 80 test points, alternating.
    for images in [10, 80, 10] {
        let view = Dataset {
            test: minima::data::Split {
                x: data.test.x.narrow(0, 0, images),
                y: data.test.y.narrow(0, 0, images),
            },
            train: minima::data::Split {
                x: data.train.x.shallow_clone(),
                y: data.train.y.shallow_clone(),
            },
            name: data.name.clone(),
            classes: data.classes.clone(),
            inputs: data.inputs.clone(),
            augmentation: data.augmentation,
            relabel: None,
            describe: Vec::new(),
        };
        let want = evaluate(&model, &view, Part::Test);
        let got = dense.evaluate(&model, &view, Part::Test);
        assert!(
            (got.loss - want.loss).abs() < 1e-6,
            "{images} points: {got:?} vs {want:?}"
        );
        assert_eq!(got.acc, want.acc, "{images} points");
    }
}

#[test]
fn host_gathered_batches_are_the_batches_train_batch_makes() {
    // Algorithm 1's view: replicas, zeroed values, hashed labels.
    let data = random_labels(
        &toy_data(4),
        &RandomLabelOptions {
            replicas: 2,
            zero_out: 0.5,
            seed: 1,
        },
    );
    let init = mlp(&[32], 2, 2);
    let o = SgdOptions {
        lr: 0.1,
        momentum: 0.0,
        dampening: 0.0,
        weight_decay: 0.0,
        nesterov: false,
    };
    let (a, b) = (init.copy().unwrap(), init.copy().unwrap());
    let (pa, pb) = (a.parameters(), b.parameters());
    let (mut sa, mut sb) = (Sgd::new(o, 2).unwrap(), Sgd::new(o, 2).unwrap());
    let (mut da, mut db) = (Dense::for_model(&a).unwrap(), Dense::for_model(&b).unwrap());
    let n = data.epoch_len(false);
    let order = minima::rng::seeded(7, || Tensor::randperm(n, (Kind::Int64, Device::Cpu)));
    for start in (0..n).step_by(10) {
        let len = 10.min(n - start);
        let gathered = da
            .step_rows(&pa, &mut sa, &data, &order, (start, len), None)
            .expect("a small float split is kept");
        let batch = data.train_batch(&order.narrow(0, start, len), None);
        let stepped = db.step_on(&pb, &mut sb, &batch).unwrap();
        assert_eq!(gathered, stepped, "rows {start}..{}", start + len);
    }
    // The same rows in the same order: the same arithmetic, bit for bit.
    for (x, y) in pa.iter().zip(&pb) {
        assert!(x.equal(y));
    }
}

/// Three-channel 8x8 uint8 images with per-channel constants unlike each other
/// and SOTA's crop (pad 2) and flip.
fn crop_flip_images(n: i64) -> Dataset {
    let split = |seed: i64| minima::data::Split {
        x: minima::rng::seeded(seed, || {
            Tensor::randint(256, [n, 3, 8, 8], (Kind::Uint8, Device::Cpu))
        }),
        y: minima::rng::seeded(seed + 1, || {
            Tensor::randint(4, [n], (Kind::Int64, Device::Cpu))
        }),
    };
    Dataset {
        name: "crops".into(),
        train: split(1),
        test: split(3),
        classes: (0..4).map(|c| c.to_string()).collect(),
        inputs: minima::data::Inputs::Images {
            mean: vec![0.4914, 0.4822, 0.4465],
            std: vec![0.2023, 0.1994, 0.2010],
        },
        augmentation: minima::data::Augmentation::CropFlip { pad: 2 },
        relabel: None,
        describe: Vec::new(),
    }
}

#[test]
fn host_cropped_and_flipped_batches_are_the_libtorch_batches_bit_for_bit() {
    let plain = crop_flip_images(24);
    // Also Algorithm 1's view (replicas with zeroed values), cropped the same way.
    let replicated = random_labels(
        &plain,
        &RandomLabelOptions {
            replicas: 2,
            zero_out: 0.3,
            seed: 1,
        },
    );
    let o = sota_sgd(0.1);
    for data in [plain, replicated] {
        let init = mlp(&[16], 3 * 8 * 8, 4);
        let (a, b) = (init.copy().unwrap(), init.copy().unwrap());
        let (pa, pb) = (a.parameters(), b.parameters());
        let (mut sa, mut sb) = (Sgd::new(o, 4).unwrap(), Sgd::new(o, 4).unwrap());
        let (mut da, mut db) = (Dense::for_model(&a).unwrap(), Dense::for_model(&b).unwrap());
        let n = data.epoch_len(true);
        let order = minima::rng::seeded(7, || Tensor::randperm(n, (Kind::Int64, Device::Cpu)));
        let mut flipped_or_shifted = 0;
        for (step, start) in (0..n).step_by(10).enumerate() {
            let len = 10.min(n - start);
            let seed = 100 + step as i64;
            let host = da
                .step_rows(&pa, &mut sa, &data, &order, (start, len), Some(seed))
                .expect("a small float split of images with crop+flip is gathered on the host");
            let index = order.narrow(0, start, len);
            let batch = data.train_batch(&index, Some(seed));
            let libtorch = db.step_on(&pb, &mut sb, &batch).unwrap();
            assert_eq!(
                host,
                libtorch,
                "{}: rows {start}..{}",
                data.name,
                start + len
            );
            let unaugmented = data.train_batch(&index, None);
            flipped_or_shifted += i64::from(!batch.x.equal(&unaugmented.x));
        }
        assert!(flipped_or_shifted > 0, "the batches were augmented");
        // Same batches, same arithmetic: the same parameters, bit for bit.
        for (x, y) in pa.iter().zip(&pb) {
            assert!(x.equal(y), "{}", data.name);
        }
    }
}

/// Batches of a split too large to keep are gathered straight from its stored
/// pixels, scaled, normalised (and with `augment_seed` cropped and flipped) on
/// the host, each engine thread gathering its own rows: the libtorch batches,
/// and so the libtorch steps, bit for bit.
#[test]
fn batches_of_stored_pixels_are_the_libtorch_batches_bit_for_bit() {
    let data = crop_flip_images(300);
    let o = sota_sgd(0.1);
    let init = mlp(&[16], 3 * 8 * 8, 4);
    let (a, b) = (init.copy().unwrap(), init.copy().unwrap());
    let (pa, pb) = (a.parameters(), b.parameters());
    let (mut sa, mut sb) = (Sgd::new(o, 4).unwrap(), Sgd::new(o, 4).unwrap());
    // Nothing is kept: every batch comes from the stored pixels. Two threads
    // share batches of 64 rows or more (the last, of 44, stays on one).
    let mut da = Dense::for_model(&a)
        .unwrap()
        .with_keep_limit(0)
        .with_threads(2);
    let mut db = Dense::for_model(&b).unwrap().with_threads(2);
    let n = data.epoch_len(true);
    let order = minima::rng::seeded(7, || {
        Tensor::randint(n, [2 * n], (Kind::Int64, Device::Cpu))
    });
    for (step, start) in (0..2 * n).step_by(64).enumerate() {
        let len = 64.min(2 * n - start);
        let seed = (step % 2 == 0).then_some(100 + step as i64);
        let host = da
            .step_rows(&pa, &mut sa, &data, &order, (start, len), seed)
            .expect("uint8 images on the CPU are gathered from their pixels");
        let batch = data.train_batch(&order.narrow(0, start, len), seed);
        let libtorch = db.step_on(&pb, &mut sb, &batch).unwrap();
        assert_eq!(
            host,
            libtorch,
            "rows {start}..{}, seed {seed:?}",
            start + len
        );
    }
    for (x, y) in pa.iter().zip(&pb) {
        assert!(x.equal(y));
    }
    // Algorithm 1's view zeroes values the libtorch path draws: not gathered here.
    let replicated = random_labels(
        &data,
        &RandomLabelOptions {
            replicas: 2,
            zero_out: 0.3,
            seed: 1,
        },
    );
    let taken = da.step_rows(&pa, &mut sa, &replicated, &order, (0, 10), None);
    assert!(
        taken.is_none(),
        "a random-label view falls back to libtorch"
    );
}

#[test]
fn only_mlps_get_the_engine() {
    let spec = ModelSpec {
        arch: Arch::Cnn,
        hidden: Vec::new(),
        width: 0.25,
        input_shape: vec![1, 8, 8],
        classes: 3,
        seed: 0,
    };
    assert!(Dense::for_model(&Model::new(spec, Device::Cpu).unwrap()).is_none());
    assert!(
        Dense::for_model(&mlp(&[], 5, 2)).is_some(),
        "a linear model is an mlp without hidden layers"
    );
}

/// A whole script run through `minima run`, with and without `MINIMA_ENGINE=libtorch`.
#[test]
fn minima_runs_agree_with_the_libtorch_engine() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.rhai");
    std::fs::write(
        &script,
        r#"
        let d = toy(#{ n_train: 40, n_test: 40, seed: 5 });
        let m = model(#{ arch: "mlp", hidden: [64, 64], seed: 5 }, d);
        record(train(m, d, #{ lr: 0.05, batch_size: 8, epochs: 4, momentum: 0.9, weight_decay: 5e-4, seed: 2 }));
        record(adversarial_init(m, d, #{ lr: 0.1, batch_size: 8, epochs: 6, seed: 3, replicas: 2, zero_out: 0.5 }));
        "#,
    )
    .unwrap();
    let mut histories = Vec::new();
    for engine in ["dense", "libtorch"] {
        let value = (engine == "libtorch").then_some("libtorch");
        let out = dir.path().join(engine);
        let (config, history) = common::run_recorded(&script, &out, ("MINIMA_ENGINE", value));
        assert_eq!(config["mlp_engine"], engine, "config.json names the engine");
        histories.push(history);
    }
    assert_eq!(histories[0].height(), 10);
    for column in [
        "batch_loss",
        "train_loss",
        "test_loss",
        "distance_from_init",
    ] {
        let (a, b) = (
            common::floats(&histories[0], column),
            common::floats(&histories[1], column),
        );
        for (x, y) in a.iter().zip(&b) {
            let (x, y) = (x.unwrap(), y.unwrap());
            assert!(
                (x - y).abs() <= 1e-4 * y.abs().max(1e-2),
                "{column}: {x} vs {y}"
            );
        }
    }
    for column in ["train_acc", "test_acc"] {
        assert_eq!(
            common::floats(&histories[0], column),
            common::floats(&histories[1], column),
            "{column}"
        );
    }
}
