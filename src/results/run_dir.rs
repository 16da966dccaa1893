//! The run directory: `config.json`, the tables `history` (one row per run and
//! epoch), `summary` (one row per run) and `metrics` (rows of `record_metrics`),
//! and the pictures a script makes.
//!
//! While a script runs, each table is a folder of part files (`parts.rs`): every
//! `record` adds one history part and then one summary part with that run's rows,
//! every `record_metrics` one metrics part. No file a reader may be reading is
//! ever replaced or truncated, and a crash or Ctrl-C at any moment leaves every
//! finished run readable. The whole tables `history.parquet`, `summary.parquet`
//! and `metrics.parquet` are written once, when the script ends (`write_tables`).
//!
//! A resumed folder never holds rows of two settings for one script: a run
//! recorded again with other rows (it was retrained) replaces its rows and
//! weights, and the earlier process's rows of the runs trained after it are
//! dropped until this process records them again. Dropping a run removes its
//! parts, summary first, so a run a reader finds in the summary is in the history.

use super::atomic;
use super::parquet::{self, Row};
use super::part_files;
use super::Value;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

pub const HISTORY: &str = "history.parquet";
pub const SUMMARY: &str = "summary.parquet";
pub const CONFIG: &str = "config.json";
pub const METRICS: &str = "metrics.parquet";

/// The tables: each is a folder of parts of this name and, once the script has
/// ended, the whole `<name>.parquet`.
pub const TABLES: [&str; 3] = ["history", "summary", "metrics"];

pub struct RunDir {
    path: PathBuf,
    history: Vec<Row>,
    summary: Vec<Row>,
    metrics: Vec<Row>,
    /// Runs recorded by this process; a resumed folder also holds earlier ones.
    fresh: Vec<i64>,
    /// The part number holding each run's history and summary rows.
    run_parts: Vec<(i64, u64)>,
    /// The earlier process's metrics parts (their rows are in `metrics`): removed
    /// when a run they may describe is replaced, or before this process records
    /// metrics of its own (a resumed script records its metrics again).
    earlier_metrics: Vec<PathBuf>,
    /// The next part's number; never one a part of this folder had.
    next_part: u64,
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

/// Removes the rows `drop` names; returns where run `index`'s rows were among
/// the rows left (the end if it had none), where its new rows go.
fn remove_rows(rows: &mut Vec<Row>, index: i64, drop: impl Fn(&Row) -> bool) -> usize {
    let at = match rows.iter().position(|r| run_of(r) == Some(index)) {
        Some(p) => rows[..p].iter().filter(|r| !drop(r)).count(),
        None => rows.iter().filter(|r| !drop(r)).count(),
    };
    rows.retain(|r| !drop(r));
    at
}

fn read_rows(path: &Path) -> Result<Vec<Row>> {
    parquet::from_frame(&part_files::read(path)?)
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
        for table in TABLES {
            if path.join(table).exists() {
                bail!(
                    "{} already holds {table}/ from an earlier run; choose another --out folder",
                    path.display()
                );
            }
        }
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create run folder {}", path.display()))?;
        Ok(Self::empty(path))
    }

    fn empty(path: &Path) -> RunDir {
        RunDir {
            path: path.to_path_buf(),
            history: Vec::new(),
            summary: Vec::new(),
            metrics: Vec::new(),
            fresh: Vec::new(),
            run_parts: Vec::new(),
            earlier_metrics: Vec::new(),
            next_part: 0,
        }
    }

    /// An existing run folder, to resume: its recorded rows are read back so new
    /// runs are added to them. A folder written before part files existed has its
    /// whole tables split into parts first. The whole tables are then removed:
    /// they describe the folder as a process left it and are written again when
    /// this one ends, while the parts are always current.
    pub fn open_existing(path: &Path) -> Result<RunDir> {
        if !path.join(CONFIG).is_file() {
            bail!("{} is not a run folder (no {CONFIG})", path.display());
        }
        let mut dir = Self::empty(path);
        if TABLES.iter().any(|t| path.join(t).is_dir()) {
            dir.read_parts()?;
        } else {
            dir.split_whole_tables()?;
        }
        for name in [SUMMARY, METRICS, HISTORY] {
            part_files::remove(&path.join(name))?;
        }
        Ok(dir)
    }

    fn read_parts(&mut self) -> Result<()> {
        let summary = part_files::list(&self.path, "summary")?;
        let history = part_files::list(&self.path, "history")?;
        let metrics = part_files::list(&self.path, "metrics")?;
        let last = summary
            .iter()
            .chain(&history)
            .chain(&metrics)
            .map(|p| p.0)
            .max();
        self.next_part = last.map_or(0, |l| l + 1);
        for (seq, file) in &summary {
            let rows = read_rows(file)?;
            if let Some(run) = rows.first().and_then(run_of) {
                self.run_parts.push((run, *seq));
            }
            self.summary.extend(rows);
        }
        for (seq, file) in history {
            if self.run_parts.iter().any(|p| p.1 == seq) {
                self.history.extend(read_rows(&file)?);
            } else {
                // Its process was killed between a run's history and summary part:
                // the run was never recorded.
                part_files::remove(&file)?;
            }
        }
        for (_, file) in metrics {
            self.metrics.extend(read_rows(&file)?);
            self.earlier_metrics.push(file);
        }
        Ok(())
    }

