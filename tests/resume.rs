//! Runs survive being killed: re-running the folder continues from the checkpoint
//! and ends with the same weights, bit for bit, as a run never stopped (CPU).

use crate::common;
use common::{minima, text};
use minima::models::weights;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCRIPT: &str = r#"
let d = toy(#{ n_train: 20, n_test: 20 });
let m = model(#{ arch: "mlp", hidden: [32] }, d);
// The first run's lr decays on a plateau of its train accuracy: a resumed run
// must rebuild that state from the epochs it recorded.
let cfg = #{ epochs: param("epochs", 1200), batch_size: 10, momentum: 0.9,
             lr: #{ schedule: "plateau", base: 0.05, factor: 0.5, patience: 29, min: 0.001 },
             weight_decay: 5e-4, augment: true, checkpoint_every: 50 };
record(train(m, d, cfg), #{ part: "first" });
record(train(m, random_labels(d), cfg + #{ epochs: 50, lr: 0.05 }), #{ part: "second" });
"#;

fn same_weights(a: &Path, b: &Path) {
    let a = weights::load(a, tch::Device::Cpu).unwrap();
    let b = weights::load(b, tch::Device::Cpu).unwrap();
    for ((na, ta), (nb, tb)) in a.state().iter().zip(b.state().iter()) {
        assert_eq!(na, nb);
        assert!(ta.equal(tb), "{na} differs");
    }
}

fn interrupted_then_resumed(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.rhai"), SCRIPT).unwrap();
    let full = minima(&["run", "s.rhai", "--out", "full", "-q"], dir.path());
    assert_eq!(full.status.code(), Some(0), "{}", text(&full.stderr));

    let mut child = common::minima_command()
        .args(["run", "s.rhai", "--out", "cut", "-q"])
        .current_dir(dir.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint = dir.path().join("cut/checkpoints/run-0.safetensors");
    let start = Instant::now();
    while !checkpoint.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(150));
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run was stopped part-way");
    assert!(
        !dir.path().join("cut/summary").exists(),
        "killed before the first record"
    );

    let resumed = minima(&["run", "cut", "-q"], dir.path());
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    for run in [0, 1] {
        let file = format!("weights/run-{run}.safetensors");
        same_weights(
            &dir.path().join("full").join(&file),
            &dir.path().join("cut").join(&file),
        );
    }
    let history =
        minima::results::parquet::read_parquet(&dir.path().join("cut/history.parquet")).unwrap();
    let epochs: Vec<i64> = history
        .column("epoch")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .map(|e| e.unwrap())
        .collect();
    let expected: Vec<i64> = (1..=1200).chain(1..=50).collect();
    assert_eq!(epochs, expected, "every epoch exactly once");
    let lrs: Vec<f64> = history
        .column("epoch_lr")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect();
    assert!(
        lrs[..1200].contains(&0.025) && lrs[1199] == 0.001,
        "the first run's lr decays to its floor: {:?}",
        &lrs[..1200]
    );
    let summary =
        minima::results::parquet::read_parquet(&dir.path().join("cut/summary.parquet")).unwrap();
    assert_eq!(summary.height(), 2);
    let config = std::fs::read_to_string(dir.path().join("cut/config.json")).unwrap();
    assert!(config.contains("\"status\": \"completed\""), "{config}");

    // A finished folder runs again without training; a changed setting is refused.
    let again = minima(&["run", "cut", "-q"], dir.path());
    assert_eq!(again.status.code(), Some(0));
    let summary =
        minima::results::parquet::read_parquet(&dir.path().join("cut/summary.parquet")).unwrap();
    assert_eq!(summary.height(), 2, "no run recorded twice");
    std::fs::write(
        dir.path().join("s.rhai"),
        SCRIPT.replace("base: 0.05", "base: 0.07"),
    )
    .unwrap();
    let changed = minima(&["run", "cut", "-q"], dir.path());
    assert_eq!(changed.status.code(), Some(1));
    assert!(
        text(&changed.stderr).contains("was made by a different setting"),
        "{}",
        text(&changed.stderr)
    );
}

#[test]
fn sigkill_mid_run_then_resume_is_bit_identical() {
    interrupted_then_resumed("-KILL");
}

#[test]
fn ctrl_c_mid_run_then_resume_is_bit_identical() {
    interrupted_then_resumed("-INT");
}

#[test]
fn resuming_needs_a_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let out = minima(&["run", "empty"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("empty is not a run folder"),
        "{}",
        text(&out.stderr)
    );
}

/// Run `a`, then run `b` from a's weights, checkpointing every epoch.
const CHAIN: &str = r#"
let d = toy(#{ n_train: 20, n_test: 20 });
let m = model(#{ arch: "mlp", hidden: [16] }, d);
let a = train(m, d, #{ epochs: 3, batch_size: 10, lr: 0.05, checkpoint_every: 1 });
record(a, #{ part: "a" });
let b = train(a.model, d, #{ epochs: 600, batch_size: 10, lr: 0.1, checkpoint_every: 1 });
record(b, #{ part: "b" });
"#;

/// Runs `script` into `dir/out` and kills it with SIGKILL once run 1's first
/// checkpoint exists (run 0 is then recorded, run 1 part-way).
fn killed_in_run_1(dir: &Path, script: &str, out: &str) {
    std::fs::write(dir.join("s.rhai"), script).unwrap();
    let mut child = common::minima_command()
        .args(["run", "s.rhai", "--out", out, "-q"])
        .current_dir(dir)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint = dir.join(out).join("checkpoints/run-1.safetensors");
    let start = Instant::now();
    while !checkpoint.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint of run 1 appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Killed: no whole tables, the parts hold the recorded run.
    assert!(!dir.join(out).join("summary.parquet").exists());
    let summary = minima::frame::read_results(&dir.join(out), "summary").unwrap();
    assert_eq!(summary.height(), 1, "killed while run 1 trained");
}

/// How many keys a refusal names as changed: its indented `key: old → new` lines.
fn changed_keys(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains(" → "))
        .count()
}

fn read(dir: &Path, table: &str) -> polars::prelude::DataFrame {
    minima::results::parquet::read_parquet(&dir.join(format!("{table}.parquet"))).unwrap()
}

fn floats(df: &polars::prelude::DataFrame, column: &str) -> Vec<Option<f64>> {
    df.column(column).unwrap().f64().unwrap().iter().collect()
}

/// The history and summary of two folders, as whole tables and as read from
/// their parts: same columns in the same order, and the same values bit for bit
/// except wall-clock ones.
fn same_tables(a: &Path, b: &Path) {
    let parts = |dir: &Path, table: &str| minima::frame::read_results(dir, table).unwrap();
    for (table, read) in [
        (
            "history",
            read as fn(&Path, &str) -> polars::prelude::DataFrame,
        ),
        ("summary", read),
        ("history", parts),
        ("summary", parts),
    ] {
        let (x, y) = (read(a, table), read(b, table));
        assert_eq!(
            x.get_column_names(),
            y.get_column_names(),
            "{table} columns"
        );
        assert_eq!(x.height(), y.height(), "{table} rows");
        for c in x.columns() {
            let name = c.name().as_str();
            if ["epoch_time_s", "wall_time_s", "images_per_s"].contains(&name) {
                continue;
            }
            let d = y.column(name).unwrap();
            assert_eq!(c.dtype(), d.dtype(), "{table}.{name} type");
            if let (Ok(p), Ok(q)) = (c.f64(), d.f64()) {
                let bits = |s: &polars::prelude::Float64Chunked| -> Vec<Option<u64>> {
                    s.iter().map(|v| v.map(f64::to_bits)).collect()
                };
                assert_eq!(bits(p), bits(q), "{table}.{name} bit for bit");
            } else {
                assert!(
                    c.as_materialized_series()
                        .equals_missing(d.as_materialized_series()),
                    "{table}.{name}"
                );
            }
        }
    }
}

#[test]
fn a_retrained_run_replaces_its_rows_and_those_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    killed_in_run_1(d, CHAIN, "cut");

    // Run 0's lr changed: its checkpoint is refused, naming only that key.
    let changed = CHAIN.replace("lr: 0.05", "lr: 0.06");
    std::fs::write(d.join("s.rhai"), &changed).unwrap();
    let refused = minima(&["run", "cut", "-q"], d);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("run-0.safetensors was made by a different setting"),
        "{stderr}"
    );
    assert!(stderr.contains("lr: 0.05 → 0.06"), "{stderr}");
    assert!(
        !stderr.contains("momentum"),
        "only the changed keys: {stderr}"
    );

    // Moved away, run 0 is retrained at the new lr and replaces its rows; run 1
    // started from the old run 0, so its checkpoint is refused for its weights.
    std::fs::rename(
        d.join("cut/checkpoints/run-0.safetensors"),
        d.join("old-run-0.safetensors"),
    )
    .unwrap();
    let again = minima(&["run", "cut", "-q"], d);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again.stderr));
    let stderr = text(&again.stderr);
    assert!(
        stderr.contains("run-1.safetensors was made by a different setting"),
        "{stderr}"
    );
    assert!(
        stderr.contains("init_weights (the weights the run starts from)"),
        "{stderr}"
    );
    assert_eq!(
        changed_keys(&stderr),
        1,
        "only the weights changed: {stderr}"
    );
    let summary = read(&d.join("cut"), "summary");
    assert_eq!(
        floats(&summary, "lr"),
        [Some(0.06)],
        "run 0 at the new lr, alone"
    );
    let history = read(&d.join("cut"), "history");
    assert_eq!(floats(&history, "lr"), [Some(0.06); 3]);

    // With run 1's checkpoint moved too, the folder equals an uninterrupted run.
    std::fs::rename(
        d.join("cut/checkpoints/run-1.safetensors"),
        d.join("old-run-1.safetensors"),
    )
    .unwrap();
    let done = minima(&["run", "cut", "-q"], d);
    assert_eq!(done.status.code(), Some(0), "{}", text(&done.stderr));
    let full = minima(&["run", "s.rhai", "--out", "full", "-q"], d);
    assert_eq!(full.status.code(), Some(0), "{}", text(&full.stderr));
    same_tables(&d.join("full"), &d.join("cut"));
    for run in [0, 1] {
        let file = format!("weights/run-{run}.safetensors");
        same_weights(&d.join("full").join(&file), &d.join("cut").join(&file));
    }
}

#[test]
fn a_resumed_folder_equals_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    killed_in_run_1(d, CHAIN, "cut");
    let resumed = minima(&["run", "cut", "-q"], d);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    let full = minima(&["run", "s.rhai", "--out", "full", "-q"], d);
    assert_eq!(full.status.code(), Some(0), "{}", text(&full.stderr));
    // Run 0's rows were read back from the Parquet files, run 1's history from
    // its checkpoint: the same columns in the same order, the same bits.
    same_tables(&d.join("full"), &d.join("cut"));
    let (x, y) = (
        read(&d.join("full"), "summary"),
        read(&d.join("cut"), "summary"),
    );
    x.vstack(&y).expect("the two summaries stack as they are");
}

#[test]
fn changing_the_starting_weights_before_resuming_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    killed_in_run_1(d, CHAIN, "cut");
    std::fs::write(
        d.join("s.rhai"),
        CHAIN.replace("train(a.model, ", "train(m, "),
    )
    .unwrap();
    let refused = minima(&["run", "cut", "-q"], d);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("run-1.safetensors was made by a different setting"),
        "{stderr}"
    );
    assert!(
        stderr.contains("init_weights (the weights the run starts from): md5 "),
        "{stderr}"
    );
    assert_eq!(
        changed_keys(&stderr),
        1,
        "only the weights changed: {stderr}"
    );
}

#[test]
fn changing_the_data_before_resuming_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    killed_in_run_1(d, CHAIN, "cut");
    // Another toy sample for run 1: its seed column and its examples differ.
    let other = CHAIN.replace(
        "let b = train(a.model, d,",
        "let b = train(a.model, toy(#{ n_train: 20, n_test: 20, seed: 7 }),",
    );
    std::fs::write(d.join("s.rhai"), other).unwrap();
    let refused = minima(&["run", "cut", "-q"], d);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("data_seed: 0 → 7"), "{stderr}");
    assert!(
        stderr.contains("data (the examples the run sees): md5 "),
        "{stderr}"
    );
}
