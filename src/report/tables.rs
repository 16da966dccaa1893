//! The report's tables as Markdown: the paper's claims as checked by the script
//! (claims.parquet), final accuracies per setting, Table 1 (mean
//! distances per pair) and Table 2 (accuracies per heuristic and init, mean ± std
//! over seeds), each built from whatever columns the results hold.

use super::settings::{groups, setting_columns};
use super::Part;
use crate::plot::series::{floats, texts};
use anyhow::Result;
use polars::prelude::*;

/// Table 1's columns in the paper's order (0 = initializer, V/S = vanilla/SOTA,
/// R/A = random/adversarial init).
pub const PAIRS: &[&str] = &[
    "W0R-WVR", "W0R-WSR", "W0R-W0A", "W0R-WVA", "W0R-WSA", "W0A-WVA", "W0A-WSA",
];

/// Table 2's rows in the paper's order; other heuristics follow as they appear.
pub const HEURISTICS: &[&str] = &[
    "Vanilla SGD",
    "DA",
    "L2",
    "Momentum",
    "DA+L2",
    "DA+Momentum",
    "L2+Momentum",
    "DA+L2+Momentum (SOTA)",
    "vanilla",
    "sota",
];

pub fn markdown(header: &[String], rows: &[Vec<String>]) -> String {
    let cell = |s: &String| s.replace('|', "\\|");
    let line = |cells: &[String]| {
        format!(
            "| {} |\n",
            cells.iter().map(cell).collect::<Vec<_>>().join(" | ")
        )
    };
    let mut out = line(header);
    out += &format!("|{}\n", "---|".repeat(header.len()));
    for r in rows {
        out += &line(r);
    }
    out
}

/// Mean, sample standard deviation (ddof 1, as Table 2) and count of the values present.
pub fn stats(values: impl Iterator<Item = Option<f64>>) -> Option<(f64, f64, usize)> {
    let v: Vec<f64> = values.flatten().collect();
    if v.is_empty() {
        return None;
    }
    let n = v.len();
    let mean = v.iter().sum::<f64>() / n as f64;
    let var = if n > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    Some((mean, var.sqrt(), n))
}

/// `mean ± std` in percent of fractions; the mean alone for a single value.
fn percent(s: Option<(f64, f64, usize)>) -> String {
    match s {
        None => "–".into(),
        Some((m, _, 1)) => format!("{:.2}", 100.0 * m),
        Some((m, sd, _)) => format!("{:.2} ± {:.2}", 100.0 * m, 100.0 * sd),
    }
}

fn pick<'a>(col: &'a [Option<f64>], rows: &'a [usize]) -> impl Iterator<Item = Option<f64>> + 'a {
    rows.iter().map(move |&i| col[i])
}

fn shown_or_dash(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "–".into())
}

/// Final train and test accuracy per setting (all kinds of run).
pub fn final_accuracy(summary: &DataFrame) -> Result<Part> {
    let has = |c: &str| summary.column(c).is_ok();
    if !has("train_acc") && !has("test_acc") {
        return Ok(Part::Missing(
            "Final accuracies: the summary has no `train_acc` or `test_acc`".into(),
        ));
    }
    let mut keys = Vec::new();
    if has("kind") && summary.column("kind")?.n_unique()? > 1 {
        keys.push("kind".to_string());
    }
    keys.extend(setting_columns(summary, &[]));
    let na = vec![None; summary.height()];
    let col = |c: &str| -> Result<Vec<Option<f64>>> {
        if has(c) {
            floats(summary, c)
        } else {
            Ok(na.clone())
        }
    };
    let (train, test, epochs) = (col("train_acc")?, col("test_acc")?, col("epochs_run")?);
    // Numbers a script measured and recorded as tags (fig1_toy's boundary_min, fresh_test_acc).
    let measured: Vec<String> = measured_tags(summary);
    let measured_cols = measured
        .iter()
        .map(|c| floats(summary, c))
        .collect::<Result<Vec<_>>>()?;
    let mut header: Vec<String> = if keys.is_empty() {
        vec!["setting".into()]
    } else {
        keys.clone()
    };
    header.extend(
        ["runs", "epochs (mean)", "train acc (%)", "test acc (%)"]
            .iter()
            .map(|s| s.to_string()),
    );
    header.extend(measured.iter().map(|m| format!("{m} (mean)")));
    let mut rows = Vec::new();
    for (values, idx) in groups(summary, &keys)? {
        let mut r: Vec<String> = if keys.is_empty() {
            vec!["all runs".into()]
        } else {
            values.iter().map(shown_or_dash).collect()
        };
        r.push(idx.len().to_string());
        r.push(stats(pick(&epochs, &idx)).map_or("–".into(), |s| format!("{:.1}", s.0)));
        r.push(percent(stats(pick(&train, &idx))));
        r.push(percent(stats(pick(&test, &idx))));
        for m in &measured_cols {
            r.push(stats(pick(m, &idx)).map_or("–".into(), |s| format!("{:.4}", s.0)));
        }
        rows.push(r);
    }
    Ok(Part::Shown(format!(
        "## Final accuracy per setting\n\nLast epoch of each run, mean ± sample std over the runs of a setting.\n\n{}",
        markdown(&header, &rows)
    )))
}

