//! minima side by side with PyTorch on the same machine (docs/PERFORMANCE.md).
//!
//! `compare/run.sh [--quick] [--rounds N] [--archs a,b] [--widths w,w] [--threads N]
//! [--seconds S] [--no-scaling]` installs the reference PyTorch once and runs
//! `cargo bench --bench compare -- ...`, which prints markdown tables:
//!
//! - identical work: parameter counts and losses after the same steps from the same
//!   weights (compare/identical.rs), for every architecture;
//! - per architecture and width: training images/s, vanilla and SOTA (momentum, L2,
//!   crop+flip), evaluation images/s, one Fashion-MNIST epoch's time (extrapolated
//!   from the measured steps), peak resident memory, with minima/PyTorch ratios
//!   (min/median/max over rounds);
//! - start-up: process start to the end of a first one-step epoch (mlp), minima's
//!   binary against `python -c "import torch"` and the reference's own start-up;
//! - scaling (minima): epoch time against training-set size, width, replicas R.
//!
//! Each side runs in its own worker process per architecture (this executable with
//! `--worker`, and compare/reference.py worker), both holding Fashion-MNIST in memory;
//! the driver alternates them, so load from other processes hits both alike.

#[path = "../compare/identical.rs"]
mod identical;

use minima::data::load::{load, Options};
use minima::data::{
    random_labels::random_labels, subset::subset, Dataset, Part, RandomLabelOptions,
};
use minima::metrics::evaluate::evaluate;
use minima::models::{Arch, Model, ModelSpec};
use minima::train::dense::Dense;
use minima::train::precision::AutocastDevice;
use minima::train::sgd::{Sgd, SgdOptions};
use minima::train::step::{train_step, Batch, BatchTotals};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

const BATCH: i64 = 128;
const SEED: i64 = 0;

fn main() {
    minima::host::alloc::keep_large_allocations();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--worker") {
        worker();
        return;
    }
    let opts = match Opts::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("compare: {e}\n{}", Opts::USAGE);
            std::process::exit(2);
        }
    };
    if opts.cuda {
        if let Err(e) = minima::host::cuda::load() {
            eprintln!("compare: --device cuda: {e}");
            std::process::exit(2);
        }
    }
    let Some(python) = identical::installed_reference() else {
        eprintln!(
            "compare: the reference PyTorch is not installed: run compare/install.sh \
             (or set MINIMA_REFERENCE_PYTHON)"
        );
        std::process::exit(2);
    };
    drive(&opts, &python);
}

struct Opts {
    rounds: usize,
    archs: Vec<Arch>,
    widths: Vec<f64>,
    threads: i32,
    /// Seconds each training measurement aims at (steps chosen from the warm-up).
    seconds: f64,
    scaling: bool,
    quick: bool,
    /// `--device cuda`: resnet18-style rows on the GPU, fp32 and autocast, with
    /// channels-last weights off and on (compare/gpu.sh); no start-up or scaling rows.
    cuda: bool,
}

impl Opts {
    const USAGE: &'static str = "usage: compare/run.sh [--quick] [--rounds N] [--archs mlp,cnn,vgg16,resnet18,resnet50,densenet40] [--widths 0.25,1] [--threads N] [--seconds S] [--no-scaling] [--device cpu|cuda]";

    fn parse(args: &[String]) -> Result<Opts, String> {
        let mut o = Opts {
            rounds: 3,
            archs: Arch::ALL.to_vec(),
            widths: vec![0.25, 1.0],
            threads: 2,
            seconds: 2.0,
            scaling: true,
            quick: false,
            cuda: false,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = || it.next().ok_or(format!("{a} needs a value"));
            match a.as_str() {
                "--bench" => {}
                "--quick" => {
                    o.quick = true;
                    o.rounds = 2;
                    o.archs = vec![Arch::Mlp, Arch::Cnn, Arch::Resnet18];
                    o.widths = vec![0.25];
                    o.seconds = 1.0;
                }
                "--rounds" => o.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?,
                "--threads" => {
                    o.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?
                }
                "--seconds" => {
                    o.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?
                }
                "--archs" => {
                    o.archs = value()?
                        .split(',')
                        .map(|s| Arch::parse(s).map_err(|e| e.to_string()))
                        .collect::<Result<_, _>>()?
                }
                "--widths" => {
                    o.widths = value()?
                        .split(',')
                        .map(|s| s.parse().map_err(|e| format!("--widths: {s}: {e}")))
                        .collect::<Result<_, _>>()?
                }
                "--no-scaling" => o.scaling = false,
                "--device" => match value()?.as_str() {
                    "cpu" => o.cuda = false,
                    "cuda" => o.cuda = true,
                    d => return Err(format!("--device: {d} is not cpu or cuda")),
                },
                other => return Err(format!("unknown argument {other}")),
            }
        }
        if o.rounds == 0 || o.threads < 1 || o.seconds <= 0.0 {
            return Err("--rounds, --threads and --seconds must be positive".into());
        }
        Ok(o)
    }
}

