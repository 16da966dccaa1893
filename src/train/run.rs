//! The training loop and the `Run` it produces.

use super::checkpoint;
use super::config::Settings;
use super::dense::{Dense, Tally};
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
use std::path::PathBuf;
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
    pub fn parse(text: &str) -> Option<Status> {
        [
            Status::ReachedTarget,
            Status::TargetNotReached,
            Status::Completed,
            Status::Diverged,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

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
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Epoch {
    pub epoch: i64,
    #[serde(with = "crate::results::exact")]
    pub lr: f64,
    /// Mean loss and accuracy over the epoch's training batches as SGD saw them:
    /// augmented, in train mode, while the weights moved.
    pub batch: Score,
    /// Clean evaluation (eval mode, no augmentation) on the whole training split and
    /// the test split; `None` on epochs skipped by `eval_every`.
    pub train: Option<Score>,
    pub test: Option<Score>,
    #[serde(with = "crate::results::exact")]
    pub distance_from_init: f64,
    #[serde(with = "crate::results::exact")]
    pub epoch_time_s: f64,
    #[serde(with = "crate::results::exact")]
    pub wall_time_s: f64,
    #[serde(with = "crate::results::exact")]
    pub images_per_s: f64,
    /// Tracked metrics (the config's `track`), when measured this epoch.
    pub extra: Row,
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
    /// Where the run keeps its checkpoint; a run found there continues from it.
    pub checkpoint: Option<PathBuf>,
}

/// Seconds between checkpoints when `checkpoint_every` is not set.
const CHECKPOINT_SECONDS: f64 = 60.0;

/// Sums over one epoch's batches, kept on the device and read once; the dense
/// engine's steps add theirs on the host.
pub struct BatchTotals {
    loss: Tensor,
    correct: Tensor,
    host: Tally,
}

impl BatchTotals {
    pub fn new(device: tch::Device) -> BatchTotals {
        BatchTotals {
            loss: Tensor::zeros([], (Kind::Double, device)),
            correct: Tensor::zeros([], (Kind::Int64, device)),
            host: Tally::default(),
        }
    }

    /// The sums as two tensors (what a checkpoint keeps), host sums included.
    fn tensors(&mut self) -> (&Tensor, &Tensor) {
        let host = std::mem::take(&mut self.host);
        if host != Tally::default() {
            self.loss += host.loss;
            self.correct += host.correct;
        }
        (&self.loss, &self.correct)
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

    pub fn read(mut self, n: i64) -> Score {
        self.tensors();
        let both = Tensor::stack(&[self.loss, self.correct.to_kind(Kind::Double)], 0)
            .to_device(tch::Device::Cpu);
        let v: Vec<f64> = Vec::try_from(both).unwrap_or_else(|_| vec![f64::NAN, f64::NAN]);
        Score {
            loss: v[0] / n as f64,
            acc: v[1] / n as f64,
        }
    }
}

/// Which training examples one step sees, and how.
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    /// Positions in `0..data.epoch_len(augment)`.
    pub index: &'a Tensor,
    pub augment_seed: Option<i64>,
    pub autocast: bool,
}

/// One SGD step, exactly as `train` takes it: the batch (augmented, normalised),
/// forward in train mode, mean cross-entropy, backward, update; loss and
/// correct count added to `totals` on the device, with no host synchronisation.
/// With `dense` (an mlp on the CPU, train/dense.rs) the same step in plain Rust.
/// Public so the benchmark against PyTorch (benches/compare.rs) times this path.
pub fn train_step(
    model: &Model,
    params: &mut [Tensor],
    sgd: &mut Sgd,
    data: &Dataset,
    batch: Batch,
    totals: &mut BatchTotals,
    dense: Option<&mut Dense>,
) {
    let b = data.train_batch(batch.index, batch.augment_seed);
    if let Some(tally) = dense.and_then(|d| d.step_on(params, sgd, &b)) {
        totals.host += tally;
        return;
    }
    Sgd::zero_grad(params);
    let (logits, loss) = tch::autocast(batch.autocast, || {
        let logits = model.forward_t(&b.x, true);
        let loss = cross_entropy(&logits, &b.y, Reduction::Mean);
        (logits, loss)
    });
    sgd.scale_loss(&loss).backward();
    sgd.step(params);
    totals.add(&logits, &b.y, &loss);
}

/// `evaluate`, through the dense engine when the run has one.
fn score(dense: &mut Option<Dense>, model: &Model, data: &Dataset, part: Part) -> Score {
    match dense {
        Some(d) => d.evaluate(model, data, part),
        None => evaluate(model, data, part),
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
        checkpoint,
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
    let config = &settings.config;
    let mut setting: Row = vec![
        ("run".into(), Value::Int(index)),
        ("kind".into(), Value::Str(kind.into())),
    ];
    setting.extend(data.columns());
    setting.extend(init.spec.columns());
    setting.extend(config.to_row());
    // Digests of the starting weights and the data: only a run that keeps a
    // checkpoint needs them, to tell whether the checkpoint is still its own.
    let fingerprint = match &checkpoint {
        Some(_) => super::fingerprint::fingerprint(&setting, init, data)?,
        None => String::new(),
    };
    let restored = match &checkpoint {
        Some(path) => checkpoint::load(path, data.device(), &fingerprint)?,
        None => None,
    };
    let finish = |model: Model, history: Vec<Epoch>, status: Status| Run {
        index,
        kind: kind.to_string(),
        model: Rc::new(model),
        data: data.clone(),
        config: settings.config.clone(),
        history,
        status,
    };
    if let Some(state) = &restored {
        if let Some(status) = state.status() {
            let state = restored.expect("checked above");
            return Ok(finish(state.model, state.progress.history, status));
        }
    }

    let start_weights: Vec<Tensor> = init
        .parameters()
        .iter()
        .map(|p| p.detach().copy())
        .collect();
    let tracker = Tracker::new(config, init);
    let batch = config.i64("batch_size");
    let seed = config.i64("seed");
    let target = config.opt_f64("stop_at_train_acc");
    let check_every = config.i64("check_every");
    let eval_every = config.i64("eval_every");
    let checkpoint_every = config.get("checkpoint_every").as_f64().map(|e| e as i64);
    let augment = config.bool("augment");
    let limit = settings.limit;
    let device = data.device();

    let (model, mut sgd, mut history, mut totals, first_epoch, first_step, elapsed, epoch_elapsed) =
        match restored {
            Some(state) => {
                let mut sgd = Sgd::new(settings.sgd, state.buffers.len())?;
                sgd.restore(state.buffers)?;
                let p = state.progress;
                let totals = BatchTotals {
                    loss: state.totals.0,
                    correct: state.totals.1,
                    host: Tally::default(),
                };
                (
                    state.model,
                    sgd,
                    p.history,
                    totals,
                    p.epoch,
                    p.step,
                    p.elapsed_s,
                    p.epoch_elapsed_s,
                )
            }
            None => {
                let model = init.copy()?;
                let sgd = Sgd::new(settings.sgd, model.parameters().len())?;
                (
                    model,
                    sgd,
                    Vec::new(),
                    BatchTotals::new(device),
                    1,
                    0,
                    0.0,
                    0.0,
                )
            }
        };
    sgd.scaler = settings.scaler();
    let mut params = model.parameters();
    let mut dense = if autocast || sgd.scaler.is_some() {
        None
    } else {
        Dense::for_model(&model)
    };

    let save = |model: &Model,
                sgd: &Sgd,
                totals: &mut BatchTotals,
                history: &[Epoch],
                at: (i64, i64),
                spent: (f64, f64),
                complete: Option<Status>|
     -> Result<()> {
        let Some(path) = &checkpoint else {
            return Ok(());
        };
        let progress = checkpoint::Progress {
            fingerprint: fingerprint.clone(),
            epoch: at.0,
            step: at.1,
            history: history.to_vec(),
            complete: complete.map(|s| s.as_str().to_string()),
            elapsed_s: spent.0,
            epoch_elapsed_s: spent.1,
            momentum: sgd.buffers().iter().map(Option::is_some).collect(),
        };
        checkpoint::save(path, model, sgd.buffers(), totals.tensors(), &progress)
    };

    let mut progress = Progress::new(format!("run {index} ({kind})"), limit, quiet);
    let started = Instant::now() - std::time::Duration::from_secs_f64(elapsed);
    let mut last_save = Instant::now();
    let mut status = if target.is_some() {
        Status::TargetNotReached
    } else {
        Status::Completed
    };
    for epoch in first_epoch..=limit {
        let resumed = epoch == first_epoch;
        let epoch_start = Instant::now()
            - std::time::Duration::from_secs_f64(if resumed { epoch_elapsed } else { 0.0 });
        let lr = settings.lr_at(epoch);
        sgd.options.lr = lr;
        let epoch_seed = crate::rng::derive(seed, epoch);
        let n = data.epoch_len(augment);
        let order = crate::rng::seeded(epoch_seed, || Tensor::randperm(n, (Kind::Int64, device)));
        let mut step = if resumed { first_step } else { 0 };
        if !resumed {
            totals = BatchTotals::new(device);
        }
        let mut start = step * batch;
        while start < n {
            if interrupt::requested() {
                // Stop at this batch boundary, keeping everything needed to go on.
                let spent = (
                    started.elapsed().as_secs_f64(),
                    epoch_start.elapsed().as_secs_f64(),
                );
                save(
                    &model,
                    &sgd,
                    &mut totals,
                    &history,
                    (epoch, step),
                    spent,
                    None,
                )?;
                interrupt::check()?;
            }
            let len = batch.min(n - start);
            let augment_seed = augment.then(|| crate::rng::derive(epoch_seed, step));
            let batch = Batch {
                index: &order.narrow(0, start, len),
                augment_seed,
                autocast,
            };
            let host = match (dense.as_mut(), augment_seed) {
                (Some(d), None) => d.step_rows(&params, &mut sgd, data, &order, start, len),
                _ => None,
            };
            match host {
                Some(tally) => totals.host += tally,
                None => train_step(
                    &model,
                    &mut params,
                    &mut sgd,
                    data,
                    batch,
                    &mut totals,
                    dense.as_mut(),
                ),
            }
            start += len;
            step += 1;
        }
        let batch_score = std::mem::replace(&mut totals, BatchTotals::new(device)).read(n);
        let epoch_time = epoch_start.elapsed().as_secs_f64();
        let check_due = target.is_some() && epoch % check_every == 0;
        let eval_due = epoch % eval_every == 0 || epoch == limit || !batch_score.loss.is_finite();
        let train = (eval_due || check_due).then(|| score(&mut dense, &model, data, Part::Train));
        let reached = check_due && target.zip(train).is_some_and(|(t, score)| score.acc >= t);
        // Checking the target needs the train split only; the test split is
        // evaluated on evaluation epochs and at the end, where the run stops.
        let test = (eval_due || reached).then(|| score(&mut dense, &model, data, Part::Test));
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
            extra: tracker.measure(epoch, &model, data)?,
        });
        let speed = n as f64 / epoch_time.max(1e-9);
        let line = match (train, test) {
            (Some(s), Some(t)) => format!(
                "loss {:.4} acc {:.4} test acc {:.4} lr {lr} {speed:.0} img/s",
                s.loss, s.acc, t.acc
            ),
            (Some(s), None) => format!(
                "loss {:.4} acc {:.4} lr {lr} {speed:.0} img/s",
                s.loss, s.acc
            ),
            _ => format!(
                "batch loss {:.4} batch acc {:.4} lr {lr} {speed:.0} img/s",
                batch_score.loss, batch_score.acc
            ),
        };
        progress.epoch(epoch, &line);
        if !batch_score.loss.is_finite() || train.is_some_and(|t| !t.loss.is_finite()) {
            status = Status::Diverged;
            break;
        }
        if reached {
            status = Status::ReachedTarget;
            break;
        }
        let due = match checkpoint_every {
            Some(every) => epoch % every == 0,
            None => last_save.elapsed().as_secs_f64() >= CHECKPOINT_SECONDS,
        };
        if due && epoch < limit {
            save(
                &model,
                &sgd,
                &mut totals,
                &history,
                (epoch + 1, 0),
                (started.elapsed().as_secs_f64(), 0.0),
                None,
            )?;
            last_save = Instant::now();
        }
    }
    let last = history.last().map_or(0, |e| e.epoch);
    save(
        &model,
        &sgd,
        &mut totals,
        &history,
        (last + 1, 0),
        (started.elapsed().as_secs_f64(), 0.0),
        Some(status),
    )?;
    let evaluated = history.iter().rev().find_map(|e| e.train.zip(e.test));
    progress.finish(
        last,
        &format!(
            "{}: train acc {:.4}, test acc {:.4}",
            status.as_str(),
            evaluated.map_or(f64::NAN, |(t, _)| t.acc),
            evaluated.map_or(f64::NAN, |(_, t)| t.acc)
        ),
    );
    Ok(finish(model, history, status))
}
