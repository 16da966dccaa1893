//! The 3×3 convolution (stride 1, zero padding 1) from a few input channels to
//! a multiple of eight output channels, forward and weight gradient, on float32
//! images in any layout with a channels-last output (module docs in `mod.rs`).
//!
//! Each image is first copied into a zero-bordered [h + 2, w + 2, c_in] scratch
//! plane, so that every tap is a plain load. Outputs are vectors of eight output
//! channels. libtorch's threads share the images.
//!
//! The pooled variants (`forward_pooled`, `weight_grad_pooled`) are the same
//! kernels with `pool_relu`'s after them, one image at a time: the image's
//! full-size output and its gradient live in a scratch buffer that stays in
//! the core's cache, where the two-node path writes and reads them for the
//! whole batch (4 MB for the cnn at width 0.25). Same functions, same order:
//! the same floats.

use crate::models::pool_relu::kernel::{self as pool, Dims as PoolDims};
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
    /// One image's output as the pool's input: [1, h, w, c_out].
    fn one_image_pool(&self) -> PoolDims {
        PoolDims {
            n: 1,
            c: self.c_out,
            h: self.h,
            w: self.w,
        }
    }
    /// Pooled output values of one image, [h / 2, w / 2, c_out].
    pub fn pooled_image_len(&self) -> usize {
        self.one_image_pool().output_len()
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

/// `f(images, scratch plane, scratch of image_len values)` over blocks of
/// images on libtorch's threads, the plane zeroed once per block.
fn for_images(d: &Dims, image_len: usize, f: impl Fn(Range<usize>, &mut [f32], &mut [f32]) + Sync) {
    parallel_for(d.n, 1, |images| {
        let mut plane = vec![0f32; d.padded_len()];
        let mut image = vec![0f32; image_len];
        f(images, &mut plane, &mut image)
    });
}

/// One image's full-size output, [h, w, c_out]: the pooled variants' scratch.
fn image_len(d: &Dims) -> usize {
    d.pixels() * d.c_out
}

/// y = conv(x, weight) + bias, channels-last: each output the bias (or 0)
/// plus the taps in (input channel, row, column) order, one fused
/// multiply-add each.
///
/// # Safety
/// The CPU has AVX2 and FMA (`available`); the slices hold `d`'s sizes.
#[cfg(target_arch = "x86_64")]
pub unsafe fn forward(d: Dims, x: &[f32], weight: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    assert!(y.len() == d.output_len());
    let (taps, bias) = forward_weights(&d, x, weight, bias);
    let out = Parts::new(y);
    let per_image = d.pixels() * d.c_out;
    for_images(&d, 0, |images, plane, _| {
        // Safety: the blocks' images are disjoint.
        let y = unsafe { out.part(images.start * per_image..images.end * per_image) };
        for (k, i) in images.enumerate() {
            pad_image(&d, x, i, plane);
            let y = &mut y[k * per_image..(k + 1) * per_image];
            // Safety: the caller's promise; `plane` and `y` have one image's sizes.
            unsafe { avx2::forward_image(&d, plane, &taps, &bias, y) };
        }
    });
}

/// relu(max_pool2d(conv(x, weight) + bias, 2)), channels-last [n, h / 2,
/// w / 2, c_out] in `y`, and unless `mask` is empty each maximum's slot:
/// `forward`'s outputs through `pool_relu`'s forward, image by image.
///
/// # Safety
/// As `forward`; h and w are at least 2.
#[cfg(target_arch = "x86_64")]
pub unsafe fn forward_pooled(
    d: Dims,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    mask: &mut [u8],
) {
    let per_image = d.pooled_image_len();
    assert!(d.h >= 2 && d.w >= 2 && y.len() == d.n * per_image);
    assert!(mask.is_empty() || mask.len() == y.len());
    let (taps, bias) = forward_weights(&d, x, weight, bias);
    let keep_mask = !mask.is_empty();
    let (ys, masks) = (Parts::new(y), Parts::new(mask));
    for_images(&d, image_len(&d), |images, plane, conv| {
        let at = images.start * per_image..images.end * per_image;
        // Safety: the blocks' images are disjoint.
        let y = unsafe { ys.part(at.clone()) };
        let mask = if keep_mask {
            // Safety: as above.
            unsafe { masks.part(at) }
        } else {
            &mut []
        };
        for (k, i) in images.enumerate() {
            pad_image(&d, x, i, plane);
            // Safety: the caller's promise; `plane` and `conv` have one image's sizes.
            unsafe { avx2::forward_image(&d, plane, &taps, &bias, conv) };
            let at = k * per_image..(k + 1) * per_image;
            let mask = if keep_mask {
                &mut mask[at.clone()]
            } else {
                &mut []
            };
            pool::forward_rows(d.one_image_pool(), 0..d.h / 2, conv, &mut y[at], mask);
        }
    });
}

/// The weight as the forward reads it (`taps_by_channel`) and the bias (zeros
/// for none), after checking the sizes.
fn forward_weights(
    d: &Dims,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>) {
    assert!(x.len() >= d.input_span() && weight.len() == d.weight_len());
    assert!(d.c_out.is_multiple_of(8));
    assert!(bias.is_none_or(|b| b.len() == d.c_out));
    let bias = bias.map_or_else(|| vec![0f32; d.c_out], <[f32]>::to_vec);
    (taps_by_channel(d, weight), bias)
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
    assert!(g.len() == d.output_len());
    let pixels = d.pixels() * d.c_out;
    gradient_sums(&d, x, gw, gb, 0, |i, _| {
        Some(&g[i * pixels..(i + 1) * pixels])
    });
}

/// `weight_grad` of `forward_pooled`'s convolution from the pooled output's
/// gradient `g`, its output `y` and mask: each image's full-size gradient is
/// `pool_relu`'s backward of them, in the image scratch.
///
/// # Safety
/// As `forward_pooled`.
#[cfg(target_arch = "x86_64")]
pub unsafe fn weight_grad_pooled(
    d: Dims,
    x: &[f32],
    (g, y, mask): (&[f32], &[f32], &[u8]),
    gw: &mut [f32],
    gb: Option<&mut [f32]>,
) {
    let per_image = d.pooled_image_len();
    assert!(d.h >= 2 && d.w >= 2 && g.len() == d.n * per_image);
    assert!(y.len() == g.len() && mask.len() == g.len());
    let (pd, rows) = (d.one_image_pool(), 0..d.h / 2);
    gradient_sums(&d, x, gw, gb, image_len(&d), |i, image| {
        let at = i * per_image..(i + 1) * per_image;
        pool::backward_rows(
            pd,
            rows.clone(),
            &g[at.clone()],
            &y[at.clone()],
            &mask[at],
            image,
        );
        None
    });
}

/// The gradients' sums over the images, image `i`'s output gradient
/// [h, w, c_out] from `grad(i, scratch of image_len values)`: the slice it
/// returns, or the scratch it wrote.
#[cfg(target_arch = "x86_64")]
unsafe fn gradient_sums<'g>(
    d: &Dims,
    x: &[f32],
    gw: &mut [f32],
    gb: Option<&mut [f32]>,
    image_len: usize,
    grad: impl Fn(usize, &mut [f32]) -> Option<&'g [f32]> + Sync,
) {
    assert!(x.len() >= d.input_span());
    assert!(gw.len() == d.weight_len() && d.c_out.is_multiple_of(8));
    assert!(gb.as_ref().is_none_or(|b| b.len() == d.c_out));
    // Per image: the taps' sums [c_in · 9, c_out], then the bias's [c_out].
    let per_image = d.weight_len() + d.c_out;
    let mut sums = vec![0f64; d.n * per_image];
    let parts = Parts::new(&mut sums);
    for_images(d, image_len, |images, plane, image| {
        // Safety: the blocks' images are disjoint.
        let sums = unsafe { parts.part(images.start * per_image..images.end * per_image) };
        for (k, i) in images.enumerate() {
            pad_image(d, x, i, plane);
            let g = match grad(i, image) {
                Some(g) => g,
                None => &*image,
            };
            let sums = &mut sums[k * per_image..(k + 1) * per_image];
            // Safety: the caller's promise; the slices have one image's sizes.
            unsafe { avx2::grad_image(d, plane, g, sums) };
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
