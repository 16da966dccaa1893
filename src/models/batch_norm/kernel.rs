//! Training-mode batch norm over channels-last float32 activations, forward and
//! backward, with the arithmetic of libtorch's NCHW CPU kernels (module docs in
//! `mod.rs`).
//!
//! A channels-last [n, c, h, w] tensor is `rows` = n·h·w rows of `channels`
//! floats; row r is pixel r % (h·w) of image r / (h·w), the order in which
//! libtorch's NCHW kernel visits one channel's values.
//!
//! Both libtorch threads share each call: the per-channel sums by blocks of
//! channels, each thread summing its channels over every row in row order (so
//! the floats do not depend on the thread count), the elementwise passes by
//! blocks of rows.

use super::loops::{self, Dims, GradTerms, Tail, Upstream, CHANNEL_BLOCK};
use crate::models::shim::{parallel_for, Parts};
use std::ops::Range;

/// Runs one of the loops at the end of this file compiled for AVX2 and FMA where
/// the CPU has them, plainly otherwise (`mul_add` is then libm's `fmaf`).
macro_rules! vectorised {
    ($f:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                // Safety: the CPU has AVX2 and FMA.
                unsafe { super::avx2::$f($($arg),*) }
            } else {
                loops::$f($($arg),*)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            loops::$f($($arg),*)
        }
    }};
}

/// Calls of fewer values run on one thread: libtorch's grain
/// (at::internal::GRAIN_SIZE), below which its own elementwise ops do too.
const GRAIN: usize = 32768;

/// `f` over the channels in blocks, on libtorch's threads.
fn for_channels(d: Dims, f: impl Fn(Range<usize>) + Sync) {
    let blocks = d.channels.div_ceil(CHANNEL_BLOCK);
    let grain = if d.len() < GRAIN { blocks } else { 1 };
    parallel_for(blocks, grain, |b| {
        f(b.start * CHANNEL_BLOCK..(b.end * CHANNEL_BLOCK).min(d.channels))
    });
}

/// `f` over the rows in blocks of at least `GRAIN` values, on libtorch's
/// threads.
fn for_rows(d: Dims, f: impl Fn(Range<usize>) + Sync) {
    parallel_for(d.rows, GRAIN.div_ceil(d.channels), f);
}

/// The per-channel tensors of one batch norm (each `channels` long).
pub struct Params<'a> {
    pub weight: &'a [f32],
    pub bias: &'a [f32],
}

/// What the forward writes besides its output: the batch's mean and 1/std
/// (libtorch's `save_mean`, `save_invstd`), and the running statistics it moves.
pub struct Stats<'a> {
    pub mean: &'a mut [f32],
    pub invstd: &'a mut [f32],
    pub running_mean: &'a mut [f32],
    pub running_var: &'a mut [f32],
}

/// libtorch's `batch_norm_cpu_collect_stats_contiguous_impl`,
/// `batch_norm_cpu_update_stats_template` and `batch_norm_cpu_contiguous_impl`
/// for float32 (acc_type double): per channel the sum in f64 in row order, the
/// mean rounded to f32, then Σ f64(f32((x − mean)²)) rounded to f32 (var_sum);
/// the variance var_sum / rows in f32, invstd = 1 / sqrt(var + eps) in f64; the
/// running mean moved by `momentum` in f32, the running variance by the unbiased
/// var_sum / (rows − 1) (an f32 quotient) in f64 (read off libtorch 2.13's
/// machine code: its source leaves the precision of these steps to the compiler);
/// output x·α + β with α = invstd·w and β = b − mean·α in f32, the last two
/// with one rounding each (fused multiply-adds: libtorch's CPU kernels are
/// compiled for AVX2 with FMA, and GCC contracts `x * alpha + beta`). With
/// `tail.skip`, the output is that plus the skip's value (one f32 addition, as
/// libtorch's add), and with `tail.relu` relu's of that: clamp_min(·, 0), which
/// keeps NaN and −0.0 and maps values below zero to +0.0.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    d: Dims,
    x: &[f32],
    p: &Params,
    momentum: f64,
    eps: f64,
    tail: Tail,
    y: &mut [f32],
    s: Stats,
) {
    let c = d.channels;
    let mut var_sums = vec![0f64; c];
    {
        let (means, var_sums) = (Parts::new(s.mean), Parts::new(&mut var_sums));
        for_channels(d, |ch| {
            // Safety: the blocks' channels are disjoint.
            let (mean, var_sum) = unsafe { (means.part(ch.clone()), var_sums.part(ch.clone())) };
            let mut sum = vec![0f64; ch.len()];
            vectorised!(sums(d, x, ch.start, &mut sum));
            for (m, a) in mean.iter_mut().zip(&sum) {
                *m = (a / d.rows as f64) as f32;
            }
            vectorised!(squares(d, x, ch.start, mean, var_sum));
        });
    }
    let m = momentum as f32;
    let mut alpha = vec![0f32; c];
    let mut beta = vec![0f32; c];
    for k in 0..c {
        let var_sum = var_sums[k] as f32;
        let var = var_sum / d.rows as f32;
        s.invstd[k] = match var != 0.0 || eps != 0.0 {
            true => (1.0 / (var as f64 + eps).sqrt()) as f32,
            false => 0.0,
        };
        s.running_mean[k] = m * s.mean[k] + (1.0 - m) * s.running_mean[k];
        let unbiased = var_sum / (d.rows as f32 - 1.0);
        let kept = (1.0 - m) * s.running_var[k];
        s.running_var[k] = (m as f64 * unbiased as f64 + kept as f64) as f32;
        (alpha[k], beta[k]) = linear_terms(s.mean[k], s.invstd[k], p, k);
    }
    output(d, x, &alpha, &beta, tail, y);
}

