// torch.optim.SGD's multi-tensor update (`_multi_tensor_sgd`, PyTorch 2.x, the
// default on CUDA), which tch 0.26 cannot call: its generated wrappers leave out
// the `_foreach_*` operators. One call updates every parameter, so a step costs
// a handful of operator dispatches (and, on CUDA, fused kernel launches) instead
// of several per parameter; on the CPU libtorch runs the same per-tensor
// `add_(other, alpha)` ops torch.optim.SGD's default single-tensor path runs.
// Compiled by build.rs against the libtorch torch-sys links.
#include <ATen/core/Tensor.h>
#include <ATen/ops/_foreach_add.h>
#include <ATen/ops/_foreach_mul.h>

#include <cstring>
#include <vector>

extern "C" {

// Clears the gradients as `zero_grad(set_to_none=True)` (torch's default) does:
// backward then writes fresh ones instead of accumulating into zeroed ones.
void minima_grads_to_none(at::Tensor** params, int n) {
  for (int i = 0; i < n; ++i) params[i]->mutable_grad().reset();
}

// One SGD step of `params` (n tensors; those without a gradient are skipped, as
// torch.optim.SGD skips them). With momentum, `buffers[i]` is the momentum
// buffer of params[i] and must be defined: the first step, which creates the
// buffers, stays with the caller (torch.optim.SGD takes it per tensor too).
// Follows torch.optim.SGD's `_multi_tensor_sgd` (maximize off):
//   g ← g + weight_decay·p;  b ← momentum·b + (1 − dampening)·g;
//   g ← g + momentum·b (nesterov) or g ← b;  p ← p − lr·g.
// Returns 0, or -1 with libtorch's message in `err` (NUL-terminated).
int minima_sgd_foreach(at::Tensor** params, at::Tensor** buffers, int n, double lr,
                       double momentum, double dampening, double weight_decay, int nesterov,
                       char* err, int err_len) {
  try {
    std::vector<at::Tensor> ps, gs, bs;
    for (int i = 0; i < n; ++i) {
      const at::Tensor& g = params[i]->grad();
      if (!g.defined()) continue;
      ps.push_back(*params[i]);
      gs.push_back(g);
      if (momentum != 0.0) bs.push_back(*buffers[i]);
    }
    if (ps.empty()) return 0;
    std::vector<at::Tensor> d =
        weight_decay != 0.0 ? at::_foreach_add(gs, ps, weight_decay) : gs;
    if (momentum != 0.0) {
      at::_foreach_mul_(bs, momentum);
      at::_foreach_add_(bs, d, 1.0 - dampening);
      if (nesterov) {
        at::_foreach_add_(d, bs, momentum);
      } else {
        d = bs;
      }
    }
    at::_foreach_add_(ps, d, -lr);
    return 0;
  } catch (const std::exception& e) {
    std::strncpy(err, e.what(), err_len - 1);
    err[err_len - 1] = '\0';
    return -1;
  }
}
}
