//! The fused 2×2 max-pool and ReLU on channels-last float32 planes, forward and
//! backward, with libtorch's floats and choices (module docs in `mod.rs`).
//!
//! A plane is [n, h, w, c] in memory (a channels-last [n, c, h, w] tensor). The
//! loops run over output rows r: image `r / oh`, output row `r % oh`, made from
//! input rows 2·(r % oh) and 2·(r % oh) + 1. libtorch's threads share the
//! output rows (each writes its rows' outputs and their windows' input
//! gradients, disjoint blocks of memory).

use crate::models::shim::{parallel_for, Parts};
use std::ops::Range;

/// Calls of fewer output values run on one thread (libtorch's grain,
/// at::internal::GRAIN_SIZE).
const GRAIN: usize = 32768;

/// The sizes of one call: input [n, h, w, c]; output [n, h / 2, w / 2, c].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dims {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Dims {
    pub fn out_h(&self) -> usize {
        self.h / 2
    }
    pub fn out_w(&self) -> usize {
        self.w / 2
    }
    pub fn rows(&self) -> usize {
        self.n * self.out_h()
    }
    /// Where output row r's top input row starts: image r / oh, input row
    /// 2·(r % oh).
    pub fn top(&self, r: usize) -> usize {
        let oh = self.out_h();
        ((r / oh) * self.h + 2 * (r % oh)) * self.w * self.c
    }
    pub fn input_len(&self) -> usize {
        self.n * self.h * self.w * self.c
    }
    pub fn output_len(&self) -> usize {
        self.rows() * self.out_w() * self.c
    }
    /// Where output row r's outputs start.
    fn out_at(&self, r: usize) -> usize {
        r * self.out_w() * self.c
    }
    /// Where the input rows that output row r's gradient writes end: its two
    /// rows, and the image's last odd row after its last output row.
    fn input_end(&self, r: usize) -> usize {
        let odd_last = r % self.out_h() == self.out_h() - 1 && !self.h.is_multiple_of(2);
        self.top(r) + (2 + usize::from(odd_last)) * self.w * self.c
    }
}

/// `f` over blocks of output rows on libtorch's threads.
fn for_rows(d: Dims, f: impl Fn(Range<usize>) + Sync) {
    let per_row = (d.out_w() * d.c).max(1);
    parallel_for(d.rows(), GRAIN.div_ceil(per_row), f);
}

/// Which of a window's four inputs (row-major: top-left 0, top-right 1,
/// bottom-left 2, bottom-right 3) gave the maximum, and the ReLU of it, as
/// libtorch's max_pool2d then relu: the first strictly greater value wins, a
/// NaN always replaces (so the last NaN wins, and the output is NaN); relu keeps
/// NaN and −0.0 (clamp_min), and maps values below zero to +0.0.
#[inline(always)]
fn window(a: f32, b: f32, c: f32, d: f32) -> (f32, u8) {
    let (mut m, mut k) = (a, 0u8);
    for (v, i) in [(b, 1u8), (c, 2), (d, 3)] {
        if v > m || v.is_nan() {
            m = v;
            k = i;
        }
    }
    (if m < 0.0 { 0.0 } else { m }, k)
}

/// The gradient a window's input `slot` receives: libtorch's threshold_backward
/// (the gradient passes where the ReLU's output is not ≤ 0) then
/// max_pool2d's backward, which adds it into a zeroed input gradient at the
/// maximum's slot (so −0.0 arrives as +0.0).
#[inline(always)]
fn slot_grad(g: f32, y: f32, k: u8, slot: u8) -> f32 {
    // NaN passes: the ReLU's output is not ≤ 0.
    let passes = y > 0.0 || y.is_nan();
    if k == slot && passes {
        0.0 + g
    } else {
        0.0
    }
}

/// The forward: y [n, oh, ow, c] and, unless `mask` is empty, the maximum's
/// slot of each output.
pub fn forward(d: Dims, x: &[f32], y: &mut [f32], mask: &mut [u8]) {
    assert!(x.len() >= d.input_len() && y.len() >= d.output_len());
    assert!(mask.is_empty() || mask.len() >= d.output_len());
    let keep_mask = !mask.is_empty();
    let (ys, masks) = (Parts::new(y), Parts::new(mask));
    for_rows(d, |rows| {
        let at = d.out_at(rows.start)..d.out_at(rows.end);
        // Safety: the blocks' output rows are disjoint.
        let y = unsafe { ys.part(at.clone()) };
        let mask = if keep_mask {
            unsafe { masks.part(at) }
        } else {
            &mut []
        };
        forward_rows(d, rows, x, y, mask);
    });
}

