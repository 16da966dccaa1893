//! The Rust side of the models' C++ shims (`shim.h`): each shim function takes
//! an `out` handle slot and an error buffer, returns 0 with a new tensor in
//! `out`, or -1 with libtorch's message in the buffer.

use std::os::raw::{c_char, c_int};
use tch::Tensor;
use torch_sys::C_tensor;

/// Calls a shim function through `call(out, err, err_len)` and takes the tensor
/// it hands over; libtorch's error panics, as tch's infallible ops do with it.
pub fn call(
    what: &str,
    call: impl FnOnce(*mut *mut C_tensor, *mut c_char, c_int) -> c_int,
) -> Tensor {
    let mut out: *mut C_tensor = std::ptr::null_mut();
    let mut err = [0 as c_char; 512];
    let status = call(&mut out, err.as_mut_ptr(), err.len() as c_int);
    if status != 0 {
        // Safety: the shim NUL-terminates the message.
        let msg = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) };
        panic!("{what}: {}", msg.to_string_lossy());
    }
    // Safety: the shim handed over ownership of a new tensor handle.
    unsafe { Tensor::from_ptr(out) }
}
