//! The two-Gaussian toy of the paper's Figure 1, as in its authors' code: each
//! coordinate of a point is 0.1·N(2, 1.5²), then class 0 is shifted by (-0.65, 0)
//! and class 1 by (+0.65, 0). Train and test are drawn from one seeded stream.

use super::{Augmentation, Dataset, Inputs, Split, COUNT};
use crate::kit::config::{Default as D, Rule};
use crate::kit::rules::{NONNEG, SEED};
use crate::kit::typed::key;
use crate::results::Value;
use crate::typed_config;
use tch::{Device, Kind, Tensor};

typed_config! {
    /// `toy(#{..})`: the sample's size and seed, and the augmentation the
    /// authors' toy code uses.
    #[derive(Copy)]
    pub struct ToyOptions as TOY("toy options") {
        n_train: i64 = key(COUNT, D::Int(50), "training points per class");
        n_test: i64 = key(COUNT, D::Int(50), "test points per class");
        seed: i64 = key(SEED, D::Int(0), "seed of the sample");
        augment_copies: i64 = key(COUNT, D::Int(2), "copies of each point per epoch when training with augment: true");
        augment_std: f64 = key(NONNEG, D::Float(0.1), "std of the Gaussian noise added to each copy");
        augment_original: bool = key(Rule::Bool, D::Bool(false), "also keep each point as it is in an augmented epoch (the authors' toy code)");
    }
}

pub const SHIFT: f64 = 0.65;

fn sample(per_class: i64, device: Device) -> Split {
    let opts = (Kind::Float, Device::Cpu);
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for (class, sign) in [(0i64, -1.0), (1, 1.0)] {
        let base = (Tensor::randn([per_class, 2], opts) * 1.5 + 2.0) * 0.1;
        let shift = Tensor::from_slice(&[sign * SHIFT as f32, 0.0]);
        xs.push(base + shift);
        ys.push(Tensor::full([per_class], class, (Kind::Int64, Device::Cpu)));
    }
    Split {
        x: Tensor::cat(&xs, 0),
        y: Tensor::cat(&ys, 0),
    }
    .to(device)
}

/// `n_train` and `n_test` are per class. Sampling is on the CPU so the points are
/// the same on every device.
pub fn toy(o: &ToyOptions, device: Device) -> Dataset {
    let (train, test) = crate::rng::seeded(o.seed, || {
        (sample(o.n_train, device), sample(o.n_test, device))
    });
    Dataset {
        name: "toy".into(),
        train,
        test,
        classes: vec!["left".into(), "right".into()],
        inputs: Inputs::Features,
        augmentation: Augmentation::Noise {
            copies: o.augment_copies,
            std: o.augment_std,
            original: o.augment_original,
        },
        relabel: None,
        describe: vec![("data_seed".into(), Value::Int(o.seed))],
    }
}
