//! `cargo bench --bench data`: load times of every format from generated files of
//! realistic size and from the real Fashion-MNIST, and the random-label view's
//! peak memory and epoch throughput for R = 1, 5, 20 on Fashion-MNIST.
//!
//! Files are generated under /dev/shm when it exists (else the temp folder), so
//! "warm" means from memory, as a warm page cache serves them. Sizes:
//! CIFAR-10/100 at their real 50,000 + 10,000 images; Fashion-MNIST 60,000 +
//! 10,000; CINIC-10 at 90,000 + 90,000 PNGs (set MINIMA_BENCH_CINIC_PER_CLASS to
//! fewer per class per split to shrink it); Restricted ImageNet at 10 JPEGs of
//! 500×375 (ImageNet's typical size) per class, 4,060 in all, reported per image
//! and extrapolated to its ~267,000.
//!
//! The random-label runs are each a child process (this binary with
//! `random-labels R`), so each reports its own peak resident memory (VmHWM).

#[path = "../tests/common/formats.rs"]
mod formats;

use minima::data::cache;
use minima::data::imagenet::SUPER_CLASSES;
use minima::data::load::{load, Options};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::Device;

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap())
}

fn opts(root: &Path) -> Options {
    Options {
        root: Some(root.to_path_buf()),
        ..Options::default()
    }
}

/// Seconds of the first load and the best of three more.
fn time_loads(name: &str, o: &Options) -> (f64, f64, i64) {
    let t = Instant::now();
    let d = load(name, o, Device::Cpu).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let first = t.elapsed().as_secs_f64();
    let n = d.train.len() + d.test.len();
    drop(d);
    let warm = (0..3)
        .map(|_| {
            let t = Instant::now();
            let d = load(name, o, Device::Cpu).unwrap();
            let s = t.elapsed().as_secs_f64();
            drop(d);
            s
        })
        .fold(f64::INFINITY, f64::min);
    (first, warm, n)
}

fn report(what: &str, (first, warm, n): (f64, f64, i64)) {
    println!(
        "{what:<44} {n:>7} images  first {first:>7.3} s  warm {warm:>7.3} s  ({:.0} images/s warm)",
        n as f64 / warm
    );
}

/// Runs `f` over `0..n` on every core.
fn parallel(n: usize, f: impl Fn(usize) + Sync) {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    std::thread::scope(|s| {
        for t in 0..threads {
            let f = &f;
            s.spawn(move || (t..n).step_by(threads).for_each(f));
        }
    });
}

fn cinic(root: &Path, per_class: usize) {
    let jobs: Vec<(PathBuf, u64)> = ["train", "test"]
        .iter()
        .flat_map(|split| {
            formats::CIFAR10_NAMES.iter().flat_map(move |class| {
                (0..per_class).map(move |i| (root.join(split).join(class), i as u64))
            })
        })
        .collect();
    for (dir, _) in &jobs {
        std::fs::create_dir_all(dir).unwrap();
    }
    parallel(jobs.len(), |j| {
        let (dir, i) = &jobs[j];
        let px = formats::Gen::new(j as u64).bytes(3072);
        formats::image_file(&dir.join(format!("img{i:05}.png")), 32, 32, &px);
    });
}

fn imagenet(root: &Path, per_class: usize) -> usize {
    for split in ["train", "val"] {
        for index in 0..1000 {
            std::fs::create_dir_all(root.join(split).join(formats::wnid(index))).unwrap();
        }
    }
    let classes: Vec<usize> = SUPER_CLASSES
        .iter()
        .flat_map(|&(_, lo, hi)| lo..=hi)
        .collect();
    let jobs: Vec<(&str, usize, usize)> = ["train", "val"]
        .iter()
        .flat_map(|&s| {
            classes
                .iter()
                .flat_map(move |&c| (0..per_class).map(move |i| (s, c, i)))
        })
        .collect();
    parallel(jobs.len(), |j| {
        let (split, class, i) = jobs[j];
        // Smooth content, as photos are, so JPEG sizes are realistic (~60 kB).
        let (w, h) = (500usize, 375usize);
        let mut chw = vec![0u8; 3 * w * h];
        let mut gen = formats::Gen::new(j as u64);
        let (a, b) = (gen.below(64) as usize, gen.below(64) as usize);
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    let v = (x * (c + 1) + y * 2 + a * b + (gen.below(16) as usize)) % 256;
                    chw[c * w * h + y * w + x] = v as u8;
                }
            }
        }
        let name = format!("{}_{i}.JPEG", formats::wnid(class));
        let path = root.join(split).join(formats::wnid(class)).join(name);
        formats::image_file(&path, w as u32, h as u32, &chw);
    });
    jobs.len()
}

