//! The dense engine's matrix products: matrixmultiply's sgemm, and for small
//! products a kernel of its own that computes the same floats faster.
//!
//! Why a kernel: at Figure 1's batch of 10 rows sgemm spends as long packing its
//! operands into panels (and copying edge tiles through a buffer) as multiplying;
//! a step's products took about 20 µs where the arithmetic needs a few. The
//! kernel reads the operands in place and keeps a block of the result in
//! registers (docs/PERFORMANCE.md, "Figure 1's products").
//!
//! Why the same floats: sgemm takes each element's sum over k in order, one
//! fused multiply-add per term from zero, up to its depth block of
//! `SGEMM_DEPTH` terms, then adds beta·c (its AVX-512 and AVX2+FMA kernels
//! alike). The kernel does exactly that, so swapping it in changes no result
//! of any run: it is used only where that order holds (k within one depth
//! block, beta 0 or 1) and the CPU has FMA.

/// sgemm's depth block (matrixmultiply's `S_KC`): sums over more terms are
/// split into blocks added into c in turn, an order the kernel does not follow.
const SGEMM_DEPTH: usize = 256;

/// Products with at most this many multiply-adds go to the kernel: above it
/// sgemm's packing pays for itself (an mlp's 64×512×512 step ran 1.6× slower
/// in the kernel, its 10×64×512 one 1.5× faster).
const SMALL: usize = 1 << 20;

/// Scratch the kernel keeps between products: b transposed when its rows are
/// strided.
#[derive(Default)]
pub(super) struct Scratch {
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    bt: Vec<f32>,
}

/// c = a·b + beta·c for a [m, k] (strides `a_rs`, `a_cs`), b [k, n] (strides
/// `b_rs`, `b_cs`) and dense c [m, n]; beta 0 or 1.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
    beta: f32,
    c: &mut [f32],
    scratch: &mut Scratch,
) {
    let reach = |rs: usize, cs: usize, rows: usize, cols: usize| {
        (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs + 1
    };
    assert!(a.len() >= reach(a_rs, a_cs, m, k) && b.len() >= reach(b_rs, b_cs, k, n));
    assert!(c.len() >= m * n);
    assert!(beta == 0.0 || beta == 1.0, "beta is 0 or 1");
    #[cfg(target_arch = "x86_64")]
    if m > 0 && n > 0 && k > 0 && small(m, k, n) && fma::available() {
        let (b, b_rs) = if b_cs == 1 {
            (b, b_rs)
        } else if b_rs == 1 {
            // b's columns are contiguous (b = Wᵀ of a weight W [n, k]): make
            // them rows, as sgemm's packing does.
            // Grown only: the layers' sizes alternate, and zeroing on every
            // regrowth cost more than the transpose.
            if scratch.bt.len() < k * n {
                scratch.bt.resize(k * n, 0.0);
            }
            let bt = &mut scratch.bt[..k * n];
            // Safety: the checks above and here; `available` saw AVX2 and FMA.
            unsafe { fma::transpose(n, k, b, b_cs, bt) };
            (&*bt, n)
        } else {
            return sgemm((m, k, n), a, (a_rs, a_cs), b, (b_rs, b_cs), beta, c);
        };
        // Safety: a, b and c span the products' elements (asserts above); the
        // CPU has AVX2 and FMA (`available`).
        unsafe { fma::rows((m, k, n), a, (a_rs, a_cs), b, b_rs, beta == 1.0, c) };
        return;
    }
    // Elsewhere every product is sgemm's (the kernel is x86-64's).
    #[cfg(not(target_arch = "x86_64"))]
    let _ = scratch;
    sgemm((m, k, n), a, (a_rs, a_cs), b, (b_rs, b_cs), beta, c);
}

/// Whether the kernel takes a product of these dimensions.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn small(m: usize, k: usize, n: usize) -> bool {
    k <= SGEMM_DEPTH && m * k * n <= SMALL
}

