//! The 3×3 convolution (stride 1, zero padding 1) from a few input channels to
//! a multiple of eight output channels, forward and weight gradient, on float32
//! images in any layout with a channels-last output (module docs in `mod.rs`).
//!
//! Each image is first copied into a zero-bordered [h + 2, w + 2, c_in] scratch
//! plane, so that every tap is a plain load. Outputs are vectors of eight output
//! channels. libtorch's threads share the images.

use crate::models::shim::{parallel_for, Parts};
use std::ops::Range;

/// The kernel's window: 3×3 taps.
pub const TAPS: usize = 9;

/// The sizes of one call and the input's element strides (n, c, h, w), so
/// any layout is read as it is.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dims {
    pub n: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub x_strides: [usize; 4],
}

impl Dims {
    /// Elements of the input as its strides span them.
    pub fn input_span(&self) -> usize {
        let s = self.x_strides;
        let [n, c, h, w] = [self.n, self.c_in, self.h, self.w];
        1 + (n - 1) * s[0] + (c - 1) * s[1] + (h - 1) * s[2] + (w - 1) * s[3]
    }
    /// Output values, [n, h, w, c_out] in memory.
    pub fn output_len(&self) -> usize {
        self.n * self.pixels() * self.c_out
    }
    fn pixels(&self) -> usize {
        self.h * self.w
    }
    /// Weight values, [c_out, c_in, 3, 3].
    pub fn weight_len(&self) -> usize {
        self.c_out * self.c_in * TAPS
    }
    fn padded_w(&self) -> usize {
        self.w + 2
    }
    fn padded_len(&self) -> usize {
        (self.h + 2) * self.padded_w() * self.c_in
    }
}

/// Image `i` of `x` into the interior of a zero-bordered [h + 2, w + 2, c_in]
/// plane (its border stays as `for_images` made it: zeros).
fn pad_image(d: &Dims, x: &[f32], i: usize, plane: &mut [f32]) {
    let s = d.x_strides;
    let row_len = d.w * d.c_in;
    for y in 0..d.h {
        let at = ((y + 1) * d.padded_w() + 1) * d.c_in;
        let row = &mut plane[at..at + row_len];
        let first = i * s[0] + y * s[2];
        if s[3] == d.c_in && (d.c_in == 1 || s[1] == 1) {
            // Channels-last rows (and any row of one channel) are contiguous.
            row.copy_from_slice(&x[first..first + row_len]);
        } else {
            for (xx, pixel) in row.chunks_exact_mut(d.c_in).enumerate() {
                for (c, v) in pixel.iter_mut().enumerate() {
                    *v = x[first + c * s[1] + xx * s[3]];
                }
            }
        }
    }
}

/// The weight as [c_in, 3, 3, c_out]: each tap's output channels one vector
/// load apart.
fn taps_by_channel(d: &Dims, weight: &[f32]) -> Vec<f32> {
    let mut t = vec![0f32; d.weight_len()];
    for o in 0..d.c_out {
        for k in 0..d.c_in * TAPS {
            t[k * d.c_out + o] = weight[o * d.c_in * TAPS + k];
        }
    }
    t
}

/// `f(images, scratch plane)` over blocks of images on libtorch's threads,
/// the plane zeroed once per block.
fn for_images(d: &Dims, f: impl Fn(Range<usize>, &mut [f32]) + Sync) {
    parallel_for(d.n, 1, |images| {
        let mut plane = vec![0f32; d.padded_len()];
        f(images, &mut plane)
    });
}

/// y = conv(x, weight) + bias, channels-last: each output the bias (or 0)
/// plus the taps in (input channel, row, column) order, one fused
/// multiply-add each.
///
/// # Safety
/// The CPU has AVX2 and FMA (`available`); the slices hold `d`'s sizes.
#[cfg(target_arch = "x86_64")]
pub unsafe fn forward(d: Dims, x: &[f32], weight: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    assert!(x.len() >= d.input_span() && weight.len() == d.weight_len());
    assert!(y.len() == d.output_len() && d.c_out.is_multiple_of(8));
    assert!(bias.is_none_or(|b| b.len() == d.c_out));
    let taps = taps_by_channel(&d, weight);
    let zeros = vec![0f32; d.c_out];
    let bias = bias.unwrap_or(&zeros);
    let out = Parts::new(y);
    let per_image = d.pixels() * d.c_out;
    for_images(&d, |images, plane| {
        // Safety: the blocks' images are disjoint.
        let y = unsafe { out.part(images.start * per_image..images.end * per_image) };
        for (k, i) in images.enumerate() {
            pad_image(&d, x, i, plane);
            let y = &mut y[k * per_image..(k + 1) * per_image];
            // Safety: the caller's promise; `plane` and `y` have one image's sizes.
            unsafe { avx2::forward_image(&d, plane, &taps, bias, y) };
        }
    });
}

