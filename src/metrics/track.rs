//! Per-epoch tracking of metrics during training: the train config's `track`
//! names what to measure and `track_every` how often; the values become extra
//! columns of the epoch's history row (null on epochs that are skipped).

use super::{distance, fgsm, norms};
use crate::data::{Dataset, Part};
use crate::models::Model;
use crate::results::{Row, Value};
use anyhow::Result;
use tch::Tensor;

/// What `track` may name.
pub const TRACKABLE: &[&str] = &["norms", "distance_to_init", "fgsm"];

/// Tracked FGSM's eps, in units of 1/255 (the columns `fgsm_acc_<k>`).
pub const FGSM_EPS_255: [i64; 5] = [0, 1, 2, 4, 8];

pub struct Tracker {
    every: i64,
    norms: bool,
    fgsm: bool,
    /// Initial trainable parameters and initial weights with BN buffers, when
    /// `distance_to_init` is tracked.
    init: Option<(Vec<Tensor>, Vec<Tensor>)>,
}

fn snapshot(ts: Vec<Tensor>) -> Vec<Tensor> {
    ts.iter().map(|t| t.detach().copy()).collect()
}

impl Tracker {
    /// `names` from `TRACKABLE` measured every `every` epochs; `model` is the
    /// initial model of the run.
    pub fn new(names: &[String], every: i64, model: &Model) -> Tracker {
        let has = |n: &str| names.iter().any(|t| t == n);
        Tracker {
            every: every.max(1),
            norms: has("norms"),
            fgsm: has("fgsm"),
            init: has("distance_to_init").then(|| {
                (
                    snapshot(distance::weights(model, false)),
                    snapshot(distance::weights(model, true)),
                )
            }),
        }
    }

    /// The tracked columns for `epoch` (empty when nothing is due).
    pub fn measure(&self, epoch: i64, model: &Model, data: &Dataset) -> Result<Row> {
        let mut row = Row::new();
        if epoch % self.every != 0 {
            return Ok(row);
        }
        if self.norms {
            for (name, v) in norms::norms(model)? {
                row.push((name.into(), Value::Float(v)));
            }
        }
        if let Some((params, all)) = &self.init {
            let now = distance::weights(model, false);
            let with_buffers = distance::weights(model, true);
            row.push((
                "distance_to_init_abs".into(),
                Value::Float(distance::absolute(params, &now)),
            ));
            row.push((
                "distance_to_init_buffers".into(),
                Value::Float(distance::relative(all, &with_buffers)),
            ));
        }
        if self.fgsm {
            let eps: Vec<f64> = FGSM_EPS_255.iter().map(|&k| k as f64 / 255.0).collect();
            for (k, r) in FGSM_EPS_255
                .iter()
                .zip(fgsm::fgsm(model, data, Part::Test, &eps, None)?)
            {
                row.push((format!("fgsm_acc_{k}"), Value::Float(r.acc)));
            }
        }
        Ok(row)
    }
}
