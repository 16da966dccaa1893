//! CPU tensors read and written in place as Rust slices, for the loops that
//! beat libtorch's per-call dispatch on small arrays (train/dense/, the SGD
//! update of small weights, metrics/distance.rs).

use tch::{Device, Kind, Tensor};

/// A CPU float32 tensor's values.
///
/// # Safety
/// `t` is a contiguous CPU float tensor (`is_host_float`) and nothing writes to
/// it while the slice lives.
pub unsafe fn floats(t: &Tensor) -> &[f32] {
    std::slice::from_raw_parts(t.data_ptr() as *const f32, t.numel())
}

/// A CPU float32 tensor's values, to write in place.
///
/// # Safety
/// As `floats`, and no other slice of `t` lives meanwhile.
#[allow(clippy::mut_from_ref)]
pub unsafe fn floats_mut(t: &Tensor) -> &mut [f32] {
    std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, t.numel())
}

/// A CPU int64 tensor's values.
///
/// # Safety
/// `t` is a contiguous CPU int64 tensor nobody writes meanwhile.
pub unsafe fn longs(t: &Tensor) -> &[i64] {
    std::slice::from_raw_parts(t.data_ptr() as *const i64, t.numel())
}

/// A CPU uint8 tensor's values.
///
/// # Safety
/// `t` is a contiguous CPU uint8 tensor nobody writes meanwhile.
pub unsafe fn bytes(t: &Tensor) -> &[u8] {
    std::slice::from_raw_parts(t.data_ptr() as *const u8, t.numel())
}

/// Whether `t` can be read in place by `floats` and `floats_mut`.
pub fn is_host_float(t: &Tensor) -> bool {
    t.device() == Device::Cpu && t.kind() == Kind::Float && t.is_contiguous()
}
