//! The loops with AVX2 and FMA intrinsics: a vector holds four channels' sums
//! (float64) or eight channels' values (float32), each channel's arithmetic
//! that of `loops`. The sums keep up to four blocks of four channels in
//! registers while they run down the rows, so that a row's additions do not
//! wait on each other; channels past the last whole block, and rows whose
//! channels are not a multiple of eight in the elementwise passes, go through
//! `loops`.

use super::loops::{self, Dims, GradTerms, Tail, Upstream, CHANNEL_BLOCK};
use std::arch::x86_64::*;

const V: usize = CHANNEL_BLOCK;

/// Splits `first..first + n` into groups of up to four whole blocks, calls
/// `group(first channel, blocks)` for each, and returns where the channels
/// past the last whole block start.
#[inline(always)]
fn groups(first: usize, n: usize, mut group: impl FnMut(usize, usize)) -> usize {
    let whole = n / V;
    let mut b = 0;
    while b < whole {
        let take = (whole - b).min(4);
        group(first + b * V, take);
        b += take;
    }
    whole * V
}

/// Σ over rows of `term(index, offset)` (`index` of the block's first value
/// in the row, `offset` of the block's first channel from `first`) for `B`
/// blocks of channels from `first`, each block's four sums in one register,
/// added to `acc`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn sum_blocks<const B: usize>(
    d: Dims,
    first: usize,
    acc: &mut [f64],
    term: impl Fn(usize, usize) -> __m256d,
) {
    let mut regs = [_mm256_setzero_pd(); B];
    for (b, r) in regs.iter_mut().enumerate() {
        *r = _mm256_loadu_pd(acc.as_ptr().add(b * V));
    }
    for row in 0..d.rows {
        let at = row * d.channels + first;
        for (b, r) in regs.iter_mut().enumerate() {
            *r = _mm256_add_pd(*r, term(at + b * V, b * V));
        }
    }
    for (b, r) in regs.iter().enumerate() {
        _mm256_storeu_pd(acc.as_mut_ptr().add(b * V), *r);
    }
}

/// `sum_blocks` for a run-time count of 1 to 4 blocks.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn sum_group(
    d: Dims,
    first: usize,
    blocks: usize,
    acc: &mut [f64],
    term: impl Fn(usize, usize) -> __m256d,
) {
    match blocks {
        1 => sum_blocks::<1>(d, first, acc, term),
        2 => sum_blocks::<2>(d, first, acc, term),
        3 => sum_blocks::<3>(d, first, acc, term),
        _ => sum_blocks::<4>(d, first, acc, term),
    }
}

/// Σ g and Σ (x − mean)·g down the rows for `B` blocks of channels from
/// `first` in one pass: two independent additions a block and row.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn grad_blocks<const B: usize>(
    d: Dims,
    first: usize,
    x: *const f32,
    g: *const f32,
    relu_out: Option<*const f32>,
    mean: &[f32],
    sum: &mut [f64],
    dotp: &mut [f64],
) {
    let means: [__m128; B] = std::array::from_fn(|b| _mm_loadu_ps(mean.as_ptr().add(b * V)));
    let mut sums: [__m256d; B] = std::array::from_fn(|b| _mm256_loadu_pd(sum.as_ptr().add(b * V)));
    let mut dotps: [__m256d; B] =
        std::array::from_fn(|b| _mm256_loadu_pd(dotp.as_ptr().add(b * V)));
    for row in 0..d.rows {
        let at = row * d.channels + first;
        for b in 0..B {
            let mut gv = _mm_loadu_ps(g.add(at + b * V));
            if let Some(y) = relu_out {
                gv = _mm_and_ps(gv, passes_relu(_mm_loadu_ps(y.add(at + b * V))));
            }
            let centred = _mm_sub_ps(_mm_loadu_ps(x.add(at + b * V)), means[b]);
            sums[b] = _mm256_add_pd(sums[b], _mm256_cvtps_pd(gv));
            dotps[b] = _mm256_add_pd(dotps[b], _mm256_cvtps_pd(_mm_mul_ps(centred, gv)));
        }
    }
    for b in 0..B {
        _mm256_storeu_pd(sum.as_mut_ptr().add(b * V), sums[b]);
        _mm256_storeu_pd(dotp.as_mut_ptr().add(b * V), dotps[b]);
    }
}

#[target_feature(enable = "avx2,fma")]
pub unsafe fn sums(d: Dims, x: &[f32], first: usize, acc: &mut [f64]) {
    assert!(x.len() >= d.len() && first + acc.len() <= d.channels);
    let xp = x.as_ptr();
    let done = groups(first, acc.len(), |at, blocks| {
        let acc = &mut acc[at - first..];
        sum_group(d, at, blocks, acc, |i, _| {
            _mm256_cvtps_pd(_mm_loadu_ps(xp.add(i)))
        });
    });
    loops::sums(d, x, first + done, &mut acc[done..])
}

