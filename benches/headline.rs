//! scripts/paper/headline.rhai at its default (CPU) scale, as `minima run` runs it:
//! prints its wall time and the test-accuracy gaps between a random and an
//! adversarial init, with vanilla and with SOTA SGD, read back from the
//! summary.parquet it wrote. The paper's claim holds when the vanilla gap is large
//! (the issue asks ≥ 5.6 points at this scale) and the SOTA gap small (≤ 1.5).
//!
//! `cargo bench --bench headline --profile dev`; MINIMA_BENCH_SET="k=v,k=v" passes
//! `--set` overrides (e.g. `seeds=3`). Needs Debian's dataset-fashion-mnist (or
//! MINIMA_DATA). The run folder is kept under target/headline-<time>/ to inspect.

use minima::host::{Host, Outcome, Session, SessionOptions};
use minima::kit::params::Params;
use polars::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

fn strings(df: &DataFrame, name: &str) -> Vec<String> {
    df.column(name)
        .and_then(|c| c.str().cloned())
        .map(|c| c.iter().map(|s| s.unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

fn main() {
    minima::host::alloc::keep_large_allocations();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let sets: Vec<String> = std::env::var("MINIMA_BENCH_SET")
        .ok()
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let params = Params::parse(&sets).unwrap_or_else(|e| panic!("MINIMA_BENCH_SET: {e}"));
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let out = root.join(format!("target/headline-{stamp}"));
    let script = root.join("scripts/paper/headline.rhai");
    let host = Host::new(Session::new(SessionOptions {
        script: Some(script.clone()),
        out: Some(out.clone()),
        runs_base: root.join("target"),
        device: tch::Device::cuda_if_available(),
        quiet: true,
        params,
        resume: false,
    }));
    let start = Instant::now();
    let outcome = host.run_file(&script).unwrap_or_else(|e| panic!("{e:#}"));
    let wall = start.elapsed().as_secs_f64();
    assert!(
        matches!(outcome, Outcome::Completed),
        "headline.rhai did not complete"
    );

    let summary = minima::frame::read_results(&out, "summary").expect("summary.parquet");
    let (heuristic, init) = (strings(&summary, "heuristic"), strings(&summary, "init"));
    let kind = strings(&summary, "kind");
    let acc: Vec<f64> = summary
        .column("test_acc")
        .expect("test_acc")
        .f64()
        .expect("test_acc is f64")
        .iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect();
    let mean = |h: &str, i: &str| {
        let v: Vec<f64> = (0..acc.len())
            .filter(|&k| kind[k] == "train" && heuristic[k] == h && init[k] == i)
            .map(|k| acc[k])
            .collect();
        100.0 * v.iter().sum::<f64>() / v.len() as f64
    };
    let scale = if sets.is_empty() {
        "default scale".to_string()
    } else {
        format!("--set {}", sets.join(" --set "))
    };
    println!(
        "headline.rhai, {scale}, {} torch threads, {:?}: {:.1} min wall",
        tch::get_num_threads(),
        tch::Device::cuda_if_available(),
        wall / 60.0
    );
    println!("| SGD | test acc, random init | test acc, adversarial init | gap (points) |");
    println!("|---|---|---|---|");
    for h in ["vanilla", "sota"] {
        let (r, a) = (mean(h, "random"), mean(h, "adversarial"));
        println!("| {h} | {r:.2}% | {a:.2}% | {:.2} |", r - a);
    }
    println!("run folder: {}", out.display());
}
