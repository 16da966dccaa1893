// Training-mode batch norm of channels-last float32 CPU activations as one
// libtorch autograd node, which tch cannot define: its forward and backward call
// the Rust kernels (src/models/batch_norm/kernel.rs) through the function
// pointers the caller passes, so this file holds only the autograd plumbing.
// Compiled by build.rs against the libtorch torch-sys links.
#include <ATen/ops/threshold_backward.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstdint>
#include <exception>

#include "../shim.h"

extern "C" {

// kernel.rs's `Dims`: rows (n·h·w) × channels in memory.
struct MinimaNormDims {
  size_t rows, channels;
};

// mod.rs's `Kernels`.
struct MinimaNormKernels {
  // skip: the values added before the ReLU (a residual block's end), or null.
  void (*forward)(MinimaNormDims, const float* x, const float* weight, const float* bias,
                  double momentum, double eps, const float* skip, bool relu, float* y,
                  float* mean, float* invstd, float* running_mean, float* running_var);
  // relu_out: the forward's output when it ended in a ReLU, else null.
  void (*backward)(MinimaNormDims, const float* x, const float* g, const float* relu_out,
                   const float* mean, const float* invstd, const float* weight, float* gx,
                   float* gw, float* gb);
};
}

namespace {

using minima_shim::channels_last;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

MinimaNormDims dims_of(const at::Tensor& x) {
  return MinimaNormDims{static_cast<size_t>(x.numel() / x.size(1)),
                        static_cast<size_t>(x.size(1))};
}

const MinimaNormKernels* kernels_at(int64_t address) {
  return reinterpret_cast<const MinimaNormKernels*>(address);
}

// The output (plus `skip` unless it is empty, then its ReLU with `relu`), and
// the batch's mean and 1/std the backward needs; moves the running statistics.
struct Forward {
  at::Tensor y, mean, invstd;
};

Forward run_forward(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                    const at::Tensor& running_mean, const at::Tensor& running_var,
                    const at::Tensor& skip, double momentum, double eps, bool relu,
                    const MinimaNormKernels* kernels) {
  Forward f{channels_last(x.sizes(), x.options()), at::empty({x.size(1)}, weight.options()),
            at::empty({x.size(1)}, weight.options())};
  kernels->forward(dims_of(x), x.const_data_ptr<float>(), weight.const_data_ptr<float>(),
                   bias.const_data_ptr<float>(), momentum, eps,
                   skip.numel() > 0 ? skip.const_data_ptr<float>() : nullptr, relu,
                   f.y.mutable_data_ptr<float>(),
                   f.mean.mutable_data_ptr<float>(), f.invstd.mutable_data_ptr<float>(),
                   running_mean.mutable_data_ptr<float>(), running_var.mutable_data_ptr<float>());
  return f;
}

struct BatchNormChannelsLast : public torch::autograd::Function<BatchNormChannelsLast> {
  // Checked by the caller: x (and skip, unless empty) channels-last float32
  // on the CPU, the four per-channel tensors contiguous float32 on the CPU; a
  // skip only with relu. Autograd takes no undefined input: no skip is an
  // empty tensor.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, const at::Tensor& running_mean,
                            const at::Tensor& running_var, const at::Tensor& skip,
                            double momentum, double eps, bool relu, int64_t kernels) {
    Forward f = run_forward(x, weight, bias, running_mean, running_var, skip, momentum, eps, relu,
                            kernels_at(kernels));
    // The ReLU's backward reads its output (autograd checks it is not changed
    // in place before then); an undefined tensor without one.
    ctx->save_for_backward({x, weight, f.mean, f.invstd, relu ? f.y : at::Tensor()});
    ctx->saved_data["kernels"] = kernels;
    ctx->saved_data["skip"] = skip.numel() > 0;
    return f.y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor& relu_out = saved[4];
    // The next layer's backward may hand a gradient in another layout: the
    // kernel reads channels-last.
    at::Tensor g = grads[0].contiguous(at::MemoryFormat::ChannelsLast);
    // After a skip connection the ReLU's gradient is also the skip's: made
    // here by libtorch's own ReLU backward (threshold_backward of the output,
    // as ReluBackward0), it is the batch norm's upstream gradient with no ReLU
    // left to pass through.
    at::Tensor gs;
    if (ctx->saved_data["skip"].toBool()) {
      gs = at::threshold_backward(g, relu_out, 0).contiguous(at::MemoryFormat::ChannelsLast);
      g = gs;
    }
    const bool mask = relu_out.defined() && !gs.defined();
    at::Tensor gx = channels_last(x.sizes(), x.options());
    at::Tensor gw = at::empty_like(weight);
    at::Tensor gb = at::empty_like(weight);
    kernels_at(ctx->saved_data["kernels"].toInt())
        ->backward(dims_of(x), x.const_data_ptr<float>(), g.const_data_ptr<float>(),
                   mask ? relu_out.const_data_ptr<float>() : nullptr,
                   saved[2].const_data_ptr<float>(), saved[3].const_data_ptr<float>(),
                   weight.const_data_ptr<float>(), gx.mutable_data_ptr<float>(),
                   gw.mutable_data_ptr<float>(), gb.mutable_data_ptr<float>());
    // One gradient per forward input: x, weight, bias, none for the running
    // statistics, the skip's, and none for the rest.
    return {gx, gw, gb, at::Tensor(), at::Tensor(), gs, at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor()};
  }
};

}  // namespace

extern "C" {

// F.batch_norm(x, running_mean, running_var, weight, bias, training=True,
// momentum, eps) of a channels-last float32 CPU tensor x [n, c, h, w], plus
// `skip` where not null (a tensor laid out as x), then its relu with `relu`,
// through the kernels at `kernels`; an autograd node when gradients are being
// recorded and x, weight, bias or skip requires one, a plain forward otherwise.
// The running statistics move either way. Returns 0 with the result in *out (a
// new handle the caller owns), or -1 with libtorch's message in `err`
// (NUL-terminated).
int minima_batch_norm_channels_last(const at::Tensor* x, const at::Tensor* weight,
                                    const at::Tensor* bias, const at::Tensor* running_mean,
                                    const at::Tensor* running_var, const at::Tensor* skip,
                                    double momentum, double eps, bool relu,
                                    const MinimaNormKernels* kernels, at::Tensor** out, char* err,
                                    int err_len) {
  try {
    at::Tensor y;
    const at::Tensor s = skip ? *skip : at::empty({0}, x->options());
    const bool grad = x->requires_grad() || weight->requires_grad() || bias->requires_grad() ||
                      s.requires_grad();
    if (at::GradMode::is_enabled() && grad) {
      y = BatchNormChannelsLast::apply(*x, *weight, *bias, *running_mean, *running_var, s,
                                       momentum, eps, relu, reinterpret_cast<int64_t>(kernels));
    } else {
      y = run_forward(*x, *weight, *bias, *running_mean, *running_var, s, momentum, eps, relu,
                      kernels)
              .y;
    }
    *out = new at::Tensor(std::move(y));
    return 0;
  } catch (const std::exception& e) {
    minima_shim::write_error(e.what(), err, err_len);
    return -1;
  }
}
}
