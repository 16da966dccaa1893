//! Algorithm 1's data set as a view: every training example replicated R times;
//! each copy has exactly ⌊zero_out·L⌋ of its L values set to zero (a uniformly random
//! subset, as the authors' confusion_data_generation.py does) and a uniformly random
//! label. The test split keeps its true labels.
//!
//! Nothing is stored per copy: copy i (0 ≤ i < n·R) is example ⌊i/R⌋, and its mask
//! and label are computed per batch from (seed, i) with a counter-based hash, so
//! memory does not grow with R and every epoch and run sees the same copies.

use super::counter_rng;
use super::{Dataset, Split, COUNT};
use crate::kit::config::Default as D;
use crate::kit::rules::{SEED, UNIT};
use crate::kit::typed::key;
use crate::results::Value;
use crate::typed_config;
use tch::{Kind, Tensor};

typed_config! {
    /// `random_labels(data, #{..})`: Algorithm 1's R, N% and seed.
    #[derive(Copy)]
    pub struct RandomLabelOptions as RANDOM_LABELS("random_labels options") {
        replicas: i64 = key(COUNT, D::Int(1), "copies R of each example");
        zero_out: f64 = key(UNIT, D::Float(0.0), "fraction of each copy's values set to zero");
        seed: i64 = key(SEED, D::Int(0), "seed of labels and masks");
    }
}

const LABELS: i64 = 1;
const MASKS: i64 = 2;

impl RandomLabelOptions {
    /// Labels of copies `index`, uniform over `classes`.
    pub fn labels(&self, index: &Tensor, classes: i64) -> Tensor {
        counter_rng::hash(counter_rng::key(self.seed, LABELS), index).remainder(classes)
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
        let copy_key = counter_rng::hash(counter_rng::key(self.seed, MASKS), index).view([b, 1]);
        let position = counter_rng::mix32(&Tensor::arange(l, (Kind::Int64, device))).view([1, l]);
        let scores = counter_rng::mix32(&copy_key.bitwise_xor_tensor(&position));
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
