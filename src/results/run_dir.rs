//! The run directory: `config.json`, `history.parquet` (one row per run and epoch),
//! `summary.parquet` (one row per run), `metrics.parquet` (rows of `record_metrics`)
//! and the pictures a script makes.
//!
//! Each Parquet file is rewritten whole, atomically (a temporary file renamed over
//! it), after every recorded run: a crash or Ctrl-C at any moment leaves every
//! finished run readable.
//!
//! A resumed folder never holds rows of two settings for one script: a run
//! recorded again with other rows (it was retrained) replaces its rows and
//! weights, and the earlier process's rows of the runs trained after it are
//! dropped until this process records them again.

use super::atomic;
use super::frame::{self, Row};
use super::Value;
use anyhow::{bail, Context, Result};
use polars::prelude::DataFrame;
use std::path::{Path, PathBuf};

pub const HISTORY: &str = "history.parquet";
pub const SUMMARY: &str = "summary.parquet";
pub const CONFIG: &str = "config.json";
pub const METRICS: &str = "metrics.parquet";

pub struct RunDir {
    path: PathBuf,
    history: Vec<Row>,
    summary: Vec<Row>,
    metrics: Vec<Row>,
    /// Runs recorded by this process; a resumed folder also holds earlier ones.
    fresh: Vec<i64>,
    /// The earlier process's metrics.parquet, emptied: written when a run it may
    /// describe is replaced, before this process records metrics of its own.
    stale_metrics: Option<DataFrame>,
}

fn run_of(row: &Row) -> Option<i64> {
    row.iter().find_map(|(k, v)| match (k.as_str(), v) {
        ("run", Value::Int(i)) => Some(*i),
        _ => None,
    })
}

/// Two rows hold the same values; absent and null cells are alike, floats are
/// compared by their bits.
fn same_row(a: &Row, b: &Row) -> bool {
    let cells = |r: &Row| -> Vec<(String, Value)> {
        let mut v: Vec<(String, Value)> = r
            .iter()
            .filter(|(_, v)| *v != Value::Null)
            .map(|(k, v)| match v {
                Value::Float(f) => (k.clone(), Value::Int(f.to_bits() as i64)),
                v => (k.clone(), v.clone()),
            })
            .collect();
        v.sort_by(|x, y| x.0.cmp(&y.0));
        v
    };
    cells(a) == cells(b)
}

/// Removes the rows `drop` names and puts `new` where run `index`'s rows were
/// (at the end if it had none).
fn splice(rows: &mut Vec<Row>, index: i64, drop: impl Fn(&Row) -> bool, new: Vec<Row>) {
    let at = match rows.iter().position(|r| run_of(r) == Some(index)) {
        Some(p) => rows[..p].iter().filter(|r| !drop(r)).count(),
        None => rows.iter().filter(|r| !drop(r)).count(),
    };
    rows.retain(|r| !drop(r));
    rows.splice(at..at, new);
}

impl RunDir {
    /// A new folder `<base>/<stem>-<UTC timestamp>`, suffixed `-2`, `-3`, ... when
    /// two runs start in the same second.
    pub fn create_under(base: &Path, stem: &str) -> Result<RunDir> {
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
        let mut path = base.join(format!("{stem}-{stamp}"));
        let mut n = 2;
        while path.exists() {
            path = base.join(format!("{stem}-{stamp}-{n}"));
            n += 1;
        }
        Self::create_at(&path)
    }

    /// Exactly `path` (`--out`); refuses a folder that already holds results, so a
    /// second run never overwrites the first.
    pub fn create_at(path: &Path) -> Result<RunDir> {
        for name in [HISTORY, SUMMARY, METRICS] {
            if path.join(name).exists() {
                bail!(
                    "{} already holds {name} from an earlier run; choose another --out folder",
                    path.display()
                );
            }
        }
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create run folder {}", path.display()))?;
        Ok(RunDir {
            path: path.to_path_buf(),
            history: Vec::new(),
            summary: Vec::new(),
            metrics: Vec::new(),
            fresh: Vec::new(),
            stale_metrics: None,
        })
    }

