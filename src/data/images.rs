//! Decoded images in host memory (uint8 NCHW pixels and int64 labels) as every
//! loader produces them, their per-channel statistics, and the step to a
//! [`Dataset`] on the run's device.

use super::names::Name;
use super::{Augmentation, Dataset, Inputs, Split};
use crate::results::Row;
use anyhow::{bail, Result};
use tch::{Device, Tensor};

#[derive(Debug, Clone, PartialEq)]
pub struct Images {
    /// n·c·h·w bytes, image after image, each channel plane row-major.
    pub pixels: Vec<u8>,
    pub labels: Vec<i64>,
    /// [c, h, w]
    pub shape: [usize; 3],
}

impl Images {
    pub fn new(shape: [usize; 3]) -> Images {
        Images {
            pixels: Vec::new(),
            labels: Vec::new(),
            shape,
        }
    }

    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Appends `other`, which must have the same image shape.
    pub fn extend(&mut self, other: Images) {
        debug_assert_eq!(self.shape, other.shape);
        self.pixels.extend_from_slice(&other.pixels);
        self.labels.extend(other.labels);
    }

    /// Fails on the first label outside `0..classes`, naming `source`.
    pub fn check_labels(&self, classes: usize, source: &str) -> Result<()> {
        if let Some((i, l)) = self
            .labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l < 0 || l >= classes as i64)
        {
            bail!("{source}: example {i} has label {l}, but there are {classes} classes");
        }
        Ok(())
    }

    /// Each image with a zero border of `pad` pixels on every side.
    pub fn padded(&self, pad: usize) -> Images {
        if pad == 0 {
            return self.clone();
        }
        let [c, h, w] = self.shape;
        let (ph, pw) = (h + 2 * pad, w + 2 * pad);
        let mut pixels = vec![0u8; self.len() * c * ph * pw];
        for (src, dst) in self.pixels.chunks_exact(w).zip((0..).map(|row: usize| {
            let plane = row / h;
            let y = row % h;
            plane * ph * pw + (y + pad) * pw + pad
        })) {
            pixels[dst..dst + w].copy_from_slice(src);
        }
        Images {
            pixels,
            labels: self.labels.clone(),
            shape: [c, ph, pw],
        }
    }

    /// Per-channel mean and population standard deviation (numpy's default,
    /// ddof = 0) of the pixel values scaled to [0, 1], over every pixel of every
    /// image. Sums are exact integers, so the result does not depend on order.
    pub fn channel_stats(&self) -> (Vec<f64>, Vec<f64>) {
        let [c, h, w] = self.shape;
        let plane = h * w;
        let mut sum = vec![0u128; c];
        let mut sq = vec![0u128; c];
        for (i, p) in self.pixels.chunks_exact(plane).enumerate() {
            let (s, q) = p.iter().fold((0u64, 0u64), |(s, q), &v| {
                (s + u64::from(v), q + u64::from(v) * u64::from(v))
            });
            sum[i % c] += u128::from(s);
            sq[i % c] += u128::from(q);
        }
        let n = (self.len() * plane) as u128;
        let mut mean = Vec::with_capacity(c);
        let mut std = Vec::with_capacity(c);
        for ch in 0..c {
            if n == 0 {
                mean.push(0.0);
                std.push(1.0);
                continue;
            }
            // var = (n·Σv² − (Σv)²) / n², exact in integers before the division.
            let var = (n * sq[ch] - sum[ch] * sum[ch]) as f64 / (n as f64 * n as f64);
            mean.push(sum[ch] as f64 / n as f64 / 255.0);
            std.push(var.sqrt() / 255.0);
        }
        (mean, std)
    }

    /// Per-channel mean and the mean over images of each image's sample std
    /// (Bessel-corrected over its h·w pixels), pixel values scaled to [0, 1]: how
    /// the CIFAR-10 constants of the paper's code were computed (torch's
    /// `x.std(dim=(2, 3)).mean(dim=0)` on ToTensor images, which reproduces
    /// 0.2023, 0.1994, 0.2010 on CIFAR-10).
    pub fn per_image_stats(&self) -> (Vec<f64>, Vec<f64>) {
        let [c, h, w] = self.shape;
        let plane = h * w;
        let (mean, _) = self.channel_stats();
        let mut std = vec![0.0; c];
        let images = self.len();
        if images == 0 || plane < 2 {
            return (mean, vec![1.0; c]);
        }
        for (i, p) in self.pixels.chunks_exact(plane).enumerate() {
            let (s, q) = p.iter().fold((0u64, 0u64), |(s, q), &v| {
                (s + u64::from(v), q + u64::from(v) * u64::from(v))
            });
            let n = plane as u128;
            // Σ(v − v̄)² = (n·Σv² − (Σv)²) / n, exact in integers before the division.
            let ss = (n * u128::from(q) - u128::from(s) * u128::from(s)) as f64 / n as f64;
            std[i % c] += (ss / (plane - 1) as f64).sqrt() / 255.0;
        }
        for v in &mut std {
            *v /= images as f64;
        }
        (mean, std)
    }

    /// The images as a uint8 [n, c, h, w] tensor and int64 labels on `device`.
    pub fn to_split(&self, device: Device) -> Split {
        let [c, h, w] = self.shape;
        let n = self.len() as i64;
        Split {
            x: Tensor::from_slice(&self.pixels)
                .view([n, c as i64, h as i64, w as i64])
                .to_device(device),
            y: Tensor::from_slice(&self.labels).to_device(device),
        }
    }
}

