//! What sweeps cost: the same configurations run (a) as a plain loop in one
//! process (today's single-folder layout), (b) as `sweep` in one process (part
//! folders), (c) as `sweep` with `--jobs 2` (two shard processes, the CPU
//! threads split between them), and (d) re-running (b) and (c) when every
//! configuration is complete: the fixed cost of start-up and skipping.
//!
//!   cargo bench --bench sweep [-- --configs 8 --epochs 60 --rounds 3]
//!
//! Prints min/median/max wall seconds per variant (docs/SCALING.md). Every
//! process gets cores/2 torch threads (OMP_NUM_THREADS), so one process and each
//! of the two jobs compute alike and the difference is the sweep's own cost:
//! with all cores, one process's OpenMP pool can be far slower on a busy machine.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn script(configs: usize, epochs: usize, swept: bool) -> String {
    let body = format!(
        "let m = model(#{{ arch: \"mlp\", hidden: [256, 256], seed: cfg.seed }}, d);
         record(train(m, d, #{{ epochs: {epochs}, batch_size: 32, lr: 0.05, seed: cfg.seed }}));"
    );
    let data = "let d = toy(#{ n_train: 500, n_test: 500 });";
    if swept {
        format!("{data}\nsweep(grid(#{{ seed: 0..{configs} }}), |cfg| {{ {body} }});\n")
    } else {
        format!("{data}\nfor seed in 0..{configs} {{ let cfg = #{{ seed: seed }}; {body} }}\n")
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn timed(dir: &Path, args: &[&str]) -> f64 {
    let threads = (std::thread::available_parallelism().map_or(1, |n| n.get()) / 2).max(1);
    let start = Instant::now();
    let mut command = Command::new(env!("CARGO_BIN_EXE_minima"));
    if args.contains(&"--jobs") {
        command.env_remove("OMP_NUM_THREADS");
    } else {
        command.env("OMP_NUM_THREADS", threads.to_string());
    }
    let out = command
        .args(args)
        .current_dir(dir)
        .output()
        .expect("minima runs");
    assert!(
        out.status.success(),
        "minima {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed().as_secs_f64()
}

fn stats(xs: &mut [f64]) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[0], xs[xs.len() / 2], xs[xs.len() - 1])
}

fn main() {
    let configs = arg("--configs", 8);
    let epochs = arg("--epochs", 60);
    let rounds = arg("--rounds", 3);
    let dir = tempfile::tempdir().expect("temporary folder");
    std::fs::write(dir.path().join("loop.rhai"), script(configs, epochs, false)).unwrap();
    std::fs::write(dir.path().join("sweep.rhai"), script(configs, epochs, true)).unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{configs} configurations (toy, 500 points, mlp 256-256, {epochs} epochs each), {rounds} rounds, {cores} cores, {} torch thread(s) per process",
        (cores / 2).max(1)
    );
    let names = [
        "loop, one process",
        "sweep, one process",
        "sweep, --jobs 2",
        "re-run complete, one process",
        "re-run complete, --jobs 2",
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for round in 0..rounds {
        let out = |v: &str| format!("{v}-{round}");
        let cpu = ["-q", "--device", "cpu"];
        let run = |script: &str, out: &str, extra: &[&str]| {
            let mut args = vec!["run", script, "--out", out];
            args.extend_from_slice(&cpu);
            args.extend_from_slice(extra);
            timed(dir.path(), &args)
        };
        // Alternate the order so drift on a shared machine hits every variant.
        let (a, b, c) = (out("loop"), out("one"), out("two"));
        if round % 2 == 0 {
            times[0].push(run("loop.rhai", &a, &[]));
            times[1].push(run("sweep.rhai", &b, &[]));
            times[2].push(run("sweep.rhai", &c, &["--jobs", "2"]));
        } else {
            times[2].push(run("sweep.rhai", &c, &["--jobs", "2"]));
            times[1].push(run("sweep.rhai", &b, &[]));
            times[0].push(run("loop.rhai", &a, &[]));
        }
        times[3].push(run("sweep.rhai", &b, &[]));
        times[4].push(run("sweep.rhai", &c, &["--jobs", "2"]));
    }
    println!(
        "{:<32} {:>8} {:>8} {:>8}",
        "variant", "min s", "median s", "max s"
    );
    let mut medians = Vec::new();
    for (name, xs) in names.iter().zip(times.iter_mut()) {
        let (lo, mid, hi) = stats(xs);
        medians.push(mid);
        println!("{name:<32} {lo:>8.2} {mid:>8.2} {hi:>8.2}");
    }
    println!(
        "part folders vs loop: {:+.1}% wall; --jobs 2 vs one process: {:.2}x speed-up; \
         fixed cost of --jobs 2 over one process: {:+.2} s",
        100.0 * (medians[1] / medians[0] - 1.0),
        medians[1] / medians[2],
        medians[4] - medians[3]
    );
}
