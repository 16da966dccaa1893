//! libtorch's CUDA backend, opened at run time.
//!
//! torch-sys names libtorch_cuda.so on the link line, but the linker drops a
//! library the binary uses no symbol of (`--as-needed`), and without it libtorch
//! registers no CUDA backend: `tch::Cuda::is_available()` is false on a GPU
//! machine. Linking it for good would stop minima from starting where the NVIDIA
//! libraries it needs (cuBLAS, cuDNN, NCCL) are absent, as with the slim libtorch
//! scripts/bootstrap.sh installs on CPU machines. So it is opened here, once,
//! where an NVIDIA driver is present; its static initialisers register the backend.

use std::ffi::CStr;
use std::path::Path;
use std::sync::OnceLock;

/// Opens libtorch_cuda.so (found through the binary's rpath to libtorch, or
/// LD_LIBRARY_PATH) unless this machine has no NVIDIA driver. The error says why
/// CUDA is unavailable, for `--device cuda` to report.
pub fn load() -> Result<(), String> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED.get_or_init(open).clone()
}

fn open() -> Result<(), String> {
    if !["/proc/driver/nvidia", "/dev/nvidiactl", "/dev/nvidia0"]
        .iter()
        .any(|p| Path::new(p).exists())
    {
        return Err(
            "no NVIDIA driver on this machine (no /proc/driver/nvidia, /dev/nvidiactl or /dev/nvidia0)"
                .into(),
        );
    }
    // RTLD_GLOBAL: libtorch resolves the CUDA kernels it dispatches to by name.
    // SAFETY: a NUL-terminated name; the handle is never closed, so the library's
    // registrations stay valid for the life of the process.
    let handle = unsafe {
        libc::dlopen(
            c"libtorch_cuda.so".as_ptr(),
            libc::RTLD_NOW | libc::RTLD_GLOBAL,
        )
    };
    if !handle.is_null() {
        return Ok(());
    }
    // SAFETY: dlerror returns null or a NUL-terminated message owned by libc,
    // copied before any other dl* call.
    let why = unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            "unknown error".to_string()
        } else {
            CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    };
    Err(format!("libtorch_cuda.so could not be loaded: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a machine without an NVIDIA driver the loader declines with the reason
    /// and CUDA stays unavailable; with one, loading succeeds exactly when libtorch
    /// then reports CUDA.
    #[test]
    fn load_agrees_with_libtorch() {
        match load() {
            Err(why) => {
                assert!(
                    why.contains("NVIDIA driver") || why.contains("libtorch_cuda.so"),
                    "{why}"
                );
                assert!(!tch::Cuda::is_available());
            }
            Ok(()) => assert!(tch::Cuda::is_available()),
        }
    }
}
