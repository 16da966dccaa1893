//! Training-time augmentation, applied to whole batches with torch's generator
//! (the caller wraps it in `rng::seeded`), never per sample; SOTA's crop and flip
//! of a CPU batch runs on the host (`crop`), the same draws and pixels.

use super::crop;
use crate::slices::{floats, is_host_float};
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Augmentation {
    #[default]
    None,
    /// Every point appears `copies` times per epoch, each with fresh N(0, std²)
    /// noise on every coordinate (the paper's toy augmentation, footnote 1);
    /// with `original`, once more as it is (as the authors' toy code keeps it).
    Noise {
        copies: i64,
        std: f64,
        original: bool,
    },
    /// torchvision's `RandomCrop(size, padding=pad)` then `RandomHorizontalFlip()`:
    /// zero-pad each side by `pad`, crop back to the original size at an offset
    /// uniform in [0, 2·pad] per axis, and mirror left-right with probability 1/2.
    /// Applied to pixel values in [0, 1] before normalisation, as torchvision does.
    CropFlip { pad: i64 },
}

impl Augmentation {
    /// How many times each example appears in one augmented epoch.
    pub fn copies(&self) -> i64 {
        match *self {
            Augmentation::Noise {
                copies, original, ..
            } => copies + i64::from(original),
            _ => 1,
        }
    }

    pub fn apply(&self, x: &Tensor) -> Tensor {
        match *self {
            Augmentation::None => x.shallow_clone(),
            Augmentation::Noise { std, .. } => x + x.randn_like() * std,
            Augmentation::CropFlip { pad } => crop_flip(x, pad),
        }
    }
}

/// Crop and flip a batch [b, c, h, w]: on the host for a contiguous float32
/// CPU batch (`crop`, the same draws and the same pixels), through tensor
/// operations elsewhere (a GPU batch).
fn crop_flip(x: &Tensor, pad: i64) -> Tensor {
    let (b, c, h, w) = x
        .size4()
        .expect("crop+flip is only attached to NCHW image data");
    if !is_host_float(x) {
        return crop_flip_ops(x, pad);
    }
    let draws = crop::draw(b, pad);
    let shape = [c as usize, h as usize, w as usize];
    let image = shape.iter().product::<usize>();
    let zeros = vec![0.0f32; shape[0]];
    // Safety: `is_host_float` holds; x is only read here.
    let src = unsafe { floats(x) };
    let mut out = Vec::with_capacity(src.len());
    for (k, pixels) in src.chunks_exact(image).enumerate() {
        crop::push(&mut out, pixels, (&shape, pad, &zeros), &draws, k);
    }
    Tensor::from_slice(&out).view([b, c, h, w])
}

