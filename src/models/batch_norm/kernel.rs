//! Training-mode batch norm over channels-last float32 activations, forward and
//! backward, with the arithmetic of libtorch's NCHW CPU kernels (module docs in
//! `mod.rs`).
//!
//! A channels-last [n, c, h, w] tensor is `rows` = n·h·w rows of `channels`
//! floats; row r is pixel r % (h·w) of image r / (h·w), the order in which
//! libtorch's NCHW kernel visits one channel's values.

/// Runs one of the loops at the end of this file compiled for AVX2 and FMA where
/// the CPU has them, plainly otherwise (`mul_add` is then libm's `fmaf`). The
/// loops are written per channel within a row, so the compiler vectorises across
/// channels and each channel's additions keep row order.
macro_rules! vectorised {
    ($f:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                // Safety: the CPU has AVX2 and FMA.
                unsafe { avx2::$f($($arg),*) }
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

/// The sizes of one call.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dims {
    pub rows: usize,
    pub channels: usize,
}

impl Dims {
    pub fn len(&self) -> usize {
        self.rows * self.channels
    }
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
/// compiled for AVX2 with FMA, and GCC contracts `x * alpha + beta`).
pub fn forward(d: Dims, x: &[f32], p: &Params, momentum: f64, eps: f64, y: &mut [f32], s: Stats) {
    let c = d.channels;
    let mut acc = vec![0f64; c];
    vectorised!(sums(d, x, &mut acc));
    for (m, a) in s.mean.iter_mut().zip(&acc) {
        *m = (a / d.rows as f64) as f32;
    }
    acc.fill(0.0);
    vectorised!(squares(d, x, s.mean, &mut acc));
    let m = momentum as f32;
    let mut alpha = vec![0f32; c];
    let mut beta = vec![0f32; c];
    for k in 0..c {
        let var_sum = acc[k] as f32;
        let var = var_sum / d.rows as f32;
        s.invstd[k] = match var != 0.0 || eps != 0.0 {
            true => (1.0 / (var as f64 + eps).sqrt()) as f32,
            false => 0.0,
        };
        s.running_mean[k] = m * s.mean[k] + (1.0 - m) * s.running_mean[k];
        let unbiased = var_sum / (d.rows as f32 - 1.0);
        let kept = (1.0 - m) * s.running_var[k];
        s.running_var[k] = (m as f64 * unbiased as f64 + kept as f64) as f32;
        alpha[k] = s.invstd[k] * p.weight[k];
        beta[k] = (-s.mean[k]).mul_add(alpha[k], p.bias[k]);
    }
    vectorised!(affine(d, x, &alpha, &beta, y));
}

/// The gradients of `forward`'s output `g`, as libtorch's
/// `batch_norm_cpu_backward_contiguous_impl` in training mode: per channel
/// sum = Σ g and dotp = Σ (x − mean)·g, then k = f32(dotp)·invstd²/rows,
/// gx = (g − sum/rows − (x − mean)·k)·invstd·w (the subtraction of the product
/// fused, as in libtorch's build), gw = dotp·invstd, gb = sum. The
/// two sums run in f64 in row order (libtorch adds each image's plane in f32
/// vector lanes, then the planes in f64), the rest is libtorch's f32 arithmetic.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    d: Dims,
    x: &[f32],
    g: &[f32],
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
    vectorised!(grad_sums(d, x, g, mean, &mut sum, &mut dotp));
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
    vectorised!(grad_input(d, x, g, &terms, gx));
}

/// Per-channel constants of the input gradient.
struct GradTerms<'a> {
    mean: &'a [f32],
    k: &'a [f32],
    grad_mean: &'a [f32],
    invstd: &'a [f32],
    weight: &'a [f32],
}

mod loops {
    use super::{Dims, GradTerms};

    #[inline(always)]
    pub fn sums(d: Dims, x: &[f32], acc: &mut [f64]) {
        for row in x.chunks_exact(d.channels) {
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += v as f64;
            }
        }
    }

    #[inline(always)]
    pub fn squares(d: Dims, x: &[f32], mean: &[f32], acc: &mut [f64]) {
        for row in x.chunks_exact(d.channels) {
            for ((a, &v), &m) in acc.iter_mut().zip(row).zip(mean) {
                *a += ((v - m) * (v - m)) as f64;
            }
        }
    }

    #[inline(always)]
    pub fn affine(d: Dims, x: &[f32], alpha: &[f32], beta: &[f32], y: &mut [f32]) {
        for (out, row) in y
            .chunks_exact_mut(d.channels)
            .zip(x.chunks_exact(d.channels))
        {
            for (((o, &v), &a), &b) in out.iter_mut().zip(row).zip(alpha).zip(beta) {
                *o = v.mul_add(a, b);
            }
        }
    }

    #[inline(always)]
    pub fn grad_sums(
        d: Dims,
        x: &[f32],
        g: &[f32],
        mean: &[f32],
        sum: &mut [f64],
        dotp: &mut [f64],
    ) {
        let c = d.channels;
        let (mean, sum, dotp) = (&mean[..c], &mut sum[..c], &mut dotp[..c]);
        for (row, grow) in x.chunks_exact(c).zip(g.chunks_exact(c)) {
            for k in 0..c {
                sum[k] += grow[k] as f64;
                dotp[k] += ((row[k] - mean[k]) * grow[k]) as f64;
            }
        }
    }

    #[inline(always)]
    pub fn grad_input(d: Dims, x: &[f32], g: &[f32], t: &GradTerms, gx: &mut [f32]) {
        let c = d.channels;
        let (mean, k, grad_mean) = (&t.mean[..c], &t.k[..c], &t.grad_mean[..c]);
        let (invstd, weight) = (&t.invstd[..c], &t.weight[..c]);
        let rows = gx
            .chunks_exact_mut(c)
            .zip(x.chunks_exact(c))
            .zip(g.chunks_exact(c));
        for ((out, row), grow) in rows {
            for i in 0..c {
                let centred = row[i] - mean[i];
                let dx = (-centred).mul_add(k[i], grow[i] - grad_mean[i]);
                out[i] = dx * invstd[i] * weight[i];
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{loops, Dims, GradTerms};

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn sums(d: Dims, x: &[f32], acc: &mut [f64]) {
        loops::sums(d, x, acc)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn squares(d: Dims, x: &[f32], mean: &[f32], acc: &mut [f64]) {
        loops::squares(d, x, mean, acc)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn affine(d: Dims, x: &[f32], alpha: &[f32], beta: &[f32], y: &mut [f32]) {
        loops::affine(d, x, alpha, beta, y)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn grad_sums(
        d: Dims,
        x: &[f32],
        g: &[f32],
        mean: &[f32],
        sum: &mut [f64],
        dotp: &mut [f64],
    ) {
        loops::grad_sums(d, x, g, mean, sum, dotp)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn grad_input(d: Dims, x: &[f32], g: &[f32], t: &GradTerms, gx: &mut [f32]) {
        loops::grad_input(d, x, g, t, gx)
    }
}
