//! Distances between weight vectors, as the paper defines them (§3.3):
//! d(W1, W2) = ‖W1 − W2‖_F / ‖W2‖_F, with ‖·‖_F the Frobenius norm of all
//! parameters concatenated into one vector. Accumulated in float64.
//!
//! W is the trainable parameters by default (the paper's code compares
//! `model.parameters()`); with `buffers` it also holds the batch norms' running
//! means and variances (`num_batches_tracked`, a counter, is never a weight).

use crate::kit::config::{Default as D, Rule};
use crate::kit::typed::key;
use crate::models::Model;
use crate::typed_config;
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

fn squared_norm(ts: &[Tensor]) -> Tensor {
    ts.iter()
        .map(|t| t.to_kind(Kind::Double).square().sum(Kind::Double))
        .fold(Tensor::from(0.0f64).to_device(device_of(ts)), |acc, s| {
            acc + s
        })
}

fn device_of(ts: &[Tensor]) -> tch::Device {
    ts.first().map_or(tch::Device::Cpu, |t| t.device())
}

/// ‖W‖_F.
pub fn norm(w: &[Tensor]) -> f64 {
    tch::no_grad(|| squared_norm(w).sqrt().double_value(&[]))
}

/// ‖W1 − W2‖_F.
pub fn absolute(w1: &[Tensor], w2: &[Tensor]) -> f64 {
    tch::no_grad(|| {
        let diffs: Vec<Tensor> = w1.iter().zip(w2).map(|(a, b)| a - b).collect();
        squared_norm(&diffs).sqrt().double_value(&[])
    })
}

/// d(W1, W2) = ‖W1 − W2‖_F / ‖W2‖_F.
pub fn relative(w1: &[Tensor], w2: &[Tensor]) -> f64 {
    match (host(w1), host(w2)) {
        (Some(a), Some(b)) if a.len() == b.len() => relative_host(&a, &b),
        _ => absolute(w1, w2) / norm(w2),
    }
}

/// Small CPU float32 weights as slices: for them the dozens of libtorch calls of
/// the tensor path cost more than the arithmetic (the per-epoch
/// `distance_from_init` of a small net).
fn host(ts: &[Tensor]) -> Option<Vec<&[f32]>> {
    const MAX_VALUES: usize = 1 << 20;
    let mut total = 0;
    ts.iter()
        .map(|t| {
            total += t.numel();
            let ok = crate::slices::is_host_float(t) && total <= MAX_VALUES;
            // Safety: checked to be a contiguous CPU float tensor, only read here
            // while the caller holds the tensors.
            ok.then(|| unsafe { crate::slices::floats(t) })
        })
        .collect()
}

/// `relative` on slices, with the tensor path's arithmetic: each difference in
/// float32, squares and sums in float64.
fn relative_host(w1: &[&[f32]], w2: &[&[f32]]) -> f64 {
    let (mut diff, mut base) = (0.0f64, 0.0f64);
    for (a, b) in w1.iter().zip(w2) {
        if a.len() != b.len() {
            return f64::NAN;
        }
        for (&x, &y) in a.iter().zip(b.iter()) {
            diff += f64::from(x - y).powi(2);
            base += f64::from(y).powi(2);
        }
    }
    diff.sqrt() / base.sqrt()
}

/// The tensors W of a model: trainable parameters, plus the floating-point
/// buffers (BN running statistics) when `buffers` is set, in one fixed order.
pub fn weights(model: &Model, buffers: bool) -> Vec<Tensor> {
    if !buffers {
        return model.parameters();
    }
    model
        .state()
        .into_iter()
        .map(|(_, t)| t)
        .filter(|t| t.is_floating_point())
        .collect()
}

/// Refuses two models whose weights do not correspond one to one.
pub fn check_same_architecture(what: &str, a: &Model, b: &Model) -> Result<()> {
    if !a.spec.same_architecture(&b.spec) {
        bail!(
            "{what} needs two models of one architecture, found {} and {}",
            a.summary(),
            b.summary()
        );
    }
    Ok(())
}

typed_config! {
    /// How `between` measures; the defaults are the paper's d over the
    /// trainable parameters.
    #[derive(Copy)]
    pub struct Options as DISTANCE("distance options") {
        buffers: bool = key(Rule::Bool, D::Bool(false), "include batch-norm running means and variances in W");
        relative: bool = key(Rule::Bool, D::Bool(true), "‖W1 − W2‖_F / ‖W2‖_F (the paper's d); false gives ‖W1 − W2‖_F");
    }
}

/// d(W1, W2) or ‖W1 − W2‖_F between two models of one architecture.
pub fn between(a: &Model, b: &Model, opts: Options) -> Result<f64> {
    check_same_architecture("distance", a, b)?;
    let (w1, w2) = (weights(a, opts.buffers), weights(b, opts.buffers));
    Ok(match opts.relative {
        true => relative(&w1, &w2),
        false => absolute(&w1, &w2),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_computed_values() {
        let w1 = [
            Tensor::from_slice(&[3.0f32, 0.0]),
            Tensor::from_slice(&[0.0f32]),
        ];
        let w2 = [
            Tensor::from_slice(&[0.0f32, 0.0]),
            Tensor::from_slice(&[4.0f32]),
        ];
        assert!((absolute(&w1, &w2) - 5.0).abs() < 1e-12);
        assert!((relative(&w1, &w2) - 5.0 / 4.0).abs() < 1e-12);
        assert_eq!(relative(&w2, &w2), 0.0);
    }
}