/// Float columns minima does not write itself: measurements scripts recorded as tags.
fn measured_tags(summary: &DataFrame) -> Vec<String> {
    summary
        .get_column_names()
        .iter()
        .map(|n| n.as_str())
        .filter(|n| {
            summary.column(n).is_ok_and(|c| c.dtype().is_float())
                && !n.starts_with("param_")
                && !n.starts_with("fgsm_acc_")
                && !FLOAT_RESULTS.contains(n)
                && !super::settings::is_result_column(n)
        })
        .map(str::to_string)
        .collect()
}

/// Float columns of history and summary rows (docs/RESULTS.md).
const FLOAT_RESULTS: &[&str] = &[
    "train_acc",
    "test_acc",
    "train_loss",
    "test_loss",
    "batch_loss",
    "batch_acc",
    "epoch_lr",
    "distance_from_init",
    "epoch_time_s",
    "wall_time_s",
    "images_per_s",
    "frobenius",
    "prod_frobenius",
    "prod_spectral",
    "path_l1",
    "path_l2",
    "distance_to_init_abs",
    "distance_to_init_buffers",
];

/// Table 1: mean `d` per `pair`, a row per data set × architecture.
pub fn table1(metrics: Option<&DataFrame>) -> Result<Part> {
    let why = "Table 1 (distances): needs metrics rows with `metric == \"distance\"` and columns `pair`, `d`";
    let Some(df) = metrics.filter(|m| m.column("pair").is_ok() && m.column("d").is_ok()) else {
        return Ok(Part::Missing(why.into()));
    };
    if df.height() == 0 {
        return Ok(Part::Missing(why.into()));
    }
    let keys: Vec<String> = ["dataset", "arch"]
        .iter()
        .filter(|c| df.column(c).is_ok())
        .map(|c| c.to_string())
        .collect();
    let pair = texts(df, "pair")?;
    let d = floats(df, "d")?;
    let mut pairs: Vec<String> = PAIRS
        .iter()
        .filter(|p| pair.iter().any(|q| q.as_deref() == Some(**p)))
        .map(|p| p.to_string())
        .collect();
    for p in pair.iter().flatten() {
        if !pairs.contains(p) {
            pairs.push(p.clone());
        }
    }
    let mut header: Vec<String> = if keys.is_empty() {
        vec!["results".into()]
    } else {
        keys.clone()
    };
    header.extend(pairs.iter().map(|p| format!("d({p})")));
    header.push("n (rows per cell)".into());
    let mut rows = Vec::new();
    for (values, idx) in groups(df, &keys)? {
        let mut r: Vec<String> = if keys.is_empty() {
            vec!["all".into()]
        } else {
            values.iter().map(shown_or_dash).collect()
        };
        let mut seeds = 0;
        for p in &pairs {
            let cell = stats(
                idx.iter()
                    .filter(|&&i| pair[i].as_deref() == Some(p.as_str()))
                    .map(|&i| d[i]),
            );
            seeds = seeds.max(cell.map_or(0, |c| c.2));
            r.push(cell.map_or("–".into(), |c| format!("{:.3}", c.0)));
        }
        r.push(seeds.to_string());
        rows.push(r);
    }
    Ok(Part::Shown(format!(
        "## Table 1: distances\n\nMean of d(W1, W2) = ‖W1 − W2‖ / ‖W2‖ over seeds (0 = initializer, V/S = vanilla/SOTA trained, R/A = random/adversarial init).\n\n{}",
        markdown(&header, &rows)
    )))
}

