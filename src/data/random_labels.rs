//! Algorithm 1's data set: every training example replicated R times, each copy
//! with a random `zero_out` fraction of its values set to zero and a uniformly
//! random label. The test split keeps its true labels.

use super::{Dataset, Split};
use crate::results::Value;
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone, Copy)]
pub struct RandomLabelOptions {
    pub replicas: i64,
    pub zero_out: f64,
    pub seed: i64,
}

pub fn random_labels(data: &Dataset, o: &RandomLabelOptions) -> Dataset {
    let x = data.train.x.to_device(Device::Cpu);
    let n = x.size()[0];
    let mut shape = x.size();
    shape[0] *= o.replicas;
    let copies = x.repeat_interleave_self_int(o.replicas, 0, None);
    // Drawn on the CPU so the same seed gives the same set on every device. Each
    // value is kept with probability 1 - zero_out, independently per copy.
    let (keep, y) = crate::rng::seeded(o.seed, || {
        let keep = Tensor::rand(&shape, (Kind::Float, Device::Cpu)).ge(o.zero_out);
        let y = Tensor::randint(
            data.num_classes(),
            [n * o.replicas],
            (Kind::Int64, Device::Cpu),
        );
        (keep, y)
    });
    let x = copies * keep.to_kind(Kind::Float);
    let device = data.device();
    let mut describe = data.describe.clone();
    describe.extend([
        ("replicas".into(), Value::Int(o.replicas)),
        ("zero_out".into(), Value::Float(o.zero_out)),
        ("label_seed".into(), Value::Int(o.seed)),
    ]);
    Dataset {
        name: data.name.clone(),
        train: Split {
            x: x.to_device(device),
            y: y.to_device(device),
        },
        test: Split {
            x: data.test.x.shallow_clone(),
            y: data.test.y.shallow_clone(),
        },
        classes: data.classes.clone(),
        augmentation: data.augmentation,
        labels: "random".into(),
        describe,
    }
}
