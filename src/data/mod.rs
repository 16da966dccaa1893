//! Data sets in memory on the run's device, and the pipeline that turns stored
//! examples into model inputs: random-label copies, augmentation, normalisation.

pub mod augment;
pub mod cache;
pub mod cifar;
pub mod cinic;
pub mod counter_rng;
pub mod crop;
pub mod docs;
pub mod fetch;
pub mod folders;
pub mod idx;
pub mod imagenet;
pub mod images;
pub mod load;
pub mod names;
pub mod pickle;
pub mod random_labels;
pub mod rhai;
pub mod root;
pub mod subset;
pub mod toy;

pub use augment::Augmentation;
pub use random_labels::RandomLabelOptions;

/// Examples per class or copies of each; more than this is a typo, not a data set.
const COUNT: crate::kit::config::Rule = crate::kit::rules::count(10_000_000);

use crate::results::{Row, Value};
use tch::{Device, Kind, Tensor};

/// Stored examples `x` (first dimension = examples) and integer class labels `y`.
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
}

/// How stored examples become model inputs.
#[derive(Debug, Clone, PartialEq)]
pub enum Inputs {
    /// Float features used as they are (the toy).
    Features,
    /// uint8 NCHW pixels, scaled to [0, 1] and normalised per channel,
    /// (x/255 − mean) / std, as torchvision's ToTensor + Normalize.
    Images { mean: Vec<f64>, std: Vec<f64> },
}

/// Which split to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Train,
    Test,
}

#[derive(Debug)]
pub struct Dataset {
    pub name: String,
    pub train: Split,
    pub test: Split,
    pub classes: Vec<String>,
    pub inputs: Inputs,
    pub augmentation: Augmentation,
    /// Algorithm 1's random-label view of the training split, when set.
    pub relabel: Option<RandomLabelOptions>,
    /// Columns that describe how this data was made (seeds, replicas, ...).
    pub describe: Row,
}

/// Per-channel mean and std as float [1, C, 1, 1] tensors on `device`.
fn channel_constants(mean: &[f64], std: &[f64], device: Device) -> (Tensor, Tensor) {
    let c = mean.len() as i64;
    let t = |v: &[f64]| {
        Tensor::from_slice(v)
            .to_kind(Kind::Float)
            .to_device(device)
            .view([1, c, 1, 1])
    };
    (t(mean), t(std))
}

impl Dataset {
    pub fn num_classes(&self) -> i64 {
        self.classes.len() as i64
    }

    /// Shape of one input, e.g. [2] for the toy, [3, 32, 32] for CIFAR.
    pub fn input_shape(&self) -> Vec<i64> {
        self.train.x.size()[1..].to_vec()
    }

    pub fn input_size(&self) -> i64 {
        self.input_shape().iter().product()
    }

    pub fn device(&self) -> Device {
        self.train.x.device()
    }

