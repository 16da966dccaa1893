//! Result frames in scripts, on small Parquet files the tests write.

use crate::common;

use common::{host_in, run_text};
use minima::results::parquet::write_parquet;
use polars::prelude::*;
use rhai::{Array, Dynamic};
use std::path::Path;

fn write(path: &Path, mut df: DataFrame) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    write_parquet(&mut df, path).unwrap();
}

fn sample() -> DataFrame {
    df!(
        "setting" => ["a", "a", "b", "b", "a"],
        "init" => ["random", "adv", "random", "adv", "random"],
        "test_acc" => [0.8, 0.6, 0.9, 0.85, 0.7],
        "seed" => [0i64, 0, 0, 0, 1],
    )
    .unwrap()
}

fn eval<T: Clone + 'static>(dir: &Path, script: &str) -> T {
    let host = host_in(dir, &[]);
    let script = format!(
        "let f = read_results(\"{}/t.parquet\");\n{script}",
        dir.display()
    );
    host.engine
        .eval::<T>(&script)
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

fn floats(a: Array) -> Vec<f64> {
    a.into_iter().map(|v| v.as_float().unwrap()).collect()
}

#[test]
fn filter_select_sort_and_rows() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("t.parquet"), sample());
    let d = dir.path();
    assert_eq!(eval::<i64>(d, "f.height"), 5);
    let cols: Array = eval(d, "f.columns");
    let cols: Vec<String> = cols.into_iter().map(|c| c.into_string().unwrap()).collect();
    assert_eq!(cols, ["setting", "init", "test_acc", "seed"]);
    assert_eq!(eval::<i64>(d, r#"f.filter(#{ setting: "a" }).height"#), 3);
    assert_eq!(
        eval::<i64>(
            d,
            r#"f.filter(#{ setting: "b", init: ["random", "adv"] }).height"#
        ),
        2
    );
    assert_eq!(
        eval::<i64>(d, r#"f.filter("test_acc", ">", 0.75).height"#),
        3
    );
    assert_eq!(eval::<i64>(d, r#"f.filter("seed", ">=", 1).height"#), 1);
    assert_eq!(eval::<i64>(d, r#"f.filter("init", "!=", "adv").height"#), 3);
    assert_eq!(
        floats(eval(d, r#"f.sort("test_acc", true).column("test_acc")"#)),
        [0.9, 0.85, 0.8, 0.7, 0.6]
    );
    // Ties keep their order: the three "a" rows stay in file order.
    assert_eq!(
        floats(eval(d, r#"f.sort("setting").column("test_acc")"#)),
        [0.8, 0.6, 0.7, 0.9, 0.85]
    );
    assert_eq!(eval::<i64>(d, r#"f.select(["init", "seed"]).width"#), 2);
    let row: rhai::Map = eval(d, "f.row(2)");
    assert_eq!(row["setting"].clone().into_string().unwrap(), "b");
    assert_eq!(row["seed"].as_int().unwrap(), 0);
    let table: String = eval(d, "f.to_string()");
    assert!(
        table.contains("setting") && table.contains("0.85"),
        "{table}"
    );
}

#[test]
fn group_by_agg_and_pivot_match_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("t.parquet"), sample());
    let d = dir.path();
    let g = r#"let g = f.group_by(["setting", "init"]).agg(#{ test_acc: ["mean", "std", "count"], seed: "max" });"#;
    let cols: Array = eval(d, &format!("{g} g.columns"));
    let cols: Vec<String> = cols.into_iter().map(|c| c.into_string().unwrap()).collect();
    assert_eq!(
        cols,
        [
            "setting",
            "init",
            "seed_max",
            "test_acc_mean",
            "test_acc_std",
            "test_acc_count"
        ]
    );
    // Groups in order of first appearance: (a, random), (a, adv), (b, random), (b, adv).
    let mean = floats(eval(d, &format!("{g} g.column(\"test_acc_mean\")")));
    let expected = [(0.8 + 0.7) / 2.0, 0.6, 0.9, 0.85];
    for (m, e) in mean.iter().zip(expected) {
        assert!((m - e).abs() < 1e-12, "{mean:?}");
    }
    let std: Array = eval(d, &format!("{g} g.column(\"test_acc_std\")"));
    let sample_std = ((0.8f64 - 0.75).powi(2) + (0.7f64 - 0.75).powi(2)).sqrt(); // ddof 1, n = 2
    assert!(
        (std[0].as_float().unwrap() - sample_std).abs() < 1e-12,
        "{std:?}"
    );
    assert!(std[1].is_unit(), "std of one value is null: {std:?}");
    let count: Array = eval(d, &format!("{g} g.column(\"test_acc_count\")"));
    assert_eq!(
        count
            .iter()
            .map(|c| c.as_int().unwrap())
            .collect::<Vec<_>>(),
        [2, 1, 1, 1]
    );

    let p = r#"let p = f.pivot(#{ index: "setting", on: "init", values: "test_acc" });"#;
    let cols: Array = eval(d, &format!("{p} p.columns"));
    let cols: Vec<String> = cols.into_iter().map(|c| c.into_string().unwrap()).collect();
    assert_eq!(cols, ["setting", "adv", "random"]);
    assert_eq!(
        floats(eval(d, &format!("{p} p.column(\"adv\")"))),
        [0.6, 0.85]
    );
    let random = floats(eval(d, &format!("{p} p.column(\"random\")")));
    assert!(
        (random[0] - 0.75).abs() < 1e-12 && random[1] == 0.9,
        "{random:?}"
    );
    let maxed = floats(eval(
        d,
        r#"f.pivot(#{ index: "setting", on: "init", values: "test_acc", agg: "max" }).column("random")"#,
    ));
    assert_eq!(maxed, [0.8, 0.9]);
}

#[test]
fn errors_name_the_missing_column_and_list_the_others() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("t.parquet"), sample());
    let f = format!(
        "let f = read_results(\"{}/t.parquet\");\n",
        dir.path().display()
    );
    let list = "columns: setting, init, test_acc, seed";
    for (call, needle) in [
        (
            r#"f.select("tset_acc")"#,
            format!("no column `tset_acc`; {list}"),
        ),
        (
            r#"f.filter(#{ sed: 1 })"#,
            format!("no column `sed`; {list}"),
        ),
        (r#"f.group_by("x")"#, format!("no column `x`; {list}")),
        (
            r#"f.group_by("init").agg(#{ acc: "mean" })"#,
            format!("no column `acc`; {list}"),
        ),
        (
            r#"f.group_by("init").agg(#{ test_acc: "median" })"#,
            "unknown aggregation `median`".into(),
        ),
        (
            r#"f.filter("seed", "=>", 1)"#,
            "unknown comparison `=>`".into(),
        ),
        (
            r#"f.pivot(#{ index: "setting", on: "init" })"#,
            "missing key `values`".into(),
        ),
        (r#"f.column("nope")"#, format!("no column `nope`; {list}")),
        (
            r#"f.row(9)"#,
            "index 9 out of range for a frame of 5 rows".into(),
        ),
        (
            r#"read_results("no/such/place")"#,
            "no/such/place does not exist".into(),
        ),
    ] {
        let err = run_text(dir.path(), &format!("{f}{call};")).unwrap_err();
        assert!(err.contains(&needle), "{call}: {err}");
        assert!(
            err.contains("test.rhai:2:"),
            "{call} points at its line: {err}"
        );
    }
}

#[test]
fn run_folders_recorded_by_a_script_read_back_and_stack() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_in(&dir.path().join("run1"), &[]);
    let script = r#"
        let d = toy(#{ n_train: 4, n_test: 4 });
        let m = model(#{ arch: "mlp", hidden: [4] }, d);
        record(train(m, d, #{ epochs: 3, batch_size: 4 }), #{ init: "random" });
        let s = read_results(run_dir());
        let h = read_results(run_dir(), "history");
        [s.height, h.height, s.column("init")[0]]
    "#;
    let got: Array = host.engine.eval(script).unwrap();
    assert_eq!(got[0].as_int().unwrap(), 1);
    assert_eq!(got[1].as_int().unwrap(), 3, "one history row per epoch");
    assert_eq!(got[2].clone().into_string().unwrap(), "random");
    host.session.finish("completed").unwrap();

    // A second run folder with an extra column: stacked with a `folder` column,
    // the missing values null.
    let mut other =
        minima::results::parquet::read_parquet(&dir.path().join("run1/summary.parquet")).unwrap();
    other
        .with_column(Column::new("extra".into(), [7i64]))
        .unwrap();
    write(&dir.path().join("run2/summary.parquet"), other);
    let host = host_in(&dir.path().join("unused"), &[]);
    let all: rhai::Map = host
        .engine
        .eval(&format!(
            r#"let f = read_results("{}"); #{{ runs: f.column("folder"), extra: f.column("extra"), first: f.columns[0] }}"#,
            dir.path().display()
        ))
        .unwrap();
    let runs: Vec<String> = all["runs"]
        .clone()
        .into_array()
        .unwrap()
        .into_iter()
        .map(|r| r.into_string().unwrap())
        .collect();
    assert_eq!(runs, ["run1", "run2"]);
    let extra: Array = all["extra"].clone().into_array().unwrap();
    assert!(
        extra[0].is_unit() && extra[1].as_int().unwrap() == 7,
        "{extra:?}"
    );
    assert_eq!(all["first"].clone().into_string().unwrap(), "folder");
}

#[test]
fn write_parquet_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("t.parquet"), sample());
    let out = dir.path().join("means.parquet");
    let d = dir.path();
    let _: Dynamic = eval(
        d,
        &format!(
            r#"f.group_by("init").agg(#{{ test_acc: "mean" }}).write_parquet("{}")"#,
            out.display()
        ),
    );
    let back = minima::results::parquet::read_parquet(&out).unwrap();
    assert_eq!(back.shape(), (2, 2));
}

#[test]
fn points_lists_a_feature_data_set_as_training_and_evaluation_see_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("toy.parquet");
    let script = format!(
        r#"let d = toy(#{{ seed: 3, n_train: 4, n_test: 3 }});
        points(d).write_parquet("{0}/true.parquet");
        points(random_labels(d, #{{ seed: 5 }})).write_parquet("{1}");
        let r = train(model(#{{ arch: "mlp", hidden: [4] }}, d), random_labels(d, #{{ seed: 5 }}), #{{ epochs: 1 }});
        r.train_acc"#,
        dir.path().display(),
        out.display()
    );
    let host = host_in(dir.path(), &[]);
    let acc: f64 = host.engine.eval(&script).unwrap_or_else(|e| panic!("{e}"));
    let read = |p: &Path| minima::results::parquet::read_parquet(p).unwrap();
    let (truth, random) = (read(&dir.path().join("true.parquet")), read(&out));
    let names: Vec<&str> = random
        .get_column_names()
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(names, ["split", "index", "x0", "x1", "label"]);
    assert_eq!(random.height(), 8 + 6);
    let col = |df: &DataFrame, c: &str| df.column(c).unwrap().as_materialized_series().clone();
    // The same points; the training labels are the view's coin flips, the true
    // ones 4 of each class in order; the test split keeps its labels.
    assert!(col(&truth, "x0").equals(&col(&random, "x0")));
    let labels = |df: &DataFrame| -> Vec<i64> {
        col(df, "label")
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect()
    };
    assert_eq!(labels(&truth)[..8], [0, 0, 0, 0, 1, 1, 1, 1]);
    assert_ne!(labels(&truth)[..8], labels(&random)[..8]);
    assert_eq!(labels(&truth)[8..], labels(&random)[8..]);
    assert!((0.0..=1.0).contains(&acc));

    common::formats::cifar10_binary(dir.path(), 1, 1, 3);
    let e = run_text(
        dir.path(),
        &format!(
            "points(dataset(\"cifar10\", #{{ root: \"{}\" }}));",
            dir.path().display()
        ),
    )
    .unwrap_err();
    assert!(
        e.contains("points: cifar10 holds images; points lists data sets of features"),
        "{e}"
    );
}