/// The weight's gradient (and the bias's, Σ g per output channel) from the
/// output gradient `g` (channels-last): per image and output row the products
/// are added in float32 in pixel order, each row's sums then in float64 in row
/// order, and the images' sums in float64 in image order, so the result does
/// not depend on the thread count.
///
/// # Safety
/// As `forward`.
#[cfg(target_arch = "x86_64")]
pub unsafe fn weight_grad(d: Dims, x: &[f32], g: &[f32], gw: &mut [f32], gb: Option<&mut [f32]>) {
    assert!(x.len() >= d.input_span() && g.len() == d.output_len());
    assert!(gw.len() == d.weight_len() && d.c_out.is_multiple_of(8));
    assert!(gb.as_ref().is_none_or(|b| b.len() == d.c_out));
    // Per image: the taps' sums [c_in · 9, c_out], then the bias's [c_out].
    let per_image = d.weight_len() + d.c_out;
    let mut sums = vec![0f64; d.n * per_image];
    let parts = Parts::new(&mut sums);
    let pixels = d.pixels() * d.c_out;
    for_images(&d, |images, plane| {
        // Safety: the blocks' images are disjoint.
        let sums = unsafe { parts.part(images.start * per_image..images.end * per_image) };
        for (k, i) in images.enumerate() {
            pad_image(&d, x, i, plane);
            let g = &g[i * pixels..(i + 1) * pixels];
            let sums = &mut sums[k * per_image..(k + 1) * per_image];
            // Safety: the caller's promise; the slices have one image's sizes.
            unsafe { avx2::grad_image(&d, plane, g, sums) };
        }
    });
    let mut total = vec![0f64; per_image];
    for image in sums.chunks_exact(per_image) {
        for (t, s) in total.iter_mut().zip(image) {
            *t += s;
        }
    }
    for o in 0..d.c_out {
        for k in 0..d.c_in * TAPS {
            gw[o * d.c_in * TAPS + k] = total[k * d.c_out + o] as f32;
        }
    }
    if let Some(gb) = gb {
        for (b, s) in gb.iter_mut().zip(&total[d.weight_len()..]) {
            *b = *s as f32;
        }
    }
}

/// Whether the CPU runs the kernels.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Dims, TAPS};
    use std::arch::x86_64::*;

    /// Pixels whose outputs are summed side by side: independent chains of
    /// fused multiply-adds, so each waits less on the one before.
    const BLOCK: usize = 8;

    /// One image's outputs from its padded plane.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn forward_image(
        d: &Dims,
        plane: &[f32],
        taps: &[f32],
        bias: &[f32],
        y: &mut [f32],
    ) {
        let whole = d.w - d.w % BLOCK;
        for row in 0..d.h {
            for o in (0..d.c_out).step_by(8) {
                let mut col = 0;
                while col < whole {
                    pixels::<BLOCK>(d, plane, taps, bias, y, row, col, o);
                    col += BLOCK;
                }
                for col in whole..d.w {
                    pixels::<1>(d, plane, taps, bias, y, row, col, o);
                }
            }
        }
    }

    /// Outputs o..o + 8 of `P` pixels from (row, col).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn pixels<const P: usize>(
        d: &Dims,
        plane: &[f32],
        taps: &[f32],
        bias: &[f32],
        y: &mut [f32],
        row: usize,
        col: usize,
        o: usize,
    ) {
        let (pw, c) = (d.padded_w(), d.c_in);
        let (p, t) = (plane.as_ptr(), taps.as_ptr());
        let mut acc = [_mm256_loadu_ps(bias.as_ptr().add(o)); P];
        for ci in 0..c {
            for ky in 0..3 {
                for kx in 0..3 {
                    let wv = _mm256_loadu_ps(t.add(((ci * 3 + ky) * 3 + kx) * d.c_out + o));
                    let src = p.add(((row + ky) * pw + col + kx) * c + ci);
                    for (j, a) in acc.iter_mut().enumerate() {
                        *a = _mm256_fmadd_ps(_mm256_set1_ps(*src.add(j * c)), wv, *a);
                    }
                }
            }
        }
        let out = y.as_mut_ptr().add((row * d.w + col) * d.c_out + o);
        for (j, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(out.add(j * d.c_out), *a);
        }
    }

    /// One image's gradient sums, added to `sums` ([c_in · 9, c_out] taps,
    /// then [c_out] bias).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn grad_image(d: &Dims, plane: &[f32], g: &[f32], sums: &mut [f64]) {
        let (pw, c) = (d.padded_w(), d.c_in);
        let (p, gp) = (plane.as_ptr(), g.as_ptr());
        let bias_at = d.weight_len();
        for o in (0..d.c_out).step_by(8) {
            for ci in 0..c {
                for row in 0..d.h {
                    let mut acc = [_mm256_setzero_ps(); TAPS];
                    let mut acc_bias = _mm256_setzero_ps();
                    for col in 0..d.w {
                        let gv = _mm256_loadu_ps(gp.add((row * d.w + col) * d.c_out + o));
                        if ci == 0 {
                            acc_bias = _mm256_add_ps(acc_bias, gv);
                        }
                        for (k, a) in acc.iter_mut().enumerate() {
                            let (ky, kx) = (k / 3, k % 3);
                            let xv = _mm256_set1_ps(*p.add(((row + ky) * pw + col + kx) * c + ci));
                            *a = _mm256_fmadd_ps(xv, gv, *a);
                        }
                    }
                    for (k, a) in acc.iter().enumerate() {
                        add_f64(sums.as_mut_ptr().add((ci * TAPS + k) * d.c_out + o), *a);
                    }
                    if ci == 0 {
                        add_f64(sums.as_mut_ptr().add(bias_at + o), acc_bias);
                    }
                }
            }
        }
    }

    /// Adds eight float32 lanes to eight float64 sums.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn add_f64(at: *mut f64, v: __m256) {
        let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
        let hi = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v));
        _mm256_storeu_pd(at, _mm256_add_pd(_mm256_loadu_pd(at), lo));
        _mm256_storeu_pd(at.add(4), _mm256_add_pd(_mm256_loadu_pd(at.add(4)), hi));
    }
}
