//! Train config features: schedules, evaluation cadence, presets, divergence,
//! progress output and bad input.

use crate::common;
use common::{host_in, minima, run_text, text};
use rhai::{Array, Map};

fn eval<T: Clone + 'static>(script: &str) -> T {
    let dir = tempfile::tempdir().unwrap();
    let host = host_in(dir.path(), &[]);
    host.engine
        .eval::<T>(script)
        .unwrap_or_else(|e| panic!("{e}"))
}

const TOY: &str = "let d = toy(#{ n_train: 10, n_test: 10 });\nlet m = model(#{ arch: \"mlp\", hidden: [8] }, d);\n";

/// A history column that every epoch has, as numbers.
fn numbers(history: &Array, key: &str) -> Vec<f64> {
    history
        .iter()
        .map(|row| {
            row.read_lock::<Map>().unwrap()[key]
                .as_float()
                .unwrap_or_else(|_| panic!("{key} missing: {row}"))
        })
        .collect()
}

fn column(history: &Array, key: &str) -> Vec<String> {
    history
        .iter()
        .map(|row| row.read_lock::<Map>().unwrap()[key].to_string())
        .collect()
}

#[test]
fn the_schedule_sets_each_epochs_lr_and_eval_every_skips_epochs() {
    let h: Array = eval(&format!(
        "{TOY}train(m, d, #{{ epochs: 5, batch_size: 5, eval_every: 2,
            lr: #{{ schedule: \"piecewise\", values: [0.1, 0.01], starts: [1, 3] }} }}).history"
    ));
    assert_eq!(
        column(&h, "epoch_lr"),
        ["0.1", "0.1", "0.01", "0.01", "0.01"]
    );
    // Evaluated on epochs 2 and 4 and on the last one; null elsewhere.
    let present = |key: &str| -> Vec<bool> {
        h.iter()
            .map(|row| !row.read_lock::<Map>().unwrap()[key].is_unit())
            .collect()
    };
    assert_eq!(present("train_acc"), [false, true, false, true, true]);
    assert_eq!(present("test_loss"), [false, true, false, true, true]);
    assert!(present("batch_acc").iter().all(|&p| p));
}

#[test]
fn max_epochs_extends_a_run_that_has_not_reached_its_target() {
    let m: Map = eval(&format!(
        "{TOY}let r = train(m, random_labels(d), #{{ epochs: 2, max_epochs: 4, batch_size: 5, lr: 0.001, stop_at_train_acc: 1.0 }});
         #{{ n: r.epochs, status: r.status, last_lr: r.history[-1].epoch_lr }}"
    ));
    assert_eq!(m["n"].as_int().unwrap(), 4);
    assert_eq!(m["status"].to_string(), "target_not_reached");
    assert_eq!(m["last_lr"].as_float().unwrap(), 0.001);
}

#[test]
fn a_diverging_run_is_marked_and_the_script_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_in(dir.path(), &[]);
    let status: String = host
        .engine
        .eval(&format!(
            "{TOY}let r = train(m, d, #{{ epochs: 50, batch_size: 5, lr: 1e12 }});\nrecord(r);\nr.status"
        ))
        .unwrap();
    assert_eq!(status, "diverged");
    host.session.finish("completed").unwrap();
    let summary =
        minima::results::parquet::read_parquet(&dir.path().join("summary.parquet")).unwrap();
    assert_eq!(
        summary.column("status").unwrap().str().unwrap().get(0),
        Some("diverged")
    );
    let epochs = summary
        .column("epochs_run")
        .unwrap()
        .i64()
        .unwrap()
        .get(0)
        .unwrap();
    assert!(
        epochs < 50,
        "stopped at the first non-finite epoch, ran {epochs}"
    );
}

#[test]
fn presets_hold_the_papers_settings() {
    let mixes: Array = eval("import \"paper\" as p; p::mixes(toy())");
    let names: Vec<String> = mixes
        .iter()
        .map(|m| m.read_lock::<Map>().unwrap()["name"].to_string())
        .collect();
    assert_eq!(
        names,
        [
            "Vanilla SGD",
            "DA",
            "L2",
            "Momentum",
            "DA+L2",
            "DA+Momentum",
            "L2+Momentum",
            "DA+L2+Momentum (SOTA)"
        ]
    );
    let setting = |i: usize| {
        let m = mixes[i].read_lock::<Map>().unwrap()["train"]
            .read_lock::<Map>()
            .unwrap()
            .clone();
        (
            m["augment"].as_bool().unwrap(),
            m["weight_decay"].as_float().unwrap(),
            m["momentum"].as_float().unwrap(),
        )
    };
    assert_eq!(setting(0), (false, 0.0, 0.0));
    assert_eq!(setting(1), (true, 0.0, 0.0));
    assert_eq!(setting(2), (false, 5e-4, 0.0));
    assert_eq!(setting(3), (false, 0.0, 0.9));
    assert_eq!(setting(6), (false, 5e-4, 0.9));
    assert_eq!(setting(7), (true, 5e-4, 0.9));
    // Every mix is a valid train config: all 8 train, and the SOTA one augments.
    let n: i64 = eval(&format!(
        "import \"paper\" as p;\n{TOY}let n = 0;\nfor mix in p::mixes(d) {{ train(m, d, mix.train + #{{ epochs: 1, batch_size: 10 }}); n += 1; }}\nn"
    ));
    assert_eq!(n, 8);
    let lr: Map = eval("import \"paper\" as p; p::lr(toy())");
    assert_eq!(
        lr["starts"]
            .clone()
            .into_array()
            .unwrap()
            .iter()
            .map(|v| v.as_int().unwrap())
            .collect::<Vec<_>>(),
        [1, 151, 251]
    );
    let wd: f64 = eval("import \"paper\" as p; p::sota(toy()).weight_decay");
    assert_eq!(wd, 5e-4);
}

