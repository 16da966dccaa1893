//! The training loop: epochs of SGD steps over a seeded order, each epoch
//! measured, checkpointed now and then, stopped early by a target, divergence or
//! Ctrl-C (which keeps everything needed to go on).

use super::checkpoint::{self, Position, State};
use super::config::Settings;
use super::dense::Dense;
use super::history::{Epoch, Run, Status};
use super::plateau::Plateau;
use super::precision::AutocastDevice;
use super::progress::Progress;
use super::schedule::Schedule;
use super::sgd::Sgd;
use super::step::{score, score_train, train_step, Batch, BatchTotals};
use crate::data::{Dataset, Part};
use crate::kit::interrupt;
use crate::metrics::{distance, track::Tracker};
use crate::models::Model;
use crate::results::{Row, Value};
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tch::{Device, Kind, Tensor};

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
    check_fits(init, data)?;
    let autocast = settings.autocast(data.device())?;
    let setting = setting_row(index, kind, data, init, &settings);
    let saver = Saver::new(checkpoint, &setting, init, data)?;
    let state = match saver.load(data.device(), &settings)? {
        Some(state) => state,
        None => fresh(init, &settings, saver.fingerprint.clone(), data.device())?,
    };
    let done = |state: State, status| Run {
        index,
        kind: kind.to_string(),
        model: Rc::new(state.model),
        data: data.clone(),
        setting: setting.clone(),
        history: state.position.history,
        status,
    };
    if let Some(status) = state.position.status() {
        return Ok(done(state, status));
    }

    let mut fit = Fit::new(init, data, &settings, (saver, autocast), state);
    let mut progress = Progress::new(format!("run {index} ({kind})"), settings.limit, quiet);
    let mut status = match settings.train.stop_at_train_acc {
        Some(_) => Status::TargetNotReached,
        None => Status::Completed,
    };
    let first = fit.state.position.epoch;
    for epoch in first..=settings.limit {
        fit.steps(epoch, epoch == first)?;
        let (record, reached) = fit.measure(epoch)?;
        progress.epoch(epoch, &record.line());
        let diverged =
            !record.batch.loss.is_finite() || record.train.is_some_and(|t| !t.loss.is_finite());
        fit.state.position.history.push(record);
        if diverged {
            status = Status::Diverged;
            break;
        }
        if reached {
            status = Status::ReachedTarget;
            break;
        }
        fit.checkpoint_if_due(epoch)?;
    }

    let state = fit.finish(status)?;
    let evaluated = state
        .position
        .history
        .iter()
        .rev()
        .find_map(|e| e.train.zip(e.test));
    let (train_acc, test_acc) = evaluated.map_or((f64::NAN, f64::NAN), |(t, s)| (t.acc, s.acc));
    let last = state.position.history.last().map_or(0, |e| e.epoch);
    let outcome = format!(
        "{}: train acc {train_acc:.4}, test acc {test_acc:.4}",
        status.as_str()
    );
    progress.finish(last, &outcome);
    Ok(done(state, status))
}

/// A run in progress: its state, what stays fixed while it trains, and the
/// epoch under way.
struct Fit<'a> {
    state: State,
    data: &'a Dataset,
    settings: &'a Settings,
    saver: Saver,
    autocast: Option<AutocastDevice>,
    params: Vec<Tensor>,
    /// The host engine of an mlp on the CPU (train/dense/), else `None`.
    dense: Option<Dense>,
    start_weights: Vec<Tensor>,
    tracker: Tracker,
    started: Instant,
    last_save: Instant,
    /// A plateau schedule's state (its metric's split is then evaluated every epoch).
    plateau: Option<Plateau>,
    /// The epoch under way: when it started, its lr and its examples.
    epoch_start: Instant,
    lr: f64,
    n: i64,
}

