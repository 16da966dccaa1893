//! Training-mode batch norm of channels-last float32 activations on the CPU with
//! the arithmetic of libtorch's NCHW kernel, forward and backward.
//!
//! Why: channels-last convolutions train VGG16 and the ResNets 1.2–1.5× faster on
//! the CPU, but libtorch's channels-last batch norm sums each channel in float32
//! per thread, over every pixel of the batch, where its NCHW kernel sums in
//! float64. Against float64, the whole gradient of ResNet18 (width 0.125, one
//! Fashion-MNIST batch at the initial weights) was off by 3.7% channels-last and
//! by 0.004% NCHW (docs/TRAINING.md). This node computes what the NCHW kernel
//! computes on channels-last memory: the forward's floats bit for bit (mean,
//! variance, running statistics, output; tested), the backward's two per-channel
//! sums in float64 in row order (libtorch adds each image's plane in float32
//! vector lanes first), then libtorch's float32 formula for the input gradient.
//!
//! tch cannot define an autograd node, so a small C++ shim (`shim.cpp`, compiled
//! by build.rs) is the node and calls the kernels here. In eval mode without
//! gradients (evaluation), a batch norm followed by a ReLU runs both in one pass
//! (`eval_relu_channels_last`), libtorch's floats bit for bit. Anything else
//! (eval mode with gradients or without a ReLU, NCHW, another dtype such as
//! autocast's bf16, a GPU tensor) takes libtorch's `batch_norm`.

#[cfg(target_arch = "x86_64")]
mod avx2;
mod kernel;
mod loops;

use super::layers::is_channels_last;
use kernel::{Params, Stats};
use loops::{Dims, Upstream};
use std::os::raw::{c_char, c_int};
use tch::{Device, Kind, Tensor};
use torch_sys::C_tensor;

/// The kernels as the shim calls them (`MinimaNormKernels` there).
#[repr(C)]
struct Kernels {
    forward: extern "C" fn(
        Dims,
        *const f32,
        *const f32,
        *const f32,
        f64,
        f64,
        bool,
        *mut f32,
        *mut f32,
        *mut f32,
        *mut f32,
        *mut f32,
    ),
    backward: extern "C" fn(
        Dims,
        *const f32,
        *const f32,
        *const f32,
        *const f32,
        *const f32,
        *const f32,
        *mut f32,
        *mut f32,
        *mut f32,
    ),
}

static KERNELS: Kernels = Kernels {
    forward: forward_all,
    backward: backward_all,
};

extern "C" {
    #[allow(clippy::too_many_arguments)]
    fn minima_batch_norm_channels_last(
        x: *const C_tensor,
        weight: *const C_tensor,
        bias: *const C_tensor,
        running_mean: *const C_tensor,
        running_var: *const C_tensor,
        momentum: f64,
        eps: f64,
        relu: bool,
        kernels: *const Kernels,
        out: *mut *mut C_tensor,
        err: *mut c_char,
        err_len: c_int,
    ) -> c_int;
}

/// The shim's forward.
#[allow(clippy::too_many_arguments)]
extern "C" fn forward_all(
    d: Dims,
    x: *const f32,
    weight: *const f32,
    bias: *const f32,
    momentum: f64,
    eps: f64,
    relu: bool,
    y: *mut f32,
    mean: *mut f32,
    invstd: *mut f32,
    running_mean: *mut f32,
    running_var: *mut f32,
) {
    let c = d.channels;
    // Safety: the shim passes tensors it allocated (y, mean, invstd) or the
    // caller checked (`takes`), with exactly `d`'s sizes.
    unsafe {
        let p = Params {
            weight: std::slice::from_raw_parts(weight, c),
            bias: std::slice::from_raw_parts(bias, c),
        };
        let s = Stats {
            mean: std::slice::from_raw_parts_mut(mean, c),
            invstd: std::slice::from_raw_parts_mut(invstd, c),
            running_mean: std::slice::from_raw_parts_mut(running_mean, c),
            running_var: std::slice::from_raw_parts_mut(running_var, c),
        };
        let x = std::slice::from_raw_parts(x, d.len());
        let y = std::slice::from_raw_parts_mut(y, d.len());
        kernel::forward(d, x, &p, momentum, eps, relu, y, s);
    }
}

