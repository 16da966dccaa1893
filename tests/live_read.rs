//! A run folder read while its script records: every documented read, by real
//! Python polars and DuckDB (tests/python/live_reader.py) and by `read_results`,
//! never fails and always sees whole runs, a prefix of the script's.
//!
//! Runs scripts/readers.sh, which installs polars and DuckDB into the minima cache
//! the first time (PyPI) and reuses them afterwards.

use crate::common;

use minima::frame::read_results;
use minima::results::{parquet::read_parquet, Row, RunDir, Value};
use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: i64 = 80;
const EPOCHS: i64 = 2;

/// Many short runs; from run 3 on they carry a tag `late`, from run 5 on they
/// track norms (history columns that appear later); `score` is an int on even
/// runs and a float on odd ones (parts of two types); one metrics row per run.
fn script() -> String {
    format!(
        r#"
let d = toy(#{{ n_train: 20, n_test: 20, seed: 0 }});
let m = model(#{{ arch: "mlp", hidden: [4] }}, d);
for i in 0..{RUNS} {{
    let cfg = #{{ epochs: {EPOCHS}, batch_size: 10, lr: 0.05, seed: i }};
    if i >= 5 {{ cfg.track = ["norms"]; }}
    let r = train(m, d, cfg);
    let tags = #{{ score: if i % 2 == 0 {{ i }} else {{ i.to_float() + 0.5 }} }};
    if i >= 3 {{ tags.late = "yes"; }}
    record(r, tags);
    record_metrics(norms(r.model), #{{ of_run: i }});
}}
"#
    )
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The readers' python; installing them is part of the test, so a failed
/// install fails it with the installer's reason.
fn readers_python() -> PathBuf {
    let out = Command::new(repo().join("scripts/readers.sh"))
        .output()
        .expect("scripts/readers.sh runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "readers.sh failed:\n{stderr}");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn ints(df: &DataFrame, column: &str) -> Vec<i64> {
    df.column(column)
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .map(|v| v.expect("no null run or epoch"))
        .collect()
}

/// `read_results` of a live folder: summary read first, so history holds every
/// run the summary does, each with all its epochs. Returns the summary's runs.
fn check_read_results(out: &Path) -> Result<usize, String> {
    let summary = read_results(out, "summary").map_err(|e| format!("summary: {e:#}"))?;
    let history = read_results(out, "history").map_err(|e| format!("history: {e:#}"))?;
    let mut runs = ints(&summary, "run");
    runs.sort();
    let k = runs.len() as i64;
    if runs != (0..k).collect::<Vec<_>>() {
        return Err(format!("summary runs {runs:?} are not 0..{k}"));
    }
    let epochs: Vec<(i64, i64)> = ints(&history, "run")
        .into_iter()
        .zip(ints(&history, "epoch"))
        .collect();
    let m = epochs.iter().map(|e| e.0 + 1).max().unwrap_or(0);
    if m < k {
        return Err(format!(
            "history has {m} runs, the summary read before it {k}"
        ));
    }
    for run in 0..m {
        let seen: Vec<i64> = epochs.iter().filter(|e| e.0 == run).map(|e| e.1).collect();
        if seen != (1..=EPOCHS).collect::<Vec<_>>() {
            return Err(format!("run {run} has epochs {seen:?}"));
        }
    }
    Ok(runs.len())
}

#[test]
fn every_documented_read_of_a_live_folder_succeeds_and_sees_whole_runs() {
    let python = readers_python();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.rhai"), script()).unwrap();
    let out = dir.path().join("live");
    let mut run = common::minima_command()
        .args(["run", "s.rhai", "--out", "live", "-q"])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = Command::new(&python)
        .arg(repo().join("tests/python/live_reader.py"))
        .arg(&out)
        .args([EPOCHS.to_string(), RUNS.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let start = Instant::now();
    let (mut polls, mut live_polls, mut failures) = (0, 0, Vec::new());
    loop {
        let ended = run.try_wait().unwrap().is_some();
        // Nothing is documented to read before the first run is recorded.
        if !minima::results::part_files::list(&out, "summary")
            .unwrap()
            .is_empty()
        {
            polls += 1;
            match check_read_results(&out) {
                Ok(k) if k > 0 && (k as i64) < RUNS => live_polls += 1,
                Ok(_) => {}
                Err(e) => failures.push(e),
            }
        }
        if ended {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "the script ran over 240 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let ran = run.wait_with_output().unwrap();
    assert!(ran.status.success(), "{}", common::text(&ran.stderr));
    let read = reader.wait_with_output().unwrap();
    assert!(
        read.status.success(),
        "live_reader.py: {}",
        common::text(&read.stderr)
    );
    assert!(
        failures.is_empty(),
        "read_results failed {} of {polls} times: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(
        check_read_results(&out),
        Ok(RUNS as usize),
        "the finished folder"
    );
    assert!(
        live_polls >= 3,
        "read_results read the folder while it grew {live_polls} times"
    );

    let report: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap_or_else(|e| {
        panic!(
            "live_reader.py printed no report ({e}): {}",
            common::text(&read.stdout)
        )
    });
    assert_eq!(report["failures"], serde_json::json!([]), "{report}");
    assert_eq!(report["status"], "completed");
    let prefixes = report["prefixes"].as_array().unwrap();
    for method in [
        "polars read_parquet of parts",
        "polars scan_parquet of parts",
        "duckdb read_parquet glob",
    ] {
        let live = prefixes
            .iter()
            .filter(|p| p[0] == method && p[1].as_i64().is_some_and(|k| k > 0 && k < RUNS))
            .count();
        assert!(
            live >= 3,
            "{method}: {live} reads while the script recorded: {report}"
        );
    }
    for method in [
        "polars read_parquet of whole files",
        "polars scan_parquet of whole files",
        "duckdb of whole files",
    ] {
        assert!(
            prefixes.iter().any(|p| p[0] == method && p[1] == RUNS),
            "{method} read the finished folder: {report}"
        );
    }
}

fn row(cells: &[(&str, Value)]) -> Row {
    cells
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn weights(path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(path.parent().unwrap())?;
    Ok(std::fs::write(path, b"weights")?)
}

#[test]
fn read_results_stacks_parts_whose_columns_appear_and_get_values_later() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut folder = RunDir::create_at(&out).unwrap();
    let null_width = [
        ("run", Value::Int(0)),
        ("width", Value::Null),
        ("note", Value::Null),
    ];
    folder
        .record(
            0,
            vec![row(&[null_width[0].clone(), ("epoch", Value::Int(1))])],
            row(&null_width),
            weights,
        )
        .unwrap();
    let later = [
        ("run", Value::Int(1)),
        ("late", Value::Str("yes".into())),
        ("width", Value::Float(0.5)),
        ("note", Value::Null),
    ];
    folder
        .record(
            1,
            vec![row(&[later[0].clone(), ("epoch", Value::Int(1))])],
            row(&later),
            weights,
        )
        .unwrap();
    assert!(out.join("summary/000000.parquet").is_file());
    assert!(out.join("summary/000001.parquet").is_file());
    assert!(
        !out.join("summary.parquet").exists(),
        "whole tables appear at the end"
    );

    let live = read_results(&out, "summary").unwrap();
    let names: Vec<&str> = live.get_column_names().iter().map(|n| n.as_str()).collect();
    assert_eq!(names, ["run", "width", "note", "late"]);
    let width: Vec<Option<f64>> = live
        .column("width")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(
        width,
        [None, Some(0.5)],
        "the null part takes the other's type"
    );
    let late = live.column("late").unwrap().str().unwrap();
    assert_eq!(late.iter().collect::<Vec<_>>(), [None, Some("yes")]);
    assert_eq!(
        live.column("note").unwrap().dtype(),
        &DataType::String,
        "never a value: text, as in a whole table"
    );

    folder.write_tables().unwrap();
    let whole = read_parquet(&out.join("summary.parquet")).unwrap();
    assert!(whole.equals_missing(&live), "whole {whole} parts {live}");
    assert!(read_results(&out, "summary")
        .unwrap()
        .equals_missing(&whole));
}
