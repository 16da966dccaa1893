//! The `train` config map: keys, defaults and the checks torch.optim.SGD makes.
//!
//! Defaults are vanilla SGD with the paper's batch size and initial learning rate;
//! momentum, weight decay (L2) and augmentation are switched on explicitly.

use super::sgd::SgdOptions;
use crate::host::config::{Config, Default as D, Key, Rule, Spec};

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

pub const TRAIN: Spec = Spec {
    what: "train config",
    keys: &[
        Key {
            name: "epochs",
            rule: POSITIVE_INT,
            default: D::Int(350),
            help: "epochs to run at most",
        },
        Key {
            name: "batch_size",
            rule: POSITIVE_INT,
            default: D::Int(128),
            help: "examples per SGD step",
        },
        Key {
            name: "lr",
            rule: Rule::Float {
                min: 0.0,
                max: f64::INFINITY,
                min_open: true,
            },
            default: D::Float(0.1),
            help: "learning rate",
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

pub fn sgd_options(c: &Config) -> SgdOptions {
    SgdOptions {
        lr: c.f64("lr"),
        momentum: c.f64("momentum"),
        dampening: c.f64("dampening"),
        weight_decay: c.f64("weight_decay"),
        nesterov: c.bool("nesterov"),
    }
}