/// The forward of output rows `rows`; y and mask start at the first's outputs.
pub(in crate::models) fn forward_rows(
    d: Dims,
    rows: Range<usize>,
    x: &[f32],
    y: &mut [f32],
    mask: &mut [u8],
) {
    if rows.is_empty() {
        return;
    }
    let outputs = d.out_at(rows.end) - d.out_at(rows.start);
    assert!(x.len() >= d.top(rows.end - 1) + 2 * d.w * d.c && y.len() >= outputs);
    assert!(mask.is_empty() || mask.len() >= outputs);
    #[cfg(target_arch = "x86_64")]
    if d.c.is_multiple_of(8) && avx2::available() {
        // Safety: the CPU has AVX2; x holds these rows' inputs, y and mask
        // their outputs (checked above).
        return unsafe { avx2::forward(d, rows, x, y, mask) };
    }
    let (ow, c) = (d.out_w(), d.c);
    let base = d.out_at(rows.start);
    for r in rows {
        let top = d.top(r);
        let bottom = top + d.w * c;
        for j in 0..ow {
            for ch in 0..c {
                let at = |row: usize, col: usize| x[row + (2 * j + col) * c + ch];
                let (v, k) = window(at(top, 0), at(top, 1), at(bottom, 0), at(bottom, 1));
                let o = (r * ow + j) * c + ch - base;
                y[o] = v;
                if !mask.is_empty() {
                    mask[o] = k;
                }
            }
        }
    }
}

/// The backward: writes every value of gx [n, h, w, c] (a last odd column or
/// row gets zeros: no window reads it), from the output gradient g, the
/// forward's output y and its mask.
pub fn backward(d: Dims, g: &[f32], y: &[f32], mask: &[u8], gx: &mut [f32]) {
    assert!(g.len() >= d.output_len() && y.len() >= d.output_len());
    assert!(mask.len() >= d.output_len() && gx.len() >= d.input_len());
    if d.rows() == 0 {
        return;
    }
    let gxs = Parts::new(gx);
    for_rows(d, |rows| {
        // Safety: the blocks' output rows write disjoint input rows.
        let gx = unsafe { gxs.part(d.top(rows.start)..d.input_end(rows.end - 1)) };
        backward_rows(d, rows, g, y, mask, gx);
    });
}

/// The backward of output rows `rows`; gx starts at the first's top input row.
pub(in crate::models) fn backward_rows(
    d: Dims,
    rows: Range<usize>,
    g: &[f32],
    y: &[f32],
    mask: &[u8],
    gx: &mut [f32],
) {
    if rows.is_empty() {
        return;
    }
    let outputs = d.out_at(rows.end);
    assert!(g.len() >= outputs && y.len() >= outputs && mask.len() >= outputs);
    assert!(gx.len() >= d.input_end(rows.end - 1) - d.top(rows.start));
    let (oh, ow, c, w) = (d.out_h(), d.out_w(), d.c, d.w);
    let base = d.top(rows.start);
    for r in rows.clone() {
        let top = d.top(r) - base;
        // Inputs no window reads: a last odd column of both rows, and the
        // image's last odd row after its last output row.
        for row in [top, top + w * c] {
            gx[row + 2 * ow * c..row + w * c].fill(0.0);
        }
        if r % oh == oh - 1 && !d.h.is_multiple_of(2) {
            let last = top + 2 * w * c;
            gx[last..last + w * c].fill(0.0);
        }
    }
    #[cfg(target_arch = "x86_64")]
    if d.c.is_multiple_of(8) && avx2::available() {
        // Safety: the CPU has AVX2; g, y and mask hold these rows' outputs, gx
        // their inputs (checked above).
        return unsafe { avx2::backward(d, rows, g, y, mask, gx) };
    }
    for r in rows {
        let top = d.top(r) - base;
        let bottom = top + w * c;
        for j in 0..ow {
            for ch in 0..c {
                let o = (r * ow + j) * c + ch;
                let (gv, yv, k) = (g[o], y[o], mask[o]);
                for (slot, row, col) in [(0, top, 0), (1, top, 1), (2, bottom, 0), (3, bottom, 1)] {
                    gx[row + (2 * j + col) * c + ch] = slot_grad(gv, yv, k, slot);
                }
            }
        }
    }
}