/// libtorch's `batch_norm_cpu_collect_linear_and_constant_terms` for float32:
/// α = invstd·w and β = b − mean·α, the latter with one rounding (GCC contracts
/// it to a fused multiply-add in libtorch's build).
fn linear_terms(mean: f32, invstd: f32, p: &Params, k: usize) -> (f32, f32) {
    let alpha = invstd * p.weight[k];
    (alpha, (-mean).mul_add(alpha, p.bias[k]))
}

/// y = x·α + β per channel (one rounding), then `tail`'s skip and ReLU.
fn output(d: Dims, x: &[f32], alpha: &[f32], beta: &[f32], tail: Tail, y: &mut [f32]) {
    let c = d.channels;
    let out = Parts::new(y);
    for_rows(d, |rows| {
        let at = rows.start * c..rows.end * c;
        // Safety: the blocks' rows are disjoint.
        let y = unsafe { out.part(at.clone()) };
        vectorised!(affine(c, &x[at.clone()], alpha, beta, tail.rows(at), y));
    });
}

/// libtorch's batch norm in eval mode (`batch_norm_cpu_channels_last_impl`
/// with train=false) and what follows it (`tail`: the skip's addition, the
/// ReLU), in one pass: per channel invstd = 1 / sqrt(running_var + eps) in
/// float32 (its opmath type for float), then `forward`'s α, β and output pass
/// with the running mean.
pub fn infer(
    d: Dims,
    x: &[f32],
    p: &Params,
    running: (&[f32], &[f32]),
    eps: f64,
    tail: Tail,
    y: &mut [f32],
) {
    let (running_mean, running_var) = running;
    let (alpha, beta): (Vec<f32>, Vec<f32>) = (0..d.channels)
        .map(|k| {
            let invstd = 1.0 / (running_var[k] + eps as f32).sqrt();
            linear_terms(running_mean[k], invstd, p, k)
        })
        .unzip();
    output(d, x, &alpha, &beta, tail, y);
}

/// The gradients of `forward`'s output `g`, as libtorch's
/// `batch_norm_cpu_backward_contiguous_impl` in training mode: per channel
/// sum = Σ g and dotp = Σ (x − mean)·g, then k = f32(dotp)·invstd²/rows,
/// gx = (g − sum/rows − (x − mean)·k)·invstd·w (the subtraction of the product
/// fused, as in libtorch's build), gw = dotp·invstd, gb = sum. The
/// two sums run in f64 in row order (libtorch adds each image's plane in f32
/// vector lanes, then the planes in f64), the rest is libtorch's f32 arithmetic.
/// For a forward with `relu`, `g` is the ReLU's output gradient and
/// `g.relu_out` its output: g passes where that is not ≤ 0 and is +0.0
/// elsewhere, as libtorch's threshold_backward.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    d: Dims,
    x: &[f32],
    g: Upstream,
    mean: &[f32],
    invstd: &[f32],
    weight: &[f32],
    gx: &mut [f32],
    gw: &mut [f32],
    gb: &mut [f32],
) {
    let c = d.channels;
    let mut sum = vec![0f64; c];
    let mut dotp = vec![0f64; c];
    {
        let (sums, dotps) = (Parts::new(&mut sum), Parts::new(&mut dotp));
        for_channels(d, |ch| {
            // Safety: the blocks' channels are disjoint.
            let (s, dp) = unsafe { (sums.part(ch.clone()), dotps.part(ch.clone())) };
            vectorised!(grad_sums(d, x, g, ch.start, &mean[ch], s, dp));
        });
    }
    let n = d.rows as f32;
    let mut k = vec![0f32; c];
    let mut grad_mean = vec![0f32; c];
    for i in 0..c {
        k[i] = dotp[i] as f32 * invstd[i] * invstd[i] / n;
        grad_mean[i] = (sum[i] / d.rows as f64) as f32;
        gw[i] = (dotp[i] * invstd[i] as f64) as f32;
        gb[i] = sum[i] as f32;
    }
    let terms = GradTerms {
        mean,
        k: &k,
        grad_mean: &grad_mean,
        invstd,
        weight,
    };
    let out = Parts::new(gx);
    for_rows(d, |rows| {
        let at = rows.start * c..rows.end * c;
        // Safety: the blocks' rows are disjoint.
        let gx = unsafe { out.part(at.clone()) };
        vectorised!(grad_input(c, &x[at.clone()], g.rows(at), &terms, gx));
    });
}
