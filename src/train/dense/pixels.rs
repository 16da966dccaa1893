//! Batches gathered straight from a training split's stored uint8 pixels, for
//! splits too large to keep materialised as model inputs (all of Fashion-MNIST
//! is 61 M values): each row is scaled and normalised on the host as
//! `Dataset::train_batch` does it in libtorch, (p / 255 − mean) / std in float32
//! (a true division at each step, as libtorch's `div_` and `sub_`), so the batch
//! is the libtorch path's bit for bit (tests/dense.rs) without a tensor
//! operation per step. A pixel has 256 values, so each channel's 256 results
//! are computed once and looked up: two divisions per pixel made the host gather
//! slower than libtorch's (docs/PERFORMANCE.md).

use crate::data::{Dataset, Inputs};
use crate::slices::{bytes, longs};
use tch::{Device, Kind, Tensor};

pub struct Pixels {
    x: Tensor,
    y: Tensor,
    /// Per channel, the model input of each pixel value.
    table: Vec<[f32; 256]>,
    /// Values per channel of one image.
    plane: usize,
    width: usize,
}

impl Pixels {
    /// The training split's stored pixels when they can be read in place: uint8
    /// images on the CPU with int64 labels and no random-label view (whose
    /// zeroed values the libtorch path draws).
    pub fn of(data: &Dataset) -> Option<Pixels> {
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
        Some(Pixels {
            x: x.shallow_clone(),
            y: y.shallow_clone(),
            table,
            plane,
            width: plane * mean.len(),
        })
    }

    /// The labels of every stored example.
    ///
    /// # Safety
    /// Nothing writes to the split while the slice lives.
    pub unsafe fn labels(&self) -> &[i64] {
        longs(&self.y)
    }

    /// Example `i` as model inputs, written over `row`.
    pub fn inputs(&self, i: usize, row: &mut Vec<f32>) {
        // Safety: checked contiguous CPU uint8 in `of`; only read here.
        let image = unsafe { &bytes(&self.x)[i * self.width..(i + 1) * self.width] };
        row.clear();
        for (plane, table) in image.chunks(self.plane).zip(&self.table) {
            row.extend(plane.iter().map(|&p| table[p as usize]));
        }
    }
}
