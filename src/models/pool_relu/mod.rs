//! relu(max_pool2d(x, 2)) in one pass over channels-last float32 activations on
//! the CPU, forward and backward, with libtorch's floats.
//!
//! Why: in the cnn's training step (width 0.25, channels-last) libtorch's
//! channels-last max-pool with its int64 indices, the zero-fill and scatter of
//! its backward, and the ReLU's two passes took about a sixth of the time
//! (docs/PERFORMANCE.md, "The cnn's pool and ReLU in one pass"). Fused, a
//! window's maximum, the slot it came from (one byte) and its ReLU are written
//! in one pass, and the backward writes each input's gradient once.
//!
//! The same floats as `max_pool2(x).relu()`, gradients included (tested bit for
//! bit): max_pool2d's window order and NaN rule (the first strictly greater value
//! wins, a NaN always replaces), relu as clamp_min (NaN and −0.0 kept), its
//! backward `threshold_backward` on the output, and the pool's backward adding
//! into a zeroed gradient. tch cannot define an autograd node, so a small C++
//! shim (`shim.cpp`, compiled by build.rs) is the node and calls the kernels
//! here. Anything else (another layout or dtype, a GPU tensor, autocast's bf16)
//! takes libtorch's two ops.

// The stem's pooled kernels run these one image at a time.
pub(super) mod kernel;

use super::layers::{is_channels_last, max_pool2};
use kernel::Dims;
use std::os::raw::{c_char, c_int};
use tch::{Device, Kind, Tensor};
use torch_sys::C_tensor;

/// The kernels as the shim calls them (`MinimaPoolKernels` there).
#[repr(C)]
struct Kernels {
    forward: extern "C" fn(Dims, *const f32, *mut f32, *mut u8),
    backward: extern "C" fn(Dims, *const f32, *const f32, *const u8, *mut f32),
}

static KERNELS: Kernels = Kernels {
    forward: forward_all,
    backward: backward_all,
};

extern "C" {
    fn minima_pool2_relu(
        x: *const C_tensor,
        kernels: *const Kernels,
        out: *mut *mut C_tensor,
        err: *mut c_char,
        err_len: c_int,
    ) -> c_int;
}

/// The shim's forward; no mask when `mask` is null (no backward follows).
extern "C" fn forward_all(d: Dims, x: *const f32, y: *mut f32, mask: *mut u8) {
    // Safety: the shim passes tensors it allocated (y, mask) or checked (x,
    // channels-last float32) with exactly `d`'s sizes.
    let (x, y) = unsafe {
        (
            std::slice::from_raw_parts(x, d.input_len()),
            std::slice::from_raw_parts_mut(y, d.output_len()),
        )
    };
    let mask: &mut [u8] = if mask.is_null() {
        &mut []
    } else {
        // Safety: as above.
        unsafe { std::slice::from_raw_parts_mut(mask, d.output_len()) }
    };
    kernel::forward(d, x, y, mask);
}

/// The shim's backward.
extern "C" fn backward_all(d: Dims, g: *const f32, y: *const f32, mask: *const u8, gx: *mut f32) {
    // Safety: the shim passes the forward's output and mask, the output's
    // gradient made channels-last, and gx allocated at the input's size.
    let (g, y, mask, gx) = unsafe {
        (
            std::slice::from_raw_parts(g, d.output_len()),
            std::slice::from_raw_parts(y, d.output_len()),
            std::slice::from_raw_parts(mask, d.output_len()),
            std::slice::from_raw_parts_mut(gx, d.input_len()),
        )
    };
    kernel::backward(d, g, y, mask, gx);
}

/// The sizes when `x` is what the kernels take: a channels-last float32 CPU
/// tensor [n, c, h, w] with at least one window (strides of size-1 dimensions
/// do not matter, as in libtorch's own test of the layout).
fn fused_dims(x: &Tensor) -> Option<Dims> {
    if x.device() != Device::Cpu || x.kind() != Kind::Float || x.dim() != 4 {
        return None;
    }
    let size = x.size();
    let [n, c, h, w] = [size[0], size[1], size[2], size[3]];
    (is_channels_last(x) && n > 0 && c > 0 && h >= 2 && w >= 2).then_some(Dims {
        n: n as usize,
        c: c as usize,
        h: h as usize,
        w: w as usize,
    })
}