#[test]
fn bad_train_configs_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let err = |cfg: &str| run_text(dir.path(), &format!("{TOY}train(m, d, {cfg});")).unwrap_err();
    let e = err("#{ lr: #{ schedule: \"piecewise\", values: [0.1, 0.01], starts: [1, 1] } }");
    assert!(
        e.contains("`starts` must increase") && e.contains("test.rhai:3:1"),
        "{e}"
    );
    let e = err("#{ batch_size: 0 }");
    assert!(
        e.contains("`batch_size` = 0 is out of range: must be at least 1"),
        "{e}"
    );
    let e = err("#{ epochs: 5, max_epochs: 3, stop_at_train_acc: 1.0 }");
    assert!(e.contains("`max_epochs` = 3 is below `epochs` = 5"), "{e}");
    let e = err("#{ max_epochs: 500 }");
    assert!(
        e.contains("`max_epochs` only applies with `stop_at_train_acc`"),
        "{e}"
    );
    let e = err("#{ precision: \"fp16\", epochs: 1 }");
    assert!(
        e.contains("`precision: \"fp16\"` needs a CUDA device"),
        "{e}"
    );
    let e = err("#{ nesterov: true, epochs: 1 }");
    assert!(e.contains("nesterov momentum requires momentum > 0"), "{e}");
}

#[test]
fn progress_is_one_line_per_report_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.rhai"),
        format!("{TOY}train(m, d, #{{ epochs: 3, batch_size: 5 }});"),
    )
    .unwrap();
    let out = minima(&["run", "p.rhai"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("run 0 (train)"))
        .collect();
    assert_eq!(lines.len(), 2, "first epoch and the final line: {err}");
    assert!(
        lines[0].starts_with("run 0 (train) epoch 1/3 loss "),
        "{err}"
    );
    assert!(
        lines[1].starts_with("run 0 (train) epoch 3/3 completed: train acc"),
        "{err}"
    );
    assert!(
        !err.contains('\r') && !err.contains("\u{1b}["),
        "no terminal control codes: {err:?}"
    );
    let quiet = minima(&["run", "p.rhai", "-q"], dir.path());
    assert!(!text(&quiet.stderr).contains("run 0"));
}

/// On the CPU, `precision: "bf16"` runs CPU autocast where the CPU has bf16
/// instructions (there it was measured faster, docs/TRAINING.md): the run trains
/// (its loss falls as the float32 run's does) and its weights differ from the
/// float32 run's, bf16 matmuls having rounded. Elsewhere it is refused with the
/// reason. Either way this CPU's behaviour is checked.
#[test]
fn bf16_on_the_cpu_trains_under_autocast_or_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let script = |precision: &str| {
        format!(
            "{TOY}let r = train(m, d, #{{ precision: \"{precision}\", epochs: 20, batch_size: 5, lr: 0.05 }});
            let h = r.history;
            [h[0].train_loss, h[h.len() - 1].train_loss, distance(r.model, m)]"
        )
    };
    let run = |precision: &str| run_text(dir.path(), &script(precision));
    if !minima::train::precision::cpu_has_bf16() {
        let e = run("bf16").unwrap_err();
        assert!(
            e.contains("needs bf16 instructions (AVX512-BF16)")
                && e.contains("measured 5.2x slower"),
            "{e}"
        );
        return;
    }
    let host = host_in(dir.path(), &[]);
    let values = |precision: &str| -> Vec<f64> {
        let a: Array = host
            .engine
            .eval(&script(precision))
            .unwrap_or_else(|e| panic!("{e}"));
        a.iter().map(|v| v.as_float().unwrap()).collect()
    };
    let (fp32, bf16) = (values("fp32"), values("bf16"));
    assert!(bf16[1] < 0.6 * bf16[0], "bf16 loss {bf16:?}, fp32 {fp32:?}");
    assert!(
        (bf16[1] - fp32[1]).abs() < 0.1 * fp32[0],
        "bf16 {bf16:?}, fp32 {fp32:?}"
    );
    assert!(
        bf16[2] != fp32[2],
        "the same weights: no autocast? {bf16:?}"
    );
}

