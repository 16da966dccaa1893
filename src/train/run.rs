//! The training loop and the `Run` it produces.

use super::config::Settings;
use super::progress::Progress;
use super::sgd::Sgd;
use crate::data::{Dataset, Part};
use crate::host::config::Config;
use crate::host::interrupt;
use crate::metrics::distance;
use crate::metrics::evaluate::{cross_entropy, evaluate, Score};
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
    /// Mean loss and accuracy over the epoch's training batches as SGD saw them:
    /// augmented, in train mode, while the weights moved.
    pub batch: Score,
    /// Clean evaluation (eval mode, no augmentation) on the whole training split and
    /// the test split; `None` on epochs skipped by `eval_every`.
    pub train: Option<Score>,
    pub test: Option<Score>,
    pub distance_from_init: f64,
    pub epoch_time_s: f64,
    pub wall_time_s: f64,
    pub images_per_s: f64,
}

impl Epoch {
    fn columns(&self) -> Row {
        let opt =
            |s: Option<Score>, f: fn(Score) -> f64| s.map_or(Value::Null, |s| Value::Float(f(s)));
        vec![
            ("epoch".into(), Value::Int(self.epoch)),
            ("epoch_lr".into(), Value::Float(self.lr)),
            ("batch_loss".into(), Value::Float(self.batch.loss)),
            ("batch_acc".into(), Value::Float(self.batch.acc)),
            ("train_loss".into(), opt(self.train, |s| s.loss)),
            ("train_acc".into(), opt(self.train, |s| s.acc)),
            ("test_loss".into(), opt(self.test, |s| s.loss)),
            ("test_acc".into(), opt(self.test, |s| s.acc)),
            (
                "distance_from_init".into(),
                Value::Float(self.distance_from_init),
            ),
            ("epoch_time_s".into(), Value::Float(self.epoch_time_s)),
            ("wall_time_s".into(), Value::Float(self.wall_time_s)),
            ("images_per_s".into(), Value::Float(self.images_per_s)),
        ]
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
                e.train.map_or(f64::NAN, |s| s.acc),
                e.test.map_or(f64::NAN, |s| s.acc)
            ),
            None => format!("Run #{} ({}): no epochs", self.index, self.kind),
        }
    }
}

pub struct TrainRequest<'a> {
    pub init: &'a Model,
    pub data: &'a Rc<Dataset>,
    pub settings: Settings,
    pub kind: &'a str,
    pub index: i64,
    pub quiet: bool,
}

/// Sums over one epoch's batches, kept on the device and read once.
struct BatchTotals {
    loss: Tensor,
    correct: Tensor,
}

impl BatchTotals {
    fn new(device: tch::Device) -> BatchTotals {
        BatchTotals {
            loss: Tensor::zeros([], (Kind::Double, device)),
            correct: Tensor::zeros([], (Kind::Int64, device)),
        }
    }

    fn add(&mut self, logits: &Tensor, labels: &Tensor, loss: &Tensor) {
        let n = labels.size()[0] as f64;
        self.loss += loss.detach().to_kind(Kind::Double) * n;
        self.correct += logits
            .detach()
            .argmax(-1, false)
            .eq_tensor(labels)
            .sum(Kind::Int64);
    }

    fn read(self, n: i64) -> Score {
        let both = Tensor::stack(&[self.loss, self.correct.to_kind(Kind::Double)], 0)
            .to_device(tch::Device::Cpu);
        let v: Vec<f64> = Vec::try_from(both).unwrap_or_else(|_| vec![f64::NAN, f64::NAN]);
        Score {
            loss: v[0] / n as f64,
            acc: v[1] / n as f64,
        }
    }
}

