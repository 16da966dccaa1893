//! Training speed of every architecture: forward + backward images/s at batch 128
//! on 3x32x32 inputs, 10 classes, in training mode (batch norms update), at the
//! paper's width 1 and the CPU-scale width 0.25, on the CPU and on CUDA when one is
//! available.
//!
//! `cargo bench --bench models [-- ARCH...]`; MINIMA_BENCH_ITERS sets the timed
//! iterations per model (default 3, after one warm-up iteration).

use minima::metrics::evaluate::cross_entropy;
use minima::models::{Arch, Model, ModelSpec};
use std::time::Instant;
use tch::{Device, Kind, Reduction, Tensor};

const BATCH: i64 = 128;
const WIDTHS: [f64; 2] = [1.0, 0.25];

fn spec(arch: Arch, width: f64) -> ModelSpec {
    let conv = arch.is_conv();
    ModelSpec {
        arch,
        hidden: if conv { Vec::new() } else { vec![100, 100] },
        width: if conv { width } else { 1.0 },
        input_shape: vec![3, 32, 32],
        classes: 10,
        seed: 0,
    }
}

fn step(model: &Model, x: &Tensor, y: &Tensor) {
    for p in model.parameters().iter_mut() {
        p.zero_grad();
    }
    let loss = cross_entropy(&model.forward_t(x, true), y, Reduction::Mean);
    loss.backward();
    // Waits for the device, so the timing covers the whole step.
    let _ = loss.double_value(&[]);
}

fn main() {
    minima::host::alloc::keep_large_allocations();
    let iters: u32 = std::env::var("MINIMA_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut devices = vec![Device::Cpu];
    if tch::Cuda::is_available() {
        devices.push(Device::Cuda(0));
    }
    println!(
        "forward+backward, batch {BATCH}, 3x32x32 inputs, 10 classes; {} torch threads; {iters} timed iterations after 1 warm-up",
        tch::get_num_threads()
    );
    println!(
        "{:<8} {:<11} {:>6} {:>12} {:>10} {:>10}",
        "device", "arch", "width", "parameters", "s/step", "images/s"
    );
    for device in devices {
        for arch in Arch::ALL {
            if !only.is_empty() && !only.iter().any(|a| a == arch.as_str()) {
                continue;
            }
            let widths: &[f64] = if arch.is_conv() { &WIDTHS } else { &[1.0] };
            for &width in widths {
                let model = match Model::new(spec(arch, width), device) {
                    Ok(m) => m,
                    Err(e) => {
                        println!("{arch} width {width}: {e:#}");
                        continue;
                    }
                };
                let (x, y) = minima::rng::seeded(1, || {
                    (
                        Tensor::randn([BATCH, 3, 32, 32], (Kind::Float, device)),
                        Tensor::randint(10, [BATCH], (Kind::Int64, device)),
                    )
                });
                step(&model, &x, &y);
                let start = Instant::now();
                for _ in 0..iters {
                    step(&model, &x, &y);
                }
                let per_step = start.elapsed().as_secs_f64() / iters as f64;
                println!(
                    "{:<8} {:<11} {:>6} {:>12} {:>10.3} {:>10.0}",
                    format!("{device:?}").to_lowercase(),
                    arch.as_str(),
                    width,
                    model.num_parameters(),
                    per_step,
                    BATCH as f64 / per_step
                );
            }
        }
    }
}
