// The first convolution of a net (3x3 from a few input channels, see
// src/models/stem_conv/mod.rs) as one libtorch autograd node, and the same
// convolution with the 2x2 max-pool and ReLU after it as another (the cnn's
// first stage), which tch cannot define: their forward and backward call the
// Rust kernels
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

// pooled.rs's `Kernels`: y and g are the pooled output's [n, h / 2, w / 2,
// c_out]; `mask` (each maximum's slot) may be null in the forward: no gradient
// follows.
struct MinimaStemPoolKernels {
  void (*forward)(MinimaStemDims, const float* x, const float* weight, const float* bias,
                  float* y, uint8_t* mask);
  void (*weight_grad)(MinimaStemDims, const float* x, const float* g, const float* y,
                      const uint8_t* mask, float* gw, float* gb);
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

const MinimaStemPoolKernels* pool_kernels_at(int64_t address) {
  return reinterpret_cast<const MinimaStemPoolKernels*>(address);
}

// The pooled output, channels-last [n, c_out, h / 2, w / 2], and the mask
// (each maximum's slot, [n, h / 2, w / 2, c_out]) when `mask` is given.
at::Tensor pooled_into(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                       const MinimaStemPoolKernels* kernels, at::Tensor* mask) {
  const MinimaStemDims d = dims_of(x, weight);
  const int64_t n = x.size(0), c = weight.size(0), h = x.size(2) / 2, w = x.size(3) / 2;
  at::Tensor y = channels_last({n, c, h, w}, x.options());
  if (mask) *mask = at::empty({n, h, w, c}, x.options().dtype(at::kByte));
  kernels->forward(d, x.const_data_ptr<float>(), weight.const_data_ptr<float>(),
                   bias.numel() > 0 ? bias.const_data_ptr<float>() : nullptr,
                   y.mutable_data_ptr<float>(), mask ? mask->mutable_data_ptr<uint8_t>() : nullptr);
  return y;
}

struct StemConvPool : public torch::autograd::Function<StemConvPool> {
  // As StemConv's arguments; x is at least 2x2.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, int64_t kernels) {
    at::Tensor mask;
    at::Tensor y = pooled_into(x, weight, bias, pool_kernels_at(kernels), &mask);
    ctx->save_for_backward({x, y, mask});
    ctx->saved_data["kernels"] = kernels;
    ctx->saved_data["c_out"] = weight.size(0);
    ctx->saved_data["bias"] = bias.numel() > 0;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const int64_t c_out = ctx->saved_data["c_out"].toInt();
    // The next layer's backward may hand a gradient in another layout: the
    // kernels read channels-last.
    const at::Tensor g = grads[0].contiguous(at::MemoryFormat::ChannelsLast);
    at::Tensor gw = at::empty({c_out, x.size(1), 3, 3}, g.options());
    at::Tensor gb;
    if (ctx->saved_data["bias"].toBool()) gb = at::empty({c_out}, g.options());
    pool_kernels_at(ctx->saved_data["kernels"].toInt())
        ->weight_grad(dims_of(x, gw), x.const_data_ptr<float>(), g.const_data_ptr<float>(),
                      saved[1].const_data_ptr<float>(), saved[2].const_data_ptr<uint8_t>(),
                      gw.mutable_data_ptr<float>(), gb.defined() ? gb.mutable_data_ptr<float>() : nullptr);
    return {at::Tensor(), gw, gb, at::Tensor()};
  }
};

// What both entry points share: the contiguous weight and the bias (an
// autograd function's tensor arguments must be defined: no bias is an empty
// one), whether autograd records (gradients on and the weight or bias
// requiring one), and `run(w, b, records)`'s tensor in *out (0) or libtorch's
// message in `err` (-1).
template <class Run>
int run_entry(const at::Tensor* weight, const at::Tensor* bias, at::Tensor** out, char* err,
              int err_len, Run run) {
  try {
    const at::Tensor w = weight->contiguous();
    const at::Tensor b = bias ? bias->contiguous() : at::empty({0}, w.options());
    const bool records = at::GradMode::is_enabled() &&
                         (weight->requires_grad() || (bias && bias->requires_grad()));
    *out = new at::Tensor(run(w, b, records));
    return 0;
  } catch (const std::exception& e) {
    minima_shim::write_error(e.what(), err, err_len);
    return -1;
  }
}

}  // namespace

extern "C" {

// conv2d(x, weight, bias, stride 1, padding 1) through the kernels at
// `kernels`, `bias` null for none; an autograd node when gradients are being
// recorded and the weight or bias requires one. Returns 0 with the
// channels-last result in *out (a new handle the caller owns), or -1 with
// libtorch's message in `err` (NUL-terminated).
int minima_stem_conv(const at::Tensor* x, const at::Tensor* weight, const at::Tensor* bias,
                     const MinimaStemKernels* kernels, at::Tensor** out, char* err, int err_len) {
  return run_entry(weight, bias, out, err, err_len,
                   [&](const at::Tensor& w, const at::Tensor& b, bool records) {
                     return records ? StemConv::apply(*x, w, b, reinterpret_cast<int64_t>(kernels))
                                    : forward_into(*x, w, b, kernels);
                   });
}

// relu(max_pool2d(conv2d(x, weight, bias, stride 1, padding 1), 2)) through
// the kernels at `kernels`, as minima_stem_conv; x is at least 2x2.
int minima_stem_conv_pool2_relu(const at::Tensor* x, const at::Tensor* weight,
                                const at::Tensor* bias, const MinimaStemPoolKernels* kernels,
                                at::Tensor** out, char* err, int err_len) {
  return run_entry(weight, bias, out, err, err_len,
                   [&](const at::Tensor& w, const at::Tensor& b, bool records) {
                     return records
                                ? StemConvPool::apply(*x, w, b, reinterpret_cast<int64_t>(kernels))
                                : pooled_into(*x, w, b, kernels, nullptr);
                   });
}
}
