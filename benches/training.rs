//! One training epoch of the CPU-scale ResNet18 (width 0.25) on Fashion-MNIST padded
//! to 32x32, through the script host as a user runs it: images/s of the training
//! steps, with and without augmentation (crop+flip), and the augmentation's share.
//!
//! `cargo bench --bench training`; MINIMA_BENCH_TRAIN sets the training images
//! (default 2,000, a stratified subset; 60000 for the whole set). Needs Debian's
//! dataset-fashion-mnist (or MINIMA_DATA). A first epoch warms up libtorch's
//! kernels; then plain and augmented epochs alternate, three rounds, and the
//! median of each is printed.

use minima::host::{Host, Session, SessionOptions};
use minima::kit::params::Params;
use rhai::Map;

fn main() {
    minima::host::alloc::keep_large_allocations();
    let n: i64 = std::env::var("MINIMA_BENCH_TRAIN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let out = tempfile::tempdir().expect("a temporary folder");
    let host = Host::new(Session::new(SessionOptions {
        script: None,
        out: Some(out.path().join("run")),
        runs_base: out.path().to_path_buf(),
        device: tch::Device::cuda_if_available(),
        quiet: true,
        params: Params::default(),
        resume: false,
    }));
    let script = format!(
        r#"
        let full = dataset("fashion_mnist", #{{ pad: 2 }});
        let d = if {n} < full.n_train {{ full.subset({n}, #{{ seed: 0 }}) }} else {{ full }};
        let m = model(#{{ arch: "resnet18", width: 0.25 }}, d);
        let cfg = #{{ epochs: 1, batch_size: 128, lr: 0.1 }};
        train(m, d, cfg);
        let plain = [];
        let augmented = [];
        for round in 0..3 {{
            plain.push(train(m, d, cfg).history[0].images_per_s);
            augmented.push(train(m, d, cfg + #{{ augment: true }}).history[0].images_per_s);
        }}
        plain.sort();
        augmented.sort();
        #{{ plain: plain[1], augmented: augmented[1], epoch: d.n_train / plain[1],
            params: m.params(), n: d.n_train }}
        "#
    );
    let r: Map = host.engine.eval(&script).unwrap_or_else(|e| panic!("{e}"));
    let f = |k: &str| r[k].as_float().unwrap_or(f64::NAN);
    println!(
        "resnet18 width 0.25 ({} parameters), Fashion-MNIST 1x32x32, {} training images, batch 128, {} torch threads, {:?}",
        r["params"],
        r["n"],
        tch::get_num_threads(),
        tch::Device::cuda_if_available()
    );
    println!(
        "training steps, no augmentation : {:>8.1} images/s ({:.1} s per epoch)",
        f("plain"),
        f("epoch")
    );
    println!(
        "training steps, crop+flip       : {:>8.1} images/s",
        f("augmented")
    );
    println!(
        "augmentation share of a step    : {:>8.1} %",
        100.0 * (f("plain") / f("augmented") - 1.0)
    );
}
