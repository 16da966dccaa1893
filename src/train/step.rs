//! One SGD step as every run takes it, the sums it adds to, and evaluation
//! through the same engine.

use super::dense::{Dense, Tally};
use super::precision::{with_autocast, AutocastDevice};
use super::sgd::Sgd;
use crate::data::{Dataset, Part};
use crate::metrics::evaluate::{cross_entropy, evaluate, evaluate_augmented, Score};
use crate::models::Model;
use tch::{Kind, Reduction, Tensor};

/// Sums over one epoch's batches, kept on the device and read once; the dense
/// engine's steps add theirs on the host.
pub struct BatchTotals {
    loss: Tensor,
    correct: Tensor,
    host: Tally,
}

impl BatchTotals {
    pub fn new(device: tch::Device) -> BatchTotals {
        BatchTotals::from_tensors(
            Tensor::zeros([], (Kind::Double, device)),
            Tensor::zeros([], (Kind::Int64, device)),
        )
    }

    /// Totals a checkpoint kept (`tensors`).
    pub fn from_tensors(loss: Tensor, correct: Tensor) -> BatchTotals {
        BatchTotals {
            loss,
            correct,
            host: Tally::default(),
        }
    }

    /// The sums as two tensors (what a checkpoint keeps), host sums included.
    pub fn tensors(&mut self) -> (&Tensor, &Tensor) {
        let host = std::mem::take(&mut self.host);
        if host != Tally::default() {
            self.loss += host.loss;
            self.correct += host.correct;
        }
        (&self.loss, &self.correct)
    }

    /// Sums of a step the dense engine took on the host.
    pub fn add_host(&mut self, tally: Tally) {
        self.host += tally;
    }

    fn add(&mut self, logits: &Tensor, labels: &Tensor, loss: &Tensor) {
        let n = labels.size()[0] as f64;
        self.loss += loss.detach().to_kind(Kind::Double) * n;
        self.correct += logits
            .detach()
            .argmax(-1, false)
            .eq_tensor(labels)
            .sum(Kind::Int64);
    }

    pub fn read(mut self, n: i64) -> Score {
        self.tensors();
        let both = Tensor::stack(&[self.loss, self.correct.to_kind(Kind::Double)], 0)
            .to_device(tch::Device::Cpu);
        let v: Vec<f64> = Vec::try_from(both).unwrap_or_else(|_| vec![f64::NAN, f64::NAN]);
        Score {
            loss: v[0] / n as f64,
            acc: v[1] / n as f64,
        }
    }
}

/// Which training examples one step sees, and how.
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    /// Positions in `0..data.epoch_len(augment)`.
    pub index: &'a Tensor,
    pub augment_seed: Option<i64>,
    pub autocast: Option<AutocastDevice>,
}

/// One SGD step, exactly as `train` takes it: the batch (augmented, normalised),
/// forward in train mode, mean cross-entropy, backward, update; loss and
/// correct count added to `totals` on the device, with no host synchronisation.
/// With `dense` (an mlp on the CPU, train/dense/) the same step in plain Rust.
/// Public so the benchmark against PyTorch (benches/compare.rs) times this path.
pub fn train_step(
    model: &Model,
    params: &mut [Tensor],
    sgd: &mut Sgd,
    data: &Dataset,
    batch: Batch,
    totals: &mut BatchTotals,
    dense: Option<&mut Dense>,
) {
    let b = data.train_batch(batch.index, batch.augment_seed);
    if let Some(tally) = dense.and_then(|d| d.step_on(params, sgd, &b)) {
        totals.host += tally;
        return;
    }
    Sgd::zero_grad(params);
    let (logits, loss) = with_autocast(batch.autocast, || {
        let logits = model.forward_t(&b.x, true);
        let loss = cross_entropy(&logits, &b.y, Reduction::Mean);
        (logits, loss)
    });
    sgd.scale_loss(&loss).backward();
    sgd.step(params);
    totals.add(&logits, &b.y, &loss);
}

/// `evaluate`, through the dense engine when the run has one.
pub fn score(dense: &mut Option<Dense>, model: &Model, data: &Dataset, part: Part) -> Score {
    match dense {
        Some(d) => d.evaluate(model, data, part),
        None => evaluate(model, data, part),
    }
}

/// The training split's score: clean through `score`, or with `augmented`'s seed
/// on augmented copies (libtorch's evaluation, which the dense engine's mirrors).
pub fn score_train(
    dense: &mut Option<Dense>,
    model: &Model,
    data: &Dataset,
    augmented: Option<i64>,
) -> Score {
    match augmented {
        Some(seed) => evaluate_augmented(model, data, seed),
        None => score(dense, model, data, Part::Train),
    }
}
