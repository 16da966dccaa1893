//! `minima report` on a small sweep made here (two inits × two heuristics × two
//! seeds of the toy mlp, adversarial inits at R = 1 and 2), and `plot_curves`
//! from scripts.

use crate::common;

use common::{host_in, minima, run_text, text};
use minima::frame::{aggregate, read_results};
use polars::prelude::*;
use std::path::Path;

const SWEEP: &str = r#"
import "paper" as paper;
let last = ();
for seed in 0..2 {
    let data = toy(#{ seed: seed, n_train: 20, n_test: 20 });
    let init = model(#{ arch: "mlp", hidden: [8], seed: seed }, data);
    let advs = [];
    for r in [1, 2] {
        advs.push(adversarial_init(init, data, #{ replicas: r, zero_out: 0.5, epochs: 2, seed: seed }));
    }
    let where_ = #{ dataset: "toy", arch: "mlp", seed: seed };
    record_metrics(#{ metric: "distance", pair: "W0R-W0A", d: distance(init, advs[0].model) }, where_);
    for h in ["vanilla", "sota"] {
        let cfg = (if h == "vanilla" { paper::vanilla() } else { paper::sota() }) + #{ epochs: 2, seed: seed };
        let runs = [[train(init, data, cfg), #{ init: "random", heuristic: h }]];
        for i in 0..2 {
            runs.push([train(advs[i].model, data, cfg), #{ init: "adversarial", heuristic: h, init_replicas: i + 1 }]);
        }
        for x in runs {
            let run = x[0];
            let tags = x[1];
            record(run, tags);
            record_metrics(fgsm(run.model, data, #{ eps: [0.0, 0.1] }), tags + #{ seed: seed });
            record_metrics(norms(run.model), tags + #{ seed: seed });
            if tags.init == "random" {
                let pair = if h == "vanilla" { "W0R-WVR" } else { "W0R-WSR" };
                record_metrics(#{ metric: "distance", pair: pair, d: distance(init, run.model) }, where_);
            }
            last = run;
        }
    }
}
plot_boundaries([last], #{ out: "fig1.png" });
"#;

fn sweep(out: &Path) {
    let host = host_in(out, &[]);
    host.engine
        .run(SWEEP)
        .unwrap_or_else(|e| panic!("sweep: {e}"));
}

fn is_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    let img = image::load_from_memory(&bytes).unwrap();
    assert!(
        img.width() > 300 && img.height() > 300,
        "{}",
        path.display()
    );
}

/// Parses the whole file as XML; returns the root element's name and the text
/// of every `<text>` element.
fn svg(path: &Path) -> (String, Vec<String>) {
    use quick_xml::events::Event;
    let src = std::fs::read_to_string(path).unwrap();
    let mut reader = quick_xml::Reader::from_str(&src);
    let (mut root, mut texts, mut in_text, mut depth) = (None, Vec::new(), false, 0i32);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                root.get_or_insert(name.clone());
                in_text = name == "text";
                depth += 1;
            }
            Ok(Event::End(_)) => {
                in_text = false;
                depth -= 1;
            }
            Ok(Event::Empty(e)) => {
                root.get_or_insert(String::from_utf8_lossy(e.name().as_ref()).into_owned());
            }
            Ok(Event::Text(t)) if in_text => {
                texts.push(String::from_utf8_lossy(t.as_ref()).trim().to_string())
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("{} is not well-formed XML: {e}", path.display()),
        }
    }
    assert_eq!(depth, 0, "{}: unclosed elements", path.display());
    (root.unwrap_or_default(), texts)
}

/// The body rows of the Markdown table under heading `## {title}`, as cells.
fn table(md: &str, title: &str) -> Vec<Vec<String>> {
    let start = md
        .find(&format!("## {title}"))
        .unwrap_or_else(|| panic!("no section {title} in:\n{md}"));
    md[start..]
        .lines()
        .skip(1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

/// `mean ± std` in a cell.
fn cell(c: &str) -> (f64, f64) {
    let (m, s) = c.split_once(" ± ").unwrap_or((c, "0"));
    (m.parse().unwrap(), s.parse().unwrap())
}

/// Mean and sample std of `col` over the rows matching `init` and `heuristic`,
/// in percent, by Polars' own group-by.
fn expected(summary: &DataFrame, init: &str, heuristic: &str, col: &str) -> (f64, f64) {
    let mask = summary
        .column("init")
        .unwrap()
        .as_materialized_series()
        .equal(&Series::new("v".into(), [init]))
        .unwrap()
        & summary
            .column("heuristic")
            .unwrap()
            .as_materialized_series()
            .equal(&Series::new("v".into(), [heuristic]))
            .unwrap();
    let rows = summary.filter(&mask).unwrap();
    assert!(rows.height() >= 2);
    let agg = aggregate(
        &rows,
        &["init"],
        &[(col.into(), "mean".into()), (col.into(), "std".into())],
    )
    .unwrap();
    let get = |name: &str| {
        agg.column(name)
            .unwrap()
            .as_materialized_series()
            .f64()
            .unwrap()
            .get(0)
            .unwrap()
    };
    (
        100.0 * get(&format!("{col}_mean")),
        100.0 * get(&format!("{col}_std")),
    )
}

fn close(a: (f64, f64), b: (f64, f64)) -> bool {
    (a.0 - b.0).abs() < 0.006 && (a.1 - b.1).abs() < 0.006
}

#[test]
fn report_draws_every_figure_and_table_of_a_small_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    sweep(&out);

    let done = minima(&["report", out.to_str().unwrap()], dir.path());
    assert!(done.status.success(), "{}", text(&done.stderr));
    let report = out.join("report");
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(
        !md.contains("## Not in this report"),
        "every part has its columns here:\n{md}"
    );
    for name in ["accuracy_vs_epoch", "test_acc_vs_replicas", "norms", "fgsm"] {
        is_png(&report.join(format!("{name}.png")));
        let (root, texts) = svg(&report.join(format!("{name}.svg")));
        assert_eq!(root, "svg");
        assert!(!texts.is_empty(), "{name}.svg has no text");
        assert!(md.contains(&format!("]({name}.png)")), "{name} not shown");
    }
    let (_, texts) = svg(&report.join("accuracy_vs_epoch.svg"));
    for want in [
        "epoch",
        "test accuracy (%)",
        "random init, vanilla",
        "adversarial init, sota, R=2",
    ] {
        assert!(texts.iter().any(|t| t == want), "no `{want}` in {texts:?}");
    }
    is_png(&report.join("pictures/fig1.png"));
    assert!(md.contains("](pictures/fig1.png)"));

    // Final accuracies: one row per init × heuristic × R.
    let summary = read_results(&out, "summary").unwrap();
    let finals = table(&md, "Final accuracy per setting");
    assert_eq!(finals.len(), 6, "{finals:?}");
    // Columns: init, heuristic, init_replicas, runs, ...
    assert!(
        finals.iter().all(|r| r[3] == "2"),
        "two seeds each: {finals:?}"
    );

    // Table 2: a row per heuristic, mean ± std over seeds from each init.
    let t2 = table(&md, "Table 2");
    assert_eq!(t2.len(), 2);
    assert_eq!((t2[0][0].as_str(), t2[1][0].as_str()), ("vanilla", "sota"));
    for row in &t2 {
        let h = row[0].as_str();
        for (k, (init, col)) in [
            ("random", "train_acc"),
            ("random", "test_acc"),
            ("adversarial", "train_acc"),
            ("adversarial", "test_acc"),
        ]
        .iter()
        .enumerate()
        {
            let want = expected(&summary, init, h, col);
            assert!(
                close(cell(&row[k + 1]), want),
                "{h} {init} {col}: {} vs {want:?}",
                row[k + 1]
            );
        }
    }

    // Table 1: mean d per pair, in the paper's column order.
    let metrics = read_results(&out, "metrics").unwrap();
    let t1 = table(&md, "Table 1");
    assert_eq!(t1.len(), 1);
    assert_eq!(&t1[0][..2], ["toy", "mlp"]);
    let header = md
        .lines()
        .find(|l| l.starts_with("| dataset | arch |"))
        .unwrap();
    assert!(
        header.contains("d(W0R-WVR) | d(W0R-WSR) | d(W0R-W0A)"),
        "{header}"
    );
    let pair = metrics
        .column("pair")
        .unwrap()
        .as_materialized_series()
        .clone();
    let d = metrics
        .column("d")
        .unwrap()
        .as_materialized_series()
        .clone();
    let vals: Vec<f64> = (0..metrics.height())
        .filter(|&i| pair.get(i).unwrap().get_str() == Some("W0R-W0A"))
        .map(|i| d.get(i).unwrap().extract::<f64>().unwrap())
        .collect();
    assert_eq!(vals.len(), 2);
    let mean = (vals[0] + vals[1]) / 2.0;
    assert!(
        (t1[0][4].parse::<f64>().unwrap() - mean).abs() < 6e-4,
        "{:?} vs {mean}",
        t1[0]
    );

    // A folder of run folders reads the same results: the same tables.
    let combined = dir.path().join("combined");
    let again = minima(
        &[
            "report",
            dir.path().to_str().unwrap(),
            "--out",
            combined.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(again.status.success(), "{}", text(&again.stderr));
    let md2 = std::fs::read_to_string(combined.join("report.md")).unwrap();
    assert_eq!(table(&md2, "Table 2"), t2);
    is_png(&combined.join("pictures/sweep-fig1.png"));
}

#[test]
fn report_leaves_out_what_the_columns_cannot_show() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plain");
    run_text(
        &out,
        r#"let d = toy(#{ n_train: 10, n_test: 10 });
        let m = model(#{ arch: "mlp", hidden: [4] }, d);
        for lr in [0.1, 0.01] { record(train(m, d, #{ epochs: 2, lr: lr }), #{ margin: lr * 2.0 }); }"#,
    )
    .unwrap();
    let done = minima(&["report", out.to_str().unwrap()], dir.path());
    assert!(done.status.success(), "{}", text(&done.stderr));
    let md = std::fs::read_to_string(out.join("report/report.md")).unwrap();
    // No tags: the varying train setting (lr) tells the runs apart.
    let finals = table(&md, "Final accuracy per setting");
    assert_eq!(finals.len(), 2);
    assert_eq!(
        (finals[0][0].as_str(), finals[1][0].as_str()),
        ("0.1", "0.01")
    );
    assert!(out.join("report/accuracy_vs_epoch.png").is_file());
    let missing = &md[md.find("## Not in this report").unwrap()..];
    for part in [
        "Table 1", "Table 2", "Figure 4", "Figure 5", "Figure 6", "Figure 1",
    ] {
        assert!(
            missing.contains(part),
            "{part} should be listed as left out:\n{missing}"
        );
    }
    assert!(!out.join("report/norms.png").exists());
}

#[test]
fn report_of_a_folder_without_results_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let done = minima(&["report", "empty"], dir.path());
    assert_eq!(done.status.code(), Some(2));
    let err = text(&done.stderr);
    assert!(err.contains("empty holds no results"), "{err}");
    assert!(!dir.path().join("empty/report").exists());

    let done = minima(&["report", "nowhere"], dir.path());
    assert_eq!(done.status.code(), Some(2));
    assert!(text(&done.stderr).contains("nowhere is not a folder"));
}

const RUNS: &str = r#"
let d = toy(#{ n_train: 12, n_test: 12 });
for seed in 0..2 {
    let m = model(#{ arch: "mlp", hidden: [4], seed: seed }, d);
    record(train(m, d, #{ epochs: 3, seed: seed }), #{ init: "random" });
    record(train(m, d, #{ epochs: 3, seed: seed, lr: 0.5 }), #{ init: "other" });
}
let f = read_results(run_dir(), "history");
"#;

#[test]
fn plot_curves_writes_png_and_svg_with_a_line_per_group() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let host = host_in(&out, &[]);
    let both: rhai::Array = host
        .engine
        .eval(&format!(
            r#"{RUNS}
            [plot_curves(f, #{{ x: "epoch", y: ["train_acc", "test_acc"], by: "init", out: "acc" }}),
             plot_curves(f.filter(#{{ init: "random" }}), #{{ x: "epoch", y: "test_acc", out: "one.svg" }})]"#
        ))
        .unwrap();
    let [paths, single]: [rhai::Array; 2] = both
        .into_iter()
        .map(|a| a.cast::<rhai::Array>())
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    let paths: Vec<String> = paths.into_iter().map(|p| p.to_string()).collect();
    assert_eq!(
        paths,
        [out.join("acc.png"), out.join("acc.svg")].map(|p| p.display().to_string())
    );
    is_png(&out.join("acc.png"));
    let (root, texts) = svg(&out.join("acc.svg"));
    assert_eq!(root, "svg");
    for want in [
        "train_acc vs epoch",
        "test_acc vs epoch",
        "random init",
        "other init",
    ] {
        assert!(texts.iter().any(|t| t == want), "no `{want}` in {texts:?}");
    }
    // Two groups, two line colours (the palette's first two) in the picture.
    let img = image::open(out.join("acc.png")).unwrap().to_rgb8();
    for colour in [[31u8, 119, 180], [255, 127, 14]] {
        assert!(img.pixels().any(|p| p.0 == colour), "no {colour:?} line");
    }

    assert_eq!(single.len(), 1);
    let (_, texts) = svg(&out.join("one.svg"));
    assert!(
        !texts.iter().any(|t| t == "random init"),
        "one line needs no legend"
    );
    assert!(!out.join("one.png").exists());
}

#[test]
fn plot_curves_errors_name_the_option_or_column() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            r#"#{ x: "epoch", y: "nope" }"#,
            &["`nope`", "columns:", "test_acc"][..],
        ),
        (
            r#"#{ x: "epoch", y: "test_acc", colour: 1 }"#,
            &["unknown key `colour`", "allowed keys: x, y, by, out, scale"],
        ),
        (r#"#{ y: "test_acc" }"#, &["missing key `x`"]),
        (
            r#"#{ x: "epoch", y: [1] }"#,
            &["column names must be strings"],
        ),
        (
            r#"#{ x: "epoch", y: "test_acc", out: "a.jpg" }"#,
            &[".jpg", ".png, .svg"],
        ),
        (
            r#"#{ x: "init", y: "test_acc" }"#,
            &["`init` holds str, not numbers"],
        ),
        (r#"#{ x: "epoch", y: "test_acc", scale: 0 }"#, &["`scale`"]),
    ];
    for (i, (opts, wants)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("case{i}"));
        let err = run_text(&out, &format!("{RUNS}\nplot_curves(f, {opts});")).unwrap_err();
        for want in *wants {
            assert!(err.contains(want), "{opts}: no `{want}` in\n{err}");
        }
        assert!(err.contains("test.rhai:"), "{err}");
    }
}