fn spec(arch: Arch, width: f64) -> ModelSpec {
    ModelSpec {
        arch,
        hidden: if arch == Arch::Mlp {
            vec![100, 100]
        } else {
            Vec::new()
        },
        width: if arch == Arch::Mlp { 1.0 } else { width },
        input_shape: vec![1, 32, 32],
        classes: 10,
        seed: SEED,
    }
}

fn root() -> PathBuf {
    minima::data::root::resolve("fashion_mnist", None).0
}

fn fashion_mnist(device: Device) -> Dataset {
    let o = Options {
        pad: 2,
        ..Options::default()
    };
    load("fashion_mnist", &o, device).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Where and how a row runs: the setup fields both workers read.
#[derive(Clone, Copy, Default)]
struct Variant {
    cuda: bool,
    /// CUDA autocast around forward and loss, as minima's `precision: "bf16"`.
    autocast: bool,
    channels_last: bool,
}

impl Variant {
    fn json(&self) -> Value {
        json!({
            "device": if self.cuda { "cuda" } else { "cpu" },
            "autocast": self.autocast,
            "channels_last": self.channels_last,
        })
    }

    fn label(&self) -> String {
        let layout = if self.channels_last {
            " channels-last"
        } else {
            ""
        };
        if !self.cuda {
            return format!("cpu{layout}");
        }
        let precision = if self.autocast { "autocast" } else { "fp32" };
        format!("cuda {precision}{layout}")
    }
}

// ---------------------------------------------------------------- the workers

/// A worker process answering one JSON line per command.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    what: &'static str,
}

impl Worker {
    fn spawn(mut cmd: Command, what: &'static str, threads: i32) -> Worker {
        let mut child = cmd
            .env("OMP_NUM_THREADS", threads.to_string())
            .env("MKL_NUM_THREADS", threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the {what} worker: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Worker {
            child,
            stdin,
            stdout,
            what,
        }
    }

    fn ask(&mut self, cmd: Value) -> Value {
        writeln!(self.stdin, "{cmd}").unwrap_or_else(|e| panic!("{} worker: {e}", self.what));
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("{} worker: {e}", self.what));
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("{} worker answered {line:?} to {cmd}", self.what));
        if let Some(e) = v.get("error") {
            panic!("{} worker: {e}", self.what);
        }
        v
    }

    /// Images per second of a `train` or `eval` answer.
    fn rate(&mut self, cmd: Value) -> f64 {
        self.rate_of(cmd, 1)
    }

    /// Images per second over `times` answers to the same command (their
    /// images over their seconds, as the workers timed them).
    fn rate_of(&mut self, cmd: Value, times: usize) -> f64 {
        let (mut images, mut seconds) = (0.0, 0.0);
        for _ in 0..times {
            let v = self.ask(cmd.clone());
            images += v["images"].as_f64().unwrap_or(f64::NAN);
            seconds += v["seconds"].as_f64().unwrap_or(f64::NAN);
        }
        images / seconds
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn minima_worker(threads: i32) -> Worker {
    let mut cmd = Command::new(std::env::current_exe().expect("own executable"));
    cmd.arg("--worker");
    Worker::spawn(cmd, "minima", threads)
}

fn torch_worker(python: &Path, threads: i32) -> Worker {
    let mut cmd = Command::new(python);
    cmd.arg(identical::reference_script()).arg("worker");
    Worker::spawn(cmd, "PyTorch", threads)
}

/// minima's worker: the same commands as compare/reference.py's.
fn worker() {
    let stdin = std::io::stdin();
    let mut state: Option<State> = None;
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let cmd: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        let answer = match (cmd["cmd"].as_str(), state.as_mut()) {
            (Some("setup"), _) => {
                let s = State::new(&cmd);
                let params = s.model.num_parameters();
                state = Some(s);
                json!({ "params": params })
            }
            (Some("train"), Some(s)) => s.train(
                cmd["steps"].as_i64().unwrap_or(1),
                cmd["sota"].as_bool().unwrap_or(false),
            ),
            (Some("epoch"), Some(s)) => s.epoch(),
            (Some("eval"), Some(s)) => s.eval(cmd["images"].as_i64().unwrap_or(BATCH)),
            (Some("rss"), _) => json!({ "peak_rss_mb": peak_rss_mb() }),
            _ => json!({ "error": format!("cannot do {line}") }),
        };
        println!("{answer}");
    }
}

