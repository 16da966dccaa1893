//! How the process allocates memory. glibc serves every allocation above its mmap
//! threshold (at most 32 MB) with a fresh `mmap` and unmaps it on free, so each
//! large activation tensor, e.g. a ResNet's feature maps for an evaluation batch
//! of 1,024 images, is page-faulted in anew: measured 1.7x slower evaluation, a
//! third of its time in the kernel (docs/PERFORMANCE.md). Keeping such blocks in
//! the heap and not trimming it lets libtorch reuse them.

/// Called first thing in `main` (and in benchmark workers), before any tensor.
pub fn keep_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // From glibc's <malloc.h>.
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_MAX: i32 = -4;
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // SAFETY: mallopt only changes allocator parameters; it is called before
        // any other thread exists.
        unsafe {
            mallopt(M_MMAP_MAX, 0);
            mallopt(M_TRIM_THRESHOLD, i32::MAX);
        }
    }
}