/// Table 2: per heuristic, train and test accuracy from each init, mean ± std over seeds.
pub fn table2(train_runs: Option<&DataFrame>) -> Result<Part> {
    let why = "Table 2 (heuristics × init): needs training runs in the summary with columns `heuristic`, `init`, `train_acc`, `test_acc`";
    let Some(df) = train_runs.filter(|s| {
        ["heuristic", "init", "train_acc", "test_acc"]
            .iter()
            .all(|c| s.column(c).is_ok())
    }) else {
        return Ok(Part::Missing(why.into()));
    };
    let init = texts(df, "init")?;
    let (train, test) = (floats(df, "train_acc")?, floats(df, "test_acc")?);
    let mut inits: Vec<String> = ["random", "adversarial"]
        .iter()
        .filter(|v| init.iter().any(|i| i.as_deref() == Some(**v)))
        .map(|v| v.to_string())
        .collect();
    for v in init.iter().flatten() {
        if !inits.contains(v) {
            inits.push(v.clone());
        }
    }
    if inits.is_empty() {
        return Ok(Part::Missing(why.into()));
    }
    // Several data sets or architectures: one block of rows each.
    let mut keys: Vec<String> = setting_columns(df, &["init", "heuristic", "init_replicas"])
        .into_iter()
        .filter(|k| ["dataset", "arch", "width", "hidden"].contains(&k.as_str()))
        .collect();
    keys.push("heuristic".into());
    let mut blocks = groups(df, &keys)?;
    let rank = |h: &Option<String>| {
        h.as_deref()
            .and_then(|h| HEURISTICS.iter().position(|k| *k == h))
            .unwrap_or(HEURISTICS.len())
    };
    // Stable: the paper's order within each data set/architecture, others as they appear.
    blocks.sort_by_key(|(v, _)| (v[..v.len() - 1].to_vec(), rank(&v[v.len() - 1])));
    let mut header: Vec<String> = keys.clone();
    for i in &inits {
        header.push(format!("{i} init: train acc (%)"));
        header.push(format!("{i} init: test acc (%)"));
    }
    let mut rows = Vec::new();
    let mut counts: Vec<usize> = Vec::new();
    for (values, idx) in blocks {
        let mut r: Vec<String> = values.iter().map(shown_or_dash).collect();
        for i in &inits {
            let mine: Vec<usize> = idx
                .iter()
                .copied()
                .filter(|&k| init[k].as_deref() == Some(i.as_str()))
                .collect();
            counts.push(mine.len());
            r.push(percent(stats(pick(&train, &mine))));
            r.push(percent(stats(pick(&test, &mine))));
        }
        rows.push(r);
    }
    let (lo, hi) = (
        counts.iter().copied().filter(|&c| c > 0).min().unwrap_or(0),
        counts.iter().copied().max().unwrap_or(0),
    );
    let seeds = if lo == hi {
        format!("{hi}")
    } else {
        format!("{lo}–{hi}")
    };
    // Figure 4's runs pooled in: say so rather than hide it.
    let replicas = if df.column("init_replicas").is_ok() {
        df.column("init_replicas")?.drop_nulls().n_unique()?
    } else {
        0
    };
    let pooled = if replicas > 1 {
        " Adversarial-init cells pool every R (`init_replicas`) the results hold."
    } else {
        ""
    };
    Ok(Part::Shown(format!(
        "## Table 2: heuristics × initialisation\n\nFinal accuracy in percent, mean ± sample std over {seeds} seed(s) per cell.{pooled}\n\n{}",
        markdown(&header, &rows)
    )))
}