    /// An existing run folder, to resume: its recorded rows are read back so new
    /// runs are added to them.
    pub fn open_existing(path: &Path) -> Result<RunDir> {
        if !path.join(CONFIG).is_file() {
            bail!("{} is not a run folder (no {CONFIG})", path.display());
        }
        let rows = |name: &str| -> Result<Vec<Row>> {
            let file = path.join(name);
            if file.exists() {
                frame::from_frame(&frame::read_parquet(&file)?)
            } else {
                Ok(Vec::new())
            }
        };
        let (history, summary) = (rows(HISTORY)?, rows(SUMMARY)?);
        // metrics.parquet is rebuilt: the resumed script records its metrics again.
        let metrics = path.join(METRICS);
        let stale_metrics = match metrics.exists() {
            true => Some(frame::read_parquet(&metrics)?.clear()),
            false => None,
        };
        Ok(RunDir {
            path: path.to_path_buf(),
            history,
            summary,
            metrics: Vec::new(),
            fresh: Vec::new(),
            stale_metrics,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the run folder for a relative `name`; absolute names stay.
    pub fn resolve(&self, name: &str) -> PathBuf {
        let p = Path::new(name);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.join(p)
        }
    }

    /// Records run `index`: its history rows, its summary row, and its weights,
    /// which `save_weights` writes to the path given. A run this folder already
    /// holds with the same rows (a resumed script restored it from its complete
    /// checkpoint) is left as it is. One that now has other rows was retrained: its
    /// rows and weights are replaced, and so are the rows of runs trained after it
    /// that this process has not recorded (they may have started from it).
    pub fn record(
        &mut self,
        index: i64,
        history: Vec<Row>,
        summary: Row,
        save_weights: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()> {
        let old = self.summary.iter().find(|r| run_of(r) == Some(index));
        let old_history: Vec<&Row> = self
            .history
            .iter()
            .filter(|r| run_of(r) == Some(index))
            .collect();
        let same = old.is_some_and(|old| {
            same_row(old, &summary)
                && old_history.len() == history.len()
                && old_history
                    .iter()
                    .zip(&history)
                    .all(|(a, b)| same_row(a, b))
        });
        if !self.fresh.contains(&index) {
            self.fresh.push(index);
        }
        let weights = self.resolve(&format!("weights/run-{index}.safetensors"));
        if same {
            return match weights.exists() {
                true => Ok(()),
                false => save_weights(&weights),
            };
        }
        let replacing = old.is_some();
        let fresh = self.fresh.clone();
        let stale = |i: i64| i == index || (replacing && i > index && !fresh.contains(&i));
        let drop = |r: &Row| run_of(r).is_some_and(stale);
        let dropped: Vec<i64> = self
            .summary
            .iter()
            .filter_map(run_of)
            .filter(|&i| i != index && stale(i))
            .collect();
        save_weights(&weights)?;
        let before = (self.history.clone(), self.summary.clone());
        splice(&mut self.history, index, drop, history);
        splice(&mut self.summary, index, drop, vec![summary]);
        let written = self.write();
        if written.is_err() {
            // Keep memory and disk in step: the failed run is not half-recorded,
            // and the next write rewrites whatever this one may have changed.
            (self.history, self.summary) = before;
            return written;
        }
        if replacing {
            if let Some(mut empty) = self.stale_metrics.take() {
                frame::write_parquet(&mut empty, &self.path.join(METRICS))?;
            }
        }
        for i in dropped {
            let weights = self.resolve(&format!("weights/run-{i}.safetensors"));
            if weights.exists() {
                std::fs::remove_file(&weights)
                    .with_context(|| format!("cannot remove {}", weights.display()))?;
            }
        }
        Ok(())
    }

    /// Appends rows to metrics.parquet.
    pub fn record_metrics(&mut self, rows: Vec<Row>) -> Result<()> {
        self.stale_metrics = None;
        let before = self.metrics.len();
        self.metrics.extend(rows);
        let written = frame::to_frame(&self.metrics)
            .and_then(|mut df| frame::write_parquet(&mut df, &self.path.join(METRICS)));
        if written.is_err() {
            self.metrics.truncate(before);
        }
        written
    }

    fn write(&mut self) -> Result<()> {
        let mut history = frame::to_frame(&self.history)?;
        frame::write_parquet(&mut history, &self.path.join(HISTORY))?;
        let mut summary = frame::to_frame(&self.summary)?;
        frame::write_parquet(&mut summary, &self.path.join(SUMMARY))?;
        Ok(())
    }

    /// `name` is CONFIG, or one file per shard of a sweep.
    pub fn write_config(&self, name: &str, config: &serde_json::Value) -> Result<()> {
        let text = serde_json::to_string_pretty(config)?;
        atomic::write_bytes(&self.path.join(name), format!("{text}\n").as_bytes())
    }
}