#[target_feature(enable = "avx2,fma")]
pub unsafe fn squares(d: Dims, x: &[f32], first: usize, mean: &[f32], acc: &mut [f64]) {
    assert!(x.len() >= d.len() && first + acc.len() <= d.channels);
    assert!(mean.len() >= acc.len());
    let xp = x.as_ptr();
    let done = groups(first, acc.len(), |at, blocks| {
        let (acc, mean) = (&mut acc[at - first..], &mean[at - first..]);
        let means = [0, 1, 2, 3].map(|b| _mm_loadu_ps(mean.as_ptr().add((b % blocks) * V)));
        sum_group(d, at, blocks, acc, |i, k| {
            let centred = _mm_sub_ps(_mm_loadu_ps(xp.add(i)), means[k / V]);
            _mm256_cvtps_pd(_mm_mul_ps(centred, centred))
        });
    });
    loops::squares(d, x, first + done, &mean[done..], &mut acc[done..])
}

/// All ones where a ReLU's output `y` lets the gradient pass (not ≤ 0, so
/// NaN passes), zeros elsewhere: threshold_backward's test.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn passes_relu(y: __m128) -> __m128 {
    _mm_cmp_ps::<_CMP_NLE_UQ>(y, _mm_setzero_ps())
}

#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn grad_sums(
    d: Dims,
    x: &[f32],
    g: Upstream,
    first: usize,
    mean: &[f32],
    sum: &mut [f64],
    dotp: &mut [f64],
) {
    let n = sum.len();
    assert!(x.len() >= d.len() && g.g.len() >= d.len() && first + n <= d.channels);
    assert!(g.relu_out.is_none_or(|y| y.len() >= d.len()));
    assert!(mean.len() >= n && dotp.len() >= n);
    let (xp, gp, yp) = (x.as_ptr(), g.g.as_ptr(), g.relu_out.map(<[f32]>::as_ptr));
    let done = groups(first, n, |at, blocks| {
        let o = at - first;
        let (sum, dotp, mean) = (&mut sum[o..], &mut dotp[o..], &mean[o..]);
        match blocks {
            1 => grad_blocks::<1>(d, at, xp, gp, yp, mean, sum, dotp),
            2 => grad_blocks::<2>(d, at, xp, gp, yp, mean, sum, dotp),
            3 => grad_blocks::<3>(d, at, xp, gp, yp, mean, sum, dotp),
            _ => grad_blocks::<4>(d, at, xp, gp, yp, mean, sum, dotp),
        }
    });
    loops::grad_sums(
        d,
        x,
        g,
        first + done,
        &mean[done..],
        &mut sum[done..],
        &mut dotp[done..],
    )
}

#[target_feature(enable = "avx2,fma")]
pub unsafe fn affine(c: usize, x: &[f32], alpha: &[f32], beta: &[f32], tail: Tail, y: &mut [f32]) {
    if !c.is_multiple_of(8) {
        return loops::affine(c, x, alpha, beta, tail, y);
    }
    assert!(y.len() == x.len() && x.len().is_multiple_of(c));
    assert!(alpha.len() >= c && beta.len() >= c);
    assert!(tail.skip.is_none_or(|s| s.len() == x.len()));
    let (xp, yp, sp) = (x.as_ptr(), y.as_mut_ptr(), tail.skip.map(<[f32]>::as_ptr));
    let relu = tail.relu;
    for row in (0..x.len()).step_by(c) {
        for k in (0..c).step_by(8) {
            let (a, b) = (
                _mm256_loadu_ps(alpha.as_ptr().add(k)),
                _mm256_loadu_ps(beta.as_ptr().add(k)),
            );
            let mut v = _mm256_fmadd_ps(_mm256_loadu_ps(xp.add(row + k)), a, b);
            if let Some(sp) = sp {
                v = _mm256_add_ps(v, _mm256_loadu_ps(sp.add(row + k)));
            }
            if relu {
                let below = _mm256_cmp_ps::<_CMP_LT_OQ>(v, _mm256_setzero_ps());
                v = _mm256_andnot_ps(below, v);
            }
            _mm256_storeu_ps(yp.add(row + k), v);
        }
    }
}

#[target_feature(enable = "avx2,fma")]
pub unsafe fn grad_input(c: usize, x: &[f32], g: Upstream, t: &GradTerms, gx: &mut [f32]) {
    if !c.is_multiple_of(8) {
        return loops::grad_input(c, x, g, t, gx);
    }
    assert!(gx.len() == x.len() && g.g.len() == x.len() && x.len().is_multiple_of(c));
    assert!(g.relu_out.is_none_or(|y| y.len() == x.len()));
    let per_channel = [t.mean, t.k, t.grad_mean, t.invstd, t.weight];
    assert!(per_channel.iter().all(|p| p.len() >= c));
    let out = gx.as_mut_ptr();
    let load = |p: &[f32], k: usize| _mm256_loadu_ps(p.as_ptr().add(k));
    for row in (0..x.len()).step_by(c) {
        for k in (0..c).step_by(8) {
            let centred = _mm256_sub_ps(load(x, row + k), load(t.mean, k));
            let mut gv = load(g.g, row + k);
            if let Some(y) = g.relu_out {
                let passes = _mm256_cmp_ps::<_CMP_NLE_UQ>(load(y, row + k), _mm256_setzero_ps());
                gv = _mm256_and_ps(gv, passes);
            }
            let rest = _mm256_sub_ps(gv, load(t.grad_mean, k));
            let dx = _mm256_fnmadd_ps(centred, load(t.k, k), rest);
            let scaled = _mm256_mul_ps(_mm256_mul_ps(dx, load(t.invstd, k)), load(t.weight, k));
            _mm256_storeu_ps(out.add(row + k), scaled);
        }
    }
}