/// The claims ledger a paper script wrote (stdlib/claims.rhai): one row per claim,
/// holding or not, with the paper's value and the measured mean [min, max] over
/// seeds, and the CPU-scale note of a claim the search could not show.
pub fn claims(df: &DataFrame) -> Result<Part> {
    let folder = match df.column("folder") {
        Ok(_) => Some(texts(df, "folder")?),
        Err(_) => None,
    };
    let mut cols = Vec::new();
    for c in ["figure", "claim", "paper", "measured"] {
        cols.push(texts(df, c)?);
    }
    // Folders from before the notes have no such column; a run with no note
    // shows none.
    let notes = match df.column("at_cpu_scale") {
        Ok(_) => Some(texts(df, "at_cpu_scale")?).filter(|n| n.iter().any(Option::is_some)),
        Err(_) => None,
    };
    let holds = df.column("holds")?.bool()?.clone();
    let seeds = floats(df, "seeds")?;
    let held = floats(df, "seeds_holding")?;
    let mut header: Vec<String> = Vec::new();
    if folder.is_some() {
        header.push("run folder".into());
    }
    header.extend(
        [
            "verdict",
            "figure",
            "claim",
            "paper",
            "measured",
            "seeds holding",
        ]
        .map(String::from),
    );
    if notes.is_some() {
        header.push("at CPU scale".into());
    }
    let mut rows = Vec::with_capacity(df.height());
    let mut failing = 0;
    for i in 0..df.height() {
        let ok = holds.get(i).unwrap_or(false);
        failing += usize::from(!ok);
        let mut row = Vec::new();
        if let Some(f) = &folder {
            row.push(f[i].clone().unwrap_or_default());
        }
        row.push(if ok { "holds" } else { "**does not hold**" }.into());
        for c in &cols {
            row.push(c[i].clone().unwrap_or_default());
        }
        let count = |v: &[Option<f64>]| v[i].map_or("–".into(), |x| format!("{x:.0}"));
        row.push(format!("{}/{}", count(&held), count(&seeds)));
        if let Some(n) = &notes {
            row.push(n[i].clone().unwrap_or_default());
        }
        rows.push(row);
    }
    Ok(Part::Shown(format!(
        "## The paper's claims\n\n{} of {} claims hold on every seed (stdlib/claims.rhai says what each threshold means).\n\n{}",
        df.height() - failing,
        df.height(),
        markdown(&header, &rows)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_use_the_sample_std() {
        let (m, sd, n) = stats([Some(1.0), None, Some(3.0)].into_iter()).unwrap();
        assert_eq!((m, n), (2.0, 2));
        assert!((sd - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(percent(Some((0.5, 0.01, 3))), "50.00 ± 1.00");
        assert_eq!(percent(Some((0.5, 0.0, 1))), "50.00");
    }

    #[test]
    fn a_claims_note_gets_a_column_only_when_a_claim_has_one() {
        let ledger = |note: Option<&str>| {
            df!(
                "figure" => ["Table 1", "Fig 3"],
                "claim" => ["d(W0R, WVR) ~ d(W0R, W0A)", "gap"],
                "paper" => ["1.09", "28.8"],
                "measured" => ["0.42", "5.6"],
                "holds" => [false, true],
                "seeds" => [3.0, 3.0],
                "seeds_holding" => [0.0, 3.0],
                "at_cpu_scale" => [note, None],
            )
            .unwrap()
        };
        let shown = |df: &DataFrame| match claims(df).unwrap() {
            Part::Shown(md) => md,
            _ => panic!("the claims are always shown"),
        };
        let noted = shown(&ledger(Some("best 0.52 (probe F)")));
        assert!(noted.contains("| at CPU scale |"), "{noted}");
        assert!(noted.contains("| best 0.52 (probe F) |"), "{noted}");
        let plain = shown(&ledger(None));
        assert!(!plain.contains("at CPU scale"), "{plain}");
        assert!(plain.contains("**does not hold**"), "{plain}");
    }

    #[test]
    fn markdown_escapes_pipes() {
        let t = markdown(&["a".into()], &[vec!["x|y".into()]]);
        assert_eq!(t, "| a |\n|---|\n| x\\|y |\n");
    }
}
