//! The run directory: `config.json`, `history.parquet` (one row per run and epoch),
//! `summary.parquet` (one row per run), `metrics.parquet` (rows of `record_metrics`)
//! and the pictures a script makes.
//!
//! Both Parquet files are rewritten whole, atomically, after every recorded run, so
//! a crash or Ctrl-C at any moment leaves every finished run readable.

use super::atomic;
use super::frame::{self, Row};
use anyhow::{bail, Context, Result};
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
        // metrics.parquet is rebuilt: the resumed script records its metrics again.
        Ok(RunDir {
            path: path.to_path_buf(),
            history: rows(HISTORY)?,
            summary: rows(SUMMARY)?,
            metrics: Vec::new(),
        })
    }

    /// Whether run `index` is already recorded (a resumed script records it again).
    pub fn has_run(&self, index: i64) -> bool {
        self.summary.iter().any(|row| {
            row.iter()
                .any(|(k, v)| k == "run" && *v == super::Value::Int(index))
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

    pub fn runs_recorded(&self) -> usize {
        self.summary.len()
    }

    pub fn record(&mut self, history: Vec<Row>, summary: Row) -> Result<()> {
        let (h, s) = (self.history.len(), self.summary.len());
        self.history.extend(history);
        self.summary.push(summary);
        let written = self.write();
        if written.is_err() {
            // Keep memory and disk in step: the failed run is not half-recorded.
            self.history.truncate(h);
            self.summary.truncate(s);
        }
        written
    }

    /// Appends rows to metrics.parquet, rewritten whole like the other two.
    pub fn record_metrics(&mut self, rows: Vec<Row>) -> Result<()> {
        let before = self.metrics.len();
        self.metrics.extend(rows);
        let written = frame::to_frame(&self.metrics)
            .and_then(|mut df| frame::write_parquet(&mut df, &self.path.join(METRICS)));
        if written.is_err() {
            self.metrics.truncate(before);
        }
        written
    }

    fn write(&self) -> Result<()> {
        frame::write_parquet(
            &mut frame::to_frame(&self.history)?,
            &self.path.join(HISTORY),
        )?;
        frame::write_parquet(
            &mut frame::to_frame(&self.summary)?,
            &self.path.join(SUMMARY),
        )
    }

    /// `name` is CONFIG, or one file per shard of a sweep.
    pub fn write_config(&self, name: &str, config: &serde_json::Value) -> Result<()> {
        let text = serde_json::to_string_pretty(config)?;
        atomic::write_bytes(&self.path.join(name), format!("{text}\n").as_bytes())
    }
}