struct State {
    model: Model,
    params: Vec<Tensor>,
    data: Dataset,
    order: Tensor,
    cursor: i64,
    step: i64,
    /// One optimiser per heuristic, as the reference keeps one torch.optim.SGD each.
    vanilla: Sgd,
    sota: Sgd,
    autocast: bool,
    /// The mlp's dense engine, as `train` uses it (none under autocast).
    dense: Option<Dense>,
}

impl State {
    fn new(cmd: &Value) -> State {
        tch::set_num_threads(cmd["threads"].as_i64().unwrap_or(2) as i32);
        let spec: ModelSpec = serde_json::from_value(cmd["spec"].clone()).expect("a model spec");
        let device = if cmd["device"] == "cuda" {
            minima::host::cuda::load().unwrap_or_else(|e| panic!("--device cuda: {e}"));
            Device::Cuda(0)
        } else {
            Device::Cpu
        };
        let mut data = fashion_mnist(device);
        if let Some(n) = cmd["n_train"].as_i64() {
            data = subset(&data, n, SEED, true).unwrap_or_else(|e| panic!("{e:#}"));
        }
        if let Some(r) = cmd["replicas"].as_i64() {
            let o = RandomLabelOptions {
                replicas: r,
                zero_out: 0.1,
                seed: SEED,
            };
            data = random_labels(&data, &o);
        }
        let model = Model::new(spec, device).unwrap_or_else(|e| panic!("{e:#}"));
        let mut params = model.parameters();
        if cmd["channels_last"] == true {
            // tch has no memory-format API: the weights are copied with explicit
            // channels-last strides, as PyTorch's `to(memory_format=...)` does
            // (a weight with one input channel included), and convolutions follow
            // their weight's format.
            tch::no_grad(|| {
                for p in params.iter_mut().filter(|p| p.dim() == 4) {
                    p.set_data(&minima::models::layers::channels_last(p));
                }
            });
        }
        let n = data.epoch_len(true);
        let order = minima::rng::seeded(SEED, || Tensor::randperm(n, (Kind::Int64, device)));
        let sgd = |momentum, weight_decay| {
            let o = SgdOptions {
                lr: 0.1,
                momentum,
                dampening: 0.0,
                weight_decay,
                nesterov: false,
            };
            Sgd::new(o, params.len()).expect("valid SGD options")
        };
        State {
            vanilla: sgd(0.0, 0.0),
            sota: sgd(0.9, 5e-4),
            autocast: cmd["autocast"] == true,
            dense: (cmd["autocast"] != true)
                .then(|| Dense::for_model(&model))
                .flatten(),
            model,
            params,
            data,
            order,
            cursor: 0,
            step: 0,
        }
    }

    fn steps(&mut self, steps: i64, sota: bool) -> f64 {
        let n = self.order.size()[0];
        let mut totals = BatchTotals::new(self.model.device());
        let sgd = if sota {
            &mut self.sota
        } else {
            &mut self.vanilla
        };
        for _ in 0..steps {
            if self.cursor >= n {
                self.cursor = 0;
            }
            let len = BATCH.min(n - self.cursor);
            // As `train` steps: an mlp batch is gathered (and augmented) on the host.
            let augment_seed = sota.then(|| minima::rng::derive(SEED, self.step));
            let host = self.dense.as_mut().and_then(|d| {
                let at = (self.cursor, len);
                d.step_rows(&self.params, sgd, &self.data, &self.order, at, augment_seed)
            });
            if let Some(tally) = host {
                totals.add_host(tally);
                self.cursor += len;
                self.step += 1;
                continue;
            }
            let batch = Batch {
                index: &self.order.narrow(0, self.cursor, len),
                augment_seed,
                // Autocast rows run on CUDA only (`--device cuda`).
                autocast: self.autocast.then_some(AutocastDevice::Cuda),
            };
            train_step(
                &self.model,
                &mut self.params,
                sgd,
                &self.data,
                batch,
                &mut totals,
                self.dense.as_mut(),
            );
            self.cursor += len;
            self.step += 1;
        }
        totals.read(1).loss
    }

