//! A run folder read while its script records, as docs/RESULTS.md documents
//! (Python polars by path, lazily and by glob; DuckDB; read_results), never
//! fails and never shows a mix of two versions.
//!
//! Runs scripts/polars-reader.sh, which installs polars and duckdb into a venv
//! under the minima cache (once); the test fails with the installer's reason if
//! that is impossible, rather than passing without reading.

mod common;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn reader_python() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(repo.join("scripts/polars-reader.sh"))
        .output()
        .expect("scripts/polars-reader.sh runs");
    assert!(
        out.status.success(),
        "scripts/polars-reader.sh could not install polars and duckdb:\n{}",
        common::text(&out.stderr)
    );
    PathBuf::from(common::text(&out.stdout).trim())
}

/// Many short runs, each recorded with its metrics; a tag that first appears
/// later and a column that first gets values later change the schema mid-run.
const SCRIPT: &str = r#"
let d = toy(#{ n_train: 20, n_test: 20 });
let m = model(#{ arch: "mlp", hidden: [8] }, d);
for i in 0..120 {
    let r = if i % 3 == 2 {
        adversarial_init(m, d, #{ epochs: 4, batch_size: 10, stop_at_train_acc: 1.0 })
    } else {
        train(m, d, #{ epochs: 4, batch_size: 10, lr: 0.05 })
    };
    let tags = if i >= 40 { #{ i: i, late: "yes" } } else { #{ i: i } };
    record(r, tags);
    record_metrics(#{ metric: "acc", value: r.train_acc }, #{ i: i });
}
"#;

/// Polls the folder until the file `done` exists (one more round after) or the
/// deadline; every read is checked for whole runs in order.
const POLLER: &str = r#"
import json, os, sys, time
import duckdb, polars as pl

folder, done, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
deadline = time.time() + seconds
reads, errors = {}, []

def check(table, df):  # df: column name -> list of values
    if table == "history":
        runs = df["run"]
        epochs = df["epoch"]
        n = len(set(runs))
        assert sorted(set(runs)) == list(range(n)), f"runs {sorted(set(runs))}"
        for r in range(n):
            mine = [e for x, e in zip(runs, epochs) if x == r]
            assert mine == list(range(1, len(mine) + 1)) and len(mine) >= 1, f"run {r}: epochs {mine}"
    else:
        key = "run" if table == "summary" else "i"
        values = df[key]
        assert values == list(range(len(values))), f"{key} {values}"

def columns(df):
    return {name: df[name].to_list() for name in df.columns}

def sql(path):
    # Plain rows (DuckDB's polars and pandas conversions need pyarrow).
    rel = duckdb.sql(f"SELECT * FROM '{path}'")
    rows = rel.fetchall()
    return {name: [r[i] for r in rows] for i, name in enumerate(rel.columns)}

def readers(table, path):
    yield "read_parquet", lambda: columns(pl.read_parquet(path))
    yield "scan_parquet", lambda: columns(pl.scan_parquet(path).collect())
    yield "duckdb", lambda: sql(path)
    if table == "summary":
        parent = os.path.dirname(folder)
        yield "glob", lambda: columns(pl.scan_parquet(f"{parent}/*/summary.parquet").collect())

while time.time() < deadline:
    last = os.path.exists(done)
    for table in ("history", "summary", "metrics"):
        path = os.path.join(folder, f"{table}.parquet")
        if not os.path.exists(path):
            continue
        for how, read in readers(table, path):
            try:
                check(table, read())
                reads[how] = reads.get(how, 0) + 1
            except BaseException as e:  # polars' Rust panics are BaseExceptions
                errors.append(f"{table} by {how}: {type(e).__name__}: {e}")
    if last:
        break
print(json.dumps({"reads": reads, "errors": errors[:10], "failed": len(errors)}))
"#;

#[test]
fn polling_readers_never_fail_nor_see_a_mix() {
    let python = reader_python();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("runs")).unwrap();
    std::fs::write(d.join("s.rhai"), SCRIPT).unwrap();
    let folder = d.join("runs/live");
    let done = d.join("done");
    let poller = Command::new(&python)
        .args(["-c", POLLER])
        .arg(&folder)
        .arg(&done)
        .arg("300")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut run = common::minima_command()
        .args(["run", "s.rhai", "--out", "runs/live", "-q"])
        .current_dir(d)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // read_results in this process polls too.
    let (mut reads, start) = (0, Instant::now());
    let status = loop {
        for table in ["summary", "history", "metrics"] {
            if folder.join(format!("{table}.parquet")).exists() {
                let df = minima::frame::read_results(&folder, table)
                    .unwrap_or_else(|e| panic!("read_results of the live {table}: {e:#}"));
                assert!(df.height() > 0);
                reads += 1;
            }
        }
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the run took too long"
        );
    };
    std::fs::write(&done, "").unwrap();
    let out = poller.wait_with_output().unwrap();
    assert!(status.success(), "the run failed");
    assert!(
        out.status.success(),
        "the poller failed: {}",
        common::text(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failed"], 0, "reads failed or saw a mix: {report}");
    // Each way of reading polled often enough to meet a rewrite: reading by path
    // while the files were rewritten whole failed about 1 read in 150.
    for how in ["read_parquet", "scan_parquet", "duckdb", "glob"] {
        let n = report["reads"][how].as_u64().unwrap_or(0);
        assert!(n >= 50, "too few reads by {how} to tell: {report}");
    }
    eprintln!("live reads: {report}; read_results: {reads}");
    assert!(reads >= 20, "read_results polled {reads} times");
    // The grown files hold each recorded row once: 120 runs, each run's epochs
    // 1, 2, … once, one metrics row per run.
    let summary = minima::frame::read_results(&folder, "summary").unwrap();
    assert_eq!(summary.height(), 120);
    let metrics = minima::frame::read_results(&folder, "metrics").unwrap();
    assert_eq!(metrics.height(), 120);
    let history = minima::frame::read_results(&folder, "history").unwrap();
    let ints = |name: &str| -> Vec<i64> {
        let column = history.column(name).unwrap().i64().unwrap();
        column.iter().map(|v| v.unwrap()).collect()
    };
    let mut epochs = std::collections::BTreeMap::<i64, Vec<i64>>::new();
    for (run, epoch) in ints("run").into_iter().zip(ints("epoch")) {
        epochs.entry(run).or_default().push(epoch);
    }
    assert_eq!(epochs.len(), 120, "every run in the history");
    for (run, e) in epochs {
        assert_eq!(e, (1..=e.len() as i64).collect::<Vec<_>>(), "run {run}");
    }
}
