//! Sweeps: grid + sweep write one part folder per configuration, shards split
//! the configurations, re-running finishes only what is missing, and killing a
//! shard mid-way never leaves a configuration half-published or recorded twice.

use crate::common;
use common::{floats, host_in, ints, minima, strs, text};
use minima::frame::read_results;
use minima::results::parquet::read_parquet;
use polars::prelude::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Six configurations; `epochs` sets how long each one trains.
const SCRIPT: &str = r#"
let d = toy(#{ n_train: 20, n_test: 20 });
let done = sweep(grid(#{ seed: 0..3, init: ["plain", "wide"] }), |cfg| {
    let hidden = if cfg.init == "wide" { [16] } else { [8] };
    let m = model(#{ arch: "mlp", hidden: hidden, seed: cfg.seed }, d);
    let r = train(m, d, #{ epochs: param("epochs", 3), batch_size: 10, lr: 0.05, seed: cfg.seed,
                           checkpoint_every: 10 });
    record(r, #{ body_index: cfg.index, body_id: cfg.id });
    record_metrics(#{ metric: "acc", value: evaluate(r.model, d).test_acc });
});
print(`ran ${done.ran} skipped ${done.skipped} of ${done.in_shard}/${done.total}, ${done.complete} complete, summarise ${done.summarise}`);
"#;

fn part_ids(out: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(out.join("parts"))
        .map(|e| {
            e.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// Every configuration exactly once, in index order, carrying its keys.
fn assert_complete(out: &Path) {
    let summary = read_results(out, "summary").unwrap();
    assert_eq!(ints(&summary, "sweep_index"), [0, 1, 2, 3, 4, 5]);
    assert_eq!(ints(&summary, "body_index"), [0, 1, 2, 3, 4, 5]);
    assert_eq!(strs(&summary, "sweep_id"), strs(&summary, "body_id"));
    assert_eq!(ints(&summary, "sweep_seed"), [0, 1, 2, 0, 1, 2]);
    assert_eq!(
        strs(&summary, "sweep_init"),
        ["plain", "plain", "plain", "wide", "wide", "wide"]
    );
    // Runs are numbered within their configuration.
    assert_eq!(ints(&summary, "run"), [0; 6]);
    let history = read_results(out, "history").unwrap();
    assert_eq!(history.height(), 6 * 3, "3 epochs per configuration");
    let metrics = read_results(out, "metrics").unwrap();
    assert_eq!(ints(&metrics, "sweep_index"), [0, 1, 2, 3, 4, 5]);
    assert_eq!(part_ids(out).len(), 6);
    for id in part_ids(out) {
        let part = out.join("parts").join(&id);
        assert!(part.join("configuration.json").is_file());
        assert!(part.join("weights/run-0.safetensors").is_file());
        // The run folder's layout: part files, and the whole tables written when
        // the body returned.
        let whole = read_parquet(&part.join("summary.parquet")).unwrap();
        let first = read_parquet(&part.join("summary/000000.parquet")).unwrap();
        assert_eq!(first.height(), 1, "one run per summary part");
        assert_eq!(
            whole.column("run").unwrap().get(0).unwrap(),
            first.column("run").unwrap().get(0).unwrap()
        );
        assert!(
            !out.join("checkpoints").join(&id).exists(),
            "checkpoints dropped"
        );
    }
}

#[test]
fn a_sweep_writes_one_part_per_configuration_and_a_rerun_skips_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    host_in(&out, &[]).engine.run(SCRIPT).unwrap();
    assert_complete(&out);
    let staging: Vec<_> = std::fs::read_dir(out.join(".running")).unwrap().collect();
    assert!(staging.is_empty(), "nothing left staged");
    let before = read_parquet(
        &out.join("parts")
            .join(&part_ids(&out)[0])
            .join("summary.parquet"),
    )
    .unwrap();

    // The same script again: every configuration is skipped, nothing rewritten.
    let host = host_in(&out, &[]);
    let done: rhai::Map = host
        .engine
        .eval(&SCRIPT.replace("print(", "done; //"))
        .unwrap();
    assert_eq!(done["skipped"].as_int().unwrap(), 6);
    assert_eq!(done["ran"].as_int().unwrap(), 0);
    let after = read_parquet(
        &out.join("parts")
            .join(&part_ids(&out)[0])
            .join("summary.parquet"),
    )
    .unwrap();
    assert!(before.equals_missing(&after), "the part was not rewritten");
    assert_complete(&out);

    // A folder of sweep folders reads as one table with a folder column.
    host_in(&dir.path().join("out2"), &[])
        .engine
        .run(SCRIPT)
        .unwrap();
    let both = read_results(dir.path(), "summary").unwrap();
    assert_eq!(both.height(), 12);
    assert_eq!(
        strs(&both, "folder")[..7].to_vec(),
        vec!["out", "out", "out", "out", "out", "out", "out2"]
    );
}

#[test]
fn sweep_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    for (n, (script, expected)) in [
        ("grid(#{ seed: [] })", "grid: key `seed` has no values"),
        ("sweep([#{ seed: 1 }], |c| c)", "no integer `index`"),
        (
            "let g = grid(#{ seed: 0..2 }); g[1].seed = 5; sweep(g, |c| c)",
            "configuration 1 was changed after grid(...)",
        ),
        (
            "sweep(#{ seed: 0..2 }, |c| c); sweep(#{ seed: [1] }, |c| c)",
            "appears twice",
        ),
        (
            "sweep(#{ seed: 0..2 }, |c| sweep(#{ x: 1 }, |d| d))",
            "inside a sweep body",
        ),
        (
            "sweep(#{ seed: 0..2 }, |c| { if c.seed == 1 { throw \"boom\" } })",
            "boom",
        ),
    ]
    .iter()
    .enumerate()
    {
        let e = common::run_text(&dir.path().join(n.to_string()), script).unwrap_err();
        assert!(e.contains(expected), "{script}: {e}");
    }
    // The failing configuration stays unpublished; the one before it is complete.
    assert_eq!(part_ids(&dir.path().join("5")).len(), 1);
}

fn write_script(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn shards_split_the_configurations_and_slurm_variables_pick_one() {
    let dir = tempfile::tempdir().unwrap();
    write_script(dir.path(), "s.rhai", SCRIPT);
    let run = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["run", "s.rhai", "--out", "out", "-q", "--device", "cpu"];
        args.extend_from_slice(extra);
        let output = common::minima_command()
            .args(&args)
            .envs(env.iter().copied())
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        text(&output.stdout)
    };
    let out = dir.path().join("out");
    // Slurm array task 3 of --array=1-3 is shard 2/3: indices 2 and 5.
    let printed = run(
        &[],
        &[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ],
    );
    assert!(
        printed.contains("ran 2 skipped 0 of 2/6, 2 complete, summarise false"),
        "{printed}"
    );
    let summary = read_results(&out, "summary").unwrap();
    assert_eq!(ints(&summary, "sweep_index"), [2, 5]);
    assert!(out.join("config-shard-2-of-3.json").is_file());
    // --shard wins over the environment.
    let printed = run(
        &["--shard", "0/3"],
        &[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ],
    );
    // `complete` counts every shard's configurations, not only this one's.
    assert!(
        printed.contains("ran 2 skipped 0 of 2/6, 4 complete, summarise false"),
        "{printed}"
    );
    // Unsharded, the rest: two ran, four were there; this run completed the grid.
    let printed = run(&[], &[]);
    assert!(
        printed.contains("ran 2 skipped 4 of 6/6, 6 complete, summarise true"),
        "{printed}"
    );
    // A re-run of a complete grid: shard 0 summarises, the others do not.
    let printed = run(&["--shard", "0/3"], &[]);
    assert!(
        printed.contains("ran 0 skipped 2 of 2/6, 6 complete, summarise true"),
        "{printed}"
    );
    let printed = run(&["--shard", "1/3"], &[]);
    assert!(
        printed.contains("ran 0 skipped 2 of 2/6, 6 complete, summarise false"),
        "{printed}"
    );
    assert_complete(&out);
    let config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("config-shard-0-of-3.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["shard"], "0/3");
    assert_eq!(config["status"], "completed");

    // Another script may not write into the folder.
    write_script(dir.path(), "other.rhai", SCRIPT);
    let refused = minima(&["run", "other.rhai", "--out", "out", "-q"], dir.path());
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("holds the results of another command"),
        "{}",
        text(&refused.stderr)
    );
    // Nor the same script with other overrides.
    let refused = minima(
        &["run", "s.rhai", "--out", "out", "-q", "--set", "epochs=4"],
        dir.path(),
    );
    assert!(
        text(&refused.stderr).contains("overrides"),
        "{}",
        text(&refused.stderr)
    );
    // A shard without --out has no shared folder to write into.
    let alone = minima(&["run", "s.rhai", "--shard", "0/2", "-q"], dir.path());
    assert!(
        text(&alone.stderr).contains("needs --out"),
        "{}",
        text(&alone.stderr)
    );
    // Recording outside the body of a sharded run would clobber the other shards.
    write_script(
        dir.path(),
        "outside.rhai",
        "let d = toy(#{ n_train: 4, n_test: 4 }); record_metrics(#{ a: 1 });",
    );
    let outside = minima(
        &["run", "outside.rhai", "--out", "o2", "--shard", "1/2", "-q"],
        dir.path(),
    );
    assert!(
        text(&outside.stderr).contains("outside sweep(...) in shard 1/2"),
        "{}",
        text(&outside.stderr)
    );
}

#[test]
fn jobs_run_shard_processes_and_name_the_one_that_failed() {
    let dir = tempfile::tempdir().unwrap();
    write_script(dir.path(), "s.rhai", SCRIPT);
    let output = common::minima_command()
        .args([
            "run", "s.rhai", "--out", "out", "--jobs", "2", "--device", "cpu",
        ])
        .env_remove("OMP_NUM_THREADS")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let out = dir.path().join("out");
    assert_complete(&out);
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("[shard 0/2] ran 3 skipped 0 of 3/6"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[shard 1/2] ran 3 skipped 0 of 3/6"),
        "{stdout}"
    );
    // Both shards finish at about the same moment; one of them summarises.
    assert_eq!(stdout.matches("summarise true").count(), 1, "{stdout}");
    let cores = std::thread::available_parallelism().unwrap().get();
    for shard in ["0-of-2", "1-of-2"] {
        let config: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("config-shard-{shard}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            config["threads"],
            (cores / 2).max(1),
            "CPU threads split between the jobs"
        );
    }

    write_script(
        dir.path(),
        "fails.rhai",
        "sweep(#{ x: 0..4 }, |c| { if c.x == 3 { throw \"no good\" } record_metrics(#{ x: c.x }); });",
    );
    let failed = minima(
        &["run", "fails.rhai", "--out", "f", "--jobs", "2", "-q"],
        dir.path(),
    );
    assert_eq!(failed.status.code(), Some(1));
    let stderr = text(&failed.stderr);
    assert!(stderr.contains("error: shard 1/2 (pid"), "{stderr}");
    assert!(stderr.contains("exit code 1"), "{stderr}");
    assert!(!stderr.contains("error: shard 0/2"), "{stderr}");
    let metrics = read_results(&dir.path().join("f"), "metrics").unwrap();
    assert_eq!(ints(&metrics, "sweep_x"), [0, 1, 2]);
}

/// Polls the parts while shards write them: every published part is whole.
fn watch(
    out: &Path,
    stop: Arc<AtomicBool>,
    reads: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<()> {
    let out = out.to_path_buf();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            for id in part_ids(&out) {
                let part = out.join("parts").join(&id);
                let summary = read_parquet(&part.join("summary.parquet")).unwrap_or_else(|e| {
                    panic!("part {id} published without a readable summary: {e}")
                });
                assert_eq!(summary.height(), 1);
                let history = read_parquet(&part.join("history.parquet")).unwrap();
                assert!(history.height() > 0);
                assert!(part.join("configuration.json").is_file());
                reads.fetch_add(1, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    })
}

#[test]
fn a_killed_shard_is_finished_by_rerunning_the_command_every_configuration_once() {
    let dir = tempfile::tempdir().unwrap();
    write_script(dir.path(), "s.rhai", SCRIPT);
    let epochs = "epochs=30";
    let reference = minima(
        &["run", "s.rhai", "--out", "reference", "-q", "--set", epochs],
        dir.path(),
    );
    assert_eq!(
        reference.status.code(),
        Some(0),
        "{}",
        text(&reference.stderr)
    );

    let out = dir.path().join("out");
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let watcher = watch(&out, stop.clone(), reads.clone());
    let start = |shard: &str| {
        common::minima_command()
            .args([
                "run", "s.rhai", "--out", "out", "-q", "--shard", shard, "--set", epochs,
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut shards: Vec<_> = ["0/3", "1/3", "2/3"].iter().map(|s| start(s)).collect();
    // Shard 0 owns configurations 0 and 3: kill it once 0 is published and 3
    // has a checkpoint.
    let configs = minima::sweep::grid::expand(
        &rhai::Engine::new()
            .eval::<rhai::Map>(r#"#{ seed: 0..3, init: ["plain", "wide"] }"#)
            .unwrap(),
    )
    .unwrap();
    let (first, second) = (&configs[0].id, &configs[3].id);
    let began = Instant::now();
    while !(out.join("parts").join(first).is_dir()
        && minima::results::part_folder::has_checkpoint(&out, second))
    {
        assert!(
            began.elapsed() < Duration::from_secs(180),
            "shard 0 never reached its second configuration"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Command::new("kill")
        .args(["-KILL", &shards[0].id().to_string()])
        .status()
        .unwrap();
    assert!(!shards[0].wait().unwrap().success());
    for shard in &mut shards[1..] {
        assert!(shard.wait().unwrap().success());
    }
    assert!(
        !out.join("parts").join(second).exists(),
        "the killed configuration is not published"
    );
    assert_eq!(part_ids(&out).len(), 5);

    // The same three commands again: shards 1 and 2 skip everything, shard 0
    // resumes configuration 3 from its checkpoint.
    let again: Vec<_> = ["0/3", "1/3", "2/3"]
        .iter()
        .map(|s| {
            common::minima_command()
                .args([
                    "run", "s.rhai", "--out", "out", "--shard", s, "--set", epochs,
                ])
                .current_dir(dir.path())
                .output()
                .unwrap()
        })
        .collect();
    for output in &again {
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    }
    let resumed = text(&again[0].stderr);
    assert!(
        resumed.contains(&format!("id {second}, resuming from its checkpoints")),
        "{resumed}"
    );
    stop.store(true, Ordering::Relaxed);
    watcher.join().expect("no reader ever saw a partial part");
    assert!(reads.load(Ordering::Relaxed) > 0);

    let history = read_results(&out, "history").unwrap();
    assert_eq!(
        history.height(),
        6 * 30,
        "every epoch of every configuration exactly once"
    );
    let summary = read_results(&out, "summary").unwrap();
    assert_eq!(ints(&summary, "sweep_index"), [0, 1, 2, 3, 4, 5]);
    // The resumed configuration ends where an uninterrupted run does.
    let expected = read_results(&dir.path().join("reference"), "summary").unwrap();
    for column in ["train_loss", "test_acc"] {
        let values = |df: &DataFrame| -> Vec<Option<f64>> {
            df.column(column).unwrap().f64().unwrap().iter().collect()
        };
        assert_eq!(values(&summary), values(&expected), "{column}");
    }
}

#[test]
fn the_slurm_example_runs_each_array_task_as_a_shard() {
    let dir = tempfile::tempdir().unwrap();
    write_script(dir.path(), "s.rhai", SCRIPT);
    let sbatch = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/slurm/sweep.sbatch");
    for task in ["1", "2"] {
        // As `sbatch --array=1-2` would run it: task ids 1 and 2 of 2.
        let output = Command::new("bash")
            .arg(&sbatch)
            .args(["--quiet", "--set", "epochs=3"])
            .envs([
                ("SLURM_ARRAY_TASK_ID", task),
                ("SLURM_ARRAY_TASK_COUNT", "2"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_STEP", "1"),
                ("SCRIPT", "s.rhai"),
                ("OUT", "out"),
                ("DEVICE", "cpu"),
                ("MINIMA", env!("CARGO_BIN_EXE_minima")),
            ])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        assert!(text(&output.stdout).contains("ran 3 skipped 0 of 3/6"));
    }
    assert_complete(&dir.path().join("out"));
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/slurm/seeds_init.rhai");
    let check = minima(&["check", example.to_str().unwrap()], dir.path());
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
}

#[test]
fn parts_stack_when_a_column_is_empty_in_some_of_them() {
    // Without a target, `stop_at_train_acc` is null (a text column) in that part
    // and a number in the other: read as one float column.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    common::run_text(
        &out,
        r#"let d = toy(#{ n_train: 4, n_test: 4 });
           sweep(#{ target: [false, true] }, |c| {
               let cfg = #{ epochs: 1 };
               if c.target { cfg.stop_at_train_acc = 0.5; }
               record(train(model(#{ arch: "mlp", hidden: [4] }, d), d, cfg));
           });"#,
    )
    .unwrap();
    let summary = read_results(&out, "summary").unwrap();
    assert_eq!(floats(&summary, "stop_at_train_acc"), [None, Some(0.5)]);
}
