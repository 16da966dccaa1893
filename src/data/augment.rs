//! Training-time augmentation, applied to whole batches on the device with torch's
//! generator (the caller wraps it in `rng::seeded`), never per sample.

use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Augmentation {
    #[default]
    None,
    /// Every point appears `copies` times per epoch, each with fresh N(0, std²)
    /// noise on every coordinate (the paper's toy augmentation, footnote 1).
    Noise { copies: i64, std: f64 },
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
            Augmentation::Noise { copies, .. } => copies,
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

fn crop_flip(x: &Tensor, pad: i64) -> Tensor {
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
    fn offsets_and_flips_are_uniform() {
        // A single bright pixel at the centre shows the offset of each crop.
        let x = Tensor::zeros([4000, 1, 9, 9], (Kind::Float, Device::Cpu));
        let _ = x.narrow(2, 4, 1).narrow(3, 4, 1).fill_(1.0);
        let out = crate::rng::seeded(3, || Augmentation::CropFlip { pad: 1 }.apply(&x));
        let flat = out.view([4000, 81]).argmax(1, false);
        let rows = Vec::<i64>::try_from(flat.divide_scalar_mode(9, "floor")).unwrap();
        let mut counts = [0usize; 3];
        for r in rows {
            counts[(r - 3) as usize] += 1;
        }
        for c in counts {
            assert!((c as f64 / 4000.0 - 1.0 / 3.0).abs() < 0.04, "{counts:?}");
        }
    }
}