    fn train(&mut self, steps: i64, sota: bool) -> Value {
        let start = Instant::now();
        let loss = self.steps(steps, sota);
        json!({ "seconds": start.elapsed().as_secs_f64(), "images": steps * BATCH, "loss": loss })
    }

    /// One whole epoch (vanilla), as `train` steps through it.
    fn epoch(&mut self) -> Value {
        let n = self.data.epoch_len(false);
        self.cursor = 0;
        let start = Instant::now();
        self.steps((n + BATCH - 1) / BATCH, false);
        json!({ "seconds": start.elapsed().as_secs_f64(), "images": n })
    }

    fn eval(&mut self, images: i64) -> Value {
        let test = minima::data::Split {
            x: self.data.test.x.narrow(0, 0, images),
            y: self.data.test.y.narrow(0, 0, images),
        };
        let view = Dataset {
            test,
            train: minima::data::Split {
                x: self.data.train.x.shallow_clone(),
                y: self.data.train.y.shallow_clone(),
            },
            name: self.data.name.clone(),
            classes: self.data.classes.clone(),
            inputs: self.data.inputs.clone(),
            augmentation: self.data.augmentation,
            relabel: self.data.relabel,
            describe: Vec::new(),
        };
        let start = Instant::now();
        // The mlp evaluates through its dense engine, as `train` does (which keeps
        // the split materialised across epochs: `images` is the same every round).
        match self.dense.as_mut() {
            Some(d) => d.evaluate(&self.model, &view, Part::Test),
            None => evaluate(&self.model, &view, Part::Test),
        };
        json!({ "seconds": start.elapsed().as_secs_f64(), "images": images })
    }
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

// ---------------------------------------------------------------- the driver

/// min, median, max.
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    (s[0], median, s[n - 1])
}

fn ratio_cell(ours: &[f64], theirs: &[f64]) -> String {
    let r: Vec<f64> = ours.iter().zip(theirs).map(|(a, b)| a / b).collect();
    let (lo, mid, hi) = spread(&r);
    format!("**{mid:.2}** ({lo:.2}–{hi:.2})")
}

