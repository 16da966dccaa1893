//! The identical-work check of the benchmark against PyTorch, shared by
//! benches/compare.rs and tests/bench_reference.rs (both `#[path]`-include it).
//!
//! For each model, minima exports its initial weights (safetensors), a batch of
//! Fashion-MNIST pixels, the normalisation and the example order; minima trains
//! `steps` SGD steps (momentum and L2 on, no augmentation) through
//! `train::run::train_step`; compare/reference.py loads the same weights into the
//! mirror PyTorch module and takes the same steps on the same batches in the same
//! order, in float32 and in float64. Both report the parameter count, the mean
//! training loss over the steps and the eval-mode loss afterwards. They agree
//! when minima's losses are within `TOLERANCE` of PyTorch's float32 ones, or, as
//! kernels that sum in other orders may round apart by more over a few steps of
//! a deep net (minima's channels-last convolutions against PyTorch's NCHW ones),
//! at most twice as far from the float64 losses as PyTorch's float32 losses are.

use minima::data::{Dataset, Inputs, Part};
use minima::metrics::evaluate::evaluate;
use minima::models::{Model, ModelSpec};
use minima::train::dense::Dense;
use minima::train::sgd::{Sgd, SgdOptions};
use minima::train::step::{train_step, Batch, BatchTotals};
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::{Device, Kind, Tensor};

/// Largest relative difference of the losses accepted as the same computation:
/// float32 kernels summing in different orders drift by ~1e-6 per step.
pub const TOLERANCE: f64 = 1e-4;

const SGD: SgdOptions = SgdOptions {
    lr: 0.05,
    momentum: 0.9,
    dampening: 0.0,
    weight_decay: 5e-4,
    nesterov: false,
};

pub struct Agreement {
    pub name: String,
    pub params: (i64, i64),
    /// Mean training loss over the steps: minima, PyTorch.
    pub train_loss: (f64, f64),
    /// Eval-mode loss on the examples after the steps: minima, PyTorch.
    pub final_loss: (f64, f64),
    /// The same two losses from PyTorch in float64.
    pub exact: (f64, f64),
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

impl Agreement {
    pub fn max_relative_difference(&self) -> f64 {
        let rel = |(a, b): (f64, f64)| relative(a, b);
        rel(self.train_loss).max(rel(self.final_loss))
    }

    /// How far minima's and PyTorch's float32 losses are from float64's (the
    /// larger of the two losses' relative differences, each side).
    pub fn off_float64(&self) -> (f64, f64) {
        let off = |side: fn((f64, f64)) -> f64| {
            relative(side(self.train_loss), self.exact.0)
                .max(relative(side(self.final_loss), self.exact.1))
        };
        (off(|p| p.0), off(|p| p.1))
    }

    pub fn agrees(&self) -> bool {
        let (ours, theirs) = self.off_float64();
        self.params.0 == self.params.1
            && (self.max_relative_difference() <= TOLERANCE || ours <= 2.0 * theirs)
    }
}

/// The reference python of scripts/pytorch-reference.sh, if it is installed.
pub fn installed_reference() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("MINIMA_REFERENCE_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let cache = std::env::var_os("MINIMA_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|c| PathBuf::from(c).join("minima")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/minima")))?;
    let dest = cache.join("pytorch-2.13.0");
    dest.join(".complete")
        .is_file()
        .then(|| dest.join("venv/bin/python"))
}

pub fn reference_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("compare/reference.py")
}

/// Runs the check for `specs` on the first `steps` batches of 128 of `data`
/// (un-augmented, shuffled with a fixed seed), in `dir`.
pub fn check(
    python: &Path,
    data: &Dataset,
    specs: &[(String, ModelSpec)],
    steps: i64,
    dir: &Path,
) -> Result<Vec<Agreement>, String> {
    const BATCH: i64 = 128;
    let n = (steps * BATCH).min(data.len(Part::Train));
    let x = data.train.x.narrow(0, 0, n);
    let y = data.train.y.narrow(0, 0, n);
    let Inputs::Images { mean, std } = &data.inputs else {
        return Err("the identical-work check needs image data".into());
    };
    let small = data.derive(
        minima::data::Split {
            x: x.shallow_clone(),
            y: y.shallow_clone(),
        },
        None,
        Vec::new(),
    );
    let order = minima::rng::seeded(5, || Tensor::randperm(n, (Kind::Int64, Device::Cpu)));
    let floats = |v: &[f64]| Tensor::from_slice(v).to_kind(Kind::Float);
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for (name, spec) in specs {
        let model = Model::new(spec.clone(), Device::Cpu).map_err(|e| format!("{name}: {e}"))?;
        model
            .save(&dir.join(format!("{name}.init.safetensors")))
            .map_err(|e| format!("{name}: {e}"))?;
        Tensor::write_safetensors(
            &[
                ("x", &x),
                ("y", &y),
                ("order", &order),
                ("mean", &floats(mean)),
                ("std", &floats(std)),
            ],
            dir.join(format!("{name}.data.safetensors")),
        )
        .map_err(|e| format!("{name}: {e}"))?;
        let mut params = model.parameters();
        let mut sgd = Sgd::new(SGD, params.len()).map_err(|e| e.to_string())?;
        let mut totals = BatchTotals::new(Device::Cpu);
        // The mlp trains through the dense engine, as `train` does.
        let mut dense = Dense::for_model(&model);
        let mut start = 0;
        while start < n {
            let len = BATCH.min(n - start);
            let batch = Batch {
                index: &order.narrow(0, start, len),
                augment_seed: None,
                autocast: None,
            };
            train_step(
                &model,
                &mut params,
                &mut sgd,
                &small,
                batch,
                &mut totals,
                dense.as_mut(),
            );
            start += len;
        }
        // Mean over steps of the per-step mean loss (equal batches when n is a multiple).
        let train_loss = totals.read(n).loss;
        let final_loss = evaluate(&model, &small, Part::Train).loss;
        ours.push((name.clone(), model.num_parameters(), train_loss, final_loss));
        cases.push(serde_json::json!({
            "name": name, "lr": SGD.lr, "momentum": SGD.momentum,
            "weight_decay": SGD.weight_decay, "batch": BATCH,
        }));
    }
    std::fs::write(
        dir.join("cases.json"),
        serde_json::Value::Array(cases).to_string(),
    )
    .map_err(|e| e.to_string())?;
    let run = Command::new(python)
        .arg(reference_script())
        .arg("check")
        .arg(dir)
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if !run.status.success() {
        return Err(format!(
            "reference.py check failed:\n{}",
            String::from_utf8_lossy(&run.stderr)
        ));
    }
    let text = std::fs::read_to_string(dir.join("report.json")).map_err(|e| e.to_string())?;
    let report: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    ours.into_iter()
        .map(|(name, params, train_loss, final_loss)| {
            let r = &report[&name];
            let mean = |key: &str| -> Result<f64, String> {
                let losses: Vec<f64> = serde_json::from_value(r[key].clone())
                    .map_err(|e| format!("{name}: {key}: {e}"))?;
                Ok(losses.iter().sum::<f64>() / losses.len().max(1) as f64)
            };
            let theirs_train = mean("step_losses")?;
            Ok(Agreement {
                params: (params, r["params"].as_i64().unwrap_or(-1)),
                train_loss: (train_loss, theirs_train),
                final_loss: (final_loss, r["final_loss"].as_f64().unwrap_or(f64::NAN)),
                exact: (
                    mean("step_losses_f64")?,
                    r["final_loss_f64"].as_f64().unwrap_or(f64::NAN),
                ),
                name,
            })
        })
        .collect()
}
