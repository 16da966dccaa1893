//! `minima report RESULTS_DIR`: the paper's figures and tables from whatever a
//! results folder holds. Results are read through `frame::read_results`, so a run
//! folder, a folder of run folders and a sweep's part files all read alike; each
//! figure and table appears only when its columns exist, and report.md lists
//! what was left out and which columns it would need.

pub mod figures;
pub mod settings;
pub mod tables;

use crate::frame::{compare, filter, read_results, Cmp};
use crate::results::atomic;
use anyhow::{bail, Result};
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// One section of the report, or why it is not there.
pub enum Part {
    Shown(String),
    Missing(String),
}

pub struct Written {
    pub report: PathBuf,
    /// Figures (PNG and SVG) and copied pictures.
    pub files: Vec<PathBuf>,
    /// Sections left out, each with the columns it needs.
    pub missing: Vec<String>,
}

/// Rows where text column `col` equals `value`.
pub fn only(df: &DataFrame, col: &str, value: &str) -> Result<DataFrame> {
    let v = Series::new(col.into(), [value]);
    filter(df, &compare(df, col, Cmp::Eq, &v)?)
}

/// `df` restricted to `col == value` when it has that column; `None` if no row is left.
fn subset(df: Option<&DataFrame>, col: &str, value: &str) -> Result<Option<DataFrame>> {
    let Some(df) = df else { return Ok(None) };
    let out = if df.column(col).is_ok() {
        only(df, col, value)?
    } else {
        df.clone()
    };
    Ok((out.height() > 0).then_some(out))
}

struct Tables {
    claims: Option<DataFrame>,
    summary: Option<DataFrame>,
    history: Option<DataFrame>,
    metrics: Option<DataFrame>,
}

fn load(results: &Path) -> Result<Tables> {
    if !results.is_dir() {
        bail!(
            "minima report: {} is not a folder (give a run folder or a folder of run folders)",
            results.display()
        );
    }
    let mut why = Vec::new();
    let mut read = |table: &str| match read_results(results, table) {
        Ok(df) if df.height() > 0 => Some(df),
        Ok(_) => {
            why.push(format!("{table}: no rows"));
            None
        }
        Err(e) => {
            why.push(format!("{e:#}"));
            None
        }
    };
    // Only the paper scripts write a claims table: its absence is no reason to list.
    let claims = read_results(results, "claims")
        .ok()
        .filter(|df| df.height() > 0);
    let tables = Tables {
        claims,
        summary: read("summary"),
        history: read("history"),
        metrics: read("metrics"),
    };
    if tables.summary.is_none() && tables.history.is_none() && tables.metrics.is_none() {
        bail!(
            "minima report: {} holds no results (summary, history or metrics Parquet files, in it or in its run folders):\n  {}",
            results.display(),
            why.join("\n  ")
        );
    }
    Ok(tables)
}

fn count(df: &Option<DataFrame>) -> String {
    df.as_ref()
        .map_or("none".into(), |d| format!("{} rows", d.height()))
}

/// Writes `out/report.md` (default `RESULTS_DIR/report`) and its figures.
pub fn write(results: &Path, out: Option<&Path>) -> Result<Written> {
    let t = load(results)?;
    let out = out.map_or_else(|| results.join("report"), Path::to_path_buf);
    std::fs::create_dir_all(&out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;

    let train_summary = subset(t.summary.as_ref(), "kind", "train")?;
    let train_history = subset(t.history.as_ref(), "kind", "train")?;
    // Metric rows are told apart by their `metric` column; without it, none qualify.
    let metric = |name: &str| match &t.metrics {
        Some(m) if m.column("metric").is_ok() => subset(Some(m), "metric", name),
        _ => Ok(None),
    };
    let (distance, norms, fgsm) = (metric("distance")?, metric("norms")?, metric("fgsm")?);

    let mut figs = figures::Figures::new(&out);
    let mut pictures = Vec::new();
    let mut parts = Vec::new();
    if let Some(claims) = &t.claims {
        parts.push(tables::claims(claims)?);
    }
    parts.extend([
        match &t.summary {
            Some(s) => tables::final_accuracy(s)?,
            None => Part::Missing("Final accuracies: no summary table".into()),
        },
        figures::pictures(results, &out, &mut pictures)?,
        figs.curves(train_history.as_ref())?,
        tables::table1(distance.as_ref())?,
        figs.replicas(train_summary.as_ref())?,
        tables::table2(train_summary.as_ref())?,
        figs.norms(norms.as_ref(), train_history.as_ref())?,
        figs.fgsm(fgsm.as_ref())?,
    ]);

    let runs = t.summary.as_ref().map_or(0, DataFrame::height);
    let mut md = format!(
        "# Results report\n\nFrom `{}`: {runs} recorded run(s). Tables read: summary ({}), history ({}), metrics ({}).\n",
        results.display(),
        count(&t.summary),
        count(&t.history),
        count(&t.metrics),
    );
    let mut missing = Vec::new();
    for part in parts {
        match part {
            Part::Shown(text) => md += &format!("\n{text}"),
            Part::Missing(why) => missing.push(why),
        }
    }
    if !missing.is_empty() {
        md += "\n## Not in this report\n\nThese need columns the results do not hold:\n\n";
        for m in &missing {
            md += &format!("- {m}\n");
        }
    }
    let report = out.join("report.md");
    atomic::write_bytes(&report, md.as_bytes())?;
    let mut files = figs.written;
    files.extend(pictures);
    Ok(Written {
        report,
        files,
        missing,
    })
}
