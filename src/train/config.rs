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

/// Why bf16 autocast is not offered on a CPU without bf16 instructions (measured
/// in docs/TRAINING.md, "Device and precision").
const CPU_AUTOCAST: &str = "without them bf16 autocast measured 5.2x slower than fp32 (an AVX2 CPU, docs/TRAINING.md); use \"fp32\"";

typed_config! {
    /// The `train` config map, typed.
    pub struct TrainConfig as TRAIN("train config") {
        epochs: i64 = key(POSITIVE_INT, D::Int(350), "epochs to run (the schedule's length)");
        batch_size: i64 = key(POSITIVE_INT, D::Int(128), "examples per SGD step");
        lr: Value = key(Rule::Custom(lr_value), D::Float(0.1), "learning rate: a number or a schedule map (piecewise, step, cosine, plateau: docs/TRAINING.md)");
        momentum: f64 = key(UNIT, D::Float(0.0), "SGD momentum (paper: 0.9)");
        dampening: f64 = key(UNIT, D::Float(0.0), "momentum dampening");
        weight_decay: f64 = key(NONNEG, D::Float(0.0), "L2 regularisation added to the gradient (paper: 5e-4)");
        nesterov: bool = key(Rule::Bool, D::Bool(false), "Nesterov momentum");
        augment: bool = key(Rule::Bool, D::Bool(false), "apply the data set's augmentation while training");
        seed: i64 = key(SEED, D::Int(0), "seed of batch order and augmentation");
        stop_at_train_acc: Option<f64> = key(UNIT_OPEN, D::Absent, "stop once train accuracy reaches this fraction, e.g. 1.0");
        check_every: i64 = key(POSITIVE_INT, D::Int(1), "epochs between checks of stop_at_train_acc");
        max_epochs: Option<i64> = key(POSITIVE_INT, D::Absent, "with stop_at_train_acc: keep going past `epochs` (at the last lr) up to this");
        eval_every: i64 = key(POSITIVE_INT, D::Int(1), "epochs between evaluations on the train and test splits");
        train_eval: String = key(Rule::Str { choices: &["clean", "augmented"] }, D::Str("clean"), "what train_loss and train_acc score: the clean training split, or with augment on freshly augmented copies of it, as the authors' code does");
        checkpoint_every: Option<i64> = key(POSITIVE_INT, D::Absent, "epochs between checkpoints (default: every 60 s of training, and at the end)");
        precision: String = key(Rule::Str { choices: &["fp32", "bf16", "fp16"] }, D::Str("fp32"), "fp32; bf16 autocast (CUDA, or a CPU with AVX512-BF16) or fp16 autocast with a gradient scaler (CUDA)");
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

    /// Which autocast the run uses: for "bf16" and "fp16" on CUDA, CUDA autocast
    /// at that dtype; for "bf16" on a CPU with bf16 instructions, CPU autocast at
    /// bfloat16 (each set for this thread). Refused on other CPUs, and fp16 on
    /// any CPU, with the reason.
    pub fn autocast(&self, device: tch::Device) -> Result<Option<precision::AutocastDevice>> {
        let precision = self.train.precision.as_str();
        let dtype = match precision {
            "bf16" => tch::Kind::BFloat16,
            "fp16" => tch::Kind::Half,
            _ => return Ok(None),
        };
        let on = match (device.is_cuda(), precision) {
            (true, _) => precision::AutocastDevice::Cuda,
            (false, "bf16") if precision::cpu_has_bf16() => precision::AutocastDevice::Cpu,
            (false, "bf16") => bail!("train config: `precision: \"bf16\"` on the CPU needs bf16 instructions (AVX512-BF16), which this CPU lacks: {CPU_AUTOCAST}"),
            _ => bail!("train config: `precision: \"fp16\"` needs a CUDA device; on the CPU use \"bf16\" (on a CPU with AVX512-BF16) or \"fp32\""),
        };
        precision::set_autocast_dtype(on, dtype)?;
        Ok(Some(on))
    }

    /// fp16 needs a gradient scaler (its small range underflows gradients).
    pub fn scaler(&self) -> Option<GradScaler> {
        (self.train.precision == "fp16").then(GradScaler::default)
    }
}