/// relu(max_pool2d(x, 2)), as torch's `F.max_pool2d(x, 2).relu()`: fused where
/// `x` is channels-last float32 on the CPU, libtorch's ops elsewhere.
pub fn pool2_relu(x: &Tensor) -> Tensor {
    if fused_dims(x).is_none() {
        return max_pool2(x).relu();
    }
    // Safety: x is a live tensor checked by `fused_dims`; KERNELS is static;
    // the shim writes a new handle to `out` or a message to `err`.
    super::shim::call("pool2_relu", |out, err, len| unsafe {
        minima_pool2_relu(x.as_ptr(), &KERNELS, out, err, len)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Channels-last [n, c, h, w] values on a coarse grid, so windows tie and
    /// many maxima are zero or negative, with −0.0s and a few NaNs.
    fn activations(n: i64, c: i64, h: i64, w: i64, seed: i64) -> Tensor {
        // Under the generator's lock: tests running alongside draw too.
        let x = crate::rng::seeded(seed, || {
            (Tensor::randn([n, h, w, c], (Kind::Float, Device::Cpu)) * 2.0).round() / 2.0
        });
        let len = n * h * w * c;
        let mut v = Vec::<f32>::try_from(x.flatten(0, -1)).unwrap();
        for (k, value) in v.iter_mut().enumerate() {
            if *value == 0.0 && k % 3 == 0 {
                *value = -0.0;
            }
            if k % 37 == 5 || k % 53 == 11 {
                *value = f32::NAN;
            }
        }
        assert_eq!(v.len() as i64, len);
        Tensor::from_slice(&v)
            .view([n, h, w, c])
            .permute([0, 3, 1, 2])
    }

    fn bits(t: &Tensor) -> Vec<u32> {
        let t = t.permute([0, 2, 3, 1]).contiguous().flatten(0, -1);
        Vec::<f32>::try_from(t)
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    /// The output and input gradient of `f` on `x` for an output gradient with
    /// ties, zeros and −0.0s.
    fn through(f: impl Fn(&Tensor) -> Tensor, x: &Tensor) -> (Tensor, Tensor) {
        let leaf = x.detach().set_requires_grad(true);
        let y = f(&leaf);
        let g = crate::rng::seeded(7, || (y.randn_like() * 2.0).round() / 2.0);
        let g = g.where_self(&g.ne(0.0), &Tensor::from(-0.0f32));
        let gx = Tensor::run_backward(&[(&y * &g).sum(Kind::Float)], &[&leaf], false, false);
        (y.detach(), gx[0].shallow_clone())
    }

    #[test]
    fn fused_pool_and_relu_are_libtorchs_bit_for_bit() {
        // c = 16: the AVX2 path where the CPU has it; c = 3 and 1: the scalar
        // one; odd heights and widths leave inputs no window reads. The last
        // three have at least 32,768 outputs, which libtorch's two threads
        // share by output rows (split within an image, for odd heights too).
        for (k, (n, c, h, w)) in [
            (2, 16, 6, 6),
            (3, 8, 7, 5),
            (2, 3, 4, 4),
            (2, 1, 5, 4),
            (1, 24, 3, 9),
            (3, 16, 45, 65),
            (9, 3, 81, 67),
            (128, 8, 17, 17),
        ]
        .into_iter()
        .enumerate()
        {
            let x = activations(n, c, h, w, k as i64);
            assert!(fused_dims(&x).is_some(), "{n}x{c}x{h}x{w} is channels-last");
            let (y, gx) = through(pool2_relu, &x);
            let (y_ref, gx_ref) = through(|t| max_pool2(t).relu(), &x);
            assert_eq!(y.size(), y_ref.size());
            assert_eq!(bits(&y), bits(&y_ref), "outputs of {n}x{c}x{h}x{w}");
            assert_eq!(
                bits(&gx),
                bits(&gx_ref),
                "input gradients of {n}x{c}x{h}x{w}"
            );
            assert!(is_channels_last(&y), "the output stays channels-last");
            let plain = tch::no_grad(|| pool2_relu(&x));
            assert_eq!(
                bits(&plain),
                bits(&y_ref),
                "without a gradient: {n}x{c}x{h}x{w}"
            );
        }
    }

    #[test]
    fn other_layouts_kinds_and_sizes_take_libtorchs_ops() {
        let x = activations(2, 8, 4, 4, 0);
        assert!(fused_dims(&x).is_some());
        let nchw = x.contiguous();
        assert!(fused_dims(&nchw).is_none(), "NCHW");
        assert!(fused_dims(&x.to_kind(Kind::Double)).is_none(), "float64");
        assert!(
            fused_dims(&x.narrow(2, 0, 1)).is_none(),
            "one row: no window"
        );
        let y = pool2_relu(&nchw);
        assert_eq!(bits(&y), bits(&max_pool2(&nchw).relu()));
    }
}
