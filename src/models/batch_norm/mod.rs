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
//! by build.rs) is the node and calls the kernels here.
//!
//! What follows the batch norm can run in its output pass (`After`): the ReLU,
//! or a residual block's end, the skip connection's addition and then the ReLU.
//! That saves a pass over the activations for each op (and its allocation),
//! with libtorch's floats. In eval mode without gradients (evaluation), a batch
//! norm followed by one of these runs in one pass too (`eval_channels_last`).
//! Anything else (eval mode with gradients or with nothing after it, NCHW,
//! another dtype such as autocast's bf16, a GPU tensor) takes libtorch's
//! `batch_norm`.

#[cfg(target_arch = "x86_64")]
mod avx2;
mod kernel;
mod loops;

use super::layers::is_channels_last;
use kernel::{Params, Stats};
use loops::{Dims, Tail, Upstream};
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
        *const f32,
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
        skip: *const C_tensor,
        momentum: f64,
        eps: f64,
        relu: bool,
        kernels: *const Kernels,
        out: *mut *mut C_tensor,
        err: *mut c_char,
        err_len: c_int,
    ) -> c_int;
}

/// The shim's forward; `skip` is null without a skip connection.
#[allow(clippy::too_many_arguments)]
extern "C" fn forward_all(
    d: Dims,
    x: *const f32,
    weight: *const f32,
    bias: *const f32,
    momentum: f64,
    eps: f64,
    skip: *const f32,
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
        let tail = Tail {
            skip: (!skip.is_null()).then(|| std::slice::from_raw_parts(skip, d.len())),
            relu,
        };
        kernel::forward(d, x, &p, momentum, eps, tail, y, s);
    }
}

/// The shim's backward; `relu_out` is the forward's output when it ended in a
/// ReLU, null otherwise (and after a skip connection, whose gradient the shim
/// makes first).
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

/// What follows a batch norm in its output pass.
#[derive(Clone, Copy)]
pub enum After<'a> {
    Nothing,
    Relu,
    /// A residual block's end: relu(batch_norm(x) + skip).
    AddRelu(&'a Tensor),
}

impl<'a> After<'a> {
    fn skip(self) -> Option<&'a Tensor> {
        match self {
            After::AddRelu(s) => Some(s),
            _ => None,
        }
    }

    fn relu(self) -> bool {
        !matches!(self, After::Nothing)
    }
}

/// Whether the kernels take this batch norm: `x` channels-last float32 on the
/// CPU with at least two values per channel, the weight, bias and running
/// statistics contiguous float32 CPU vectors of its channel count, and a skip
/// connection's values laid out as `x`.
fn takes(x: &Tensor, per_channel: [&Tensor; 4], after: After) -> bool {
    if x.device() != Device::Cpu || x.kind() != Kind::Float || x.dim() != 4 {
        return false;
    }
    let c = x.size()[1];
    let vector = |t: &Tensor| {
        t.device() == Device::Cpu && t.kind() == Kind::Float && t.size() == [c] && t.is_contiguous()
    };
    let like_x = |s: &Tensor| {
        s.device() == Device::Cpu
            && s.kind() == Kind::Float
            && s.size() == x.size()
            && is_channels_last(s)
    };
    c > 0
        && x.numel() / c as usize > 1
        && is_channels_last(x)
        && per_channel.iter().all(|t| vector(t))
        && after.skip().is_none_or(like_x)
}

/// F.batch_norm(x, running_mean, running_var, weight, bias, training=True,
/// momentum, eps), and what comes `after` it, through the kernels where they
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
    after: After,
) -> Option<Tensor> {
    if !takes(x, [weight, bias, running_mean, running_var], after) {
        return None;
    }
    let skip = after.skip().map_or(std::ptr::null(), |s| s.as_ptr());
    // Safety: the tensors are live and checked by `takes`; KERNELS is static;
    // the shim writes a new handle to `out` or a message to `err`.
    let y = super::shim::call("batch_norm", |out, err, len| unsafe {
        minima_batch_norm_channels_last(
            x.as_ptr(),
            weight.as_ptr(),
            bias.as_ptr(),
            running_mean.as_ptr(),
            running_var.as_ptr(),
            skip,
            momentum,
            eps,
            after.relu(),
            &KERNELS,
            out,
            err,
            len,
        )
    });
    Some(y)
}

/// F.batch_norm(x, running_mean, running_var, weight, bias, training=False,
/// eps=eps) and what comes `after` it (not `Nothing`) in one pass, where the
/// kernels take `x` (`takes`) and no gradient is recorded; None otherwise.
pub fn eval_channels_last(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    eps: f64,
    after: After,
) -> Option<Tensor> {
    let mut inputs = vec![x, weight, bias];
    inputs.extend(after.skip());
    let graded = inputs.iter().any(|t| t.requires_grad());
    if (graded && super::shim::grad_enabled())
        || !after.relu()
        || !takes(x, [weight, bias, running_mean, running_var], after)
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
    let tail = Tail {
        skip: after.skip().map(|s| slice(s, d.len())),
        relu: true,
    };
    // Safety: y is a new dense tensor of x's size, written only here.
    let out = unsafe { std::slice::from_raw_parts_mut(y.data_ptr() as *mut f32, d.len()) };
    kernel::infer(d, slice(x, d.len()), &p, running, eps, tail, out);
    Some(y)
}

#[cfg(test)]
mod tests;
