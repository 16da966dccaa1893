//! The Rust side of the models' C++ shims (`shim.h`): each shim function takes
//! an `out` handle slot and an error buffer, returns 0 with a new tensor in
//! `out`, or -1 with libtorch's message in the buffer. And libtorch's intra-op
//! threads, grad mode and CPU autocast state for the kernels (`shim.cpp`).

use std::marker::PhantomData;
use std::ops::Range;
use std::os::raw::{c_char, c_int, c_void};
use tch::Tensor;
use torch_sys::C_tensor;

extern "C" {
    fn minima_grad_enabled() -> bool;
    fn minima_cpu_autocast_enabled() -> bool;
    fn minima_parallel_for(
        n: usize,
        grain: usize,
        body: unsafe extern "C" fn(*const c_void, usize, usize),
        ctx: *const c_void,
    );
}

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

/// Whether autograd records ops on this thread (false inside `tch::no_grad`).
pub fn grad_enabled() -> bool {
    // Safety: reads a thread-local flag.
    unsafe { minima_grad_enabled() }
}

/// Whether CPU autocast is on for this thread.
pub fn cpu_autocast_enabled() -> bool {
    // Safety: reads a thread-local flag.
    unsafe { minima_cpu_autocast_enabled() }
}

/// Runs `f` over blocks of [0, n) on libtorch's intra-op threads, as
/// at::parallel_for: at most one block per thread, each at least `grain` long;
/// on this thread alone when n < grain, inside another parallel region, or at
/// one thread. `f` must not panic: a panic cannot unwind through libtorch's
/// threads and aborts.
pub fn parallel_for<F: Fn(Range<usize>) + Sync>(n: usize, grain: usize, f: F) {
    unsafe extern "C" fn body<F: Fn(Range<usize>) + Sync>(ctx: *const c_void, b: usize, e: usize) {
        // Safety: ctx is the `f` below, alive until minima_parallel_for returns.
        unsafe { (*ctx.cast::<F>())(b..e) }
    }
    // Safety: the shim calls `body` with `ctx` only before it returns.
    unsafe { minima_parallel_for(n, grain, body::<F>, (&f as *const F).cast()) }
}

/// A mutable slice whose disjoint parts the blocks of one `parallel_for` write.
pub struct Parts<'a, T> {
    ptr: *mut T,
    len: usize,
    _slice: PhantomData<&'a mut [T]>,
}

// Safety: each part is a disjoint &mut [T] (the caller's promise in `part`).
unsafe impl<T: Send> Sync for Parts<'_, T> {}

impl<'a, T> Parts<'a, T> {
    pub fn new(slice: &'a mut [T]) -> Self {
        Parts {
            ptr: slice.as_mut_ptr(),
            len: slice.len(),
            _slice: PhantomData,
        }
    }

    /// The elements in `r`.
    ///
    /// # Safety
    /// No other part alive at the same time overlaps `r`.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn part(&self, r: Range<usize>) -> &'a mut [T] {
        assert!(
            r.start <= r.end && r.end <= self.len,
            "part {r:?} of {}",
            self.len
        );
        // Safety: in bounds (checked); disjoint (the caller's promise).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(r.start), r.end - r.start) }
    }
}