    /// "true", or "random" for Algorithm 1's random-label set.
    pub fn labels(&self) -> &'static str {
        if self.relabel.is_some() {
            "random"
        } else {
            "true"
        }
    }

    /// Examples in a split, random-label replicas included.
    pub fn len(&self, part: Part) -> i64 {
        match part {
            Part::Train => self.train.len() * self.relabel.map_or(1, |r| r.replicas),
            Part::Test => self.test.len(),
        }
    }

    /// Examples in one training epoch; augmentation may add copies.
    pub fn epoch_len(&self, augment: bool) -> i64 {
        let copies = if augment {
            self.augmentation.copies()
        } else {
            1
        };
        self.len(Part::Train) * copies
    }

    /// Model inputs and labels for `index` into `0..epoch_len(augment)` of the
    /// training split. With `augment_seed`, augmentation is drawn from that seed.
    pub fn train_batch(&self, index: &Tensor, augment_seed: Option<i64>) -> Split {
        let Split { mut x, y } = self.train_pixels(index);
        if let Some(seed) = augment_seed {
            let noisy = crate::rng::seeded(seed, || self.augmentation.apply(&x));
            x = match self.augmentation {
                // Positions below the split's length are the points as they are.
                Augmentation::Noise { original: true, .. } => {
                    let clean = index.lt(self.len(Part::Train)).view([-1, 1]);
                    x.where_self(&clean, &noisy)
                }
                _ => noisy,
            };
        }
        Split {
            x: self.normalize_owned(x),
            y,
        }
    }

    /// `normalize` computed in place on a batch nobody else holds: the same
    /// arithmetic without two more batch-sized allocations per step (each a fresh
    /// mmap and page faults at these sizes; found by profiling the training step
    /// against PyTorch's, docs/PERFORMANCE.md).
    fn normalize_owned(&self, mut x: Tensor) -> Tensor {
        match &self.inputs {
            Inputs::Features => x,
            Inputs::Images { mean, std } => {
                let (m, s) = channel_constants(mean, std, x.device());
                let _ = x.g_sub_(&m).g_div_(&s);
                x
            }
        }
    }

    /// Training examples at `index` (replicas included) before normalisation.
    fn train_pixels(&self, index: &Tensor) -> Split {
        let index = index.remainder(self.len(Part::Train));
        let (x, y) = match &self.relabel {
            None => (
                self.train.x.index_select(0, &index),
                self.train.y.index_select(0, &index),
            ),
            Some(r) => {
                let example = index.divide_scalar_mode(r.replicas, "floor");
                let x = r.zero_out(&self.train.x.index_select(0, &example), &index);
                (x, r.labels(&index, self.num_classes()))
            }
        };
        Split {
            x: self.scale(&x),
            y,
        }
    }

    /// Consecutive un-augmented batches of a whole split before normalisation:
    /// pixels in [0, 1] for images, features as stored. `normalize` turns them
    /// into model inputs (attacks perturb them in between).
    pub fn pixels(&self, part: Part, size: i64) -> impl Iterator<Item = Split> + '_ {
        let n = self.len(part);
        let device = self.device();
        (0..n).step_by(size.max(1) as usize).map(move |start| {
            let len = size.min(n - start);
            match part {
                Part::Train => self.train_pixels(&Tensor::arange_start(
                    start,
                    start + len,
                    (Kind::Int64, device),
                )),
                Part::Test => Split {
                    x: self.scale(&self.test.x.narrow(0, start, len)),
                    y: self.test.y.narrow(0, start, len),
                },
            }
        })
    }

    /// Consecutive un-augmented batches of model inputs over a whole split.
    pub fn batches(&self, part: Part, size: i64) -> impl Iterator<Item = Split> + '_ {
        self.pixels(part, size).map(|b| Split {
            x: self.normalize_owned(b.x),
            y: b.y,
        })
    }

    /// The training split in order as an augmented epoch sees it: batch k of
    /// `0..epoch_len(true)` augmented from a seed derived from (`seed`, k).
    pub fn augmented_train(&self, size: i64, seed: i64) -> impl Iterator<Item = Split> + '_ {
        let n = self.epoch_len(true);
        let device = self.device();
        (0..n).step_by(size as usize).map(move |start| {
            let index = Tensor::arange_start(start, (start + size).min(n), (Kind::Int64, device));
            self.train_batch(&index, Some(crate::rng::derive(seed, start / size)))
        })
    }

    /// The whole split as model inputs (small data sets: plots, boundary distances).
    pub fn materialize(&self, part: Part) -> Split {
        let parts: Vec<Split> = self.batches(part, 4096).collect();
        let xs: Vec<&Tensor> = parts.iter().map(|p| &p.x).collect();
        let ys: Vec<&Tensor> = parts.iter().map(|p| &p.y).collect();
        Split {
            x: Tensor::cat(&xs, 0),
            y: Tensor::cat(&ys, 0),
        }
    }

    /// Stored values to floats: pixels to [0, 1], features unchanged.
    fn scale(&self, x: &Tensor) -> Tensor {
        match &self.inputs {
            Inputs::Features => x.shallow_clone(),
            // Stored pixels are uint8, so `to_kind` makes a new tensor to divide in place.
            Inputs::Images { .. } if x.kind() != Kind::Float => {
                let mut f = x.to_kind(Kind::Float);
                let _ = f.g_div_scalar_(255.0);
                f
            }
            Inputs::Images { .. } => x / 255.0,
        }
    }

    /// Pixels in [0, 1] to model inputs, (x − mean) / std per channel; features
    /// unchanged.
    pub fn normalize(&self, x: &Tensor) -> Tensor {
        match &self.inputs {
            Inputs::Features => x.shallow_clone(),
            Inputs::Images { mean, std } => {
                let (m, s) = channel_constants(mean, std, x.device());
                (x - m) / s
            }
        }
    }

    /// A data set like this one with another training split (its test split, classes,
    /// inputs and augmentation shared), `relabel` and description columns.
    pub fn derive(
        &self,
        train: Split,
        relabel: Option<RandomLabelOptions>,
        describe: Row,
    ) -> Dataset {
        Dataset {
            name: self.name.clone(),
            train,
            test: Split {
                x: self.test.x.shallow_clone(),
                y: self.test.y.shallow_clone(),
            },
            classes: self.classes.clone(),
            inputs: self.inputs.clone(),
            augmentation: self.augmentation,
            relabel,
            describe,
        }
    }

    /// Result columns naming this data set.
    pub fn columns(&self) -> Row {
        let mut row = vec![
            ("dataset".to_string(), Value::Str(self.name.clone())),
            ("labels".to_string(), Value::Str(self.labels().into())),
            ("n_train".to_string(), Value::Int(self.len(Part::Train))),
            ("n_test".to_string(), Value::Int(self.len(Part::Test))),
        ];
        row.extend(self.describe.iter().cloned());
        row
    }

    pub fn summary(&self) -> String {
        format!(
            "Data({}, labels {}, {} train / {} test, input {:?}, {} classes)",
            self.name,
            self.labels(),
            self.len(Part::Train),
            self.len(Part::Test),
            self.input_shape(),
            self.num_classes()
        )
    }
}
