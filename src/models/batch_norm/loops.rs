//! The batch norm's loops without intrinsics (`kernel.rs` runs them, or
//! `avx2.rs`'s where the CPU has AVX2 and FMA), and what both take: a call's
//! sizes, the output gradient, the input gradient's per-channel constants.
//!
//! The loops are written per channel within a row so that the channels of a
//! row are a vector's lanes and each channel's additions keep row order. The
//! sums run over the channels `first..first + acc.len()` of every row.

use std::ops::Range;

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

/// Channels go to threads in blocks of this many: one AVX2 vector of float64
/// sums.
pub const CHANNEL_BLOCK: usize = 4;

/// The gradient a backward receives: its output's, or for a forward with
/// `relu`, the ReLU's output gradient and output.
#[derive(Clone, Copy)]
pub struct Upstream<'a> {
    pub g: &'a [f32],
    pub relu_out: Option<&'a [f32]>,
}

impl<'a> Upstream<'a> {
    pub fn rows(&self, at: Range<usize>) -> Upstream<'a> {
        Upstream {
            g: &self.g[at.clone()],
            relu_out: self.relu_out.map(|y| &y[at]),
        }
    }

    /// Value i's gradient through the ReLU, if any (threshold_backward).
    #[inline(always)]
    fn at(&self, i: usize) -> f32 {
        match self.relu_out {
            Some(y) if y[i] <= 0.0 => 0.0,
            _ => self.g[i],
        }
    }
}

/// What the output pass does after x·α + β: add the skip connection's values
/// (a residual block's end), then the ReLU.
#[derive(Clone, Copy)]
pub struct Tail<'a> {
    pub skip: Option<&'a [f32]>,
    pub relu: bool,
}

impl<'a> Tail<'a> {
    pub fn rows(&self, at: Range<usize>) -> Tail<'a> {
        Tail {
            skip: self.skip.map(|s| &s[at]),
            relu: self.relu,
        }
    }
}

/// Per-channel constants of the input gradient.
pub struct GradTerms<'a> {
    pub mean: &'a [f32],
    pub k: &'a [f32],
    pub grad_mean: &'a [f32],
    pub invstd: &'a [f32],
    pub weight: &'a [f32],
}

/// One channel block of four as a vector, the rest one by one.
const V: usize = CHANNEL_BLOCK;

#[inline(always)]
pub fn sums(d: Dims, x: &[f32], first: usize, acc: &mut [f64]) {
    let n = acc.len();
    let (acc4, acc_rest) = acc.as_chunks_mut::<V>();
    for row in x.chunks_exact(d.channels) {
        let (row4, rest) = row[first..first + n].as_chunks::<V>();
        for (a, v) in acc4.iter_mut().zip(row4) {
            for i in 0..V {
                a[i] += v[i] as f64;
            }
        }
        for (a, &v) in acc_rest.iter_mut().zip(rest) {
            *a += v as f64;
        }
    }
}

#[inline(always)]
pub fn squares(d: Dims, x: &[f32], first: usize, mean: &[f32], acc: &mut [f64]) {
    let n = acc.len();
    let (acc4, acc_rest) = acc.as_chunks_mut::<V>();
    let (mean4, mean_rest) = mean.as_chunks::<V>();
    for row in x.chunks_exact(d.channels) {
        let (row4, rest) = row[first..first + n].as_chunks::<V>();
        for ((a, v), m) in acc4.iter_mut().zip(row4).zip(mean4) {
            for i in 0..V {
                a[i] += ((v[i] - m[i]) * (v[i] - m[i])) as f64;
            }
        }
        for ((a, &v), &m) in acc_rest.iter_mut().zip(rest).zip(mean_rest) {
            *a += ((v - m) * (v - m)) as f64;
        }
    }
}

#[inline(always)]
pub fn affine(c: usize, x: &[f32], alpha: &[f32], beta: &[f32], tail: Tail, y: &mut [f32]) {
    for (r, (out, row)) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)).enumerate() {
        let skip = tail.skip.map(|s| &s[r * c..(r + 1) * c]);
        for (i, ((o, &v), (&a, &b))) in out
            .iter_mut()
            .zip(row)
            .zip(alpha.iter().zip(beta))
            .enumerate()
        {
            // No `+ 0.0` without a skip: it would turn −0.0 into +0.0.
            let v = match skip {
                Some(s) => v.mul_add(a, b) + s[i],
                None => v.mul_add(a, b),
            };
            *o = if tail.relu && v < 0.0 { 0.0 } else { v };
        }
    }
}

#[inline(always)]
pub fn grad_sums(
    d: Dims,
    x: &[f32],
    g: Upstream,
    first: usize,
    mean: &[f32],
    sum: &mut [f64],
    dotp: &mut [f64],
) {
    let c = d.channels;
    for row in 0..d.rows {
        for (k, ch) in (first..first + sum.len()).enumerate() {
            let i = row * c + ch;
            let gv = g.at(i);
            sum[k] += gv as f64;
            dotp[k] += ((x[i] - mean[k]) * gv) as f64;
        }
    }
}

#[inline(always)]
pub fn grad_input(c: usize, x: &[f32], g: Upstream, t: &GradTerms, gx: &mut [f32]) {
    let (mean, k, grad_mean) = (&t.mean[..c], &t.k[..c], &t.grad_mean[..c]);
    let (invstd, weight) = (&t.invstd[..c], &t.weight[..c]);
    for (r, (out, row)) in gx.chunks_exact_mut(c).zip(x.chunks_exact(c)).enumerate() {
        for i in 0..c {
            let centred = row[i] - mean[i];
            let dx = (-centred).mul_add(k[i], g.at(r * c + i) - grad_mean[i]);
            out[i] = dx * invstd[i] * weight[i];
        }
    }
}