impl<'a> Fit<'a> {
    fn new(
        init: &Model,
        data: &'a Dataset,
        settings: &'a Settings,
        (saver, autocast): (Saver, Option<AutocastDevice>),
        mut state: State,
    ) -> Fit<'a> {
        state.sgd.scaler = settings.scaler();
        let host_engine = autocast.is_none() && state.sgd.scaler.is_none();
        let t = &settings.train;
        Fit {
            params: state.model.parameters(),
            dense: if host_engine {
                Dense::for_model(&state.model)
            } else {
                None
            },
            start_weights: init
                .parameters()
                .iter()
                .map(|p| p.detach().copy())
                .collect(),
            tracker: Tracker::new(&t.track, t.track_every, init),
            started: Instant::now() - Duration::from_secs_f64(state.position.elapsed_s),
            last_save: Instant::now(),
            plateau: plateau_so_far(&settings.schedule, &state),
            epoch_start: Instant::now(),
            lr: 0.0,
            n: 0,
            state,
            data,
            settings,
            saver,
            autocast,
        }
    }

    /// The SGD steps of `epoch` over its seeded order; a resumed epoch goes on
    /// from the position's step. Ctrl-C stops at a batch boundary, saving first.
    fn steps(&mut self, epoch: i64, resumed: bool) -> Result<()> {
        let (t, data, device) = (&self.settings.train, self.data, self.data.device());
        let spent = if resumed {
            self.state.position.epoch_elapsed_s
        } else {
            0.0
        };
        self.epoch_start = Instant::now() - Duration::from_secs_f64(spent);
        self.lr = match &self.plateau {
            Some(p) => p.lr(),
            None => self.settings.lr_at(epoch),
        };
        self.state.sgd.options.lr = self.lr;
        let epoch_seed = crate::rng::derive(t.seed, epoch);
        self.n = data.epoch_len(t.augment);
        let n = self.n;
        let order = crate::rng::seeded(epoch_seed, || Tensor::randperm(n, (Kind::Int64, device)));
        let mut step = if resumed { self.state.position.step } else { 0 };
        if !resumed {
            self.state.totals = BatchTotals::new(device);
        }
        while step * t.batch_size < n {
            if interrupt::requested() {
                let clocks = (
                    self.started.elapsed().as_secs_f64(),
                    self.epoch_start.elapsed().as_secs_f64(),
                );
                self.state.position.at((epoch, step), clocks);
                self.saver.save(&mut self.state)?;
                interrupt::check()?;
            }
            let start = step * t.batch_size;
            let len = t.batch_size.min(n - start);
            let augment_seed = t.augment.then(|| crate::rng::derive(epoch_seed, step));
            let state = &mut self.state;
            let host = self.dense.as_mut().and_then(|d| {
                d.step_rows(
                    &self.params,
                    &mut state.sgd,
                    data,
                    &order,
                    (start, len),
                    augment_seed,
                )
            });
            match host {
                Some(tally) => state.totals.add_host(tally),
                None => {
                    let index = &order.narrow(0, start, len);
                    let batch = Batch {
                        index,
                        augment_seed,
                        autocast: self.autocast,
                    };
                    let (model, sgd, totals) = (&state.model, &mut state.sgd, &mut state.totals);
                    train_step(
                        model,
                        &mut self.params,
                        sgd,
                        data,
                        batch,
                        totals,
                        self.dense.as_mut(),
                    );
                }
            }
            step += 1;
        }
        Ok(())
    }

    /// The epoch's record, and whether it reached the train-accuracy target.
    fn measure(&mut self, epoch: i64) -> Result<(Epoch, bool)> {
        let (t, data, limit) = (&self.settings.train, self.data, self.settings.limit);
        let batch =
            std::mem::replace(&mut self.state.totals, BatchTotals::new(data.device())).read(self.n);
        let epoch_time = self.epoch_start.elapsed().as_secs_f64();
        let check_due = t.stop_at_train_acc.is_some() && epoch % t.check_every == 0;
        let eval_due = epoch % t.eval_every == 0 || epoch == limit || !batch.loss.is_finite();
        let model = &self.state.model;
        let watched = self.plateau.as_ref().map(|p| p.metric().part);
        // Augmented scoring draws its crops from the epoch's own stream, apart
        // from the training steps' (derive(epoch seed, step >= 0)).
        let augmented = (t.augment && t.train_eval == "augmented")
            .then(|| crate::rng::derive(crate::rng::derive(t.seed, epoch), -1));
        let train = (eval_due || check_due || watched == Some(Part::Train))
            .then(|| score_train(&mut self.dense, model, data, augmented));
        let reached = check_due
            && t.stop_at_train_acc
                .zip(train)
                .is_some_and(|(t, s)| s.acc >= t);
        // Checking the target needs the train split only; the test split is
        // evaluated on evaluation epochs and at the end, where the run stops.
        let test = (eval_due || reached || watched == Some(Part::Test))
            .then(|| score(&mut self.dense, model, data, Part::Test));
        if let Some(p) = self.plateau.as_mut() {
            p.observe_epoch(train, test);
        }
        let record = Epoch {
            epoch,
            lr: self.lr,
            batch,
            train,
            test,
            distance_from_init: distance::relative(&self.start_weights, &self.params),
            epoch_time_s: epoch_time,
            wall_time_s: self.started.elapsed().as_secs_f64(),
            images_per_s: self.n as f64 / epoch_time.max(1e-9),
            extra: self.tracker.measure(epoch, model, data)?,
        };
        Ok((record, reached))
    }

    /// Saves after `epoch` every `checkpoint_every` epochs, else every
    /// `CHECKPOINT_SECONDS` of training (the last epoch saves in `finish`).
    fn checkpoint_if_due(&mut self, epoch: i64) -> Result<()> {
        let due = match self.settings.train.checkpoint_every {
            Some(every) => epoch % every == 0,
            None => self.last_save.elapsed().as_secs_f64() >= CHECKPOINT_SECONDS,
        };
        if due && epoch < self.settings.limit {
            let elapsed = self.started.elapsed().as_secs_f64();
            self.state.position.at((epoch + 1, 0), (elapsed, 0.0));
            self.saver.save(&mut self.state)?;
            self.last_save = Instant::now();
        }
        Ok(())
    }

    /// Saves the run as complete and returns its state.
    fn finish(mut self, status: Status) -> Result<State> {
        let last = self.state.position.history.last().map_or(0, |e| e.epoch);
        let elapsed = self.started.elapsed().as_secs_f64();
        self.state.position.at((last + 1, 0), (elapsed, 0.0));
        self.state.position.complete = Some(status.as_str().to_string());
        self.saver.save(&mut self.state)?;
        Ok(self.state)
    }
}

