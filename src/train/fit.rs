//! The training loop: epochs of SGD steps over a seeded order, each epoch
//! measured, checkpointed now and then, stopped early by a target, divergence or
//! Ctrl-C (which keeps everything needed to go on).

use super::checkpoint::{self, Position, State};
use super::config::Settings;
use super::dense::Dense;
use super::history::{Epoch, Run, Status};
use super::progress::Progress;
use super::sgd::Sgd;
use super::step::{score, train_step, Batch, BatchTotals};
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
    let t = &settings.train;
    let setting = setting_row(index, kind, data, init, &settings);
    let saver = Saver::new(checkpoint, &setting, init, data)?;
    let mut state = match saver.load(data.device(), &settings)? {
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

    state.sgd.scaler = settings.scaler();
    let start_weights: Vec<Tensor> = init
        .parameters()
        .iter()
        .map(|p| p.detach().copy())
        .collect();
    let tracker = Tracker::new(&t.track, t.track_every, init);
    let mut params = state.model.parameters();
    let host_engine = !autocast && state.sgd.scaler.is_none();
    let mut dense = if host_engine {
        Dense::for_model(&state.model)
    } else {
        None
    };
    let mut progress = Progress::new(format!("run {index} ({kind})"), settings.limit, quiet);
    let started = Instant::now() - Duration::from_secs_f64(state.position.elapsed_s);
    let mut last_save = Instant::now();
    let mut status = match t.stop_at_train_acc {
        Some(_) => Status::TargetNotReached,
        None => Status::Completed,
    };
    let device = data.device();
    let first = state.position.epoch;
    for epoch in first..=settings.limit {
        let resumed = epoch == first;
        let spent = if resumed {
            state.position.epoch_elapsed_s
        } else {
            0.0
        };
        let epoch_start = Instant::now() - Duration::from_secs_f64(spent);
        let lr = settings.lr_at(epoch);
        state.sgd.options.lr = lr;
        let epoch_seed = crate::rng::derive(t.seed, epoch);
        let n = data.epoch_len(t.augment);
        let order = crate::rng::seeded(epoch_seed, || Tensor::randperm(n, (Kind::Int64, device)));
        let mut step = if resumed { state.position.step } else { 0 };
        if !resumed {
            state.totals = BatchTotals::new(device);
        }
        while step * t.batch_size < n {
            if interrupt::requested() {
                // Stop at this batch boundary, keeping everything needed to go on.
                let clocks = (
                    started.elapsed().as_secs_f64(),
                    epoch_start.elapsed().as_secs_f64(),
                );
                state.position.at((epoch, step), clocks);
                saver.save(&mut state)?;
                interrupt::check()?;
            }
            let start = step * t.batch_size;
            let len = t.batch_size.min(n - start);
            let augment_seed = t.augment.then(|| crate::rng::derive(epoch_seed, step));
            let host = match (dense.as_mut(), augment_seed) {
                (Some(d), None) => d.step_rows(&params, &mut state.sgd, data, &order, start, len),
                _ => None,
            };
            match host {
                Some(tally) => state.totals.add_host(tally),
                None => {
                    let batch = Batch {
                        index: &order.narrow(0, start, len),
                        augment_seed,
                        autocast,
                    };
                    let (model, sgd, totals) = (&state.model, &mut state.sgd, &mut state.totals);
                    train_step(model, &mut params, sgd, data, batch, totals, dense.as_mut());
                }
            }
            step += 1;
        }

        let batch = std::mem::replace(&mut state.totals, BatchTotals::new(device)).read(n);
        let epoch_time = epoch_start.elapsed().as_secs_f64();
        let check_due = t.stop_at_train_acc.is_some() && epoch % t.check_every == 0;
        let eval_due =
            epoch % t.eval_every == 0 || epoch == settings.limit || !batch.loss.is_finite();
        let train =
            (eval_due || check_due).then(|| score(&mut dense, &state.model, data, Part::Train));
        let reached = check_due
            && t.stop_at_train_acc
                .zip(train)
                .is_some_and(|(t, s)| s.acc >= t);
        // Checking the target needs the train split only; the test split is
        // evaluated on evaluation epochs and at the end, where the run stops.
        let test = (eval_due || reached).then(|| score(&mut dense, &state.model, data, Part::Test));
        let record = Epoch {
            epoch,
            lr,
            batch,
            train,
            test,
            distance_from_init: distance::relative(&start_weights, &params),
            epoch_time_s: epoch_time,
            wall_time_s: started.elapsed().as_secs_f64(),
            images_per_s: n as f64 / epoch_time.max(1e-9),
            extra: tracker.measure(epoch, &state.model, data)?,
        };
        progress.epoch(epoch, &record.line());
        state.position.history.push(record);
        if !batch.loss.is_finite() || train.is_some_and(|t| !t.loss.is_finite()) {
            status = Status::Diverged;
            break;
        }
        if reached {
            status = Status::ReachedTarget;
            break;
        }
        let due = match t.checkpoint_every {
            Some(every) => epoch % every == 0,
            None => last_save.elapsed().as_secs_f64() >= CHECKPOINT_SECONDS,
        };
        if due && epoch < settings.limit {
            state
                .position
                .at((epoch + 1, 0), (started.elapsed().as_secs_f64(), 0.0));
            saver.save(&mut state)?;
            last_save = Instant::now();
        }
    }

    let last = state.position.history.last().map_or(0, |e| e.epoch);
    state
        .position
        .at((last + 1, 0), (started.elapsed().as_secs_f64(), 0.0));
    state.position.complete = Some(status.as_str().to_string());
    saver.save(&mut state)?;
    let evaluated = state
        .position
        .history
        .iter()
        .rev()
        .find_map(|e| e.train.zip(e.test));
    let (train_acc, test_acc) = evaluated.map_or((f64::NAN, f64::NAN), |(t, s)| (t.acc, s.acc));
    let outcome = format!(
        "{}: train acc {train_acc:.4}, test acc {test_acc:.4}",
        status.as_str()
    );
    progress.finish(last, &outcome);
    Ok(done(state, status))
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