fn rate_cell(v: &[f64]) -> String {
    let x = spread(v).1;
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn arch_label(arch: Arch, width: f64) -> (String, String) {
    match arch {
        Arch::Mlp => ("mlp [100, 100]".into(), "–".into()),
        _ => (arch.as_str().into(), format!("{width}")),
    }
}

struct Row {
    label: (String, String),
    variant: String,
    params: (i64, i64),
    steps: i64,
    train: [Vec<f64>; 2],
    train_ref: [Vec<f64>; 2],
    eval: Vec<f64>,
    eval_ref: Vec<f64>,
    rss: (f64, f64),
}

fn drive(o: &Opts, python: &Path) {
    let began = Instant::now();
    let threads = o.threads;
    tch::set_num_threads(threads);
    let torch_version = Command::new(python)
        .args(["-c", "import torch; print(torch.__version__)"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_default();
    println!(
        "minima vs PyTorch {torch_version}: Fashion-MNIST 1x32x32 in memory, batch {BATCH}, {threads} threads, {}, {} rounds{}\n",
        if o.cuda { "CUDA (cuda:0)" } else { "CPU" },
        o.rounds,
        if o.quick { " (--quick)" } else { "" }
    );

    // Identical work, at widths small enough to take a few steps quickly.
    eprintln!("compare: identical-work check");
    let data = fashion_mnist(Device::Cpu);
    let specs: Vec<(String, ModelSpec)> = o
        .archs
        .iter()
        .map(|&a| (a.as_str().to_string(), spec(a, 0.25)))
        .collect();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let agreements =
        identical::check(python, &data, &specs, 3, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    drop(data);
    println!("### Identical work (width 0.25, 3 SGD steps with momentum + L2 from minima's exported init, same batches and order; tolerance {:.0e} relative, or at most twice PyTorch's distance from its float64 run)\n", identical::TOLERANCE);
    println!("| arch | parameters minima / PyTorch | mean train loss minima / PyTorch | loss after minima / PyTorch | max rel. difference | off float64 minima / PyTorch | agrees |");
    println!("|---|---|---|---|---|---|---|");
    for a in &agreements {
        let (ours, theirs) = a.off_float64();
        println!(
            "| {} | {} / {} | {:.6} / {:.6} | {:.6} / {:.6} | {:.1e} | {:.1e} / {:.1e} | {} |",
            a.name,
            a.params.0,
            a.params.1,
            a.train_loss.0,
            a.train_loss.1,
            a.final_loss.0,
            a.final_loss.1,
            a.max_relative_difference(),
            ours,
            theirs,
            if a.agrees() { "yes" } else { "**NO**" }
        );
    }
    println!();

    let mut rows = Vec::new();
    for &arch in &o.archs {
        let widths: &[f64] = if arch == Arch::Mlp { &[1.0] } else { &o.widths };
        for &width in widths {
            eprintln!(
                "compare: {} width {width} ({:.0} s so far)",
                arch.as_str(),
                began.elapsed().as_secs_f64()
            );
            let variants: Vec<Variant> = if o.cuda {
                [(false, false), (false, true), (true, false), (true, true)]
                    .into_iter()
                    .map(|(autocast, channels_last)| Variant {
                        cuda: true,
                        autocast,
                        channels_last,
                    })
                    .collect()
            } else if arch == Arch::Cnn {
                // minima runs the cnn channels-last on the CPU: the second row
                // has PyTorch do the same (`model.to(memory_format=...)`).
                let last = Variant {
                    channels_last: true,
                    ..Variant::default()
                };
                vec![Variant::default(), last]
            } else {
                vec![Variant::default()]
            };
            for v in variants {
                rows.push(measure(o, python, arch, width, v));
            }
        }
    }
    println!("### Throughput (images/s, medians over rounds; ratios minima/PyTorch as **median** (min–max))\n");
    println!("| arch | width | device | parameters | steps/round | train vanilla minima | PyTorch | ratio | train SOTA minima | PyTorch | ratio | eval minima | PyTorch (no_grad) | ratio | epoch (60k) minima / PyTorch | peak RSS MB minima / PyTorch |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let epoch = |v: &[f64]| 60000.0 / spread(v).1;
        println!(
            "| {} | {} | {} | {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} s / {:.0} s | {:.0} / {:.0} |",
            r.label.0,
            r.label.1,
            r.variant,
            r.params.0,
            if r.params.0 == r.params.1 { String::new() } else { format!(" (PyTorch {})", r.params.1) },
            r.steps,
            rate_cell(&r.train[0]),
            rate_cell(&r.train_ref[0]),
            ratio_cell(&r.train[0], &r.train_ref[0]),
            rate_cell(&r.train[1]),
            rate_cell(&r.train_ref[1]),
            ratio_cell(&r.train[1], &r.train_ref[1]),
            rate_cell(&r.eval),
            rate_cell(&r.eval_ref),
            ratio_cell(&r.eval, &r.eval_ref),
            epoch(&r.train[1]),
            epoch(&r.train_ref[1]),
            r.rss.0,
            r.rss.1
        );
    }
    println!("\nEpoch: 60,000 images at the median SOTA training rate (extrapolated from the measured steps; evaluation not included).\n");

    if o.cuda {
        eprintln!("compare: done in {:.0} s", began.elapsed().as_secs_f64());
        return;
    }
    eprintln!(
        "compare: start-up ({:.0} s so far)",
        began.elapsed().as_secs_f64()
    );
    startup(o, python);

    if o.scaling {
        scaling(o);
    }
    eprintln!("compare: done in {:.0} s", began.elapsed().as_secs_f64());
}

fn setup(w: &mut Worker, spec: &ModelSpec, threads: i32, extra: Value) -> i64 {
    let mut extra = extra;
    if extra.get("device").is_none() {
        if let (Some(e), Some(v)) = (extra.as_object_mut(), Variant::default().json().as_object()) {
            e.extend(v.clone());
        }
    }
    let mut cmd = json!({ "cmd": "setup", "spec": spec, "threads": threads, "root": root() });
    if let (Some(c), Some(e)) = (cmd.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    w.ask(cmd)["params"].as_i64().unwrap_or(-1)
}

fn measure(o: &Opts, python: &Path, arch: Arch, width: f64, variant: Variant) -> Row {
    let spec = spec(arch, width);
    let mut ours = minima_worker(o.threads);
    let mut theirs = torch_worker(python, o.threads);
    let params = (
        setup(&mut ours, &spec, o.threads, variant.json()),
        setup(&mut theirs, &spec, o.threads, variant.json()),
    );
    // Warm-up: libtorch picks and caches its kernels on the first calls of each shape.
    let mut step_s = 0.0f64;
    for w in [&mut ours, &mut theirs] {
        for sota in [false, true] {
            let rate = w.rate(json!({ "cmd": "train", "steps": 1, "sota": sota }));
            step_s = step_s.max(BATCH as f64 / rate);
        }
        w.rate(json!({ "cmd": "eval", "images": BATCH }));
    }
    // The first calls carry one-time costs (on CUDA cuDNN's algorithm search,
    // about a second), so the rounds are sized from a second, warm call of about
    // a quarter second (at least 5 steps on CUDA).
    let probe = ((0.25 / step_s).ceil() as i64).max(if o.cuda { 5 } else { 1 });
    step_s = 0.0;
    for w in [&mut ours, &mut theirs] {
        for sota in [false, true] {
            let rate = w.rate(json!({ "cmd": "train", "steps": probe, "sota": sota }));
            step_s = step_s.max(BATCH as f64 / rate);
        }
    }
    // Up to 1,000 steps, so that a small net's round lasts about `seconds` too:
    // capped at 50 steps from a cold step's time, an mlp's round was 30 ms, where
    // a thread's wake-up or the other worker's spinning threads weigh as much as
    // the steps themselves.
    let steps = ((o.seconds / step_s).ceil() as i64).clamp(1, 1000);
    let images = (steps * BATCH).min(10_000);
    // An mlp scores its 10,000 test images in about 40 ms, a round too short to
    // time against thread wake-ups and the other worker: each round repeats the
    // pass until it lasts about `seconds / 2`, sized from a warm pass of each.
    let eval_cmd = json!({ "cmd": "eval", "images": images });
    let mut pass_s = 0.0f64;
    for w in [&mut ours, &mut theirs] {
        w.rate(eval_cmd.clone());
        pass_s = pass_s.max(images as f64 / w.rate(eval_cmd.clone()));
    }
    let passes = ((o.seconds / 2.0 / pass_s).ceil() as usize).clamp(1, 100);
    let mut row = Row {
        label: arch_label(arch, width),
        variant: variant.label(),
        params,
        steps,
        train: [Vec::new(), Vec::new()],
        train_ref: [Vec::new(), Vec::new()],
        eval: Vec::new(),
        eval_ref: Vec::new(),
        rss: (0.0, 0.0),
    };
    for _ in 0..o.rounds {
        for (i, sota) in [false, true].into_iter().enumerate() {
            let cmd = json!({ "cmd": "train", "steps": steps, "sota": sota });
            row.train[i].push(ours.rate(cmd.clone()));
            row.train_ref[i].push(theirs.rate(cmd));
        }
        row.eval.push(ours.rate_of(eval_cmd.clone(), passes));
        row.eval_ref.push(theirs.rate_of(eval_cmd.clone(), passes));
    }
    let rss = |w: &mut Worker| {
        w.ask(json!({ "cmd": "rss" }))["peak_rss_mb"]
            .as_f64()
            .unwrap_or(f64::NAN)
    };
    row.rss = (rss(&mut ours), rss(&mut theirs));
    row
}

/// Seconds from spawning `cmd` to its exit (it fails loudly if the command does).
fn time_process(mut cmd: Command, threads: i32) -> f64 {
    let start = Instant::now();
    let out = cmd
        .env("OMP_NUM_THREADS", threads.to_string())
        .env("MKL_NUM_THREADS", threads.to_string())
        .env("MINIMA_BENCH_THREADS", threads.to_string())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let t = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t
}

fn startup(o: &Opts, python: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec = spec(Arch::Mlp, 1.0);
    let spec_json = serde_json::to_string(&spec).expect("a spec serialises");
    let out = tempfile::tempdir().expect("a temporary folder");
    let (mut ours, mut theirs, mut import) = (Vec::new(), Vec::new(), Vec::new());
    // One unmeasured round first, so every side starts with warm file caches.
    for round in 0..=o.rounds {
        let mut m = Command::new(env!("CARGO_BIN_EXE_minima"));
        m.arg("run")
            .arg(repo.join("compare/startup.rhai"))
            .args(["--quiet", "--device", "cpu", "--out"])
            .arg(out.path().join(format!("run{round}")));
        let mut i = Command::new(python);
        i.args(["-c", "import torch"]);
        let mut r = Command::new(python);
        r.arg(identical::reference_script())
            .arg("startup")
            .arg(&spec_json)
            .arg(root());
        let (a, b, c) = (
            time_process(m, o.threads),
            time_process(i, o.threads),
            time_process(r, o.threads),
        );
        if round > 0 {
            ours.push(a);
            import.push(b);
            theirs.push(c);
        }
    }
    let s = |v: &[f64]| spread(v).1;
    println!("### Start-up (seconds from process start to exit after a first one-step epoch: load Fashion-MNIST, mlp, one step, the epoch's evaluation; medians)\n");
    println!("| minima (`minima run compare/startup.rhai`) | `python -c \"import torch\"` | PyTorch reference (import + same work) | minima / import torch | minima / reference |");
    println!("|---|---|---|---|---|");
    println!(
        "| {:.2} s | {:.2} s | {:.2} s | {} | {} |\n",
        s(&ours),
        s(&import),
        s(&theirs),
        ratio_cell(&ours, &import),
        ratio_cell(&ours, &theirs)
    );
}

fn scaling(o: &Opts) {
    let base = spec(Arch::Resnet18, 0.25);
    let epoch_of = |extra: Value, spec: &ModelSpec| -> (f64, f64, f64) {
        let mut w = minima_worker(o.threads);
        setup(&mut w, spec, o.threads, extra);
        w.rate(json!({ "cmd": "train", "steps": 1, "sota": false }));
        let v = w.ask(json!({ "cmd": "epoch" }));
        let rss = w.ask(json!({ "cmd": "rss" }))["peak_rss_mb"]
            .as_f64()
            .unwrap_or(f64::NAN);
        (
            v["seconds"].as_f64().unwrap_or(f64::NAN),
            v["images"].as_f64().unwrap_or(f64::NAN),
            rss,
        )
    };

    eprintln!("compare: scaling with training-set size");
    let sizes: &[i64] = if o.quick {
        &[1000, 5000]
    } else {
        &[1000, 5000, 20000]
    };
    println!("### Scaling (minima, resnet18 width 0.25, vanilla SGD, one measured epoch each)\n");
    println!("| training images | epoch s | images/s | peak RSS MB |");
    println!("|---|---|---|---|");
    let mut rate = f64::NAN;
    for &n in sizes {
        let (s, images, rss) = epoch_of(json!({ "n_train": n }), &base);
        rate = images / s;
        println!("| {n} | {s:.1} | {rate:.0} | {rss:.0} |");
    }
    println!(
        "| 60000 | {:.1} (extrapolated from {}) | – | – |\n",
        60000.0 / rate,
        sizes[sizes.len() - 1]
    );

    eprintln!("compare: scaling with width");
    println!("| width | parameters | epoch s (60k, extrapolated from steps) | images/s |");
    println!("|---|---|---|---|");
    for width in [0.25, 0.5, 1.0] {
        let s = spec(Arch::Resnet18, width);
        let mut w = minima_worker(o.threads);
        let params = setup(&mut w, &s, o.threads, json!({}));
        w.rate(json!({ "cmd": "train", "steps": 1, "sota": false }));
        let steps = if width >= 1.0 || o.quick { 1 } else { 3 };
        let r = w.rate(json!({ "cmd": "train", "steps": steps, "sota": false }));
        println!("| {width} | {params} | {:.0} | {r:.0} |", 60000.0 / r);
    }
    println!();

    eprintln!("compare: scaling with replicas");
    let n = if o.quick { 500 } else { 1000 };
    let rs: &[i64] = if o.quick { &[1, 2] } else { &[1, 2, 4, 8] };
    println!("| replicas R ({n} images, random labels, zero-out 10%) | epoch images | epoch s | s per 1,000 images | peak RSS MB |");
    println!("|---|---|---|---|---|");
    for &r in rs {
        let (s, images, rss) = epoch_of(json!({ "n_train": n, "replicas": r }), &base);
        println!(
            "| {r} | {images:.0} | {s:.1} | {:.2} | {rss:.0} |",
            1000.0 * s / images
        );
    }
    println!();
}
