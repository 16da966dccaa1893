//! The layers the architectures are made of, built as PyTorch builds them: same
//! parameter and buffer names, same initial values, same draw order, same forward.
//!
//! A [`Scope`] is a tch `Path` that also records the order in which tensors are
//! registered. Building modules in the order their PyTorch `__init__` does makes
//! that order PyTorch's `state_dict()` order (parameters, then buffers, module by
//! module), which `m.layers()` and saved files follow.

use super::batch_norm::After;
use super::init;
use super::stem_conv;
use anyhow::Result;
use std::cell::RefCell;
use tch::nn::{self, Init};
use tch::{Kind, Tensor};

#[derive(Clone)]
pub struct Scope<'a> {
    path: nn::Path<'a>,
    names: &'a RefCell<Vec<String>>,
    layout: ConvLayout,
}

impl<'a> Scope<'a> {
    /// `layout` is how the convolutions built under this scope run on the CPU.
    pub fn new(
        path: nn::Path<'a>,
        names: &'a RefCell<Vec<String>>,
        layout: ConvLayout,
    ) -> Scope<'a> {
        Scope {
            path,
            names,
            layout,
        }
    }

    pub fn sub(&self, name: impl ToString) -> Scope<'a> {
        Scope {
            path: self.path.sub(name),
            names: self.names,
            layout: self.layout,
        }
    }

    /// Fallible, like every constructor here: a model too large for memory is an
    /// error for the script, not a panic.
    fn param(&self, name: &str, dims: &[i64], init: Init) -> Result<Tensor> {
        self.names.borrow_mut().push(self.path.path(name));
        Ok(self.path.f_var(name, dims, init)?)
    }

    fn buffer(&self, name: &str, tensor: Result<Tensor, tch::TchError>) -> Result<Tensor> {
        self.names.borrow_mut().push(self.path.path(name));
        Ok(self.path.add(name, tensor?, false))
    }
}

/// The memory layout a convolution's activations take on the CPU. Parameters are
/// stored NCHW-contiguous either way (saved files, metrics and the SGD update see
/// one layout); with `ChannelsLast` each forward convolves with a channels-last
/// copy of the weight, and libtorch's oneDNN convolution then returns its output
/// channels-last, which the batch norms, ReLUs, pools and additions that follow
/// keep. That is PyTorch's `model.to(memory_format=torch.channels_last)` for the
/// activations; docs/PERFORMANCE.md has what it gains on each architecture.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConvLayout {
    Nchw,
    ChannelsLast,
}

/// torch.nn.Conv2d (square kernel, dilation 1, groups 1) with reset_parameters'
/// initialisation: weight drawn before bias.
#[derive(Debug)]
pub struct Conv2d {
    pub weight: Tensor,
    bias: Option<Tensor>,
    stride: i64,
    padding: i64,
    layout: ConvLayout,
    stem_kernel: bool,
}

impl Conv2d {
    pub fn new(
        s: &Scope,
        c_in: i64,
        c_out: i64,
        kernel: i64,
        stride: i64,
        padding: i64,
        bias: bool,
    ) -> Result<Conv2d> {
        let fan_in = c_in * kernel * kernel;
        let weight = s.param(
            "weight",
            &[c_out, c_in, kernel, kernel],
            init::kaiming_uniform(fan_in),
        )?;
        let bias = match bias {
            true => Some(s.param("bias", &[c_out], init::bias_uniform(fan_in))?),
            false => None,
        };
        Ok(Conv2d {
            weight,
            bias,
            stride,
            padding,
            layout: s.layout,
            stem_kernel: false,
        })
    }

    /// Runs this convolution through `stem_conv`'s kernels where they take it;
    /// only the cnn's first layer asks (`stem_conv`'s docs say why).
    pub fn with_stem_kernel(mut self) -> Conv2d {
        self.stem_kernel = true;
        self
    }

    /// Whether `stem_conv`'s kernels may run this layer: it asked, and it runs
    /// channels-last on the CPU.
    fn stem(&self) -> bool {
        self.stem_kernel && self.cpu_channels_last()
    }

