// What the models' Rust kernels need from libtorch besides their autograd
// nodes: libtorch's own intra-op threads, whether gradients are recorded and
// whether CPU autocast is on. The kernels run inside a training
// step whose other ops keep libtorch's OpenMP workers spinning between regions;
// a thread of their own would compete with those workers for the cores, so they
// split their work through at::parallel_for, whose workers these are. Compiled
// with -fopenmp (build.rs) because at::parallel_for's OpenMP region is in the
// header.
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>

#include <cstddef>
#include <cstdint>

extern "C" {

// at::parallel_for(0, n, grain, ...): body(ctx, begin, end) for at most one
// block per thread, each at least `grain` long; on the calling thread alone
// when n < grain, inside another parallel region, or at one thread. The body
// must not throw (the Rust kernels do not unwind across this boundary).
void minima_parallel_for(size_t n, size_t grain, void (*body)(const void*, size_t, size_t),
                         const void* ctx) {
  at::parallel_for(0, static_cast<int64_t>(n), static_cast<int64_t>(grain),
                   [&](int64_t begin, int64_t end) {
                     body(ctx, static_cast<size_t>(begin), static_cast<size_t>(end));
                   });
}

// Whether autograd records ops on this thread (torch.is_grad_enabled()), which
// tch 0.26 can only set.
bool minima_grad_enabled() { return at::GradMode::is_enabled(); }

// Whether CPU autocast is on for this thread: a kernel that computes in
// float32 only leaves such an op to libtorch.
bool minima_cpu_autocast_enabled() { return at::autocast::is_autocast_enabled(at::kCPU); }
}
