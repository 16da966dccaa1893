//! The `train` config map: keys, defaults and the checks torch.optim.SGD makes.
//!
//! Defaults are vanilla SGD with the paper's batch size and initial learning rate;
//! momentum, weight decay (L2) and augmentation are switched on explicitly.

use super::precision::{self, GradScaler};
use super::schedule::{self, Schedule};
use super::sgd::SgdOptions;
use crate::kit::config::{Config, Default as D, Rule};
use crate::kit::rules::{NONNEG, POSITIVE_INT, SEED, UNIT, UNIT_OPEN};
use crate::kit::typed::key;
use crate::results::Value;
use crate::typed_config;
use anyhow::{bail, Result};
use rhai::{Dynamic, Map};

fn lr_value(v: &Dynamic) -> Result<Value, String> {
    Ok(match schedule::parse(v)? {
        Schedule::Constant(lr) => Value::Float(lr),
        other => Value::Str(other.to_string()),
    })
}

/// Why CPU autocast is not offered (measured in docs/TRAINING.md, "Device and
/// precision").
const CPU_AUTOCAST: &str = "where autocast is not offered: bf16 autocast measured 5.2x slower than fp32 on an AVX2 CPU without bf16 instructions (docs/TRAINING.md); use \"fp32\"";

typed_config! {
    /// The `train` config map, typed.
    pub struct TrainConfig as TRAIN("train config") {
        epochs: i64 = key(POSITIVE_INT, D::Int(350), "epochs to run (the schedule's length)");
        batch_size: i64 = key(POSITIVE_INT, D::Int(128), "examples per SGD step");
        lr: Value = key(Rule::Custom(lr_value), D::Float(0.1), "learning rate: a number or a schedule map (piecewise, step, cosine)");
        momentum: f64 = key(UNIT, D::Float(0.0), "SGD momentum (paper: 0.9)");
        dampening: f64 = key(UNIT, D::Float(0.0), "momentum dampening");
        weight_decay: f64 = key(NONNEG, D::Float(0.0), "L2 regularisation added to the gradient (paper: 5e-4)");
        nesterov: bool = key(Rule::Bool, D::Bool(false), "Nesterov momentum");
        augment: bool = key(Rule::Bool, D::Bool(false), "apply the data set's augmentation while training");
        seed: i64 = key(SEED, D::Int(0), "seed of batch order and augmentation");
        stop_at_train_acc: Option<f64> = key(UNIT_OPEN, D::Absent, "stop once train accuracy reaches this fraction, e.g. 1.0");
        check_every: i64 = key(POSITIVE_INT, D::Int(1), "epochs between checks of stop_at_train_acc");
        max_epochs: Option<i64> = key(POSITIVE_INT, D::Absent, "with stop_at_train_acc: keep going past `epochs` (at the last lr) up to this");
        eval_every: i64 = key(POSITIVE_INT, D::Int(1), "epochs between evaluations on the clean train and test splits");
        checkpoint_every: Option<i64> = key(POSITIVE_INT, D::Absent, "epochs between checkpoints (default: every 60 s of training, and at the end)");
        precision: String = key(Rule::Str { choices: &["fp32", "bf16", "fp16"] }, D::Str("fp32"), "fp32; bf16 autocast or fp16 autocast with a gradient scaler (CUDA only)");
        track: Vec<String> = key(Rule::Strs { choices: crate::metrics::track::TRACKABLE }, D::Str(""), "metrics added to the history every track_every epochs (docs/METRICS.md)");
        track_every: i64 = key(POSITIVE_INT, D::Int(1), "epochs between measurements of the tracked metrics");
    }
}

/// A validated train config with its typed parts.
pub struct Settings {
    /// The values as result columns, in the spec's order.
    pub config: Config,
    pub train: TrainConfig,
    pub schedule: Schedule,
    pub sgd: SgdOptions,
    /// Epochs the loop may run: `epochs`, or `max_epochs` when a target is set.
    pub limit: i64,
}

impl Settings {
    pub fn read(map: &Map) -> Result<Settings, String> {
        let (train, config) = TrainConfig::read(map)?;
        let schedule = map
            .get("lr")
            .map_or(Ok(Schedule::Constant(0.1)), schedule::parse)?;
        let epochs = train.epochs;
        let limit = match (train.stop_at_train_acc, train.max_epochs) {
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
            momentum: train.momentum,
            dampening: train.dampening,
            weight_decay: train.weight_decay,
            nesterov: train.nesterov,
        };
        Ok(Settings {
            config,
            train,
            schedule,
            sgd,
            limit,
        })
    }

    pub fn lr_at(&self, epoch: i64) -> f64 {
        self.schedule.at(epoch, self.train.epochs)
    }

    /// Whether the run autocasts: for "bf16" and "fp16", sets this thread's CUDA
    /// autocast dtype (tch's `autocast` switches CUDA autocast on at whatever
    /// dtype is set) and says yes; refused on the CPU.
    pub fn autocast(&self, device: tch::Device) -> Result<bool> {
        let precision = self.train.precision.as_str();
        let dtype = match precision {
            "bf16" => tch::Kind::BFloat16,
            "fp16" => tch::Kind::Half,
            _ => return Ok(false),
        };
        if !device.is_cuda() {
            bail!(
                "train config: `precision: \"{precision}\"` needs a CUDA device; this run is on the CPU, {CPU_AUTOCAST}"
            );
        }
        precision::set_autocast_dtype(precision::AutocastDevice::Cuda, dtype)?;
        Ok(true)
    }

    /// fp16 needs a gradient scaler (its small range underflows gradients).
    pub fn scaler(&self) -> Option<GradScaler> {
        (self.train.precision == "fp16").then(GradScaler::default)
    }
}
