//! What a model is, independent of its weights: the architecture and its options.
//! Specs are checked before anything is built, so impossible combinations are
//! errors that say why, and they travel in saved files as JSON.

use crate::data::Dataset;
use crate::results::{Row, Value};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Mlp,
    Cnn,
    Vgg16,
    Resnet18,
    Resnet50,
    Densenet40,
}

impl Arch {
    pub const ALL: [Arch; 6] = [
        Arch::Mlp,
        Arch::Cnn,
        Arch::Vgg16,
        Arch::Resnet18,
        Arch::Resnet50,
        Arch::Densenet40,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Mlp => "mlp",
            Arch::Cnn => "cnn",
            Arch::Vgg16 => "vgg16",
            Arch::Resnet18 => "resnet18",
            Arch::Resnet50 => "resnet50",
            Arch::Densenet40 => "densenet40",
        }
    }

    pub fn parse(name: &str) -> Result<Arch> {
        match Arch::ALL.iter().find(|a| a.as_str() == name) {
            Some(a) => Ok(*a),
            None => bail!(
                "unknown arch \"{name}\"; known: {}",
                crate::models::ARCHS.join(", ")
            ),
        }
    }

    /// Convolutional archs take [channels, height, width] inputs and a `width`.
    pub fn is_conv(self) -> bool {
        self != Arch::Mlp
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub arch: Arch,
    /// Hidden layer widths of the mlp; empty for the conv archs.
    #[serde(default)]
    pub hidden: Vec<i64>,
    /// Multiplier of every channel count of the conv archs (1 = the paper's); 1 for
    /// the mlp.
    #[serde(default = "paper_width")]
    pub width: f64,
    /// Shape of one input: [channels, height, width] for the conv archs; for the mlp
    /// any shape, flattened.
    pub input_shape: Vec<i64>,
    pub classes: i64,
    #[serde(default)]
    pub seed: i64,
}

/// The width a spec written by hand (e.g. in a PyTorch file's metadata) means
/// when it leaves `width` out.
fn paper_width() -> f64 {
    1.0
}

/// A channel count scaled by `width`: round(c·width), at least 1.
pub fn scaled(channels: i64, width: f64) -> i64 {
    ((channels as f64 * width).round() as i64).max(1)
}

