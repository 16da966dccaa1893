//! Cost of each metric relative to one training epoch of the CPU-scale ResNet18
//! (width 0.25) on 2,000 training images: batch 128, vanilla SGD, training steps
//! only. The data are generated in memory (1x32x32 uint8 images, 10 classes, 2,000
//! train / 1,000 test), the size of Fashion-MNIST padded to 32x32, since no real
//! data set is needed to time the work.
//!
//! `cargo bench --bench metrics`; MINIMA_BENCH_TRAIN sets the training images.
//! Calls under 5 s are timed three times and the fastest kept.

use minima::data::{Augmentation, Dataset, Inputs, Part, Split};
use minima::metrics::track::Tracker;
use minima::metrics::{distance, fgsm, interpolate, margins, norms};
use minima::models::{Arch, Model, ModelSpec};
use minima::train::config::Settings;
use minima::train::fit::{train, TrainRequest};
use rhai::{Array, Dynamic, Map};
use std::rc::Rc;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

fn images(n_train: i64, n_test: i64) -> Dataset {
    let split = |n: i64, seed: i64| {
        minima::rng::seeded(seed, || Split {
            x: Tensor::randint(256, [n, 1, 32, 32], (Kind::Uint8, Device::Cpu)),
            y: Tensor::randint(10, [n], (Kind::Int64, Device::Cpu)),
        })
    };
    Dataset {
        name: "generated".into(),
        train: split(n_train, 1),
        test: split(n_test, 2),
        classes: (0..10).map(|c| c.to_string()).collect(),
        inputs: Inputs::Images {
            mean: vec![0.5],
            std: vec![0.25],
        },
        augmentation: Augmentation::None,
        relabel: None,
        describe: vec![],
    }
}

fn config_map(track: &[&str]) -> Map {
    let mut map = Map::new();
    map.insert("epochs".into(), Dynamic::from_int(1));
    let names: Array = track.iter().map(|t| Dynamic::from(t.to_string())).collect();
    map.insert("track".into(), Dynamic::from_array(names));
    map
}

fn settings() -> Settings {
    Settings::read(&config_map(&[])).expect("a valid train config")
}

/// Seconds of one call; calls under 5 s are repeated and the fastest of three
/// kept, since the shared CPU makes single short timings noisy.
fn time<T>(mut f: impl FnMut() -> T) -> f64 {
    let once = |f: &mut dyn FnMut() -> T| {
        let start = Instant::now();
        let _ = f();
        start.elapsed().as_secs_f64()
    };
    let first = once(&mut f);
    if first >= 5.0 {
        return first;
    }
    (0..2).map(|_| once(&mut f)).fold(first, f64::min)
}

fn main() {
    minima::host::alloc::keep_large_allocations();
    let n_train = std::env::var("MINIMA_BENCH_TRAIN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let data = Rc::new(images(n_train, 1000));
    let spec = ModelSpec {
        arch: Arch::Resnet18,
        hidden: vec![],
        width: 0.25,
        input_shape: vec![1, 32, 32],
        classes: 10,
        seed: 0,
    };
    let init = Model::new(spec, Device::Cpu).expect("resnet18 builds");
    let run = train(TrainRequest {
        init: &init,
        data: &data,
        settings: settings(),
        kind: "train",
        index: 0,
        quiet: true,
        checkpoint: None,
    })
    .expect("one epoch trains");
    let epoch = run.history[0].epoch_time_s;
    let m = &run.model;
    println!(
        "resnet18 width 0.25, {} parameters, {n_train} generated 1x32x32 train images, 1000 test; {} torch threads",
        m.num_parameters(),
        tch::get_num_threads()
    );
    println!("one training epoch (batch 128, steps only): {epoch:.3} s");
    let tracked = Tracker::new(&["norms".into(), "distance_to_init".into()], 1, &init);
    let interp = interpolate::Options {
        steps: 2,
        bn_batches: 20,
        batch_size: 128,
        seed: 0,
    };
    let eps: Vec<f64> = [0.0, 1.0, 2.0, 4.0, 8.0]
        .iter()
        .map(|k| k / 255.0)
        .collect();
    let rows: Vec<(&str, f64)> = vec![
        (
            "distance (d, trainable)",
            time(|| distance::between(&init, m, distance::Options::defaults().expect("defaults"))),
        ),
        (
            "distance (buffers, absolute)",
            time(|| {
                let o = distance::Options {
                    buffers: true,
                    relative: false,
                };
                distance::between(&init, m, o)
            }),
        ),
        ("norms (all five)", time(|| norms::norms(m))),
        (
            "  path_l1 + path_l2",
            time(|| (norms::path_norm(m, 1.0), norms::path_norm(m, 2.0))),
        ),
        (
            "  prod_spectral",
            time(|| {
                minima::metrics::state::layer_weights(m)
                    .iter()
                    .map(|(_, w)| norms::spectral_norm(w))
                    .product::<f64>()
            }),
        ),
        (
            "fgsm, 5 eps, 1000 test images",
            time(|| fgsm::fgsm(m, &data, Part::Test, &eps, None)),
        ),
        (
            "margins, train split",
            time(|| margins::margins(m, &data, Part::Train)),
        ),
        (
            "interpolate, per point (20 BN batches + eval)",
            time(|| interpolate::interpolate(&init, m, &data, interp)) / 2.0,
        ),
        (
            "tracking norms + distance_to_init, per epoch",
            time(|| tracked.measure(1, m, &data)),
        ),
    ];
    println!("{:<46} {:>9} {:>10}", "metric", "seconds", "of epoch");
    for (name, s) in rows {
        println!("{name:<46} {s:>9.4} {:>9.2}%", 100.0 * s / epoch);
    }
}
