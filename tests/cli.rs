//! The `minima` binary: exit codes, messages, --set, check, help, Ctrl-C and the REPL.

use crate::common;
use common::{minima, text};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn write(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).unwrap();
}

const TINY: &str = r#"
let d = toy(#{ n_train: 8, n_test: 8 });
let r = train(model(#{ arch: "mlp", hidden: [8] }, d), d, #{ epochs: param("epochs", 2), batch_size: 4 });
record(r, #{ name: param("name", "x") });
print(`epochs ${r.epochs}`);
"#;

#[test]
fn run_writes_results_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tiny.rhai", TINY);
    let out = minima(
        &[
            "run",
            "tiny.rhai",
            "--set",
            "epochs=3",
            "--set",
            "name=b",
            "-q",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "epochs 3");
    // Default run folder: runs/<script>-<timestamp>, announced on stderr.
    let runs: Vec<_> = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1);
    let name = runs[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("tiny-20"), "{name}");
    assert!(
        text(&out.stderr).contains(&format!("results: runs/{name}")),
        "{}",
        text(&out.stderr)
    );
    for file in ["history.parquet", "summary.parquet", "config.json"] {
        assert!(runs[0].join(file).is_file(), "{file}");
    }
}

#[test]
fn script_errors_exit_one_with_position() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.rhai",
        "let d = toy();\nlet r = train(d, d);\n",
    );
    let out = minima(&["run", "bad.rhai", "-q"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("error: Function not found: train (Data, Data)"),
        "{err}"
    );
    assert!(err.contains("--> bad.rhai:2:9"), "{err}");

    write(dir.path(), "syntax.rhai", "let x = [1, 2;\n");
    for cmd in ["run", "check"] {
        let out = minima(&[cmd, "syntax.rhai"], dir.path());
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let err = text(&out.stderr);
        assert!(
            err.contains("error: syntax:") && err.contains("--> syntax.rhai:1:"),
            "{cmd}: {err}"
        );
    }
}

#[test]
fn a_failing_script_keeps_what_it_recorded() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "half.rhai",
        &format!("{TINY}\nlet broken = toy(#{{ n_tset: 3 }});\n"),
    );
    let out = minima(&["run", "half.rhai", "--out", "res", "-q"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("unknown key `n_tset` (did you mean `n_test`?)"),
        "{err}"
    );
    assert!(err.contains("results so far: res"), "{err}");
    let df =
        minima::results::parquet::read_parquet(&dir.path().join("res/summary.parquet")).unwrap();
    assert_eq!(df.height(), 1);
    let config = std::fs::read_to_string(dir.path().join("res/config.json")).unwrap();
    assert!(config.contains("\"status\": \"failed\""), "{config}");
}

#[test]
fn usage_errors_exit_two() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tiny.rhai", TINY);
    let cases: &[(&[&str], &str)] = &[
        (&["run", "missing.rhai"], "cannot read script missing.rhai"),
        (
            &["run", "tiny.rhai", "--set", "epocs=3"],
            "--set epocs: the script reads no param \"epocs\"; its params: epochs, name",
        ),
        (
            &["run", "tiny.rhai", "--set", "epochs"],
            "--set epochs: expected key=value",
        ),
        (
            &["run", "tiny.rhai", "--device", "tpu"],
            "--device tpu: expected auto, cpu, cuda or cuda:N",
        ),
        (
            &["run", "tiny.rhai", "--set", "epochs=many", "-q"],
            "--set epochs=many: expected an integer",
        ),
    ];
    for (args, want) in cases {
        let out = minima(args, dir.path());
        let err = text(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    }
    let out = minima(&["run"], dir.path());
    assert_eq!(out.status.code(), Some(2), "clap usage error");
}

#[test]
fn set_is_refused_before_running_when_repeated_or_of_the_wrong_type() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "tiny.rhai",
        &format!("print(\"started\");\n{TINY}"),
    );
    for (args, want) in [
        (
            &["--set", "epochs=5", "--set", "epochs=6"][..],
            "error: --set epochs is given twice (epochs=5 and epochs=6); give each key once",
        ),
        (
            &["--set", "epochs=[1,2]"],
            "error: --set epochs=[1,2]: expected an integer (the default is 2)",
        ),
        (
            &["--set", "name=x", "--set", "epochs=0.5"],
            "error: --set epochs=0.5: expected an integer (the default is 2)",
        ),
    ] {
        let out = minima(
            &[&["run", "tiny.rhai", "--out", "res"][..], args].concat(),
            dir.path(),
        );
        let err = text(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            !text(&out.stdout).contains("started"),
            "nothing ran: {args:?}"
        );
        assert!(!dir.path().join("res").exists(), "no folder: {args:?}");
    }
}

