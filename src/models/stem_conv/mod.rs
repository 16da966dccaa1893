//! A net's first convolution on the CPU: 3×3, stride 1, zero padding 1, from
//! an image of at most four channels to a multiple of eight, its input needing
//! no gradient (the data), as one pass of plain fused multiply-adds.
//!
//! Why: oneDNN computes this layer as it computes a wide one, and from one
//! input channel that wastes most of its vectors. On a 2-core Intel Xeon, the
//! cnn's first layer (1 to 8 channels, 32x32, batch 128) took 0.81 ms forward
//! and 2.76 ms forward and backward in PyTorch channels-last, for about 1.2
//! million eight-wide multiply-adds each way (docs/PERFORMANCE.md, "The cnn's first
//! convolution in a kernel of its own"). A layer opts in
//! (`Conv2d::with_stem_kernel`), and only the cnn's first layer does: in
//! ResNet18 at width 0.125 the same layer is a few percent of a step, an A/B
//! showed no difference beyond the machine's noise, and the kernel's other
//! rounding would move every paper script's digits.
//!
//! The floats: each output is the bias plus the 9·c_in taps in (channel, row,
//! column) order, one rounding per fused multiply-add; the weight's gradient
//! sums each image row in float32, then rows and images in float64, in a fixed
//! order whatever the thread count. oneDNN adds in other orders, so the
//! outputs differ from libtorch's by float32 rounding (tested against a
//! float64 computation: within twice libtorch's error). Anything else (a layout
//! the caller keeps NCHW, another dtype or autocast, a GPU tensor, an input
//! that needs its gradient, a CPU without AVX2 and FMA) takes libtorch's
//! `conv2d`. tch cannot define an autograd node, so a small C++ shim
//! (`shim.cpp`, compiled by build.rs) is the node and calls the kernels here.
//!
//! The cnn follows this layer with a 2x2 max-pool and ReLU; `pooled` runs the
//! three as one node, image by image, so the full-size output stays in cache.

mod kernel;
mod pooled;

use kernel::Dims;
pub use pooled::conv3x3_pool2_relu;
use std::os::raw::{c_char, c_int};
use tch::{Device, Kind, Tensor};
use torch_sys::C_tensor;

/// The kernels as the shim calls them (`MinimaStemKernels` there).
#[repr(C)]
struct Kernels {
    forward: extern "C" fn(Dims, *const f32, *const f32, *const f32, *mut f32),
    weight_grad: extern "C" fn(Dims, *const f32, *const f32, *mut f32, *mut f32),
}

static KERNELS: Kernels = Kernels {
    forward: forward_all,
    weight_grad: weight_grad_all,
};

extern "C" {
    fn minima_stem_conv(
        x: *const C_tensor,
        weight: *const C_tensor,
        bias: *const C_tensor,
        kernels: *const Kernels,
        out: *mut *mut C_tensor,
        err: *mut c_char,
        err_len: c_int,
    ) -> c_int;
}

/// The shim's forward; `bias` null for none.
extern "C" fn forward_all(
    d: Dims,
    x: *const f32,
    weight: *const f32,
    bias: *const f32,
    y: *mut f32,
) {
    // Safety: the shim passes x (checked by `takes`, spanning its strides),
    // the contiguous weight and bias, and y allocated at the output's size.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        let bias = (!bias.is_null()).then(|| std::slice::from_raw_parts(bias, d.c_out));
        kernel::forward(
            d,
            std::slice::from_raw_parts(x, d.input_span()),
            std::slice::from_raw_parts(weight, d.weight_len()),
            bias,
            std::slice::from_raw_parts_mut(y, d.output_len()),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!(
        "stem_conv runs only where kernel::available() ({d:?} {x:?} {weight:?} {bias:?} {y:?})"
    );
}

/// The shim's backward; `gb` null for a convolution without bias.
extern "C" fn weight_grad_all(d: Dims, x: *const f32, g: *const f32, gw: *mut f32, gb: *mut f32) {
    // Safety: the shim passes the forward's input, the output's gradient made
    // channels-last, and gradients it allocated.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        let gb = (!gb.is_null()).then(|| std::slice::from_raw_parts_mut(gb, d.c_out));
        kernel::weight_grad(
            d,
            std::slice::from_raw_parts(x, d.input_span()),
            std::slice::from_raw_parts(g, d.output_len()),
            std::slice::from_raw_parts_mut(gw, d.weight_len()),
            gb,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("stem_conv runs only where kernel::available() ({d:?} {x:?} {g:?} {gw:?} {gb:?})");
}

/// Whether conv2d(x, weight, bias, stride, padding) is what the kernels take.
fn takes(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, stride: i64, padding: i64) -> bool {
    let f32_cpu = |t: &Tensor| t.device() == Device::Cpu && t.kind() == Kind::Float;
    if stride != 1 || padding != 1 || x.dim() != 4 || weight.dim() != 4 {
        return false;
    }
    let (xs, ws) = (x.size(), weight.size());
    let shape = ws[1] == xs[1] && (1..=4).contains(&ws[1]) && ws[2] == 3 && ws[3] == 3;
    let sizes = xs.iter().all(|&s| s > 0) && ws[0] > 0 && ws[0] % 8 == 0;
    shape
        && sizes
        && f32_cpu(x)
        && f32_cpu(weight)
        && bias.is_none_or(f32_cpu)
        && !(x.requires_grad() && super::shim::grad_enabled())
        && x.stride().iter().all(|&s| s >= 0)
        && kernel::available()
        && !super::shim::cpu_autocast_enabled()
}

/// conv2d(x, weight, bias, stride, padding) with a channels-last result, from
/// the kernels where they take it (module docs), else None.
pub fn conv3x3(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: i64,
    padding: i64,
) -> Option<Tensor> {
    if !takes(x, weight, bias, stride, padding) {
        return None;
    }
    let bias_ptr = bias.map_or(std::ptr::null(), |b| b.as_ptr());
    // Safety: x, weight and bias are live tensors checked by `takes`; KERNELS
    // is static; the shim writes a new handle to `out` or a message to `err`.
    Some(super::shim::call("stem_conv", |out, err, len| unsafe {
        minima_stem_conv(
            x.as_ptr(),
            weight.as_ptr(),
            bias_ptr,
            &KERNELS,
            out,
            err,
            len,
        )
    }))
}

#[cfg(test)]
mod tests;
