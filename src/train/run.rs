//! The training loop and the `Run` it produces.

use super::config::sgd_options;
use super::progress::Progress;
use super::sgd::Sgd;
use crate::data::{Dataset, Part};
use crate::host::config::Config;
use crate::host::interrupt;
use crate::metrics::distance;
use crate::metrics::evaluate::{cross_entropy, evaluate, Score};
use crate::metrics::track::Tracker;
use crate::models::Model;
use crate::results::{Row, Value};
use anyhow::{bail, Result};
use std::rc::Rc;
use std::time::Instant;
use tch::{Kind, Reduction, Tensor};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Status {
    /// `stop_at_train_acc` was reached.
    ReachedTarget,
    /// `stop_at_train_acc` was set but not reached within `epochs`.
    TargetNotReached,
    /// All epochs ran (no target set).
    Completed,
    /// The training loss became NaN or infinite.
    Diverged,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::ReachedTarget => "reached_target",
            Status::TargetNotReached => "target_not_reached",
            Status::Completed => "completed",
            Status::Diverged => "diverged",
        }
    }
}

/// Metrics of one epoch, measured after its last step.
#[derive(Debug, Clone, PartialEq)]
pub struct Epoch {
    pub epoch: i64,
    pub lr: f64,
    pub train: Score,
    pub test: Score,
    pub distance_from_init: f64,
    pub epoch_time_s: f64,
    pub wall_time_s: f64,
    pub images_per_s: f64,
    /// Tracked metrics (the config's `track`), when measured this epoch.
    pub extra: Row,
}

impl Epoch {
    fn columns(&self) -> Row {
        vec![
            ("epoch".into(), Value::Int(self.epoch)),
            ("lr".into(), Value::Float(self.lr)),
            ("train_loss".into(), Value::Float(self.train.loss)),
            ("train_acc".into(), Value::Float(self.train.acc)),
            ("test_loss".into(), Value::Float(self.test.loss)),
            ("test_acc".into(), Value::Float(self.test.acc)),
            (
                "distance_from_init".into(),
                Value::Float(self.distance_from_init),
            ),
            ("epoch_time_s".into(), Value::Float(self.epoch_time_s)),
            ("wall_time_s".into(), Value::Float(self.wall_time_s)),
            ("images_per_s".into(), Value::Float(self.images_per_s)),
        ]
        .into_iter()
        .chain(self.extra.iter().cloned())
        .collect()
    }
}

pub struct Run {
    /// Position of the run in its session (the `run` column).
    pub index: i64,
    /// "train" or "adversarial_init".
    pub kind: String,
    pub model: Rc<Model>,
    pub data: Rc<Dataset>,
    pub config: Config,
    pub history: Vec<Epoch>,
    pub status: Status,
}

impl Run {
    pub fn last(&self) -> Option<&Epoch> {
        self.history.last()
    }

    /// Columns shared by every row of this run: what was trained on what, how.
    pub fn setting_columns(&self) -> Row {
        let mut row: Row = vec![
            ("run".into(), Value::Int(self.index)),
            ("kind".into(), Value::Str(self.kind.clone())),
        ];
        row.extend(self.data.columns());
        row.extend(self.model.spec.columns());
        row.extend(self.config.to_row());
        row
    }

    pub fn history_rows(&self) -> Vec<Row> {
        self.history.iter().map(Epoch::columns).collect()
    }

    /// The final state: status, epochs run and the last epoch's metrics.
    pub fn summary_columns(&self) -> Row {
        let mut row: Row = vec![
            ("status".into(), Value::Str(self.status.as_str().into())),
            ("epochs_run".into(), Value::Int(self.history.len() as i64)),
        ];
        if let Some(last) = self.last() {
            row.extend(last.columns().into_iter().filter(|(k, _)| k != "epoch"));
        }
        row
    }

    pub fn summary(&self) -> String {
        match self.last() {
            Some(e) => format!(
                "Run #{} ({}, {}): {} after {} epochs, train acc {:.4}, test acc {:.4}",
                self.index,
                self.kind,
                self.data.labels(),
                self.status.as_str(),
                e.epoch,
                e.train.acc,
                e.test.acc
            ),
            None => format!("Run #{} ({}): no epochs", self.index, self.kind),
        }
    }
}