/// Trains a copy of `init` on `data`; `init` itself is left unchanged.
pub fn train(req: TrainRequest) -> Result<Run> {
    let TrainRequest {
        init,
        data,
        settings,
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
    let autocast = settings.autocast(data.device())?;
    let model = init.copy()?;
    let mut params = model.parameters();
    let start_weights: Vec<Tensor> = params.iter().map(|p| p.detach().copy()).collect();
    let mut sgd = Sgd::new(settings.sgd, params.len())?;
    let config = &settings.config;
    let batch = config.i64("batch_size");
    let seed = config.i64("seed");
    let target = config.opt_f64("stop_at_train_acc");
    let check_every = config.i64("check_every");
    let eval_every = config.i64("eval_every");
    let augment = config.bool("augment");
    let limit = settings.limit;

    let mut progress = Progress::new(format!("run {index} ({kind})"), limit, quiet);
    let started = Instant::now();
    let mut history: Vec<Epoch> = Vec::new();
    let mut status = if target.is_some() {
        Status::TargetNotReached
    } else {
        Status::Completed
    };
    for epoch in 1..=limit {
        let epoch_start = Instant::now();
        let lr = settings.lr_at(epoch);
        sgd.options.lr = lr;
        let epoch_seed = crate::rng::derive(seed, epoch);
        let n = data.epoch_len(augment);
        let order = crate::rng::seeded(epoch_seed, || {
            Tensor::randperm(n, (Kind::Int64, data.device()))
        });
        let mut totals = BatchTotals::new(data.device());
        let mut start = 0;
        let mut step = 0;
        while start < n {
            interrupt::check()?;
            let len = batch.min(n - start);
            let augment_seed = augment.then(|| crate::rng::derive(epoch_seed, step));
            let b = data.train_batch(&order.narrow(0, start, len), augment_seed);
            Sgd::zero_grad(&mut params);
            let (logits, loss) = tch::autocast(autocast, || {
                let logits = model.forward_t(&b.x, true);
                let loss = cross_entropy(&logits, &b.y, Reduction::Mean);
                (logits, loss)
            });
            loss.backward();
            sgd.step(&params);
            totals.add(&logits, &b.y, &loss);
            start += len;
            step += 1;
        }
        let batch_score = totals.read(n);
        let epoch_time = epoch_start.elapsed().as_secs_f64();
        let check_due = target.is_some() && epoch % check_every == 0;
        let eval_due =
            epoch % eval_every == 0 || epoch == limit || check_due || !batch_score.loss.is_finite();
        let train = eval_due.then(|| evaluate(&model, data, Part::Train));
        let test = eval_due.then(|| evaluate(&model, data, Part::Test));
        history.push(Epoch {
            epoch,
            lr,
            batch: batch_score,
            train,
            test,
            distance_from_init: distance::relative(&start_weights, &params),
            epoch_time_s: epoch_time,
            wall_time_s: started.elapsed().as_secs_f64(),
            images_per_s: n as f64 / epoch_time.max(1e-9),
        });
        let shown = train.unwrap_or(batch_score);
        let line = match test {
            Some(t) => format!(
                "loss {:.4} acc {:.4} test acc {:.4} lr {lr}",
                shown.loss, shown.acc, t.acc
            ),
            None => format!(
                "batch loss {:.4} batch acc {:.4} lr {lr}",
                shown.loss, shown.acc
            ),
        };
        progress.epoch(epoch, &line);
        if !batch_score.loss.is_finite() || train.is_some_and(|t| !t.loss.is_finite()) {
            status = Status::Diverged;
            break;
        }
        if let (Some(t), Some(score), true) = (target, train, check_due) {
            if score.acc >= t {
                status = Status::ReachedTarget;
                break;
            }
        }
    }
    let last = history.last();
    let evaluated = history.iter().rev().find_map(|e| e.train.zip(e.test));
    progress.finish(
        last.map_or(0, |e| e.epoch),
        &format!(
            "{}: train acc {:.4}, test acc {:.4}",
            status.as_str(),
            evaluated.map_or(f64::NAN, |(t, _)| t.acc),
            evaluated.map_or(f64::NAN, |(_, t)| t.acc)
        ),
    );
    Ok(Run {
        index,
        kind: kind.to_string(),
        model: Rc::new(model),
        data: data.clone(),
        config: settings.config,
        history,
        status,
    })
}
