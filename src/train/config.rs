//! The `train` config map: keys, defaults and the checks torch.optim.SGD makes.
//!
//! Defaults are vanilla SGD with the paper's batch size and initial learning rate;
//! momentum, weight decay (L2) and augmentation are switched on explicitly.

use super::precision::{self, GradScaler};
use super::schedule::{self, Schedule};
use super::sgd::SgdOptions;
use crate::host::config::{Config, Default as D, Key, Rule, Spec};
use crate::results::Value;
use anyhow::{bail, Result};
use rhai::{Dynamic, Map};

const NONNEG: Rule = Rule::Float {
    min: 0.0,
    max: f64::INFINITY,
    min_open: false,
};
const UNIT: Rule = Rule::Float {
    min: 0.0,
    max: 1.0,
    min_open: false,
};
const POSITIVE_INT: Rule = Rule::Int {
    min: 1,
    max: i64::MAX,
};

fn lr_value(v: &Dynamic) -> Result<Value, String> {
    Ok(match schedule::parse(v)? {
        Schedule::Constant(lr) => Value::Float(lr),
        other => Value::Str(other.to_string()),
    })
}

/// Why CPU autocast is not offered (measured in docs/TRAINING.md, "Device and
/// precision").
const CPU_AUTOCAST: &str = "where autocast is not offered: bf16 autocast measured 5.2x slower than fp32 on an AVX2 CPU without bf16 instructions (docs/TRAINING.md); use \"fp32\"";

pub const TRAIN: Spec = Spec {
    what: "train config",
    keys: &[
        Key {
            name: "epochs",
            rule: POSITIVE_INT,
            default: D::Int(350),
            help: "epochs to run (the schedule's length)",
        },
        Key {
            name: "batch_size",
            rule: POSITIVE_INT,
            default: D::Int(128),
            help: "examples per SGD step",
        },
        Key {
            name: "lr",
            rule: Rule::Custom(lr_value),
            default: D::Float(0.1),
            help: "learning rate: a number or a schedule map (piecewise, step, cosine)",
        },
        Key {
            name: "momentum",
            rule: UNIT,
            default: D::Float(0.0),
            help: "SGD momentum (paper: 0.9)",
        },
        Key {
            name: "dampening",
            rule: UNIT,
            default: D::Float(0.0),
            help: "momentum dampening",
        },
        Key {
            name: "weight_decay",
            rule: NONNEG,
            default: D::Float(0.0),
            help: "L2 regularisation added to the gradient (paper: 5e-4)",
        },
        Key {
            name: "nesterov",
            rule: Rule::Bool,
            default: D::Bool(false),
            help: "Nesterov momentum",
        },
        Key {
            name: "augment",
            rule: Rule::Bool,
            default: D::Bool(false),
            help: "apply the data set's augmentation while training",
        },
        Key {
            name: "seed",
            rule: Rule::Int {
                min: 0,
                max: i64::MAX,
            },
            default: D::Int(0),
            help: "seed of batch order and augmentation",
        },
        Key {
            name: "stop_at_train_acc",
            rule: Rule::Float {
                min: 0.0,
                max: 1.0,
                min_open: true,
            },
            default: D::Absent,
            help: "stop once train accuracy reaches this fraction, e.g. 1.0",
        },
        Key {
            name: "check_every",
            rule: POSITIVE_INT,
            default: D::Int(1),
            help: "epochs between checks of stop_at_train_acc",
        },
        Key {
            name: "max_epochs",
            rule: POSITIVE_INT,
            default: D::Absent,
            help: "with stop_at_train_acc: keep going past `epochs` (at the last lr) up to this",
        },
        Key {
            name: "eval_every",
            rule: POSITIVE_INT,
            default: D::Int(1),
            help: "epochs between evaluations on the clean train and test splits",
        },
        Key {
            name: "checkpoint_every",
            rule: POSITIVE_INT,
            default: D::Absent,
            help: "epochs between checkpoints (default: every 60 s of training, and at the end)",
        },
        Key {
            name: "precision",
            rule: Rule::Str {
                choices: &["fp32", "bf16", "fp16"],
            },
            default: D::Str("fp32"),
            help: "fp32; bf16 autocast or fp16 autocast with a gradient scaler (CUDA only)",
        },
        Key {
            name: "track",
            rule: Rule::Strs {
                choices: crate::metrics::track::TRACKABLE,
            },
            default: D::Str(""),
            help: "metrics added to the history every track_every epochs (docs/METRICS.md)",
        },
        Key {
            name: "track_every",
            rule: POSITIVE_INT,
            default: D::Int(1),
            help: "epochs between measurements of the tracked metrics",
        },
    ],
};

/// A validated train config with its typed parts.
pub struct Settings {
    pub config: Config,
    pub schedule: Schedule,
    pub sgd: SgdOptions,
    /// Epochs the loop may run: `epochs`, or `max_epochs` when a target is set.
    pub limit: i64,
}

impl Settings {
    pub fn read(map: &Map) -> Result<Settings, String> {
        let config = TRAIN.read(map)?;
        let schedule = map
            .get("lr")
            .map_or(Ok(Schedule::Constant(0.1)), schedule::parse)?;
        let epochs = config.i64("epochs");
        let target = config.opt_f64("stop_at_train_acc");
        let max = config.get("max_epochs").as_f64().map(|m| m as i64);
        let limit = match (target, max) {
            (_, Some(m)) if m < epochs => {
                return Err(format!(
                    "train config: `max_epochs` = {m} is below `epochs` = {epochs}"
                ))
            }
            (None, Some(_)) => {
                return Err(
                    "train config: `max_epochs` only applies with `stop_at_train_acc`".into(),
                )
            }
            (Some(_), Some(m)) => m,
            _ => epochs,
        };
        let sgd = SgdOptions {
            lr: schedule.at(1, epochs),
            momentum: config.f64("momentum"),
            dampening: config.f64("dampening"),
            weight_decay: config.f64("weight_decay"),
            nesterov: config.bool("nesterov"),
        };
        Ok(Settings {
            config,
            schedule,
            sgd,
            limit,
        })
    }

    pub fn lr_at(&self, epoch: i64) -> f64 {
        self.schedule.at(epoch, self.config.i64("epochs"))
    }

    /// Whether the run autocasts: for "bf16" and "fp16", sets this thread's CUDA
    /// autocast dtype (tch's `autocast` switches CUDA autocast on at whatever
    /// dtype is set) and says yes; refused on the CPU.
    pub fn autocast(&self, device: tch::Device) -> Result<bool> {
        let dtype = match self.config.str("precision") {
            "bf16" => tch::Kind::BFloat16,
            "fp16" => tch::Kind::Half,
            _ => return Ok(false),
        };
        if !device.is_cuda() {
            bail!(
                "train config: `precision: \"{}\"` needs a CUDA device; this run is on the CPU, {}",
                self.config.str("precision"),
                CPU_AUTOCAST
            );
        }
        precision::set_autocast_dtype(precision::AutocastDevice::Cuda, dtype)?;
        Ok(true)
    }

    /// fp16 needs a gradient scaler (its small range underflows gradients).
    pub fn scaler(&self) -> Option<GradScaler> {
        (self.config.str("precision") == "fp16").then(GradScaler::default)
    }
}