/// The crop and flip as tensor operations on `x`'s device: pad, gather rows and
/// columns at the drawn offsets, mirror where drawn. `crop::draw` makes the same
/// draws on the CPU.
fn crop_flip_ops(x: &Tensor, pad: i64) -> Tensor {
    let (b, c, h, w) = x
        .size4()
        .expect("crop+flip is only attached to NCHW image data");
    let device = x.device();
    let padded = x.constant_pad_nd([pad, pad, pad, pad]);
    let offset = |n: i64| {
        Tensor::randint(2 * pad + 1, [b, 1], (Kind::Int64, device))
            + Tensor::arange(n, (Kind::Int64, device)).view([1, n])
    };
    let rows = offset(h); // [B, H]
    let cols = offset(w); // [B, W]
    let rows = rows
        .view([b, 1, h, 1])
        .expand([b, c, h, w + 2 * pad], false);
    let cropped = padded.gather(2, &rows, false);
    let cols = cols.view([b, 1, 1, w]).expand([b, c, h, w], false);
    let cropped = cropped.gather(3, &cols, false);
    let flip = Tensor::rand([b, 1, 1, 1], (Kind::Float, device)).lt(0.5);
    cropped.flip([3]).where_self(&flip, &cropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn crops_are_shifted_windows_of_the_zero_padded_image_maybe_mirrored() {
        let x =
            (Tensor::arange(2 * 3 * 8 * 8, (Kind::Float, Device::Cpu)) + 1.0).view([2, 3, 8, 8]);
        let padded = x.constant_pad_nd([2, 2, 2, 2]);
        for seed in 0..20 {
            let out = crate::rng::seeded(seed, || Augmentation::CropFlip { pad: 2 }.apply(&x));
            assert_eq!(out.size(), [2, 3, 8, 8]);
            for i in 0..2 {
                let found = (0..=4).any(|dy| {
                    (0..=4).any(|dx| {
                        let win = padded.get(i).narrow(1, dy, 8).narrow(2, dx, 8);
                        out.get(i).equal(&win) || out.get(i).equal(&win.flip([2]))
                    })
                });
                assert!(
                    found,
                    "seed {seed}, image {i} is no crop of the padded image"
                );
            }
        }
        let a = crate::rng::seeded(7, || Augmentation::CropFlip { pad: 2 }.apply(&x));
        let b = crate::rng::seeded(7, || Augmentation::CropFlip { pad: 2 }.apply(&x));
        assert!(a.equal(&b), "seeded, so repeatable");
    }

    #[test]
    fn the_host_crop_is_the_tensor_operations_bit_for_bit() {
        let x = Tensor::rand([64, 3, 9, 7], (Kind::Float, Device::Cpu));
        for (seed, pad) in [(0, 4), (1, 2), (2, 1), (3, 5)] {
            let host = crate::rng::seeded(seed, || crop_flip(&x, pad));
            let ops = crate::rng::seeded(seed, || crop_flip_ops(&x, pad));
            assert!(host.equal(&ops), "seed {seed}, pad {pad}");
        }
        // A batch the host cannot read in place takes the operations.
        let strided = x.transpose(2, 3);
        let a = crate::rng::seeded(9, || crop_flip(&strided, 2));
        let b = crate::rng::seeded(9, || crop_flip_ops(&strided, 2));
        assert!(a.equal(&b));
    }

    #[test]
    fn offsets_and_flips_are_uniform() {
        // A bright pixel at the centre shows each crop's offset; a dimmer one to
        // its right shows whether the crop was mirrored (it is then on the left).
        let n = 6000;
        let x = Tensor::zeros([n, 1, 9, 9], (Kind::Float, Device::Cpu));
        let _ = x.narrow(2, 4, 1).narrow(3, 4, 1).fill_(1.0);
        let _ = x.narrow(2, 4, 1).narrow(3, 5, 1).fill_(0.5);
        let out = crate::rng::seeded(3, || Augmentation::CropFlip { pad: 1 }.apply(&x));
        let flat = out.view([n, 81]);
        let at = Vec::<i64>::try_from(flat.argmax(1, false)).unwrap();
        let values = Vec::<f32>::try_from(flat.flatten(0, -1)).unwrap();
        let (mut dy, mut dx, mut flips) = ([0usize; 3], [0usize; 3], 0usize);
        let mut joint = [[0usize; 2]; 3];
        for (i, &p) in at.iter().enumerate() {
            let (row, col) = (p / 9, p % 9);
            let pixel = |c: i64| values[i * 81 + (row * 9 + c) as usize];
            // The bright pixel sits at padded column 5; a crop from column k puts
            // it at 5 − k, and mirroring at 8 − (5 − k).
            let flipped = if col < 8 && pixel(col + 1) == 0.5 {
                false
            } else {
                assert!(col > 0 && pixel(col - 1) == 0.5, "image {i}: no marker");
                true
            };
            let k = if flipped { col - 3 } else { 5 - col };
            dy[(5 - row) as usize] += 1;
            dx[k as usize] += 1;
            flips += usize::from(flipped);
            joint[k as usize][usize::from(flipped)] += 1;
        }
        let share = |c: usize| c as f64 / n as f64;
        for c in dy.iter().chain(&dx) {
            assert!(
                (share(*c) - 1.0 / 3.0).abs() < 0.03,
                "vertical {dy:?}, horizontal {dx:?}"
            );
        }
        assert!((share(flips) - 0.5).abs() < 0.03, "{flips} of {n} mirrored");
        // Offsets and mirroring are drawn independently.
        for c in joint.iter().flatten() {
            assert!((share(*c) - 1.0 / 6.0).abs() < 0.03, "{joint:?}");
        }
    }
}