/// The shim's backward; `relu_out` is the forward's output when it ended in a
/// ReLU, null otherwise.
#[allow(clippy::too_many_arguments)]
extern "C" fn backward_all(
    d: Dims,
    x: *const f32,
    g: *const f32,
    relu_out: *const f32,
    mean: *const f32,
    invstd: *const f32,
    weight: *const f32,
    gx: *mut f32,
    gw: *mut f32,
    gb: *mut f32,
) {
    let c = d.channels;
    // Safety: the shim passes the forward's input, weight, saved statistics
    // and output, the output's gradient made channels-last, and gradients it
    // allocated.
    unsafe {
        let g = Upstream {
            g: std::slice::from_raw_parts(g, d.len()),
            relu_out: (!relu_out.is_null()).then(|| std::slice::from_raw_parts(relu_out, d.len())),
        };
        kernel::backward(
            d,
            std::slice::from_raw_parts(x, d.len()),
            g,
            std::slice::from_raw_parts(mean, c),
            std::slice::from_raw_parts(invstd, c),
            std::slice::from_raw_parts(weight, c),
            std::slice::from_raw_parts_mut(gx, d.len()),
            std::slice::from_raw_parts_mut(gw, c),
            std::slice::from_raw_parts_mut(gb, c),
        );
    }
}

/// Whether the kernels take this batch norm: `x` channels-last float32 on the
/// CPU with at least two values per channel, and the weight, bias and running
/// statistics contiguous float32 CPU vectors of its channel count.
fn takes(x: &Tensor, per_channel: [&Tensor; 4]) -> bool {
    if x.device() != Device::Cpu || x.kind() != Kind::Float || x.dim() != 4 {
        return false;
    }
    let c = x.size()[1];
    let vector = |t: &Tensor| {
        t.device() == Device::Cpu && t.kind() == Kind::Float && t.size() == [c] && t.is_contiguous()
    };
    c > 0
        && x.numel() / c as usize > 1
        && is_channels_last(x)
        && per_channel.iter().all(|t| vector(t))
}

/// F.batch_norm(x, running_mean, running_var, weight, bias, training=True,
/// momentum, eps), and its relu with `relu`, through the kernels where they
/// take `x` (`takes`), None otherwise. Moves the running statistics in place.
#[allow(clippy::too_many_arguments)]
pub fn train_channels_last(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    momentum: f64,
    eps: f64,
    relu: bool,
) -> Option<Tensor> {
    if !takes(x, [weight, bias, running_mean, running_var]) {
        return None;
    }
    // Safety: the tensors are live and checked by `takes`; KERNELS is static;
    // the shim writes a new handle to `out` or a message to `err`.
    let y = super::shim::call("batch_norm", |out, err, len| unsafe {
        minima_batch_norm_channels_last(
            x.as_ptr(),
            weight.as_ptr(),
            bias.as_ptr(),
            running_mean.as_ptr(),
            running_var.as_ptr(),
            momentum,
            eps,
            relu,
            &KERNELS,
            out,
            err,
            len,
        )
    });
    Some(y)
}

/// F.relu(F.batch_norm(x, running_mean, running_var, weight, bias,
/// training=False, eps=eps)) in one pass where the kernels take `x` (`takes`)
/// and no gradient is recorded, None otherwise.
pub fn eval_relu_channels_last(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    eps: f64,
) -> Option<Tensor> {
    let graded = [x, weight, bias].iter().any(|t| t.requires_grad());
    if (graded && super::shim::grad_enabled())
        || !takes(x, [weight, bias, running_mean, running_var])
    {
        return None;
    }
    // preserve_format: a channels-last x gives a channels-last y.
    let y = x.empty_like();
    let d = Dims {
        rows: x.numel() / x.size()[1] as usize,
        channels: x.size()[1] as usize,
    };
    let slice = |t: &Tensor, len: usize| {
        // Safety: `takes` checked each tensor is dense float32 on the CPU of
        // this length; they outlive the call.
        unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, len) }
    };
    let p = Params {
        weight: slice(weight, d.channels),
        bias: slice(bias, d.channels),
    };
    let running = (
        slice(running_mean, d.channels),
        slice(running_var, d.channels),
    );
    // Safety: y is a new dense tensor of x's size, written only here.
    let out = unsafe { std::slice::from_raw_parts_mut(y.data_ptr() as *mut f32, d.len()) };
    kernel::infer_relu(d, slice(x, d.len()), &p, running, eps, out);
    Some(y)
}

#[cfg(test)]
mod tests;
