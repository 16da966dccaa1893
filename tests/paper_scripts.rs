//! The paper's scripts run end to end and show the paper's effect.

mod common;
use common::{minima, text};
use polars::prelude::*;

fn column_f64(df: &DataFrame, name: &str) -> Vec<f64> {
    df.column(name)
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect()
}

#[test]
fn figure_1_reproduces_the_bad_minimum_on_the_toy() {
    let dir = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/paper/fig1_toy.rhai");
    let out = minima(&["run", script, "--out", "fig1", "-q"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("setting  labels  epochs  train_acc"),
        "{stdout}"
    );
    let png = std::fs::read(dir.path().join("fig1/fig1.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    let summary =
        minima::results::frame::read_parquet(&dir.path().join("fig1/summary.parquet")).unwrap();
    let settings: Vec<&str> = summary
        .column("setting")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.unwrap())
        .collect();
    assert_eq!(settings, ["a", "b", "c", "d"]);
    let train = column_f64(&summary, "train_acc");
    assert!(
        [0, 2, 3].iter().all(|&i| train[i] == 1.0),
        "(a), (c), (d) fit the true labels: {train:?}"
    );
    assert!(
        train[1] >= 0.85,
        "(b) memorises most random labels: {train:?}"
    );
    let fresh = column_f64(&summary, "fresh_test_acc");
    let margin = column_f64(&summary, "boundary_min");
    // (c), from the adversarial init with vanilla SGD, generalises worse and has a
    // far smaller margin than (a) from a random init and (d) with SOTA SGD.
    assert!(
        fresh[2] < fresh[0] - 0.02 && fresh[2] < fresh[3] - 0.02,
        "fresh acc {fresh:?}"
    );
    assert!(
        margin[2] < margin[0] / 5.0 && margin[2] < margin[3] / 5.0,
        "margins {margin:?}"
    );
    let history =
        minima::results::frame::read_parquet(&dir.path().join("fig1/history.parquet")).unwrap();
    assert_eq!(history.column("run").unwrap().n_unique().unwrap(), 4);
}
