//! Algorithm 1's data set as a view: every training example replicated R times;
//! each copy has exactly ⌊zero_out·L⌋ of its L values set to zero (a uniformly random
//! subset, as the authors' confusion_data_generation.py does) and a uniformly random
//! label. The test split keeps its true labels.
//!
//! Nothing is stored per copy: copy i (0 ≤ i < n·R) is example ⌊i/R⌋, and its mask
//! and label are computed per batch from (seed, i) with a counter-based hash, so
//! memory does not grow with R and every epoch and run sees the same copies.

use super::hash;
use super::{Dataset, Split};
use crate::results::Value;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomLabelOptions {
    pub replicas: i64,
    pub zero_out: f64,
    pub seed: i64,
}

const LABELS: i64 = 1;
const MASKS: i64 = 2;

impl RandomLabelOptions {
    /// Labels of copies `index`, uniform over `classes`.
    pub fn labels(&self, index: &Tensor, classes: i64) -> Tensor {
        hash::hash(hash::key(self.seed, LABELS), index).remainder(classes)
    }

    /// `x` (the examples behind copies `index`, any shape [B, ...]) with each copy's
    /// own ⌊zero_out·L⌋ values set to zero: the ones with the smallest hash scores.
    pub fn zero_out(&self, x: &Tensor, index: &Tensor) -> Tensor {
        let size = x.size();
        let b = size[0];
        let l: i64 = size[1..].iter().product();
        let n = (l as f64 * self.zero_out) as i64;
        if n == 0 {
            return x.shallow_clone();
        }
        let device = x.device();
        let copy_key = hash::hash(hash::key(self.seed, MASKS), index).view([b, 1]);
        let position = hash::mix32(&Tensor::arange(l, (Kind::Int64, device))).view([1, l]);
        let scores = hash::mix32(&copy_key.bitwise_xor_tensor(&position));
        let (_, zeroed) = scores.topk(n, 1, false, false);
        let keep = Tensor::ones([b, l], (Kind::Bool, device)).scatter_value(1, &zeroed, 0);
        let flat = x.view([b, l]);
        flat.where_self(&keep, &flat.zeros_like())
            .view(size.as_slice())
    }
}

/// The random-label view of `data`'s training split; shares its tensors.
pub fn random_labels(data: &Dataset, o: &RandomLabelOptions) -> Dataset {
    let mut describe = data.describe.clone();
    describe.extend([
        ("replicas".into(), Value::Int(o.replicas)),
        ("zero_out".into(), Value::Float(o.zero_out)),
        ("label_seed".into(), Value::Int(o.seed)),
    ]);
    let train = Split {
        x: data.train.x.shallow_clone(),
        y: data.train.y.shallow_clone(),
    };
    data.derive(train, Some(*o), describe)
}