#[test]
fn params_with_computed_names_are_checked_when_the_run_ends() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "built.rhai",
        "let key = \"ep\" + \"ochs\";\nprint(`epochs ${param(key, 3)}`);\n",
    );
    let out = minima(&["run", "built.rhai", "--set", "epochs=5"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("epochs 5"));
    // A typo cannot be seen before the run; it is an error once the run is over.
    let out = minima(&["run", "built.rhai", "--set", "epocs=5"], dir.path());
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(text(&out.stdout).contains("epochs 3"));
    assert!(
        err.contains("error: --set epocs=5: no param(\"epocs\") was read during the run, so the override did nothing; params read: epochs"),
        "{err}"
    );
}

#[test]
fn scripts_import_modules_beside_them_then_stdlib_then_minima_path() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("exp");
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::create_dir_all(&shared).unwrap();
    write(
        &sub,
        "mylib.rhai",
        "import \"helpers\" as h;\nfn double(x) { h::check(x) * 2 }\n",
    );
    write(
        &shared,
        "helpers.rhai",
        "fn check(x) {\n    if x < 0 { throw \"negative input\"; }\n    x\n}\n",
    );
    write(
        &sub,
        "main.rhai",
        "import \"mylib\" as m;\nimport \"paper\" as paper;\nprint(m::double(param(\"x\", 21)));\n",
    );
    let run = |args: &[&str], path: Option<&Path>| {
        let mut cmd = common::minima_command();
        cmd.args(args).current_dir(dir.path());
        match path {
            Some(p) => cmd.env("MINIMA_PATH", format!("/nonexistent:{}", p.display())),
            None => cmd.env_remove("MINIMA_PATH"),
        };
        cmd.output().unwrap()
    };
    // Run from another folder: mylib is found beside the script, helpers on MINIMA_PATH.
    let out = run(&["run", "exp/main.rhai", "--out", "r1"], Some(&shared));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "42");
    let out = run(&["check", "exp/main.rhai"], Some(&shared));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // An error inside a module points at the module's file and line.
    let out = run(
        &["run", "exp/main.rhai", "--out", "r2", "--set", "x=-1"],
        Some(&shared),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("error: negative input"), "{err}");
    let helpers = shared.join("helpers.rhai").display().to_string();
    assert!(err.contains(&format!("--> {helpers}:2:")), "{err}");
    assert!(err.contains("throw \"negative input\""), "{err}");
    assert!(
        err.contains("in call to `double` at exp/main.rhai:3"),
        "{err}"
    );

    // Without MINIMA_PATH the module is nowhere: every place tried is listed.
    for args in [
        &["run", "exp/main.rhai", "--out", "r3"][..],
        &["check", "exp/main.rhai"],
    ] {
        let out = run(args, None);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("module \"helpers\" not found; looked for exp/helpers.rhai, "),
            "{args:?}: {err}"
        );
        assert!(err.contains("stdlib/helpers.rhai"), "{args:?}: {err}");
        assert!(err.contains("MINIMA_PATH"), "{args:?}: {err}");
    }
    // `check` reports a module's syntax error against the module's file.
    write(&sub, "mylib.rhai", "fn double(x) { x * }\n");
    let out = run(&["check", "exp/main.rhai"], Some(&shared));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--> exp/mylib.rhai:1:"), "{err}");
}