pub struct TrainRequest<'a> {
    pub init: &'a Model,
    pub data: &'a Rc<Dataset>,
    pub config: Config,
    pub kind: &'a str,
    pub index: i64,
    pub quiet: bool,
}

/// Trains a copy of `init` on `data`; `init` itself is left unchanged.
pub fn train(req: TrainRequest) -> Result<Run> {
    let TrainRequest {
        init,
        data,
        config,
        kind,
        index,
        quiet,
    } = req;
    if init.device() != data.device() {
        bail!(
            "the model is on {:?} but the data on {:?}",
            init.device(),
            data.device()
        );
    }
    init.spec.check_fits(data)?;
    let model = init.copy()?;
    let mut params = model.parameters();
    let start_weights: Vec<Tensor> = params.iter().map(|p| p.detach().copy()).collect();
    let tracker = Tracker::new(&config, &model);
    let sgd_opts = sgd_options(&config);
    let mut sgd = Sgd::new(sgd_opts, params.len())?;
    let epochs = config.i64("epochs");
    let batch = config.i64("batch_size");
    let seed = config.i64("seed");
    let target = config.opt_f64("stop_at_train_acc");
    let check_every = config.i64("check_every");
    let augment = config.bool("augment");

    let mut progress = Progress::new(format!("run {index} ({kind})"), epochs, quiet);
    let started = Instant::now();
    let mut history = Vec::new();
    let mut status = if target.is_some() {
        Status::TargetNotReached
    } else {
        Status::Completed
    };
    for epoch in 1..=epochs {
        let epoch_start = Instant::now();
        let epoch_seed = crate::rng::derive(seed, epoch);
        let n = data.epoch_len(augment);
        let order = crate::rng::seeded(epoch_seed, || {
            Tensor::randperm(n, (Kind::Int64, data.device()))
        });
        let mut start = 0;
        let mut step = 0;
        while start < n {
            interrupt::check()?;
            let len = batch.min(n - start);
            let augment_seed = augment.then(|| crate::rng::derive(epoch_seed, step));
            let b = data.train_batch(&order.narrow(0, start, len), augment_seed);
            Sgd::zero_grad(&mut params);
            let loss = cross_entropy(&model.forward_t(&b.x, true), &b.y, Reduction::Mean);
            loss.backward();
            sgd.step(&params);
            start += len;
            step += 1;
        }
        let epoch_time = epoch_start.elapsed().as_secs_f64();
        let train = evaluate(&model, data, Part::Train);
        let test = evaluate(&model, data, Part::Test);
        let record = Epoch {
            epoch,
            lr: sgd_opts.lr,
            train,
            test,
            distance_from_init: distance::relative(&start_weights, &params),
            epoch_time_s: epoch_time,
            wall_time_s: started.elapsed().as_secs_f64(),
            images_per_s: n as f64 / epoch_time.max(1e-9),
            extra: tracker.measure(epoch, &model, data)?,
        };
        history.push(record);
        let line = format!(
            "loss {:.4} acc {:.4} test acc {:.4}",
            train.loss, train.acc, test.acc
        );
        progress.epoch(epoch, &line);
        if !train.loss.is_finite() {
            status = Status::Diverged;
            break;
        }
        if let Some(t) = target {
            if epoch % check_every == 0 && train.acc >= t {
                status = Status::ReachedTarget;
                break;
            }
        }
    }
    let last = history.last();
    progress.finish(
        last.map_or(0, |e| e.epoch),
        &format!(
            "{}: train acc {:.4}, test acc {:.4}",
            status.as_str(),
            last.map_or(f64::NAN, |e| e.train.acc),
            last.map_or(f64::NAN, |e| e.test.acc)
        ),
    );
    Ok(Run {
        index,
        kind: kind.to_string(),
        model: Rc::new(model),
        data: data.clone(),
        config,
        history,
        status,
    })
}
