//! What a run measured: one `Epoch` per epoch, the `Status` it ended with, and
//! the trained `Run` that scripts hold. Epochs and status are kept in
//! checkpoints, so they serialise exactly.

use crate::data::Dataset;
use crate::metrics::evaluate::Score;
use crate::models::Model;
use crate::results::{Row, Value};
use std::rc::Rc;

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
    /// The progress line of this epoch: the clean evaluation when there was one,
    /// else the batch sums.
    pub fn line(&self) -> String {
        let (lr, speed) = (self.lr, self.images_per_s);
        match (self.train, self.test) {
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
                self.batch.loss, self.batch.acc
            ),
        }
    }

    pub fn columns(&self) -> Row {
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
    /// What was trained on what, how: `run`, `kind`, the data's, the model's and
    /// the config's columns, built once when training starts.
    pub setting: Row,
    pub history: Vec<Epoch>,
    pub status: Status,
}

impl Run {
    pub fn last(&self) -> Option<&Epoch> {
        self.history.last()
    }

    /// Columns shared by every row of this run: what was trained on what, how.
    pub fn setting_columns(&self) -> Row {
        self.setting.clone()
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
