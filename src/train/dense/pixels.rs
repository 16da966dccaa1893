//! Batches gathered straight from a training split's stored uint8 pixels, for
//! splits too large to keep materialised as model inputs (all of Fashion-MNIST
//! is 61 M values): each row is scaled and normalised on the host as
//! `Dataset::train_batch` does it in libtorch, (p / 255 − mean) / std in float32
//! (a true division at each step, as libtorch's `div_` and `sub_`), so the batch
//! is the libtorch path's bit for bit (tests/dense.rs) without a tensor
//! operation per step. A pixel has 256 values, so each channel's 256 results
//! are computed once and looked up: two scalar divisions per pixel made the
//! host gather slower than libtorch's, and in AVX-512 vectors (three times as
//! fast as the table in isolation) no faster inside a step, where reading the
//! rows' pixels from memory dominates (docs/PERFORMANCE.md).

use crate::data::{Dataset, Inputs};
use crate::slices::{bytes, longs};
use tch::{Device, Kind};

pub struct Pixels<'a> {
    x: &'a [u8],
    y: &'a [i64],
    /// Per channel, the model input of each pixel value.
    table: Vec<[f32; 256]>,
    /// Values per channel of one image.
    plane: usize,
    width: usize,
}

impl<'a> Pixels<'a> {
    /// The training split's stored pixels when they can be read in place: uint8
    /// images on the CPU with int64 labels and no random-label view (whose
    /// zeroed values the libtorch path draws).
    pub fn of(data: &'a Dataset) -> Option<Pixels<'a>> {
        let Inputs::Images { mean, std } = &data.inputs else {
            return None;
        };
        let (x, y) = (&data.train.x, &data.train.y);
        let readable = data.relabel.is_none()
            && x.device() == Device::Cpu
            && x.kind() == Kind::Uint8
            && x.is_contiguous()
            && y.device() == Device::Cpu
            && y.kind() == Kind::Int64
            && y.is_contiguous();
        let shape = data.input_shape();
        if !readable || shape.len() != 3 || shape[0] as usize != mean.len() {
            return None;
        }
        let plane = (shape[1] * shape[2]) as usize;
        let table = mean
            .iter()
            .zip(std)
            .map(|(&m, &s)| std::array::from_fn(|p| (p as f32 / 255.0 - m as f32) / s as f32))
            .collect();
        // Safety: checked contiguous CPU uint8 and int64 just above; the split
        // is borrowed, so only read while these slices live.
        let (x, y) = unsafe { (bytes(x), longs(y)) };
        Some(Pixels {
            x,
            y,
            table,
            plane,
            width: plane * mean.len(),
        })
    }

    /// The labels of every stored example.
    pub fn labels(&self) -> &'a [i64] {
        self.y
    }

    /// Example `i`'s stored pixels.
    pub fn image(&self, i: usize) -> &'a [u8] {
        &self.x[i * self.width..(i + 1) * self.width]
    }

    /// Appends example `i` as model inputs to `out`.
    pub fn extend(&self, i: usize, out: &mut Vec<f32>) {
        for (plane, table) in self.image(i).chunks(self.plane).zip(&self.table) {
            out.extend(plane.iter().map(|&p| table[p as usize]));
        }
    }
}

/// Starts loading `row` into the cache: a batch's examples are scattered over
/// the split, so the first reads of each would wait on memory. Issued one
/// example ahead, the gather of the mlp's batches from Fashion-MNIST's pixels
/// took a sixth less time per step (docs/PERFORMANCE.md).
pub fn prefetch<T>(row: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        let (start, bytes) = (row.as_ptr().cast::<i8>(), std::mem::size_of_val(row));
        for offset in (0..bytes).step_by(64) {
            // Safety: a prefetch changes nothing the program sees, and the
            // address is within `row`.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    start.add(offset),
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}