    fn cpu_channels_last(&self) -> bool {
        self.layout == ConvLayout::ChannelsLast && self.weight.device() == tch::Device::Cpu
    }

    /// relu(max_pool2d(self.forward(xs), 2)) as one node where `stem_conv`'s
    /// pooled kernels take it (the same floats), else None.
    pub fn stem_pool2_relu(&self, xs: &Tensor) -> Option<Tensor> {
        let (bias, stride, padding) = (self.bias.as_ref(), self.stride, self.padding);
        let own = self
            .stem()
            .then(|| stem_conv::conv3x3_pool2_relu(xs, &self.weight, bias, stride, padding));
        own.flatten()
    }

    pub fn forward(&self, xs: &Tensor) -> Tensor {
        let (bias, stride, padding) = (self.bias.as_ref(), self.stride, self.padding);
        let stem = self.stem();
        let own = stem.then(|| stem_conv::conv3x3(xs, &self.weight, bias, stride, padding));
        if let Some(y) = own.flatten() {
            return y;
        }
        let (xs, weight) = match self.cpu_channels_last() {
            true if self.wide_on_a_small_map(xs) => (xs.contiguous(), self.weight.shallow_clone()),
            true => (xs.shallow_clone(), channels_last(&self.weight)),
            false => (xs.shallow_clone(), self.weight.shallow_clone()),
        };
        xs.conv2d(
            &weight,
            bias,
            [stride, stride],
            [padding, padding],
            [1, 1],
            1,
        )
    }

    /// Whether this is a wide stride-1 convolution over a map of at most 8x8,
    /// which a channels-last net runs NCHW: there oneDNN's channels-last kernels
    /// take 1.2-1.7x as long as its NCHW ones for a training step at 256 and 512
    /// channels, and up to 2.5x for the forward alone, while at 128 channels,
    /// at 1x1 and on larger maps they are faster (docs/PERFORMANCE.md, "Wide
    /// convolutions on small maps NCHW"). The output comes back NCHW; the batch
    /// norm, ReLU or addition after it takes either layout.
    fn wide_on_a_small_map(&self, xs: &Tensor) -> bool {
        let (w, x) = (self.weight.size(), xs.size());
        self.stride == 1 && w[2] > 1 && w[0] >= 256 && w[1] >= 256 && x[2] * x[3] <= 64
    }
}

/// A channels-last copy of a 4-d tensor, through autograd (its gradient flows back
/// to `t` in `t`'s layout). Made with explicit strides because `contiguous()` of a
/// tensor with one input channel returns it unchanged: such a weight is laid out
/// alike in both formats, yet libtorch reads the format from the strides, and the
/// first convolution of a grey-scale net would otherwise stay NCHW.
pub fn channels_last(t: &Tensor) -> Tensor {
    let size = t.size();
    let (c, h, w) = (size[1], size[2], size[3]);
    let mut out = Tensor::empty_strided(&size, [c * h * w, 1, w * c, c], (t.kind(), t.device()));
    out.copy_(t);
    out
}

/// Whether a 4-d tensor is laid out [n, h, w, c] in memory (strides of size-1
/// dimensions do not matter, as in libtorch's own test of the layout).
pub fn is_channels_last(x: &Tensor) -> bool {
    let (size, stride) = (x.size(), x.stride());
    let [_, c, h, w] = [size[0], size[1], size[2], size[3]];
    let expected = [h * w * c, 1, w * c, c];
    (0..4).all(|i| size[i] == 1 || stride[i] == expected[i])
}

/// torch.nn.Linear with reset_parameters' initialisation; forward is F.linear.
#[derive(Debug)]
pub struct Linear {
    weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    pub fn new(s: &Scope, in_dim: i64, out_dim: i64) -> Result<Linear> {
        let weight = s.param("weight", &[out_dim, in_dim], init::kaiming_uniform(in_dim))?;
        let bias = s.param("bias", &[out_dim], init::bias_uniform(in_dim))?;
        Ok(Linear { weight, bias })
    }

    pub fn forward(&self, xs: &Tensor) -> Tensor {
        xs.linear(&self.weight, Some(&self.bias))
    }
}

