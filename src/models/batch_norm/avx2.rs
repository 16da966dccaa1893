//! The loops with AVX2 and FMA intrinsics: a vector holds four channels' sums
//! (float64) or eight channels' values (float32), each channel's arithmetic
//! that of `loops`. The sums keep up to four blocks of four channels in
//! registers while they run down the rows, so that a row's additions do not
//! wait on each other; channels past the last whole block go through `loops`,
//! and so do the rows past the last whole period in the elementwise passes
//! (`period`).

use super::loops::{self, Dims, GradTerms, Tail, Upstream, CHANNEL_BLOCK};
use std::arch::x86_64::*;
use std::borrow::Cow;

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

/// The values a pass over [rows, c] handles as whole vectors at a time: c
/// when c is a multiple of eight, else eight rows (8·c, a multiple of both).
fn period(c: usize) -> usize {
    if c.is_multiple_of(8) {
        c
    } else {
        8 * c
    }
}

/// A per-channel parameter laid out over `period(c)` values, so that the
/// values at j..j + 8 of a period read their channels' parameters at j..j + 8.
fn by_period(c: usize, p: &[f32]) -> Cow<'_, [f32]> {
    if c.is_multiple_of(8) {
        Cow::Borrowed(&p[..c])
    } else {
        Cow::Owned((0..8 * c).map(|j| p[j % c]).collect())
    }
}

/// The elementwise passes run whole periods as vectors, each value's
/// arithmetic that of `loops`, and the rows past the last whole period through
/// `loops`: so any channel count is vectorised (DenseNet40's growth of 3 at
/// width 0.25 gives 6, 9, 12, ... channels).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn affine(c: usize, x: &[f32], alpha: &[f32], beta: &[f32], tail: Tail, y: &mut [f32]) {
    assert!(y.len() == x.len() && x.len().is_multiple_of(c));
    assert!(alpha.len() >= c && beta.len() >= c);
    assert!(tail.skip.is_none_or(|s| s.len() == x.len()));
    let period = period(c);
    let whole = x.len() - x.len() % period;
    let (a_p, b_p) = (by_period(c, alpha), by_period(c, beta));
    let (xp, yp, sp) = (x.as_ptr(), y.as_mut_ptr(), tail.skip.map(<[f32]>::as_ptr));
    let relu = tail.relu;
    for base in (0..whole).step_by(period) {
        for k in (0..period).step_by(8) {
            let (a, b) = (
                _mm256_loadu_ps(a_p.as_ptr().add(k)),
                _mm256_loadu_ps(b_p.as_ptr().add(k)),
            );
            let mut v = _mm256_fmadd_ps(_mm256_loadu_ps(xp.add(base + k)), a, b);
            if let Some(sp) = sp {
                v = _mm256_add_ps(v, _mm256_loadu_ps(sp.add(base + k)));
            }
            if relu {
                let below = _mm256_cmp_ps::<_CMP_LT_OQ>(v, _mm256_setzero_ps());
                v = _mm256_andnot_ps(below, v);
            }
            _mm256_storeu_ps(yp.add(base + k), v);
        }
    }
    let rest = Tail {
        skip: tail.skip.map(|s| &s[whole..]),
        relu,
    };
    loops::affine(c, &x[whole..], alpha, beta, rest, &mut y[whole..]);
}

#[target_feature(enable = "avx2,fma")]
pub unsafe fn grad_input(c: usize, x: &[f32], g: Upstream, t: &GradTerms, gx: &mut [f32]) {
    assert!(gx.len() == x.len() && g.g.len() == x.len() && x.len().is_multiple_of(c));
    assert!(g.relu_out.is_none_or(|y| y.len() == x.len()));
    let per_channel = [t.mean, t.k, t.grad_mean, t.invstd, t.weight];
    assert!(per_channel.iter().all(|p| p.len() >= c));
    let period = period(c);
    let whole = x.len() - x.len() % period;
    let [mean, k_p, grad_mean, invstd, weight] = per_channel.map(|p| by_period(c, p));
    let out = gx.as_mut_ptr();
    let load = |p: &[f32], k: usize| _mm256_loadu_ps(p.as_ptr().add(k));
    for base in (0..whole).step_by(period) {
        for k in (0..period).step_by(8) {
            let centred = _mm256_sub_ps(load(x, base + k), load(&mean, k));
            let mut gv = load(g.g, base + k);
            if let Some(y) = g.relu_out {
                let passes = _mm256_cmp_ps::<_CMP_NLE_UQ>(load(y, base + k), _mm256_setzero_ps());
                gv = _mm256_and_ps(gv, passes);
            }
            let rest = _mm256_sub_ps(gv, load(&grad_mean, k));
            let dx = _mm256_fnmadd_ps(centred, load(&k_p, k), rest);
            let scaled = _mm256_mul_ps(_mm256_mul_ps(dx, load(&invstd, k)), load(&weight, k));
            _mm256_storeu_ps(out.add(base + k), scaled);
        }
    }
    let rest = g.rows(whole..x.len());
    loops::grad_input(c, &x[whole..], rest, t, &mut gx[whole..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, seed: u32) -> Vec<f32> {
        // A coarse grid with zeros, negatives and a NaN now and then.
        (0..len)
            .map(|i| {
                let v = ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 20) as f32;
                if i % 41 == 7 {
                    f32::NAN
                } else {
                    (v % 17.0 - 8.0) / 4.0
                }
            })
            .collect()
    }

    /// Bits, every NaN as one: a NaN's sign differs between the scalar
    /// negation before the fused multiply-add and the vector's negated
    /// product (fnmadd), as it did for channels in whole vectors before.
    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter()
            .map(|f| if f.is_nan() { u32::MAX } else { f.to_bits() })
            .collect()
    }

    /// Every channel count, whole periods and a remainder of rows: the
    /// vectors give `loops`' floats bit for bit.
    #[test]
    fn the_passes_are_the_loops_bit_for_bit_for_any_channel_count() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            panic!("this CPU lacks AVX2 and FMA: the kernels cannot be checked here");
        }
        for (c, rows) in [
            (1, 37),
            (3, 29),
            (6, 16),
            (9, 17),
            (16, 5),
            (19, 9),
            (24, 3),
        ] {
            let n = c * rows;
            let (x, g, y, skip) = (values(n, 1), values(n, 2), values(n, 3), values(n, 4));
            let p: Vec<Vec<f32>> = (5..10).map(|s| values(c, s)).collect();
            for relu in [false, true] {
                let skip = relu.then_some(&skip[..]);
                let tail = Tail { skip, relu };
                let (mut ours, mut theirs) = (vec![0f32; n], vec![0f32; n]);
                // Safety: the CPU has AVX2 and FMA (checked above).
                unsafe { affine(c, &x, &p[0], &p[1], tail, &mut ours) };
                loops::affine(c, &x, &p[0], &p[1], tail, &mut theirs);
                assert_eq!(bits(&ours), bits(&theirs), "affine, c {c}, relu {relu}");

                let g = Upstream {
                    g: &g,
                    relu_out: relu.then_some(&y[..]),
                };
                let t = GradTerms {
                    mean: &p[0],
                    k: &p[1],
                    grad_mean: &p[2],
                    invstd: &p[3],
                    weight: &p[4],
                };
                // Safety: as above.
                unsafe { grad_input(c, &x, g, &t, &mut ours) };
                loops::grad_input(c, &x, g, &t, &mut theirs);
                assert_eq!(bits(&ours), bits(&theirs), "grad_input, c {c}, relu {relu}");
            }
        }
    }
}
