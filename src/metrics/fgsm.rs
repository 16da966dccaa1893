//! The Fast Gradient Sign Method (Goodfellow et al. 2015) in pixel space.
//!
//! For each example, with x the un-normalised input (pixels in [0, 1]) and
//! L = cross_entropy(model(normalize(x)), y) in eval mode:
//! x_adv = clamp(x + eps·sign(∇_x L), 0, 1), and the model is scored on
//! normalize(x_adv). One gradient per example serves every eps. Feature data (the
//! toy) has no pixel range: x_adv = x + eps·sign(∇_x L), unclamped.

use super::evaluate::cross_entropy;
use crate::data::{Dataset, Inputs, Part};
use crate::models::Model;
use anyhow::{bail, Result};
use tch::{Kind, Reduction, Tensor};

/// Examples per gradient batch: the backward pass keeps every activation.
const BATCH: i64 = 256;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attacked {
    pub eps: f64,
    /// Accuracy and mean cross-entropy on the perturbed examples.
    pub acc: f64,
    pub loss: f64,
}

/// Accuracy under FGSM at each eps on the first `examples` of `part` (all when
/// `None`).
pub fn fgsm(
    model: &Model,
    data: &Dataset,
    part: Part,
    eps: &[f64],
    examples: Option<i64>,
) -> Result<Vec<Attacked>> {
    if let Some(bad) = eps.iter().find(|e| !(0.0..=1.0).contains(*e)) {
        bail!("fgsm: every eps must be in [0, 1], found {bad}");
    }
    let n = examples.map_or(data.len(part), |e| e.min(data.len(part)));
    if n == 0 {
        bail!("fgsm: the {part:?} split has no examples");
    }
    let clamp = matches!(data.inputs, Inputs::Images { .. });
    let device = data.device();
    let zeros = |kind| -> Vec<Tensor> {
        eps.iter()
            .map(|_| Tensor::zeros([], (kind, device)))
            .collect()
    };
    let (mut loss_sums, mut correct) = (zeros(Kind::Double), zeros(Kind::Int64));
    let mut seen = 0;
    for batch in data.pixels(part, BATCH) {
        if seen >= n {
            break;
        }
        let len = batch.y.size()[0].min(n - seen);
        let (x, y) = (batch.x.narrow(0, 0, len), batch.y.narrow(0, 0, len));
        seen += len;
        let x = x.detach().set_requires_grad(true);
        let loss = cross_entropy(
            &model.forward_t(&data.normalize(&x), false),
            &y,
            Reduction::Sum,
        );
        // Gradient with respect to the input only: the model's .grad stays as it is.
        let sign = Tensor::run_backward(&[loss], &[&x], false, false)[0].sign();
        let x = x.detach();
        tch::no_grad(|| {
            for (i, &e) in eps.iter().enumerate() {
                let mut adv = &x + &sign * e;
                if clamp {
                    adv = adv.clamp(0.0, 1.0);
                }
                let logits = model.forward_t(&data.normalize(&adv), false);
                loss_sums[i] += cross_entropy(&logits, &y, Reduction::Sum).to_kind(Kind::Double);
                correct[i] += logits.argmax(-1, false).eq_tensor(&y).sum(Kind::Int64);
            }
        });
    }
    let read = |t: &Tensor| t.to_kind(Kind::Double).double_value(&[]) / n as f64;
    Ok(eps
        .iter()
        .enumerate()
        .map(|(i, &e)| Attacked {
            eps: e,
            acc: read(&correct[i]),
            loss: read(&loss_sums[i]),
        })
        .collect())
}
