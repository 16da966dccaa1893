//! Checkpoints: all a run needs to continue exactly where it stopped — weights and
//! batch-norm buffers, momentum buffers, the epoch and the next batch in it, the
//! partial batch totals and the history so far. Batch order and augmentation are
//! derived from (seed, epoch, step), so no generator state is needed, and a resumed
//! run on the CPU ends with the same weights, bit for bit, as one never stopped.
//!
//! One safetensors file per run (`checkpoints/run-<index>.safetensors`): the model's
//! state under its PyTorch names, `sgd.<i>` momentum buffers, `totals.*`, and the
//! rest as JSON under the metadata key `minima_checkpoint`. A finished run keeps
//! its checkpoint, marked complete, so re-running the script skips it.

use super::history::{Epoch, Status};
use super::sgd::{Sgd, SgdOptions};
use super::step::BatchTotals;
use crate::models::{weights, Model};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Tensor};

const KEY: &str = "minima_checkpoint";

/// Where a run stands: the loop's position, its history and its clocks. A
/// checkpoint keeps it (as JSON) beside the tensors of [`State`].
#[derive(Serialize, Deserialize)]
pub struct Position {
    /// What the run is: data, model, config, kind, index, and digests of its
    /// starting weights and its data (train/fingerprint.rs). A checkpoint of
    /// another setting is refused rather than silently continued.
    pub fingerprint: String,
    /// The epoch in progress and its next batch; (e + 1, 0) after epoch e.
    pub epoch: i64,
    pub step: i64,
    pub history: Vec<Epoch>,
    /// Set when the run finished.
    pub complete: Option<String>,
    #[serde(with = "crate::results::exact")]
    pub elapsed_s: f64,
    #[serde(with = "crate::results::exact")]
    pub epoch_elapsed_s: f64,
    /// Which parameters have a momentum buffer (filled in by `save`).
    pub momentum: Vec<bool>,
}

impl Position {
    pub fn start(fingerprint: String) -> Position {
        Position {
            fingerprint,
            epoch: 1,
            step: 0,
            history: Vec::new(),
            complete: None,
            elapsed_s: 0.0,
            epoch_elapsed_s: 0.0,
            momentum: Vec::new(),
        }
    }

    /// Moves to batch `step` of `epoch`, with the time spent so far in all and in
    /// that epoch.
    pub fn at(&mut self, (epoch, step): (i64, i64), (elapsed_s, epoch_elapsed_s): (f64, f64)) {
        self.epoch = epoch;
        self.step = step;
        self.elapsed_s = elapsed_s;
        self.epoch_elapsed_s = epoch_elapsed_s;
    }

    pub fn status(&self) -> Option<Status> {
        self.complete.as_deref().and_then(Status::parse)
    }
}

/// Everything the training loop changes: what `save` writes and `load` returns.
pub struct State {
    pub model: Model,
    pub sgd: Sgd,
    pub totals: BatchTotals,
    pub position: Position,
}

pub fn save(path: &Path, state: &mut State) -> Result<()> {
    let State {
        model,
        sgd,
        totals,
        position,
    } = state;
    position.momentum = sgd.buffers().iter().map(Option::is_some).collect();
    let mut extra: Vec<(String, Tensor)> = sgd
        .buffers()
        .iter()
        .enumerate()
        .filter_map(|(i, b)| b.as_ref().map(|b| (format!("sgd.{i}"), b.shallow_clone())))
        .collect();
    let (loss, correct) = totals.tensors();
    extra.push(("totals.loss".into(), loss.shallow_clone()));
    extra.push(("totals.correct".into(), correct.shallow_clone()));
    let meta = HashMap::from([(KEY.to_string(), serde_json::to_string(position)?)]);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    weights::save_with(model, &extra, meta, path)
}

/// The checkpoint at `path`, if there is one, with SGD rebuilt from `sgd`; an
/// error if it belongs to another setting or cannot be read.
pub fn load(
    path: &Path,
    device: Device,
    fingerprint: &str,
    sgd: SgdOptions,
) -> Result<Option<State>> {
    if !path.exists() {
        return Ok(None);
    }
    let what = || format!("checkpoint {}", path.display());
    let mut loaded = weights::load_with(path, device, &["sgd.", "totals."]).with_context(what)?;
    let json = loaded
        .metadata
        .get(KEY)
        .ok_or_else(|| anyhow!("{} has no `{KEY}` metadata", what()))?;
    let position: Position = serde_json::from_str(json).with_context(what)?;
    if !super::fingerprint::matches(&position.fingerprint, fingerprint) {
        let changed = super::fingerprint::changes(&position.fingerprint, fingerprint);
        bail!(
            "{} was made by a different setting; what changed (checkpoint → now):\n  {}\n\
             restore the setting to continue it, or move the checkpoint away to start that run afresh \
             (its recorded results, and those of the runs after it, are then replaced)",
            what(),
            changed.join("\n  ")
        );
    }
    let mut take = |name: &str| loaded.extra.remove(name);
    let buffers = (0..position.momentum.len())
        .map(|i| take(&format!("sgd.{i}")))
        .collect();
    let totals = BatchTotals::from_tensors(
        take("totals.loss").ok_or_else(|| anyhow!("{}: no totals.loss", what()))?,
        take("totals.correct").ok_or_else(|| anyhow!("{}: no totals.correct", what()))?,
    );
    let mut sgd = Sgd::new(sgd, position.momentum.len())?;
    sgd.restore(buffers)?;
    Ok(Some(State {
        model: loaded.model,
        sgd,
        totals,
        position,
    }))
}