    fn split_whole_tables(&mut self) -> Result<()> {
        let rows = |name: &str| -> Result<Vec<Row>> {
            let file = self.path.join(name);
            match file.exists() {
                true => read_rows(&file),
                false => Ok(Vec::new()),
            }
        };
        let (history, summary, metrics) = (rows(HISTORY)?, rows(SUMMARY)?, rows(METRICS)?);
        for row in summary {
            let run = run_of(&row);
            let epochs: Vec<Row> = history
                .iter()
                .filter(|r| run_of(r) == run)
                .cloned()
                .collect();
            self.write_run_parts(run.unwrap_or(-1), &epochs, &row)?;
            self.history.extend(epochs);
            self.summary.push(row);
        }
        if !metrics.is_empty() {
            let seq = self.take_part();
            self.earlier_metrics
                .push(part_files::write(&self.path, "metrics", seq, &metrics)?);
            self.metrics = metrics;
        }
        Ok(())
    }

    fn take_part(&mut self) -> u64 {
        self.next_part += 1;
        self.next_part - 1
    }

    /// Writes run `index`'s parts, history first; on an error neither is left.
    /// A run without epochs has no history part.
    fn write_run_parts(&mut self, index: i64, history: &[Row], summary: &Row) -> Result<()> {
        let seq = self.take_part();
        let written = match history.is_empty() {
            true => None,
            false => Some(part_files::write(&self.path, "history", seq, history)?),
        };
        let summary = part_files::write(&self.path, "summary", seq, std::slice::from_ref(summary));
        if let (Err(_), Some(written)) = (&summary, written) {
            let _ = part_files::remove(&written);
        }
        summary?;
        self.run_parts.push((index, seq));
        Ok(())
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
        // Superseded runs leave disk and memory together, before the new parts are
        // written: a reader never sees two versions of a run.
        for &(_, seq) in self.run_parts.iter().filter(|p| stale(p.0)) {
            part_files::remove(&part_files::file(&self.path, "summary", seq))?;
            part_files::remove(&part_files::file(&self.path, "history", seq))?;
        }
        self.run_parts.retain(|p| !stale(p.0));
        let at_history = remove_rows(&mut self.history, index, drop);
        let at_summary = remove_rows(&mut self.summary, index, drop);
        if replacing {
            self.drop_earlier_metrics()?;
        }
        self.write_run_parts(index, &history, &summary)?;
        self.history.splice(at_history..at_history, history);
        self.summary.splice(at_summary..at_summary, [summary]);
        for i in dropped {
            let weights = self.resolve(&format!("weights/run-{i}.safetensors"));
            if weights.exists() {
                std::fs::remove_file(&weights)
                    .with_context(|| format!("cannot remove {}", weights.display()))?;
            }
        }
        Ok(())
    }

    fn drop_earlier_metrics(&mut self) -> Result<()> {
        if self.earlier_metrics.is_empty() {
            return Ok(());
        }
        for file in std::mem::take(&mut self.earlier_metrics) {
            part_files::remove(&file)?;
        }
        self.metrics.clear();
        Ok(())
    }

    /// Adds `rows` to the metrics table, as one part.
    pub fn record_metrics(&mut self, rows: Vec<Row>) -> Result<()> {
        self.drop_earlier_metrics()?;
        if rows.is_empty() {
            return Ok(());
        }
        let seq = self.take_part();
        part_files::write(&self.path, "metrics", seq, &rows)?;
        self.metrics.extend(rows);
        Ok(())
    }

    /// Writes the whole tables from every part: when the script ends (completed,
    /// failed or interrupted) or a sweep configuration is complete. History
    /// first and summary last, so a folder with `summary.parquet` has the others.
    pub fn write_tables(&self) -> Result<()> {
        for (name, rows) in [
            (HISTORY, &self.history),
            (METRICS, &self.metrics),
            (SUMMARY, &self.summary),
        ] {
            if !rows.is_empty() {
                let mut df = parquet::to_frame(rows)?;
                parquet::write_parquet(&mut df, &self.path.join(name))?;
            }
        }
        Ok(())
    }

    /// `name` is CONFIG, or one file per shard of a sweep.
    pub fn write_config(&self, name: &str, config: &serde_json::Value) -> Result<()> {
        let text = serde_json::to_string_pretty(config)?;
        atomic::write_bytes(&self.path.join(name), format!("{text}\n").as_bytes())
    }
}

#[cfg(test)]
#[path = "run_dir_tests.rs"]
mod tests;