/// torch.nn.BatchNorm2d with its defaults: eps 1e-5, momentum 0.1, affine, tracked
/// running statistics. Weight 1, bias 0, running mean 0, running variance 1 (tch's
/// batch_norm2d draws the weight from U(0, 1) and keeps no `num_batches_tracked`,
/// hence this type). In training mode the batch statistics normalise and the
/// running statistics move by momentum (the variance's unbiased estimate, as
/// PyTorch); in eval mode the running statistics normalise and nothing changes.
/// Channels-last float32 activations on the CPU train through `batch_norm`,
/// libtorch's NCHW arithmetic on channels-last memory, with the ReLU that
/// follows in the same pass (`forward_relu_t`), or a residual block's end
/// (`forward_add_relu_t`).
#[derive(Debug)]
pub struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    num_batches_tracked: Tensor,
}

impl BatchNorm2d {
    pub const MOMENTUM: f64 = 0.1;
    pub const EPS: f64 = 1e-5;

    pub fn new(s: &Scope, channels: i64) -> Result<BatchNorm2d> {
        let device = s.path.device();
        Ok(BatchNorm2d {
            weight: s.param("weight", &[channels], Init::Const(1.0))?,
            bias: s.param("bias", &[channels], Init::Const(0.0))?,
            running_mean: s.buffer(
                "running_mean",
                Tensor::f_zeros([channels], (Kind::Float, device)),
            )?,
            running_var: s.buffer(
                "running_var",
                Tensor::f_ones([channels], (Kind::Float, device)),
            )?,
            num_batches_tracked: s.buffer(
                "num_batches_tracked",
                Tensor::f_zeros([], (Kind::Int64, device)),
            )?,
        })
    }

    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_then(xs, train, After::Nothing)
    }

    /// `forward_t(xs, train).relu()`, in one pass where `batch_norm`'s kernels
    /// take it (the same floats, gradients included).
    pub fn forward_relu_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_then(xs, train, After::Relu)
    }

    /// `(forward_t(xs, train) + skip).relu()`, a residual block's end, in one
    /// pass where `batch_norm`'s kernels take it (the same floats, gradients
    /// included).
    pub fn forward_add_relu_t(&self, xs: &Tensor, skip: &Tensor, train: bool) -> Tensor {
        self.forward_then(xs, train, After::AddRelu(skip))
    }

    fn forward_then(&self, xs: &Tensor, train: bool, after: After) -> Tensor {
        if train {
            // The buffer is shared with the var store; this updates it in place.
            let mut count = self.num_batches_tracked.shallow_clone();
            tch::no_grad(|| count += 1);
            let fast = super::batch_norm::train_channels_last(
                xs,
                &self.weight,
                &self.bias,
                &self.running_mean,
                &self.running_var,
                Self::MOMENTUM,
                Self::EPS,
                after,
            );
            if let Some(out) = fast {
                return out;
            }
        } else {
            let fast = super::batch_norm::eval_channels_last(
                xs,
                &self.weight,
                &self.bias,
                &self.running_mean,
                &self.running_var,
                Self::EPS,
                after,
            );
            if let Some(out) = fast {
                return out;
            }
        }
        let out = Tensor::batch_norm(
            xs,
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            Self::MOMENTUM,
            Self::EPS,
            true,
        );
        match after {
            After::Nothing => out,
            After::Relu => out.relu(),
            After::AddRelu(skip) => (out + skip).relu(),
        }
    }
}

/// torch.nn.MaxPool2d(2) / F.max_pool2d(x, 2).
pub fn max_pool2(xs: &Tensor) -> Tensor {
    xs.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)
}

/// F.avg_pool2d(x, 2) with its defaults (ceil_mode False, count_include_pad True).
pub fn avg_pool2(xs: &Tensor) -> Tensor {
    xs.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>)
}

/// Global average pooling to one value per channel, flattened: F.adaptive_avg_pool2d
/// (x, 1).flatten(1).
pub fn global_avg_pool(xs: &Tensor) -> Tensor {
    xs.adaptive_avg_pool2d([1, 1]).flatten(1, -1)
}

#[cfg(test)]
#[path = "layers_tests.rs"]
mod tests;
