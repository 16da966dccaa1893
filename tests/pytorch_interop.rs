//! minima's models and PyTorch's are interchangeable: for every architecture a
//! minima file loads into the PyTorch module of tests/python/minima_models.py with
//! `load_state_dict(strict=True)` and gives the same eval-mode outputs, a file
//! saved from PyTorch's `state_dict()` loads with `load_model` and gives PyTorch's
//! outputs, and the same seed draws the same initial weights in both.
//!
//! Runs scripts/pytorch-reference.sh, which installs the reference PyTorch into the
//! minima cache the first time (about a minute, 4.7 GB) and reuses it afterwards.

use minima::models::{Arch, Model, ModelSpec};
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::{Device, Kind, Tensor};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn reference_python() -> PathBuf {
    let out = Command::new(repo().join("scripts/pytorch-reference.sh"))
        .output()
        .expect("scripts/pytorch-reference.sh runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pytorch-reference.sh failed:\n{stderr}"
    );
    let python = String::from_utf8_lossy(&out.stdout).trim().to_string();
    PathBuf::from(python)
}

fn spec(arch: Arch, width: f64, shape: &[i64], classes: i64) -> ModelSpec {
    ModelSpec {
        arch,
        hidden: if arch == Arch::Mlp {
            vec![16, 8]
        } else {
            Vec::new()
        },
        width,
        input_shape: shape.to_vec(),
        classes,
        seed: 11,
    }
}

/// Every architecture, at a small width where its size allows, on 1- and
/// 3-channel inputs.
fn cases() -> Vec<(&'static str, ModelSpec)> {
    vec![
        ("mlp", spec(Arch::Mlp, 1.0, &[3, 8, 8], 5)),
        ("cnn", spec(Arch::Cnn, 0.25, &[1, 28, 28], 10)),
        ("vgg16", spec(Arch::Vgg16, 0.125, &[3, 32, 32], 10)),
        ("resnet18", spec(Arch::Resnet18, 0.125, &[3, 32, 32], 10)),
        ("resnet50", spec(Arch::Resnet50, 0.0625, &[1, 32, 32], 7)),
        ("densenet40", spec(Arch::Densenet40, 1.0, &[3, 32, 32], 10)),
    ]
}

fn read(path: &Path, name: &str) -> Tensor {
    Tensor::read_safetensors(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("{} has no {name}", path.display()))
}

fn assert_close(a: &Tensor, b: &Tensor, what: &str) {
    assert_eq!(a.size(), b.size(), "{what}: shapes");
    let diff = (a - b).abs().max().double_value(&[]);
    let scale = b.abs().max().double_value(&[]).max(1.0);
    assert!(diff <= 1e-5 * scale, "{what}: max difference {diff}");
}

#[test]
fn models_round_trip_through_pytorch() {
    let python = reference_python();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let mut ours = Vec::new();
    for (case, spec) in cases() {
        let model = Model::new(spec.clone(), Device::Cpu).unwrap();
        model
            .save(&out.join(format!("{case}.init.safetensors")))
            .unwrap();
        let mut batch = vec![6];
        batch.extend(&spec.input_shape);
        let (x, noise) = minima::rng::seeded(3, || {
            (
                Tensor::randn(&batch, (Kind::Float, Device::Cpu)),
                Tensor::randn(&batch, (Kind::Float, Device::Cpu)) * 2.0 + 0.5,
            )
        });
        let y_train = tch::no_grad(|| {
            let y = model.forward_t(&noise, true);
            let _ = model.forward_t(&(&noise * 0.5), true);
            y
        });
        model
            .save(&out.join(format!("{case}.minima.safetensors")))
            .unwrap();
        Tensor::write_safetensors(
            &[("x", &x), ("noise", &noise), ("y_train", &y_train)],
            out.join(format!("{case}.input.safetensors")),
        )
        .unwrap();
        let y = tch::no_grad(|| model.forward_t(&x, false));
        ours.push((case, model, x, y));
    }
    let run = Command::new(&python)
        .arg(repo().join("tests/python/interop.py"))
        .arg(out)
        .args(cases().iter().map(|(c, _)| *c))
        .output()
        .expect("the reference python runs");
    assert!(
        run.status.success(),
        "interop.py failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();

    for (case, model, x, y) in &ours {
        let r = &report[*case];
        let names: Vec<String> = model.state().into_iter().map(|(n, _)| n).collect();
        let keys: Vec<String> = serde_json::from_value(r["keys"].clone()).unwrap();
        assert_eq!(names, keys, "{case}: state names and order");
        assert_eq!(r["params"].as_i64(), Some(model.num_parameters()), "{case}");
        assert_eq!(
            r["init_identical"].as_bool(),
            Some(true),
            "{case}: the same seed should draw the same weights (max difference {})",
            r["init_max_diff"]
        );

        // Training mode: same outputs, and the same batch-norm statistics afterwards
        // (momentum, unbiased running variance, num_batches_tracked).
        for key in ["train_output_max_diff", "train_state_max_diff"] {
            let diff = r[key].as_f64().unwrap_or(f64::NAN);
            assert!(diff <= 1e-5, "{case}: {key} = {diff}");
        }

        // minima → PyTorch: same eval outputs.
        let theirs = read(&out.join(format!("{case}.torch-out.safetensors")), "y");
        assert_close(&theirs, y, &format!("{case}: minima file in PyTorch"));

        // PyTorch → minima: load_model needs nothing but the file.
        let loaded = Model::load(&out.join(format!("{case}.torch.safetensors")), Device::Cpu)
            .unwrap_or_else(|e| panic!("{case}: {e:#}"));
        assert_eq!(loaded.spec.seed, model.spec.seed + 1);
        let reference = read(&out.join(format!("{case}.torch-ref-out.safetensors")), "y");
        let mine = tch::no_grad(|| loaded.forward_t(x, false));
        assert_close(
            &mine,
            &reference,
            &format!("{case}: PyTorch file in minima"),
        );
    }
}
