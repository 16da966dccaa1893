//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod formats;

use minima::host::{Host, Session, SessionOptions};
use minima::kit::params::Params;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn host_in(out: &Path, sets: &[&str]) -> Host {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    Host::new(Session::new(SessionOptions {
        script: Some(PathBuf::from("test.rhai")),
        out: Some(out.to_path_buf()),
        runs_base: out.to_path_buf(),
        device: tch::Device::Cpu,
        quiet: true,
        params: Params::parse(&sets).unwrap(),
        resume: false,
    }))
}

/// Runs script text in a fresh host; the error, if any, formatted as users see it.
/// A script that succeeds is ended as `minima run` ends it (whole tables and the
/// final config.json written); tests of failing scripts look at the error only.
pub fn run_text(out: &Path, text: &str) -> Result<(), String> {
    let host = host_in(out, &[]);
    let ran = host.engine.run(text);
    if ran.is_ok() {
        host.session
            .finish("completed")
            .map_err(|e| format!("{e:#}"))?;
    }
    ran.map_err(|e| {
        minima::host::diagnostics::format_error(
            &e,
            &minima::host::diagnostics::Source {
                name: "test.rhai",
                text,
            },
        )
    })
}

/// The minima binary with one torch thread: the test harness already runs two
/// tests at once on CI's 2 cores, and OpenMP teams spinning on shared cores slow
/// small models down many times over.
pub fn minima_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_minima"));
    command.env("OMP_NUM_THREADS", "1");
    command
}

pub fn minima(args: &[&str], dir: &Path) -> Output {
    minima_command()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("minima runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `minima` with extra environment variables (e.g. MINIMA_DATA for a test's files).
pub fn minima_env(args: &[&str], dir: &Path, env: &[(&str, &Path)]) -> Output {
    let mut command = minima_command();
    command.args(args).current_dir(dir);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("minima runs")
}

/// `minima run SCRIPT --out OUT` with the environment variable `var` set to a
/// value or, with `None`, removed: the run's config.json and history table.
/// Panics with minima's stderr when the run fails.
pub fn run_recorded(
    script: &Path,
    out: &Path,
    (var, value): (&str, Option<&str>),
) -> (serde_json::Value, polars::prelude::DataFrame) {
    let mut cmd = minima_command();
    cmd.arg("run").arg(script).arg("--out").arg(out);
    match value {
        Some(v) => cmd.env(var, v),
        None => cmd.env_remove(var),
    };
    let o = cmd.output().expect("minima runs");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    let history = minima::results::parquet::read_parquet(&out.join("history.parquet")).unwrap();
    (serde_json::from_str(&config).unwrap(), history)
}

/// A float column of a results frame, nulls as `None`.
pub fn floats(df: &polars::prelude::DataFrame, name: &str) -> Vec<Option<f64>> {
    df.column(name)
        .unwrap_or_else(|e| panic!("column {name}: {e}"))
        .f64()
        .unwrap_or_else(|e| panic!("column {name}: {e}"))
        .iter()
        .collect()
}

/// An integer column of a results frame without nulls.
pub fn ints(df: &polars::prelude::DataFrame, name: &str) -> Vec<i64> {
    df.column(name)
        .unwrap_or_else(|e| panic!("column {name}: {e}"))
        .i64()
        .unwrap_or_else(|e| panic!("column {name}: {e}"))
        .into_no_null_iter()
        .collect()
}

/// A text column of a results frame without nulls.
pub fn strs(df: &polars::prelude::DataFrame, name: &str) -> Vec<String> {
    df.column(name)
        .unwrap_or_else(|e| panic!("column {name}: {e}"))
        .str()
        .unwrap_or_else(|e| panic!("column {name}: {e}"))
        .iter()
        .map(|v| v.unwrap_or_else(|| panic!("null in {name}")).to_string())
        .collect()
}

/// A boolean column of a results frame without nulls.
pub fn bools(df: &polars::prelude::DataFrame, name: &str) -> Vec<bool> {
    df.column(name)
        .unwrap_or_else(|e| panic!("column {name}: {e}"))
        .bool()
        .unwrap_or_else(|e| panic!("column {name}: {e}"))
        .iter()
        .map(|v| v.unwrap_or_else(|| panic!("null in {name}")))
        .collect()
}