fn loads() {
    println!("== load times (CPU; warm = best of 3 after the first) ==");
    let dir = scratch();
    let root = dir.path();
    formats::cifar10_binary(root, 10_000, 10_000, 1);
    report("cifar10 binary", time_loads("cifar10", &opts(root)));
    formats::cifar10_python(root, 10_000, 10_000, 1, formats::Python::Two);
    let python = Options {
        format: Some(minima::data::cifar::Format::Python),
        ..opts(root)
    };
    report(
        "cifar10 python (Python 2 pickles)",
        time_loads("cifar10", &python),
    );
    formats::cifar100_binary(root, 50_000, 10_000, 2);
    report("cifar100 binary", time_loads("cifar100", &opts(root)));
    formats::cifar100_python(root, 50_000, 10_000, 2, formats::Python::Three);
    report(
        "cifar100 python (Python 3 pickles)",
        time_loads("cifar100", &python),
    );
    drop(dir);

    let dir = scratch();
    formats::fashion_mnist(dir.path(), 60_000, 10_000, true, 3);
    report(
        "fashion_mnist idx.gz (generated; first: gunzip + cache)",
        time_loads("fashion_mnist", &opts(dir.path())),
    );
    // Its decoded copy went to the user's cache, under this temporary path.
    let [_, cached] = cache::locations(dir.path(), "fashion_mnist", "train");
    if let Some(folder) = cached.parent() {
        let _ = std::fs::remove_dir_all(folder);
    }
    drop(dir);
    let debian = Path::new("/usr/share/datasets/fashion-mnist");
    if debian.is_dir() {
        report(
            "fashion_mnist idx.gz (Debian package)",
            time_loads("fashion_mnist", &opts(debian)),
        );
    } else {
        println!("fashion_mnist (Debian package): not installed, skipped");
    }

    let per_class = std::env::var("MINIMA_BENCH_CINIC_PER_CLASS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(9000);
    let dir = scratch();
    let t = Instant::now();
    cinic(dir.path(), per_class);
    println!(
        "  (generated {} CINIC PNGs in {:.1} s)",
        20 * per_class,
        t.elapsed().as_secs_f64()
    );
    report(
        "cinic10 png (first: decode + cache)",
        time_loads("cinic10", &opts(dir.path())),
    );
    drop(dir);

    let dir = scratch();
    let t = Instant::now();
    let n = imagenet(dir.path(), 10);
    println!(
        "  (generated {n} 500x375 JPEGs in {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    let (first, warm, n) = time_loads("restricted_imagenet", &opts(dir.path()));
    report(
        "restricted_imagenet jpeg (first: decode + resize)",
        (first, warm, n),
    );
    println!(
        "  per image: {:.2} ms to decode and resize, {:.4} ms from the cache; at ~267,000 \
         images: ~{:.0} s once, then ~{:.1} s",
        1e3 * first / n as f64,
        1e3 * warm / n as f64,
        first / n as f64 * 267_000.0,
        warm / n as f64 * 267_000.0
    );
}

fn status_kb(field: &str) -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1)
}

/// Child: one epoch on Fashion-MNIST's random-label set with R replicas.
fn random_labels_child(replicas: i64) {
    use minima::host::{Host, Session, SessionOptions};
    use minima::kit::params::Params;
    // One torch thread: on a machine shared with other work, two threads that
    // wait on each other make epoch times vary several-fold between runs.
    tch::set_num_threads(1);
    let out = scratch();
    let host = Host::new(Session::new(SessionOptions {
        script: None,
        out: Some(out.path().join("run")),
        runs_base: out.path().to_path_buf(),
        device: Device::Cpu,
        quiet: true,
        params: Params::default(),
        resume: false,
    }));
    let mut scope = rhai::Scope::new();
    let setup = format!(
        "let d = dataset(\"fashion_mnist\"); \
         let r = random_labels(d, #{{ replicas: {replicas}, zero_out: 0.1, seed: 1 }});"
    );
    host.engine.run_with_scope(&mut scope, &setup).unwrap();
    let after_load = status_kb("VmRSS:");
    let script = r#"
        let m = model(#{ arch: "mlp", hidden: [128] }, r);
        let run = train(m, r, #{ epochs: 1, batch_size: 128, lr: 0.01 });
        let h = run.history[0];
        [h.images_per_s, h.epoch_time_s, h.wall_time_s]
    "#;
    let v = host
        .engine
        .eval_with_scope::<rhai::Array>(&mut scope, script)
        .unwrap();
    let f = |i: usize| v[i].as_float().unwrap_or(f64::NAN);
    println!(
        "R = {replicas:>2}: {:>9} training copies  epoch {:>6.1} s  {:>7.0} images/s  \
         (with evaluation {:>6.1} s)  RSS after load {:>4} MiB  peak {:>4} MiB",
        60_000 * replicas,
        f(1),
        f(0),
        f(2),
        after_load / 1024,
        status_kb("VmHWM:") / 1024
    );
}

fn random_labels() {
    println!(
        "== random-label view on Fashion-MNIST (MLP 784-128-10, batch 128, CPU, 1 torch \
         thread, one epoch) =="
    );
    if !Path::new("/usr/share/datasets/fashion-mnist").is_dir()
        && std::env::var_os("MINIMA_DATA").is_none()
    {
        println!("Fashion-MNIST not installed; skipped");
        return;
    }
    let me = std::env::current_exe().unwrap();
    for r in [1, 5, 20] {
        let status = std::process::Command::new(&me)
            .args(["random-labels", &r.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "child for R = {r} failed");
    }
}

fn main() {
    minima::host::alloc::keep_large_allocations();
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "random-labels") {
        let r = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(1);
        random_labels_child(r);
        return;
    }
    println!(
        "threads: {} cores, torch {} threads",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        tch::get_num_threads()
    );
    if !args.iter().any(|a| a == "--skip-loads") {
        loads();
    }
    if !args.iter().any(|a| a == "--skip-random-labels") {
        random_labels();
    }
}
