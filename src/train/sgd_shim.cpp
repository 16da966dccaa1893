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
// buffer of params[i]; an undefined one is made here, as the first step makes
// it: a copy of the (decayed) gradient, undampened. The caller's tensor is
// assigned in place, so it holds the new buffer afterwards.
// Follows torch.optim.SGD's `_multi_tensor_sgd` (maximize off), whose every
// operation is an `add(other, alpha)` (a fused multiply-add in libtorch's
// vectorised CPU kernels) or a multiplication by a scalar:
//   g ← g + weight_decay·p;  b ← momentum·b + (1 − dampening)·g;
//   g ← g + momentum·b (nesterov) or g ← b;  p ← p − lr·g.
// Returns 0, or -1 with libtorch's message in `err` (NUL-terminated).
int minima_sgd_foreach(at::Tensor** params, at::Tensor** buffers, int n, double lr,
                       double momentum, double dampening, double weight_decay, int nesterov,
                       char* err, int err_len) {
  try {
    std::vector<at::Tensor> ps, gs, bs;
    std::vector<at::Tensor*> slots;
    for (int i = 0; i < n; ++i) {
      const at::Tensor& g = params[i]->grad();
      if (!g.defined()) continue;
      ps.push_back(*params[i]);
      gs.push_back(g);
      if (momentum != 0.0) {
        bs.push_back(*buffers[i]);
        slots.push_back(buffers[i]);
      }
    }
    if (ps.empty()) return 0;
    std::vector<at::Tensor> d =
        weight_decay != 0.0 ? at::_foreach_add(gs, ps, weight_decay) : gs;
    if (momentum != 0.0) {
      bool all = true;
      for (const auto& b : bs) all = all && b.defined();
      if (all) {
        at::_foreach_mul_(bs, momentum);
        at::_foreach_add_(bs, d, 1.0 - dampening);
      } else {
        for (size_t i = 0; i < bs.size(); ++i) {
          if (bs[i].defined()) {
            bs[i].mul_(momentum).add_(d[i], 1.0 - dampening);
          } else {
            bs[i] = d[i].clone().detach();
            *slots[i] = bs[i];
          }
        }
      }
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