/// Eight channels at a time with AVX2, the same comparisons and selections.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Dims;
    use std::arch::x86_64::*;
    use std::ops::Range;

    pub(super) fn available() -> bool {
        is_x86_feature_detected!("avx2")
    }

    /// # Safety
    /// The CPU has AVX2; x holds `d`'s input, y and mask (unless empty) the
    /// outputs of `rows` from the first's (checked by the caller); d.c is a
    /// multiple of 8.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn forward(
        d: Dims,
        rows: Range<usize>,
        x: &[f32],
        y: &mut [f32],
        mask: &mut [u8],
    ) {
        let (ow, c) = (d.out_w(), d.c);
        let base = d.out_at(rows.start);
        let (x, y, m_out) = (x.as_ptr(), y.as_mut_ptr(), mask.as_mut_ptr());
        let keep_mask = !mask.is_empty();
        let zero = _mm256_setzero_ps();
        let slot = |i: i32| _mm256_castsi256_ps(_mm256_set1_epi32(i));
        let (one, two, three) = (slot(1), slot(2), slot(3));
        for r in rows {
            let top = x.add(d.top(r));
            let bottom = top.add(d.w * c);
            let mut out = (r * ow) * c - base;
            for j in 0..ow {
                let (t, b) = (top.add(2 * j * c), bottom.add(2 * j * c));
                for ch in (0..c).step_by(8) {
                    let mut m = _mm256_loadu_ps(t.add(ch));
                    let mut k = zero;
                    for (v, i) in [
                        (_mm256_loadu_ps(t.add(c + ch)), one),
                        (_mm256_loadu_ps(b.add(ch)), two),
                        (_mm256_loadu_ps(b.add(c + ch)), three),
                    ] {
                        let wins = _mm256_or_ps(
                            _mm256_cmp_ps::<_CMP_GT_OQ>(v, m),
                            _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v),
                        );
                        m = _mm256_blendv_ps(m, v, wins);
                        k = _mm256_blendv_ps(k, i, wins);
                    }
                    let below = _mm256_cmp_ps::<_CMP_LT_OQ>(m, zero);
                    _mm256_storeu_ps(y.add(out), _mm256_andnot_ps(below, m));
                    if keep_mask {
                        // Eight slots 0..3 as bytes: two unsigned saturating
                        // packs leave them in bytes 0-3 and 16-19.
                        let k = _mm256_castps_si256(k);
                        let k = _mm256_packus_epi32(k, k);
                        let k = _mm256_packus_epi16(k, k);
                        let lo = _mm256_cvtsi256_si32(k) as u32;
                        let hi = _mm256_extract_epi32::<4>(k) as u32;
                        let bytes = (lo as u64) | ((hi as u64) << 32);
                        m_out.add(out).cast::<u64>().write_unaligned(bytes);
                    }
                    out += 8;
                }
            }
        }
    }

    /// # Safety
    /// The CPU has AVX2; g, y and mask hold `d`'s outputs, gx the inputs of
    /// `rows` from the first's top row (checked by the caller); d.c is a
    /// multiple of 8.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn backward(
        d: Dims,
        rows: Range<usize>,
        g: &[f32],
        y: &[f32],
        mask: &[u8],
        gx: &mut [f32],
    ) {
        let (ow, c) = (d.out_w(), d.c);
        let base = d.top(rows.start);
        let (g, y, mask, gx) = (g.as_ptr(), y.as_ptr(), mask.as_ptr(), gx.as_mut_ptr());
        let zero = _mm256_setzero_ps();
        let slots = [0, 1, 2, 3].map(|i| _mm256_set1_epi32(i));
        for r in rows {
            let top = gx.add(d.top(r) - base);
            let bottom = top.add(d.w * c);
            let mut o = (r * ow) * c;
            for j in 0..ow {
                let (t, b) = (top.add(2 * j * c), bottom.add(2 * j * c));
                for ch in (0..c).step_by(8) {
                    let passes = _mm256_cmp_ps::<_CMP_NLE_UQ>(_mm256_loadu_ps(y.add(o)), zero);
                    let v = _mm256_and_ps(_mm256_add_ps(zero, _mm256_loadu_ps(g.add(o))), passes);
                    let k = _mm256_cvtepu8_epi32(_mm_loadl_epi64(mask.add(o).cast()));
                    let at = |i: usize| {
                        let is = _mm256_castsi256_ps(_mm256_cmpeq_epi32(k, slots[i]));
                        _mm256_and_ps(v, is)
                    };
                    _mm256_storeu_ps(t.add(ch), at(0));
                    _mm256_storeu_ps(t.add(c + ch), at(1));
                    _mm256_storeu_ps(b.add(ch), at(2));
                    _mm256_storeu_ps(b.add(c + ch), at(3));
                    o += 8;
                }
            }
        }
    }
}