/// What a loader reads from disk.
#[derive(Debug)]
pub struct Loaded {
    pub train: Images,
    pub test: Images,
    pub classes: Vec<String>,
    /// Result columns particular to the data set (format, label kind, padding).
    pub describe: Row,
}

/// How image inputs are normalised per channel, (x − mean) / std with x in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalize {
    /// Left in [0, 1] (mean 0, std 1).
    None,
    /// The training split's mean and population std over every pixel.
    Population,
    /// As the paper's code: CIFAR-10's published constants ([`CIFAR10_PAPER`]);
    /// other data sets the same statistic computed on their training split
    /// ([`Images::per_image_stats`]).
    Paper,
}

/// The constants of the authors' CIFAR-10 code (`transforms.Normalize` in
/// cifar10_dataset.py): the training split's mean and the mean over images of
/// each image's own std (not the population std, 0.2470, 0.2435, 0.2616).
pub const CIFAR10_PAPER: ([f64; 3], [f64; 3]) =
    ([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]);

impl Normalize {
    /// Result columns: whether inputs are normalised and, for `Paper`, by which
    /// constants (so a paper-scale run records them).
    fn columns(self, mean: &[f64], std: &[f64]) -> Vec<(String, crate::results::Value)> {
        use crate::results::Value;
        let list =
            |v: &[f64]| Value::Str(v.iter().map(f64::to_string).collect::<Vec<_>>().join(","));
        let mut cols = vec![("normalize".into(), Value::Bool(self != Normalize::None))];
        if self == Normalize::Paper {
            cols.push(("normalize_stats".into(), Value::Str("paper".into())));
            cols.push(("normalize_mean".into(), list(mean)));
            cols.push(("normalize_std".into(), list(std)));
        }
        cols
    }
}

/// A loaded image data set on `device`, its inputs normalised as `normalize` says.
/// Training uses random crops with 4-pixel zero padding and horizontal flips, as
/// the paper's code.
pub fn dataset(name: &str, loaded: Loaded, normalize: Normalize, device: Device) -> Dataset {
    let c = loaded.train.shape[0];
    let (mean, std) = match normalize {
        Normalize::None => (vec![0.0; c], vec![1.0; c]),
        Normalize::Population => loaded.train.channel_stats(),
        Normalize::Paper if name == Name::Cifar10.as_str() => {
            (CIFAR10_PAPER.0.to_vec(), CIFAR10_PAPER.1.to_vec())
        }
        Normalize::Paper => loaded.train.per_image_stats(),
    };
    let mut describe = loaded.describe;
    describe.extend(normalize.columns(&mean, &std));
    Dataset {
        name: name.to_string(),
        train: loaded.train.to_split(device),
        test: loaded.test.to_split(device),
        classes: loaded.classes,
        inputs: Inputs::Images { mean, std },
        augmentation: Augmentation::CropFlip { pad: 4 },
        relabel: None,
        describe,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_match_the_float_definition() {
        let mut img = Images::new([2, 2, 2]);
        img.pixels = vec![0, 255, 10, 20, 1, 2, 3, 4, 255, 255, 255, 255, 7, 7, 7, 7];
        img.labels = vec![0, 1];
        let (mean, std) = img.channel_stats();
        for ch in 0..2 {
            let vals: Vec<f64> = img
                .pixels
                .chunks(4)
                .enumerate()
                .filter(|(i, _)| i % 2 == ch)
                .flat_map(|(_, p)| p.iter().map(|&v| f64::from(v) / 255.0))
                .collect();
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let v = vals.iter().map(|x| (x - m).powi(2)).sum::<f64>() / vals.len() as f64;
            assert!((mean[ch] - m).abs() < 1e-12, "{mean:?} vs {m}");
            assert!(
                (std[ch] - v.sqrt()).abs() < 1e-12,
                "{std:?} vs {}",
                v.sqrt()
            );
        }
    }

    #[test]
    fn padding_surrounds_each_plane_with_zeros() {
        let mut img = Images::new([1, 2, 3]);
        img.pixels = vec![1, 2, 3, 4, 5, 6];
        img.labels = vec![4];
        let p = img.padded(1);
        assert_eq!(p.shape, [1, 4, 5]);
        #[rustfmt::skip]
        let want = vec![
            0, 0, 0, 0, 0,
            0, 1, 2, 3, 0,
            0, 4, 5, 6, 0,
            0, 0, 0, 0, 0,
        ];
        assert_eq!(p.pixels, want);
        assert_eq!(p.labels, vec![4]);
    }
}
