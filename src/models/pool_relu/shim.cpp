// The fused 2x2 max-pool and ReLU as one libtorch autograd node, which tch
// cannot define: its forward and backward call the Rust kernels
// (src/models/pool_relu/kernel.rs) through the function pointers the caller
// passes, so this file holds only the autograd plumbing. Compiled by build.rs
// against the libtorch torch-sys links.
#include <torch/csrc/autograd/custom_function.h>

#include <cstdint>
#include <exception>

#include "../shim.h"

extern "C" {

// kernel.rs's `Dims`: input [n, h, w, c] in memory.
struct MinimaPoolDims {
  size_t n, c, h, w;
};

// mod.rs's `Kernels`. `mask` may be null in the forward: no gradient follows.
struct MinimaPoolKernels {
  void (*forward)(MinimaPoolDims, const float* x, float* y, uint8_t* mask);
  void (*backward)(MinimaPoolDims, const float* g, const float* y, const uint8_t* mask,
                   float* gx);
};
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using minima_shim::channels_last;

MinimaPoolDims dims_of(int64_t n, int64_t c, int64_t h, int64_t w) {
  return MinimaPoolDims{static_cast<size_t>(n), static_cast<size_t>(c), static_cast<size_t>(h),
                        static_cast<size_t>(w)};
}

const MinimaPoolKernels* kernels_at(int64_t address) {
  return reinterpret_cast<const MinimaPoolKernels*>(address);
}

struct PoolRelu : public torch::autograd::Function<PoolRelu> {
  // x: channels-last float32 on the CPU (checked by the caller).
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t kernels) {
    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    at::Tensor y = channels_last({n, c, h / 2, w / 2}, x.options());
    at::Tensor mask = at::empty({n, h / 2, w / 2, c}, x.options().dtype(at::kByte));
    kernels_at(kernels)->forward(dims_of(n, c, h, w), x.const_data_ptr<float>(),
                                 y.mutable_data_ptr<float>(), mask.mutable_data_ptr<uint8_t>());
    ctx->save_for_backward({y, mask});
    ctx->saved_data["kernels"] = kernels;
    ctx->saved_data["h"] = h;
    ctx->saved_data["w"] = w;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& y = saved[0];
    const at::Tensor& mask = saved[1];
    const int64_t n = y.size(0), c = y.size(1);
    const int64_t h = ctx->saved_data["h"].toInt(), w = ctx->saved_data["w"].toInt();
    // The next layer's backward may hand a gradient in another layout (the
    // flatten before a linear layer gives NCHW): the kernel reads channels-last.
    const at::Tensor g = grads[0].contiguous(at::MemoryFormat::ChannelsLast);
    at::Tensor gx = channels_last({n, c, h, w}, g.options());
    kernels_at(ctx->saved_data["kernels"].toInt())
        ->backward(dims_of(n, c, h, w), g.const_data_ptr<float>(), y.const_data_ptr<float>(),
                   mask.const_data_ptr<uint8_t>(), gx.mutable_data_ptr<float>());
    return {gx, at::Tensor()};
  }
};

}  // namespace

extern "C" {

// relu(max_pool2d(x, 2)) of a channels-last float32 CPU tensor x [n, c, h, w],
// through the kernels at `kernels`; an autograd node when gradients are being
// recorded and x requires one, a plain forward without the mask otherwise.
// Returns 0 with the result in *out (a new handle the caller owns), or -1 with
// libtorch's message in `err` (NUL-terminated).
int minima_pool2_relu(const at::Tensor* x, const MinimaPoolKernels* kernels, at::Tensor** out,
                      char* err, int err_len) {
  try {
    at::Tensor y;
    if (at::GradMode::is_enabled() && x->requires_grad()) {
      y = PoolRelu::apply(*x, reinterpret_cast<int64_t>(kernels));
    } else {
      const int64_t n = x->size(0), c = x->size(1), h = x->size(2), w = x->size(3);
      y = channels_last({n, c, h / 2, w / 2}, x->options());
      kernels->forward(dims_of(n, c, h, w), x->const_data_ptr<float>(),
                       y.mutable_data_ptr<float>(), nullptr);
    }
    *out = new at::Tensor(std::move(y));
    return 0;
  } catch (const std::exception& e) {
    minima_shim::write_error(e.what(), err, err_len);
    return -1;
  }
}
}