#[test]
fn the_quickstart_adversarial_init_reaches_its_target_within_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart.rhai");
    // The same knob as fig1 (`adv_epochs`), and a target it reaches: here a low one
    // to keep the test short (the default 90% takes 9,620 epochs).
    let out = minima(
        &[
            "run",
            script.to_str().unwrap(),
            "--out",
            "qs",
            "-q",
            "--set",
            "epochs=2",
            "--set",
            "adv_epochs=3000",
            "--set",
            "adv_target=0.7",
        ],
        dir.path(),
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // The epoch it gets there depends on rounding (a random-label fit is chaotic):
    // the claim is that it does, within the budget.
    let line = stdout
        .lines()
        .find(|l| l.contains("(adversarial_init, random): reached_target after "))
        .unwrap_or_else(|| panic!("no reached_target line: {stdout}"));
    let epochs: i64 = line
        .split("after ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!((1..=3000).contains(&epochs), "{line}");
    assert!(line.contains("train acc 0.7000"), "{line}");
}

#[test]
fn check_and_help() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tiny.rhai", TINY);
    let out = minima(&["check", "tiny.rhai"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout).trim(), "tiny.rhai: ok");
    assert!(!dir.path().join("runs").exists(), "check runs nothing");
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["check", "--help"],
        &["repl", "--help"],
    ] {
        let out = minima(args, dir.path());
        assert_eq!(out.status.code(), Some(0));
        assert!(text(&out.stdout).contains("Usage: minima"), "{args:?}");
    }
    assert!(text(&minima(&["run", "--help"], dir.path()).stdout).contains("--set <KEY=VALUE>"));
}

#[test]
fn ctrl_c_stops_cleanly_and_keeps_recorded_runs() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "long.rhai",
        r#"
        let d = toy(#{ n_train: 8, n_test: 8 });
        let m = model(#{ arch: "mlp", hidden: [8] }, d);
        record(train(m, d, #{ epochs: 2, batch_size: 4 }));
        train(m, d, #{ epochs: 100000000, batch_size: 1 });
        "#,
    );
    let mut child = common::minima_command()
        .args(["run", "long.rhai", "--out", "res", "-q"])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let summary = dir.path().join("res/summary.parquet");
    let start = Instant::now();
    while !dir.path().join("res/summary/000000.parquet").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "first run never recorded"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted (Ctrl-C)"), "{err}");
    // The whole table is written on the way out.
    let df = minima::results::parquet::read_parquet(&summary).unwrap();
    assert_eq!(df.height(), 1, "the finished run stays recorded");
    let config = std::fs::read_to_string(dir.path().join("res/config.json")).unwrap();
    assert!(config.contains("\"status\": \"interrupted\""), "{config}");
}

#[test]
fn repl_keeps_state_and_survives_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = common::minima_command()
        .args(["repl", "-q", "--out", "res"])
        .env("MINIMA_HISTORY", dir.path().join("history"))
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"let d = toy(#{ n_train: 4 });\nd.n_train\ntoy(#{ n_trian: 1 })\nfn twice(x) { x * 2 }\ntwice(d.n_train)\nd\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "8",
            "16",
            "Data(toy, labels true, 8 train / 100 test, input [2], 2 classes)"
        ],
        "{stdout}"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("unknown key `n_trian` (did you mean `n_train`?)"),
        "{err}"
    );
    assert!(err.contains("--> <repl>:1:1"), "{err}");
    let history = std::fs::read_to_string(dir.path().join("history")).unwrap();
    assert!(
        history.contains("twice(d.n_train)"),
        "history persists: {history}"
    );
}

#[test]
fn every_shipped_script_compiles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for folder in ["scripts/paper", "examples", "stdlib"] {
        for entry in std::fs::read_dir(root.join(folder)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rhai") {
                let out = minima(&["check", path.to_str().unwrap()], root);
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "{}: {}",
                    path.display(),
                    text(&out.stderr)
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 3, "found only {checked} scripts");
}
