//! The cnn's first stage, relu(max_pool2d(conv3x3(x), 2)), as one autograd
//! node: the stem kernels then `pool_relu`'s, image by image, so the
//! full-size output and its gradient never leave the core's cache (docs/PERFORMANCE.md,
//! "The cnn's first stage in one node"). The same floats as `pool2_relu` of
//! `conv3x3`, gradients included (tested bit for bit).

use super::kernel::{self, Dims};
use std::os::raw::{c_char, c_int};
use tch::Tensor;
use torch_sys::C_tensor;

/// The kernels as the shim calls them (`MinimaStemPoolKernels` there).
#[repr(C)]
struct Kernels {
    forward: extern "C" fn(Dims, *const f32, *const f32, *const f32, *mut f32, *mut u8),
    weight_grad:
        extern "C" fn(Dims, *const f32, *const f32, *const f32, *const u8, *mut f32, *mut f32),
}

static KERNELS: Kernels = Kernels {
    forward: forward_all,
    weight_grad: weight_grad_all,
};

extern "C" {
    fn minima_stem_conv_pool2_relu(
        x: *const C_tensor,
        weight: *const C_tensor,
        bias: *const C_tensor,
        kernels: *const Kernels,
        out: *mut *mut C_tensor,
        err: *mut c_char,
        err_len: c_int,
    ) -> c_int;
}

/// The pooled outputs of `d`'s batch.
fn pooled_len(d: &Dims) -> usize {
    d.n * d.pooled_image_len()
}

/// The shim's forward; `bias` null for none, `mask` null when no backward
/// follows.
extern "C" fn forward_all(
    d: Dims,
    x: *const f32,
    weight: *const f32,
    bias: *const f32,
    y: *mut f32,
    mask: *mut u8,
) {
    // Safety: the shim passes x (checked by `takes`, spanning its strides),
    // the contiguous weight and bias, and y and mask allocated at the pooled
    // output's size.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        let bias = (!bias.is_null()).then(|| std::slice::from_raw_parts(bias, d.c_out));
        let mask: &mut [u8] = if mask.is_null() {
            &mut []
        } else {
            std::slice::from_raw_parts_mut(mask, pooled_len(&d))
        };
        kernel::forward_pooled(
            d,
            std::slice::from_raw_parts(x, d.input_span()),
            std::slice::from_raw_parts(weight, d.weight_len()),
            bias,
            std::slice::from_raw_parts_mut(y, pooled_len(&d)),
            mask,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("stem_conv runs only where kernel::available() ({d:?} {x:?} {weight:?} {bias:?} {y:?} {mask:?})");
}

/// The shim's backward; `gb` null for a convolution without bias.
extern "C" fn weight_grad_all(
    d: Dims,
    x: *const f32,
    g: *const f32,
    y: *const f32,
    mask: *const u8,
    gw: *mut f32,
    gb: *mut f32,
) {
    // Safety: the shim passes the forward's input, output and mask, the
    // output's gradient made channels-last, and gradients it allocated.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        let len = pooled_len(&d);
        let gb = (!gb.is_null()).then(|| std::slice::from_raw_parts_mut(gb, d.c_out));
        kernel::weight_grad_pooled(
            d,
            std::slice::from_raw_parts(x, d.input_span()),
            (
                std::slice::from_raw_parts(g, len),
                std::slice::from_raw_parts(y, len),
                std::slice::from_raw_parts(mask, len),
            ),
            std::slice::from_raw_parts_mut(gw, d.weight_len()),
            gb,
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("stem_conv runs only where kernel::available() ({d:?} {x:?} {g:?} {y:?} {mask:?} {gw:?} {gb:?})");
}

/// relu(max_pool2d(conv2d(x, weight, bias, stride, padding), 2)) with a
/// channels-last result, from the kernels where they take the convolution
/// (`conv3x3`) and x is at least 2x2, else None.
pub fn conv3x3_pool2_relu(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: i64,
    padding: i64,
) -> Option<Tensor> {
    let window = x.dim() == 4 && x.size()[2] >= 2 && x.size()[3] >= 2;
    if !(window && super::takes(x, weight, bias, stride, padding)) {
        return None;
    }
    let bias_ptr = bias.map_or(std::ptr::null(), |b| b.as_ptr());
    // Safety: x, weight and bias are live tensors checked by `takes`; KERNELS
    // is static; the shim writes a new handle to `out` or a message to `err`.
    Some(super::super::shim::call(
        "stem_conv_pool2_relu",
        |out, err, len| unsafe {
            minima_stem_conv_pool2_relu(
                x.as_ptr(),
                weight.as_ptr(),
                bias_ptr,
                &KERNELS,
                out,
                err,
                len,
            )
        },
    ))
}