/// matrixmultiply's blocked sgemm; `gemm` checked the bounds.
fn sgemm(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
    beta: f32,
    c: &mut [f32],
) {
    // Safety: `gemm`'s asserts keep every index sgemm reads or writes in bounds.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            a_rs as isize,
            a_cs as isize,
            b.as_ptr(),
            b_rs as isize,
            b_cs as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

#[cfg(target_arch = "x86_64")]
mod fma {
    use std::arch::x86_64::*;

    pub(super) fn available() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    /// Lanes below `w` set.
    #[inline(always)]
    unsafe fn lanes(w: usize) -> __m256i {
        let index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(w as i32), index)
    }

    /// c[m, n] = (c +) Σ_q a[., q]·b[q, .], each sum from zero in q order with
    /// one FMA per term, then added to c when `add`: sgemm's order. Written
    /// with pointer steps and no closures, so that the dev profile (opt-level
    /// 2, debug assertions) runs it nearly as fast as release.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; a spans [m, k] at its strides, b [k, n] at row
    /// stride `b_rs` with contiguous rows, c [m, n] contiguous.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn rows(
        (m, k, n): (usize, usize, usize),
        a: &[f32],
        (a_rs, a_cs): (usize, usize),
        b: &[f32],
        b_rs: usize,
        add: bool,
        c: &mut [f32],
    ) {
        let (a, b, c) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
        // Two rows of c at a time: two rows of 32 columns keep 8 sums, the 4
        // loaded values of b and the broadcasts in the 16 AVX2 registers (more
        // rows spilled and measured slower). A block's missing second row
        // repeats the first and is not stored.
        for p in (0..m).step_by(2) {
            let second = p + 1 < m;
            let a0 = a.add(p * a_rs);
            let a1 = if second { a0.add(a_rs) } else { a0 };
            let (c0, c1) = (c.add(p * n), c.add((p + second as usize) * n));
            let mut i = 0;
            while i + 32 <= n {
                let z = _mm256_setzero_ps();
                let (mut s00, mut s01, mut s02, mut s03) = (z, z, z, z);
                let (mut s10, mut s11, mut s12, mut s13) = (z, z, z, z);
                let (mut x0, mut x1, mut bq) = (a0, a1, b.add(i));
                for _ in 0..k {
                    let (b0, b1) = (_mm256_loadu_ps(bq), _mm256_loadu_ps(bq.add(8)));
                    let (b2, b3) = (_mm256_loadu_ps(bq.add(16)), _mm256_loadu_ps(bq.add(24)));
                    let (v0, v1) = (_mm256_broadcast_ss(&*x0), _mm256_broadcast_ss(&*x1));
                    s00 = _mm256_fmadd_ps(v0, b0, s00);
                    s01 = _mm256_fmadd_ps(v0, b1, s01);
                    s02 = _mm256_fmadd_ps(v0, b2, s02);
                    s03 = _mm256_fmadd_ps(v0, b3, s03);
                    s10 = _mm256_fmadd_ps(v1, b0, s10);
                    s11 = _mm256_fmadd_ps(v1, b1, s11);
                    s12 = _mm256_fmadd_ps(v1, b2, s12);
                    s13 = _mm256_fmadd_ps(v1, b3, s13);
                    (x0, x1, bq) = (x0.add(a_cs), x1.add(a_cs), bq.add(b_rs));
                }
                let full = _mm256_set1_epi32(-1);
                for (j, (s0, s1)) in [(s00, s10), (s01, s11), (s02, s12), (s03, s13)]
                    .into_iter()
                    .enumerate()
                {
                    put(c0.add(i + 8 * j), s0, full, add);
                    if second {
                        put(c1.add(i + 8 * j), s1, full, add);
                    }
                }
                i += 32;
            }
            while i < n {
                let w = (n - i).min(8);
                let mask = lanes(w);
                let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
                let (mut x0, mut x1, mut bq) = (a0, a1, b.add(i));
                for _ in 0..k {
                    let bv = _mm256_maskload_ps(bq, mask);
                    s0 = _mm256_fmadd_ps(_mm256_broadcast_ss(&*x0), bv, s0);
                    s1 = _mm256_fmadd_ps(_mm256_broadcast_ss(&*x1), bv, s1);
                    (x0, x1, bq) = (x0.add(a_cs), x1.add(a_cs), bq.add(b_rs));
                }
                put(c0.add(i), s0, mask, add);
                if second {
                    put(c1.add(i), s1, mask, add);
                }
                i += w;
            }
        }
    }

    /// Stores the lanes of `sum` in `mask` at `at`, added to what is there when `add`.
    #[inline(always)]
    unsafe fn put(at: *mut f32, sum: __m256, mask: __m256i, add: bool) {
        let v = if add {
            _mm256_add_ps(_mm256_maskload_ps(at, mask), sum)
        } else {
            sum
        };
        _mm256_maskstore_ps(at, mask, v);
    }

    /// dst [cols, rows] = src [rows, cols]ᵀ, src at row stride `rs`: 8×8 blocks
    /// transposed in registers, the edges one by one.
    ///
    /// # Safety
    /// The CPU has AVX2; src spans [rows, cols] at row stride `rs`, dst holds
    /// rows·cols values.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn transpose(
        rows: usize,
        cols: usize,
        src: &[f32],
        rs: usize,
        dst: &mut [f32],
    ) {
        let (full_rows, full_cols) = (rows / 8 * 8, cols / 8 * 8);
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
        for r0 in (0..full_rows).step_by(8) {
            for c0 in (0..full_cols).step_by(8) {
                let t =
                    [0, 1, 2, 3, 4, 5, 6, 7].map(|r| _mm256_loadu_ps(s.add((r0 + r) * rs + c0)));
                let u = [
                    _mm256_unpacklo_ps(t[0], t[1]),
                    _mm256_unpackhi_ps(t[0], t[1]),
                    _mm256_unpacklo_ps(t[2], t[3]),
                    _mm256_unpackhi_ps(t[2], t[3]),
                    _mm256_unpacklo_ps(t[4], t[5]),
                    _mm256_unpackhi_ps(t[4], t[5]),
                    _mm256_unpacklo_ps(t[6], t[7]),
                    _mm256_unpackhi_ps(t[6], t[7]),
                ];
                let v = [
                    _mm256_shuffle_ps::<0x44>(u[0], u[2]),
                    _mm256_shuffle_ps::<0xEE>(u[0], u[2]),
                    _mm256_shuffle_ps::<0x44>(u[1], u[3]),
                    _mm256_shuffle_ps::<0xEE>(u[1], u[3]),
                    _mm256_shuffle_ps::<0x44>(u[4], u[6]),
                    _mm256_shuffle_ps::<0xEE>(u[4], u[6]),
                    _mm256_shuffle_ps::<0x44>(u[5], u[7]),
                    _mm256_shuffle_ps::<0xEE>(u[5], u[7]),
                ];
                for j in 0..4 {
                    let (lo, hi) = (
                        _mm256_permute2f128_ps::<0x20>(v[j], v[j + 4]),
                        _mm256_permute2f128_ps::<0x31>(v[j], v[j + 4]),
                    );
                    _mm256_storeu_ps(d.add((c0 + j) * rows + r0), lo);
                    _mm256_storeu_ps(d.add((c0 + j + 4) * rows + r0), hi);
                }
            }
        }
        for r in 0..rows {
            let from = if r < full_rows { full_cols } else { 0 };
            for col in from..cols {
                *d.add(col * rows + r) = *s.add(r * rs + col);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// Every layout the engine multiplies in (pass.rs): a row-major times b
    /// transposed (forward), a transposed times b (weight gradients), both
    /// row-major (input gradients), with beta 0 and 1.
    fn layouts(m: usize, k: usize, n: usize) -> [((usize, usize), (usize, usize)); 3] {
        [((k, 1), (1, k)), ((1, m), (n, 1)), ((k, 1), (n, 1))]
    }

    #[test]
    fn small_products_are_sgemm_bit_for_bit() {
        #[cfg(target_arch = "x86_64")]
        assert!(
            fma::available(),
            "this CPU lacks AVX2 or FMA, so the kernel these products would use cannot be checked"
        );
        let mut scratch = Scratch::default();
        let shapes = [
            (10, 2, 100),
            (10, 100, 100),
            (10, 100, 2),
            (100, 10, 100),
            (2, 10, 100),
            (100, 100, 100),
            (7, 33, 19),
            (1, 1, 1),
            (3, 256, 41),
            (64, 10, 512),
        ];
        for (i, &(m, k, n)) in shapes.iter().enumerate() {
            assert!(small(m, k, n), "{m}x{k}x{n} takes the kernel");
            let a = values(m * k, i as u64);
            let b = values(k * n, 100 + i as u64);
            let c0 = values(m * n, 200 + i as u64);
            for (a_s, b_s) in layouts(m, k, n) {
                for beta in [0.0, 1.0] {
                    let (mut want, mut got) = (c0.clone(), c0.clone());
                    sgemm((m, k, n), &a, a_s, &b, b_s, beta, &mut want);
                    gemm((m, k, n), &a, a_s, &b, b_s, beta, &mut got, &mut scratch);
                    let same = want
                        .iter()
                        .zip(&got)
                        .all(|(w, g)| w.to_bits() == g.to_bits());
                    assert!(same, "{m}x{k}x{n}, strides {a_s:?} {b_s:?}, beta {beta}");
                }
            }
        }
    }

    #[test]
    fn large_or_deep_products_stay_with_sgemm() {
        assert!(!small(64, 512, 512), "an mlp's hidden layer");
        assert!(!small(10, 257, 10), "deeper than sgemm's depth block");
        let (m, k, n) = (64, 300, 40);
        let (a, b) = (values(m * k, 1), values(k * n, 2));
        let (mut want, mut got) = (vec![0.0; m * n], vec![0.0; m * n]);
        sgemm((m, k, n), &a, (k, 1), &b, (1, k), 0.0, &mut want);
        gemm(
            (m, k, n),
            &a,
            (k, 1),
            &b,
            (1, k),
            0.0,
            &mut got,
            &mut Scratch::default(),
        );
        assert_eq!(want, got);
    }
}
