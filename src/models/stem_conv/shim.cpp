// The first convolution of a net (3x3 from a few input channels, see
// src/models/stem_conv/mod.rs) as one libtorch autograd node, which tch cannot
// define: its forward and backward call the Rust kernels
// (src/models/stem_conv/kernel.rs) through the function pointers the caller
// passes, so this file holds only the autograd plumbing. Compiled by build.rs
// against the libtorch torch-sys links.
#include <torch/csrc/autograd/custom_function.h>

#include <cstdint>
#include <exception>

#include "../shim.h"

extern "C" {

// kernel.rs's `Dims`.
struct MinimaStemDims {
  size_t n, c_in, h, w, c_out;
  size_t x_strides[4];
};

// mod.rs's `Kernels`; `bias` and `gb` may be null (a convolution without bias).
struct MinimaStemKernels {
  void (*forward)(MinimaStemDims, const float* x, const float* weight, const float* bias,
                  float* y);
  void (*weight_grad)(MinimaStemDims, const float* x, const float* g, float* gw, float* gb);
};
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using minima_shim::channels_last;

MinimaStemDims dims_of(const at::Tensor& x, const at::Tensor& weight) {
  MinimaStemDims d{};
  d.n = static_cast<size_t>(x.size(0));
  d.c_in = static_cast<size_t>(x.size(1));
  d.h = static_cast<size_t>(x.size(2));
  d.w = static_cast<size_t>(x.size(3));
  d.c_out = static_cast<size_t>(weight.size(0));
  for (int i = 0; i < 4; ++i) d.x_strides[i] = static_cast<size_t>(x.stride(i));
  return d;
}

const MinimaStemKernels* kernels_at(int64_t address) {
  return reinterpret_cast<const MinimaStemKernels*>(address);
}

// The output, channels-last [n, c_out, h, w].
at::Tensor forward_into(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                        const MinimaStemKernels* kernels) {
  const MinimaStemDims d = dims_of(x, weight);
  at::Tensor y = channels_last({x.size(0), weight.size(0), x.size(2), x.size(3)}, x.options());
  kernels->forward(d, x.const_data_ptr<float>(), weight.const_data_ptr<float>(),
                   bias.numel() > 0 ? bias.const_data_ptr<float>() : nullptr,
                   y.mutable_data_ptr<float>());
  return y;
}

struct StemConv : public torch::autograd::Function<StemConv> {
  // x needs no gradient; weight is contiguous [c_out, c_in, 3, 3]; bias is
  // [c_out] or empty for none (checked by the caller).
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, int64_t kernels) {
    ctx->save_for_backward({x});
    ctx->saved_data["kernels"] = kernels;
    ctx->saved_data["c_out"] = weight.size(0);
    ctx->saved_data["bias"] = bias.numel() > 0;
    return forward_into(x, weight, bias, kernels_at(kernels));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor x = ctx->get_saved_variables()[0];
    const int64_t c_out = ctx->saved_data["c_out"].toInt();
    const at::Tensor g = grads[0].contiguous(at::MemoryFormat::ChannelsLast);
    at::Tensor gw = at::empty({c_out, x.size(1), 3, 3}, g.options());
    at::Tensor gb;
    if (ctx->saved_data["bias"].toBool()) gb = at::empty({c_out}, g.options());
    MinimaStemDims d = dims_of(x, gw);
    kernels_at(ctx->saved_data["kernels"].toInt())
        ->weight_grad(d, x.const_data_ptr<float>(), g.const_data_ptr<float>(),
                      gw.mutable_data_ptr<float>(), gb.defined() ? gb.mutable_data_ptr<float>() : nullptr);
    return {at::Tensor(), gw, gb, at::Tensor()};
  }
};

}  // namespace

extern "C" {

// conv2d(x, weight, bias, stride 1, padding 1) through the kernels at
// `kernels`, `bias` null for none; an autograd node when gradients are being
// recorded and the weight or bias requires one. Returns 0 with the
// channels-last result in *out (a new handle the caller owns), or -1 with
// libtorch's message in `err` (NUL-terminated).
int minima_stem_conv(const at::Tensor* x, const at::Tensor* weight, const at::Tensor* bias,
                     const MinimaStemKernels* kernels, at::Tensor** out, char* err, int err_len) {
  try {
    const at::Tensor w = weight->contiguous();
    // An autograd function's tensor arguments must be defined: no bias is an
    // empty one.
    const at::Tensor b = bias ? bias->contiguous() : at::empty({0}, w.options());
    const bool records = at::GradMode::is_enabled() &&
                         (weight->requires_grad() || (bias && bias->requires_grad()));
    at::Tensor y = records ? StemConv::apply(*x, w, b, reinterpret_cast<int64_t>(kernels))
                           : forward_into(*x, w, b, kernels);
    *out = new at::Tensor(std::move(y));
    return 0;
  } catch (const std::exception& e) {
    minima_shim::write_error(e.what(), err, err_len);
    return -1;
  }
}
}
