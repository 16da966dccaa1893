//! Results land in Parquet with the documented columns, readable by polars, and
//! files are written atomically.

use crate::common;
use common::host_in;
use minima::results::parquet::{read_parquet, to_frame, write_parquet};
use minima::results::{atomic, Value};
use polars::prelude::*;

const SCRIPT: &str = r#"
    let d = toy(#{ n_train: 10, n_test: 10, seed: param("seed", 0) });
    let m = model(#{ arch: "mlp", hidden: [8] }, d);
    let a = train(m, d, #{ epochs: param("epochs", 3), batch_size: 5, lr: 0.05 });
    record(a, #{ setting: "a", score: 0.5 });
    let b = adversarial_init(m, d, #{ epochs: 2, batch_size: 5 });
    record(b);
"#;

#[test]
fn history_and_summary_round_trip_through_polars() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let host = host_in(&out, &["epochs=4"]);
    host.engine.run(SCRIPT).unwrap();
    host.session.finish("completed").unwrap();

    let history = read_parquet(&out.join("history.parquet")).unwrap();
    assert_eq!(history.height(), 4 + 2, "4 epochs of run 0, 2 of run 1");
    let names: Vec<String> = history
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    for col in [
        "run",
        "kind",
        "setting",
        "score",
        "param_epochs",
        "param_seed",
        "dataset",
        "labels",
        "n_train",
        "n_test",
        "arch",
        "hidden",
        "model_seed",
        "epochs",
        "batch_size",
        "lr",
        "momentum",
        "weight_decay",
        "augment",
        "seed",
        "stop_at_train_acc",
        "epoch",
        "train_loss",
        "train_acc",
        "test_loss",
        "test_acc",
        "distance_from_init",
        "epoch_time_s",
        "wall_time_s",
        "images_per_s",
    ] {
        assert!(
            names.iter().any(|n| n == col),
            "missing column {col} in {names:?}"
        );
    }
    let dtype = |c: &str| history.column(c).unwrap().dtype().clone();
    assert_eq!(dtype("run"), DataType::Int64);
    assert_eq!(dtype("epoch"), DataType::Int64);
    assert_eq!(dtype("train_acc"), DataType::Float64);
    assert_eq!(dtype("augment"), DataType::Boolean);
    assert_eq!(dtype("kind"), DataType::String);
    let runs: Vec<Option<i64>> = history
        .column("run")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(runs, [0, 0, 0, 0, 1, 1].map(Some));
    let epochs: Vec<Option<i64>> = history
        .column("epoch")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(epochs, [1, 2, 3, 4, 1, 2].map(Some));
    // Run 1 has no `setting` tag: null there, not a dropped row.
    let setting = history.column("setting").unwrap().str().unwrap();
    assert_eq!(setting.get(0), Some("a"));
    assert_eq!(setting.get(5), None);
    let labels = history.column("labels").unwrap().str().unwrap();
    assert_eq!(
        (labels.get(0), labels.get(5)),
        (Some("true"), Some("random"))
    );

    let summary = read_parquet(&out.join("summary.parquet")).unwrap();
    assert_eq!(summary.height(), 2);
    let status = summary.column("status").unwrap().str().unwrap();
    assert_eq!(status.get(0), Some("completed"));
    let last_acc = history.column("train_acc").unwrap().f64().unwrap().get(3);
    assert_eq!(
        summary.column("train_acc").unwrap().f64().unwrap().get(0),
        last_acc
    );
    let run_epochs = summary.column("epochs_run").unwrap().i64().unwrap();
    assert_eq!((run_epochs.get(0), run_epochs.get(1)), (Some(4), Some(2)));

    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["status"], "completed");
    assert_eq!(config["overrides"]["epochs"], "4");
    assert_eq!(config["params"]["epochs"], 4);
    assert_eq!(config["params"]["seed"], 0);
    assert_eq!(config["script"], "test.rhai");
    assert!(config["git_commit"].is_string() && config["minima_version"].is_string());
}

#[test]
fn mixed_columns_unify_without_losing_rows() {
    let rows = vec![
        vec![
            ("x".to_string(), Value::Int(1)),
            ("tag".to_string(), Value::Int(2)),
        ],
        vec![
            ("x".to_string(), Value::Float(2.5)),
            ("tag".to_string(), Value::Str("b".into())),
        ],
        vec![("y".to_string(), Value::Bool(true))],
    ];
    let mut df = to_frame(&rows).unwrap();
    assert_eq!(df.height(), 3);
    assert_eq!(df.column("x").unwrap().dtype(), &DataType::Float64);
    assert_eq!(df.column("tag").unwrap().dtype(), &DataType::String);
    assert_eq!(df.column("tag").unwrap().str().unwrap().get(0), Some("2"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    write_parquet(&mut df, &path).unwrap();
    assert!(read_parquet(&path).unwrap().equals_missing(&df));
}

#[test]
fn a_failed_write_leaves_the_old_file_and_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("summary.parquet");
    atomic::write_bytes(&path, b"first").unwrap();
    let failed = atomic::write_with(&path, |f| {
        use std::io::Write;
        f.write_all(b"half of the sec")?;
        anyhow::bail!("disk full")
    });
    assert!(failed.unwrap_err().to_string().contains("summary.parquet"));
    assert_eq!(std::fs::read(&path).unwrap(), b"first");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("summary.parquet")],
        "no temporary file left"
    );
}

#[test]
fn a_second_run_never_overwrites_results() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    host_in(&out, &[]).engine.run(SCRIPT).unwrap();
    let e = host_in(&out, &[])
        .engine
        .run(SCRIPT)
        .unwrap_err()
        .to_string();
    // The first host never ended (as if killed): its parts alone refuse the folder.
    assert!(e.contains("already holds history/"), "{e}");
}