/// `lr_at` is the trainer's own schedule: the lr `train` records per epoch.
#[test]
fn lr_at_gives_the_lr_train_uses() {
    let lrs: Array = eval(&format!(
        "{TOY}let lr = #{{ schedule: \"cosine\", base: 0.1, min: 0.0 }};
        let h = train(m, d, #{{ epochs: 4, batch_size: 5, lr: lr }}).history;
        let out = [];
        for e in 1..=4 {{ out.push([lr_at(lr, e, 4), h[e - 1].epoch_lr]); }}
        out.push([lr_at(#{{ schedule: \"piecewise\", values: [0.1, 0.01], starts: [1, 3] }}, 3, 5), 0.01]);
        out.push([lr_at(0.5, 7, 9), 0.5]);
        out"
    ));
    for pair in lrs {
        let pair: Array = pair.cast();
        let (got, want) = (pair[0].as_float().unwrap(), pair[1].as_float().unwrap());
        assert!((got - want).abs() < 1e-15, "{got} against {want}");
    }
    let dir = tempfile::tempdir().unwrap();
    let e = run_text(dir.path(), "lr_at(#{ schedule: \"linear\" }, 1, 5);").unwrap_err();
    assert!(e.contains("unknown schedule \"linear\""), "{e}");
}

/// torch's ReduceLROnPlateau(mode="max" or "min", threshold=0,
/// threshold_mode="abs"), stepped after each epoch, written out again here.
fn plateau_lrs(
    values: &[f64],
    max: bool,
    (base, factor, patience, min): (f64, f64, i64, f64),
) -> Vec<f64> {
    let (mut lr, mut bad) = (base, 0);
    let mut best = if max {
        f64::NEG_INFINITY
    } else {
        f64::INFINITY
    };
    let mut used = Vec::new();
    for &v in values {
        used.push(lr);
        if (max && v > best) || (!max && v < best) {
            (best, bad) = (v, 0);
        } else {
            bad += 1;
        }
        if bad > patience {
            let lower = (lr * factor).max(min);
            if lr - lower > 1e-8 {
                lr = lower;
            }
            bad = 0;
        }
    }
    used
}

#[test]
fn a_plateau_schedule_lowers_the_lr_when_train_accuracy_stops_improving() {
    // Random labels at a small lr: train accuracy stalls and the lr steps down.
    let h: Array = eval(&format!(
        "{TOY}train(m, random_labels(d), #{{ epochs: 12, batch_size: 5, eval_every: 6,
            lr: #{{ schedule: \"plateau\", base: 0.01, factor: 0.5, patience: 1, min: 0.002 }} }}).history"
    ));
    // Measured every epoch whatever eval_every says: the schedule needs it.
    let (accs, lrs) = (numbers(&h, "train_acc"), numbers(&h, "epoch_lr"));
    assert_eq!(
        lrs,
        plateau_lrs(&accs, true, (0.01, 0.5, 1, 0.002)),
        "accs {accs:?}"
    );
    assert!(
        lrs.contains(&0.005) && lrs[11] < 0.01,
        "{lrs:?} (accs {accs:?})"
    );
    // The test split keeps its cadence.
    let tested = h
        .iter()
        .filter(|row| !row.read_lock::<Map>().unwrap()["test_acc"].is_unit())
        .count();
    assert_eq!(tested, 2);

    // On the test loss: the test split is then evaluated every epoch instead.
    let h: Array = eval(&format!(
        "{TOY}train(m, random_labels(d), #{{ epochs: 8, batch_size: 5, eval_every: 4,
            lr: #{{ schedule: \"plateau\", base: 0.05, factor: 0.5, patience: 0, metric: \"test_loss\" }} }}).history"
    ));
    let (losses, lrs) = (numbers(&h, "test_loss"), numbers(&h, "epoch_lr"));
    assert_eq!(
        lrs,
        plateau_lrs(&losses, false, (0.05, 0.5, 0, 0.0)),
        "losses {losses:?}"
    );
    assert!(
        lrs[7] < 0.05,
        "the test loss stops falling: {lrs:?} ({losses:?})"
    );

    let dir = tempfile::tempdir().unwrap();
    let e = run_text(
        dir.path(),
        "lr_at(#{ schedule: \"plateau\", base: 0.1, factor: 0.3, patience: 9 }, 1, 5);",
    )
    .unwrap_err();
    assert!(
        e.contains("depends on the run's measurements") && e.contains("test.rhai:1"),
        "{e}"
    );
}
