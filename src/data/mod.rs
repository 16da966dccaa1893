//! Data sets as tensors in memory on the run's device, and the label/augmentation
//! transforms the paper's protocols need.

pub mod fetch;
pub mod random_labels;
pub mod rhai;
pub mod root;
pub mod toy;

use crate::results::{Row, Value};
use tch::{Device, Kind, Tensor};

/// Inputs `x` (float, first dimension = examples) and integer class labels `y`.
#[derive(Debug)]
pub struct Split {
    pub x: Tensor,
    pub y: Tensor,
}

impl Split {
    pub fn len(&self) -> i64 {
        self.y.size()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn to(&self, device: Device) -> Split {
        Split {
            x: self.x.to_device(device),
            y: self.y.to_device(device),
        }
    }

    pub fn select(&self, index: &Tensor) -> Split {
        Split {
            x: self.x.index_select(0, index),
            y: self.y.index_select(0, index),
        }
    }
}

/// Training-time augmentation a data set supports; `train` applies it when the
/// config says `augment: true`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Augmentation {
    #[default]
    None,
    /// Every point appears `copies` times per epoch, each with fresh N(0, std²)
    /// noise on every coordinate (the paper's toy augmentation, footnote 1).
    Noise { copies: i64, std: f64 },
}

impl Augmentation {
    /// The training split as seen in one epoch; call it inside `rng::seeded`.
    pub fn apply(&self, train: &Split) -> Split {
        match *self {
            Augmentation::None => Split {
                x: train.x.shallow_clone(),
                y: train.y.shallow_clone(),
            },
            Augmentation::Noise { copies, std } => {
                let x = train.x.repeat([copies, 1]);
                let noise = x.randn_like() * std;
                Split {
                    x: x + noise,
                    y: train.y.repeat([copies]),
                }
            }
        }
    }
}

#[derive(Debug)]
pub struct Dataset {
    pub name: String,
    pub train: Split,
    pub test: Split,
    pub classes: Vec<String>,
    pub augmentation: Augmentation,
    /// "true", or "random" for Algorithm 1's random-label set.
    pub labels: String,
    /// Columns that describe how this data was made (seeds, replicas, ...).
    pub describe: Row,
}

impl Dataset {
    pub fn num_classes(&self) -> i64 {
        self.classes.len() as i64
    }

    /// Shape of one input, e.g. [2] for the toy.
    pub fn input_shape(&self) -> Vec<i64> {
        self.train.x.size()[1..].to_vec()
    }

    pub fn input_size(&self) -> i64 {
        self.input_shape().iter().product()
    }

    pub fn device(&self) -> Device {
        self.train.x.device()
    }

    /// Result columns naming this data set.
    pub fn columns(&self) -> Row {
        let mut row = vec![
            ("dataset".to_string(), Value::Str(self.name.clone())),
            ("labels".to_string(), Value::Str(self.labels.clone())),
            ("n_train".to_string(), Value::Int(self.train.len())),
            ("n_test".to_string(), Value::Int(self.test.len())),
        ];
        row.extend(self.describe.iter().cloned());
        row
    }

    pub fn summary(&self) -> String {
        format!(
            "Data({}, labels {}, {} train / {} test, input {:?}, {} classes)",
            self.name,
            self.labels,
            self.train.len(),
            self.test.len(),
            self.input_shape(),
            self.num_classes()
        )
    }
}

/// Labels as i64 on `device`, the dtype cross-entropy expects.
pub fn labels(values: &[i64], device: Device) -> Tensor {
    Tensor::from_slice(values)
        .to_kind(Kind::Int64)
        .to_device(device)
}
