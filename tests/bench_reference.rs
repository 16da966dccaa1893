//! The benchmark against PyTorch compares like with like: for every architecture the
//! PyTorch module of compare/reference.py has minima's parameter count, and from
//! minima's exported weights it reaches the same losses after the same SGD steps
//! (momentum and L2 on) on the same batches in the same order (compare/identical.rs,
//! which the benchmark itself runs at its own scale).
//!
//! Needs the reference PyTorch: `MINIMA_REFERENCE_PYTHON` when set, otherwise
//! scripts/pytorch-reference.sh installs it into the minima cache the first time
//! (as tests/pytorch_interop.rs does; the two share the install) and the test
//! fails with the script's message when that cannot be done. It never passes
//! without comparing.

#[path = "../compare/identical.rs"]
mod identical;

use minima::data::{Augmentation, Dataset, Inputs, Split};
use minima::models::{Arch, ModelSpec};
use std::path::PathBuf;
use std::process::Command;
use tch::{Device, Kind, Tensor};

/// The reference PyTorch's python: `MINIMA_REFERENCE_PYTHON` or the installed
/// one, else what scripts/pytorch-reference.sh installs.
fn reference_python() -> PathBuf {
    if let Some(python) = identical::installed_reference() {
        return python;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pytorch-reference.sh");
    let out = Command::new(script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert!(
        out.status.success(),
        "the reference PyTorch is needed and {script} could not install it:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn spec(arch: Arch, width: f64) -> ModelSpec {
    ModelSpec {
        arch,
        hidden: if arch == Arch::Mlp {
            vec![32, 16]
        } else {
            Vec::new()
        },
        width,
        input_shape: vec![1, 32, 32],
        classes: 10,
        seed: 7,
    }
}

/// Random uint8 images with labels, shaped as Fashion-MNIST padded to 32x32.
fn images(n: i64) -> Dataset {
    let (x, y) = minima::rng::seeded(1, || {
        (
            Tensor::randint(256, [n, 1, 32, 32], (Kind::Uint8, Device::Cpu)),
            Tensor::randint(10, [n], (Kind::Int64, Device::Cpu)),
        )
    });
    Dataset {
        name: "random".into(),
        test: Split {
            x: x.shallow_clone(),
            y: y.shallow_clone(),
        },
        train: Split { x, y },
        classes: (0..10).map(|c| c.to_string()).collect(),
        inputs: Inputs::Images {
            mean: vec![0.5],
            std: vec![0.29],
        },
        augmentation: Augmentation::CropFlip { pad: 4 },
        relabel: None,
        describe: Vec::new(),
    }
}

#[test]
fn pytorch_side_does_the_same_work_as_minima() {
    let python = reference_python();
    let specs: Vec<(String, ModelSpec)> = [
        (Arch::Mlp, 1.0),
        (Arch::Cnn, 0.25),
        (Arch::Vgg16, 0.125),
        (Arch::Resnet18, 0.125),
        (Arch::Resnet50, 0.0625),
        (Arch::Densenet40, 0.25),
    ]
    .into_iter()
    .map(|(a, w)| (a.as_str().to_string(), spec(a, w)))
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let agreements = identical::check(&python, &images(256), &specs, 2, dir.path())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(agreements.len(), specs.len());
    for a in &agreements {
        assert_eq!(a.params.0, a.params.1, "{}: parameter counts", a.name);
        assert!(a.train_loss.0.is_finite() && a.final_loss.0.is_finite());
        // Two steps from the init move the loss: the check compares training, not
        // just the forward pass.
        assert!(
            (a.train_loss.0 - a.final_loss.0).abs() > 1e-4,
            "{}: loss did not move ({:?})",
            a.name,
            a.train_loss
        );
        assert!(
            a.agrees(),
            "{}: minima {:?} vs PyTorch {:?} (max relative difference {:.2e})",
            a.name,
            (a.train_loss.0, a.final_loss.0),
            (a.train_loss.1, a.final_loss.1),
            a.max_relative_difference()
        );
    }
}