fn shape_text(shape: &[i64]) -> String {
    shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

impl ModelSpec {
    pub fn inputs(&self) -> i64 {
        self.input_shape.iter().product()
    }

    /// (channels, height, width) of a conv arch's input.
    pub fn image(&self) -> (i64, i64, i64) {
        match self.input_shape[..] {
            [c, h, w] => (c, h, w),
            _ => (0, 0, 0),
        }
    }

    /// Refuses specs no network can be built from, saying why.
    pub fn check(&self) -> Result<()> {
        let arch = self.arch;
        if self.classes < 1 {
            bail!("{arch}: needs at least one class, found {}", self.classes);
        }
        if self.input_shape.is_empty() || self.input_shape.iter().any(|&d| d < 1) {
            bail!(
                "{arch}: input shape {:?} has an empty dimension",
                self.input_shape
            );
        }
        if !arch.is_conv() {
            if self.hidden.iter().any(|&h| h < 1) {
                bail!(
                    "mlp: hidden widths must be at least 1, found {:?}",
                    self.hidden
                );
            }
            return Ok(());
        }
        if !(self.width > 0.0 && self.width.is_finite()) {
            bail!(
                "{arch}: width must be a positive number, found {}",
                self.width
            );
        }
        if self.input_shape.len() != 3 {
            bail!(
                "{arch} takes images [channels, height, width]; found inputs of shape {:?} \
                 (the mlp takes inputs of any shape)",
                self.input_shape
            );
        }
        let (_, h, w) = self.image();
        let side = h.min(w);
        match arch {
            // Five 2x2 max-pools, then Linear(512, classes) on the flattened map: the
            // authors' VGG works only when the pools leave exactly 1x1.
            Arch::Vgg16 if !(32..64).contains(&h) || !(32..64).contains(&w) => bail!(
                "vgg16 needs inputs from 32x32 to 63x63: its five 2x2 max-pools must leave a \
                 1x1 map for the linear layer on its 512 channels; found {h}x{w}{}",
                if side < 32 {
                    " (pad the images to 32x32)"
                } else {
                    ""
                }
            ),
            Arch::Cnn | Arch::Densenet40 if side < 4 => {
                bail!("{arch} needs inputs of at least 4x4 (it halves them twice); found {h}x{w}")
            }
            _ => Ok(()),
        }
    }

    /// Whether `data` fits this model: its class count, and its input shape (the
    /// mlp: the number of values per example).
    pub fn check_fits(&self, data: &Dataset) -> Result<()> {
        if self.classes != data.num_classes() {
            bail!(
                "the model has {} output classes but the data set {} has {}",
                self.classes,
                data.name,
                data.num_classes()
            );
        }
        let shape = data.input_shape();
        if !self.arch.is_conv() {
            let values: i64 = shape.iter().product();
            if self.inputs() != values {
                bail!(
                    "the model takes {} inputs but {} examples have {} values",
                    self.inputs(),
                    data.name,
                    values
                );
            }
        } else if self.input_shape != shape {
            bail!(
                "the {} model takes {} inputs (channels x height x width) but {} examples are {}",
                self.arch,
                shape_text(&self.input_shape),
                data.name,
                shape_text(&shape)
            );
        }
        Ok(())
    }

    /// The same network (all but the seed), so weights of one fit the other.
    pub fn same_architecture(&self, other: &ModelSpec) -> bool {
        ModelSpec {
            seed: other.seed,
            ..self.clone()
        } == *other
    }

    pub fn columns(&self) -> Row {
        let conv = self.arch.is_conv();
        let (c, h, w) = self.image();
        vec![
            ("arch".into(), Value::Str(self.arch.to_string())),
            (
                "hidden".into(),
                if conv {
                    Value::Null
                } else {
                    Value::Ints(self.hidden.clone())
                },
            ),
            (
                "width".into(),
                if conv {
                    Value::Float(self.width)
                } else {
                    Value::Null
                },
            ),
            (
                "in_channels".into(),
                if conv { Value::Int(c) } else { Value::Null },
            ),
            (
                "input_size".into(),
                if conv {
                    Value::Ints(vec![h, w])
                } else {
                    Value::Null
                },
            ),
            ("model_seed".into(), Value::Int(self.seed)),
        ]
    }

    /// About how many trainable parameters the model has, computed without building
    /// it (so an impossible size is refused before anything is allocated): exact for
    /// the mlp and the cnn; for the other archs the width-1 count of docs/MODELS.md
    /// ("Parameter counts") adjusted for input channels and classes, scaled by
    /// width² (most weights connect two scaled channel counts).
    pub fn estimated_parameters(&self) -> f64 {
        let linear = |i: f64, o: f64| i * o + o;
        let conv3 = |i: f64, o: f64| i * o * 9.0 + o;
        let classes = self.classes as f64;
        let (c, h, w) = if self.arch.is_conv() {
            let (c, h, w) = self.image();
            (c as f64, h as f64, w as f64)
        } else {
            (0.0, 0.0, 0.0)
        };
        // (count with 3 channels and 10 classes, stem channels, features into the
        // last linear layer), all at width 1.
        let (count, stem, features) = match self.arch {
            Arch::Mlp => {
                let mut sizes = vec![self.input_shape.iter().map(|&d| d as f64).product()];
                sizes.extend(self.hidden.iter().map(|&h| h as f64));
                sizes.push(classes);
                return sizes.windows(2).map(|p| linear(p[0], p[1])).sum();
            }
            Arch::Cnn => {
                let s = |n| scaled(n, self.width) as f64;
                return conv3(c, s(32))
                    + conv3(s(32), s(64))
                    + linear(s(64) * (h / 4.0).floor() * (w / 4.0).floor(), s(128))
                    + linear(s(128), classes);
            }
            Arch::Vgg16 => (14_728_266.0, 64.0, 512.0),
            Arch::Resnet18 => (11_173_962.0, 64.0, 512.0),
            Arch::Resnet50 => (23_520_842.0, 64.0, 2048.0),
            Arch::Densenet40 => (176_122.0, 24.0, 132.0),
        };
        let width = self.width;
        count * width * width
            + (c - 3.0) * 9.0 * stem * width
            + (classes - 10.0) * (features * width + 1.0)
    }

    pub fn describe(&self) -> String {
        if self.arch.is_conv() {
            format!(
                "{} width {} on {} inputs → {} classes",
                self.arch,
                self.width,
                shape_text(&self.input_shape),
                self.classes
            )
        } else {
            format!(
                "mlp {} → {:?} → {}",
                self.inputs(),
                self.hidden,
                self.classes
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_round_half_away_from_zero_and_keep_one_channel() {
        assert_eq!(scaled(64, 0.25), 16);
        assert_eq!(scaled(12, 0.125), 2); // 1.5
        assert_eq!(scaled(12, 0.375), 5); // 4.5
        assert_eq!(scaled(64, 0.001), 1);
    }

    #[test]
    fn hand_written_metadata_may_leave_out_hidden_width_and_seed() {
        let spec: ModelSpec =
            serde_json::from_str(r#"{"arch":"resnet18","input_shape":[3,32,32],"classes":10}"#)
                .unwrap();
        assert_eq!(spec.arch, Arch::Resnet18);
        assert_eq!((spec.width, spec.seed), (1.0, 0));
        assert!(spec.hidden.is_empty());
        let e = serde_json::from_str::<ModelSpec>(r#"{"arch":"resnet9"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown variant `resnet9`"), "{e}");
    }
}
