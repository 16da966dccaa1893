//! Loss and accuracy of a model on a split, in eval mode without autograd.
//!
//! The loss is `torch.nn.functional.cross_entropy` (mean over examples), computed
//! as the sum over batches divided by the number of examples, so it is the true
//! mean over the split whatever the batch size. Sums stay on the device and are
//! read once at the end: no host synchronisation per batch.

use crate::data::{Dataset, Part, Split};
use crate::models::Model;
use tch::{Kind, Reduction, Tensor};

pub const EVAL_BATCH: i64 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Score {
    #[serde(with = "crate::results::exact")]
    pub loss: f64,
    #[serde(with = "crate::results::exact")]
    pub acc: f64,
}

/// Cross-entropy of logits against class labels, as torch's `F.cross_entropy`.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor, reduction: Reduction) -> Tensor {
    logits.cross_entropy_loss::<Tensor>(labels, None, reduction, -100, 0.0)
}

pub fn evaluate(model: &Model, data: &Dataset, part: Part) -> Score {
    score_batches(model, data, data.batches(part, EVAL_BATCH), data.len(part))
}

/// `evaluate` on the training split as an augmented epoch sees it, augmentation
/// drawn from `seed`: the authors' CIFAR-10 code scores training accuracy in eval
/// mode over its training loader, whose transforms crop and flip.
pub fn evaluate_augmented(model: &Model, data: &Dataset, seed: i64) -> Score {
    let n = data.epoch_len(true);
    score_batches(model, data, data.augmented_train(EVAL_BATCH, seed), n)
}

fn score_batches(
    model: &Model,
    data: &Dataset,
    batches: impl Iterator<Item = Split>,
    n: i64,
) -> Score {
    if n == 0 {
        return Score {
            loss: f64::NAN,
            acc: f64::NAN,
        };
    }
    tch::no_grad(|| {
        let device = data.device();
        let mut loss_sum = Tensor::zeros([], (Kind::Double, device));
        let mut correct = Tensor::zeros([], (Kind::Int64, device));
        for batch in batches {
            let logits = model.forward_t(&batch.x, false);
            loss_sum += cross_entropy(&logits, &batch.y, Reduction::Sum).to_kind(Kind::Double);
            correct += logits
                .argmax(-1, false)
                .eq_tensor(&batch.y)
                .sum(Kind::Int64);
        }
        let both = Tensor::stack(&[loss_sum, correct.to_kind(Kind::Double)], 0)
            .to_device(tch::Device::Cpu);
        let v: Vec<f64> = Vec::try_from(both).unwrap_or_else(|_| vec![f64::NAN, f64::NAN]);
        Score {
            loss: v[0] / n as f64,
            acc: v[1] / n as f64,
        }
    })
}

/// Predicted class of every row of `x`.
pub fn predict(model: &Model, x: &Tensor) -> Tensor {
    tch::no_grad(|| {
        let n = x.size()[0];
        let mut out = Vec::new();
        let mut start = 0;
        while start < n {
            let len = (EVAL_BATCH * 16).min(n - start);
            out.push(
                model
                    .forward_t(&x.narrow(0, start, len), false)
                    .argmax(-1, false),
            );
            start += len;
        }
        Tensor::cat(&out, 0)
    })
}
