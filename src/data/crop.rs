//! The random crop and flip on the host: the offsets and flips `augment`'s
//! libtorch version draws (the same torch RNG calls, in the same order), applied
//! to images in memory. Bit for bit the same batch as the tensor operations
//! (pure data movement) without their dozen dispatches, gathers and where.
//!
//! Used by `augment` for batches on the CPU (pixels in [0, 1], padding 0), and by
//! the dense engine on its kept split of model inputs, where a pixel of the zero
//! padding is the normalised zero, (0 − mean) / std, as libtorch computes it
//! after padding (tests/dense.rs).

use tch::{Device, Kind, Tensor};

/// One batch's draws: a crop offset in 0..=2·pad per row and column, and
/// whether each image is mirrored.
pub struct Draws {
    rows: Vec<i64>,
    cols: Vec<i64>,
    flips: Vec<i64>,
}

/// The draws `augment`'s crop and flip makes for a batch of `len` images, from
/// torch's CPU generator as the caller seeded it.
pub fn draw(len: i64, pad: i64) -> Draws {
    let offsets = || Tensor::randint(2 * pad + 1, [len, 1], (Kind::Int64, Device::Cpu));
    let (rows, cols) = (offsets(), offsets());
    let flips = Tensor::rand([len, 1, 1, 1], (Kind::Float, Device::Cpu))
        .lt(0.5)
        .to_kind(Kind::Int64);
    let host = |t: Tensor| Vec::<i64>::try_from(t.flatten(0, -1)).unwrap_or_default();
    Draws {
        rows: host(rows),
        cols: host(cols),
        flips: host(flips),
    }
}

/// The value of a padded pixel per channel: zero normalised, in float32 as the
/// libtorch path's `sub_` and `div_` compute it.
pub fn fill(mean: &[f64], std: &[f64]) -> Vec<f32> {
    mean.iter()
        .zip(std)
        .map(|(&m, &s)| (0.0f32 - m as f32) / s as f32)
        .collect()
}

/// Appends image `k` of the batch, `src` ([c, h, w] model inputs), cropped from
/// its version padded by `pad` at the drawn offsets and mirrored when drawn.
pub fn push(
    out: &mut Vec<f32>,
    src: &[f32],
    (shape, pad, fill): (&[usize; 3], i64, &[f32]),
    draws: &Draws,
    k: usize,
) {
    let [c, h, w] = *shape;
    let (dy, dx, flip) = (
        draws.rows[k] - pad,
        draws.cols[k] - pad,
        draws.flips[k] != 0,
    );
    for (ch, &pad_value) in fill.iter().enumerate().take(c) {
        let plane = &src[ch * h * w..(ch + 1) * h * w];
        for y in 0..h as i64 {
            let sy = y + dy;
            if sy < 0 || sy >= h as i64 {
                out.extend(std::iter::repeat_n(pad_value, w));
                continue;
            }
            let line = &plane[sy as usize * w..(sy as usize + 1) * w];
            out.extend((0..w as i64).map(|x| {
                let sx = if flip { w as i64 - 1 - x } else { x } + dx;
                if sx < 0 || sx >= w as i64 {
                    pad_value
                } else {
                    line[sx as usize]
                }
            }));
        }
    }
}