/// A plateau schedule's state after the epochs in the run's history: a resumed
/// run replays the values it recorded (every epoch, under this schedule).
fn plateau_so_far(schedule: &Schedule, state: &State) -> Option<Plateau> {
    let Schedule::Plateau(rule) = schedule else {
        return None;
    };
    let mut plateau = Plateau::new(rule);
    for e in &state.position.history {
        plateau.observe_epoch(e.train, e.test);
    }
    Some(plateau)
}

fn check_fits(init: &Model, data: &Dataset) -> Result<()> {
    if init.device() != data.device() {
        bail!(
            "the model is on {:?} but the data on {:?}",
            init.device(),
            data.device()
        );
    }
    init.spec.check_fits(data)
}

/// The columns every row of the run carries: what was trained on what, how.
fn setting_row(index: i64, kind: &str, data: &Dataset, init: &Model, settings: &Settings) -> Row {
    let mut row: Row = vec![
        ("run".into(), Value::Int(index)),
        ("kind".into(), Value::Str(kind.into())),
    ];
    row.extend(data.columns());
    row.extend(init.spec.columns());
    row.extend(settings.config.to_row());
    row
}

/// A run's start: a copy of `init`, SGD without momentum buffers yet, epoch 1.
fn fresh(init: &Model, settings: &Settings, fingerprint: String, device: Device) -> Result<State> {
    let model = init.copy()?;
    let sgd = Sgd::new(settings.sgd, model.parameters().len())?;
    let totals = BatchTotals::new(device);
    Ok(State {
        model,
        sgd,
        totals,
        position: Position::start(fingerprint),
    })
}

/// Where the run's checkpoint goes, and the fingerprint that says it is this
/// run's; a run without a checkpoint path saves nothing.
struct Saver {
    path: Option<PathBuf>,
    fingerprint: String,
}

impl Saver {
    fn new(path: Option<PathBuf>, setting: &Row, init: &Model, data: &Dataset) -> Result<Saver> {
        // Digests of the starting weights and the data: only a run that keeps a
        // checkpoint needs them, to tell whether the checkpoint is still its own.
        let fingerprint = match &path {
            Some(_) => super::fingerprint::fingerprint(setting, init, data)?,
            None => String::new(),
        };
        Ok(Saver { path, fingerprint })
    }

    fn load(&self, device: Device, settings: &Settings) -> Result<Option<State>> {
        match &self.path {
            Some(path) => checkpoint::load(path, device, &self.fingerprint, settings.sgd),
            None => Ok(None),
        }
    }

    fn save(&self, state: &mut State) -> Result<()> {
        match &self.path {
            Some(path) => checkpoint::save(path, state),
            None => Ok(()),
        }
    }
}
