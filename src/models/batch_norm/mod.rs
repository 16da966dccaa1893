//! Training-mode batch norm of channels-last float32 activations on the CPU with
//! the arithmetic of libtorch's NCHW kernel, forward and backward.
//!
//! Why: channels-last convolutions train VGG16 and the ResNets 1.2–1.5× faster on
//! the CPU, but libtorch's channels-last batch norm sums each channel in float32
//! per thread, over every pixel of the batch, where its NCHW kernel sums in
//! float64. Against float64, the whole gradient of ResNet18 (width 0.125, one
//! Fashion-MNIST batch at the initial weights) was off by 3.7% channels-last and
//! by 0.004% NCHW (docs/TRAINING.md). This node computes what the NCHW kernel
//! computes on channels-last memory: the forward's floats bit for bit (mean,
//! variance, running statistics, output; tested), the backward's two per-channel
//! sums in float64 in row order (libtorch adds each image's plane in float32
//! vector lanes first), then libtorch's float32 formula for the input gradient.
//!
//! tch cannot define an autograd node, so a small C++ shim (`shim.cpp`, compiled
//! by build.rs) is the node and calls the kernels here. Anything else (eval mode,
//! NCHW, another dtype such as autocast's bf16, a GPU tensor) takes libtorch's
//! `batch_norm`.

mod kernel;

use super::layers::is_channels_last;
use kernel::{Dims, Params, Stats};
use std::os::raw::{c_char, c_int};
use tch::{Device, Kind, Tensor};
use torch_sys::C_tensor;

/// The kernels as the shim calls them (`MinimaNormKernels` there).
#[repr(C)]
struct Kernels {
    forward: extern "C" fn(
        Dims,
        *const f32,
        *const f32,
        *const f32,
        f64,
        f64,
        *mut f32,
        *mut f32,
        *mut f32,
        *mut f32,
        *mut f32,
    ),
    backward: extern "C" fn(
        Dims,
        *const f32,
        *const f32,
        *const f32,
        *const f32,
        *const f32,
        *mut f32,
        *mut f32,
        *mut f32,
    ),
}

static KERNELS: Kernels = Kernels {
    forward: forward_all,
    backward: backward_all,
};

extern "C" {
    #[allow(clippy::too_many_arguments)]
    fn minima_batch_norm_channels_last(
        x: *const C_tensor,
        weight: *const C_tensor,
        bias: *const C_tensor,
        running_mean: *const C_tensor,
        running_var: *const C_tensor,
        momentum: f64,
        eps: f64,
        kernels: *const Kernels,
        out: *mut *mut C_tensor,
        err: *mut c_char,
        err_len: c_int,
    ) -> c_int;
}

/// The shim's forward.
#[allow(clippy::too_many_arguments)]
extern "C" fn forward_all(
    d: Dims,
    x: *const f32,
    weight: *const f32,
    bias: *const f32,
    momentum: f64,
    eps: f64,
    y: *mut f32,
    mean: *mut f32,
    invstd: *mut f32,
    running_mean: *mut f32,
    running_var: *mut f32,
) {
    let c = d.channels;
    // Safety: the shim passes tensors it allocated (y, mean, invstd) or the
    // caller checked (`takes`), with exactly `d`'s sizes.
    unsafe {
        let p = Params {
            weight: std::slice::from_raw_parts(weight, c),
            bias: std::slice::from_raw_parts(bias, c),
        };
        let s = Stats {
            mean: std::slice::from_raw_parts_mut(mean, c),
            invstd: std::slice::from_raw_parts_mut(invstd, c),
            running_mean: std::slice::from_raw_parts_mut(running_mean, c),
            running_var: std::slice::from_raw_parts_mut(running_var, c),
        };
        let x = std::slice::from_raw_parts(x, d.len());
        let y = std::slice::from_raw_parts_mut(y, d.len());
        kernel::forward(d, x, &p, momentum, eps, y, s);
    }
}

/// The shim's backward.
#[allow(clippy::too_many_arguments)]
extern "C" fn backward_all(
    d: Dims,
    x: *const f32,
    g: *const f32,
    mean: *const f32,
    invstd: *const f32,
    weight: *const f32,
    gx: *mut f32,
    gw: *mut f32,
    gb: *mut f32,
) {
    let c = d.channels;
    // Safety: the shim passes the forward's input, weight and saved statistics,
    // the output's gradient made channels-last, and gradients it allocated.
    unsafe {
        kernel::backward(
            d,
            std::slice::from_raw_parts(x, d.len()),
            std::slice::from_raw_parts(g, d.len()),
            std::slice::from_raw_parts(mean, c),
            std::slice::from_raw_parts(invstd, c),
            std::slice::from_raw_parts(weight, c),
            std::slice::from_raw_parts_mut(gx, d.len()),
            std::slice::from_raw_parts_mut(gw, c),
            std::slice::from_raw_parts_mut(gb, c),
        );
    }
}

/// Whether the kernels take this batch norm: `x` channels-last float32 on the
/// CPU with at least two values per channel, and the weight, bias and running
/// statistics contiguous float32 CPU vectors of its channel count.
fn takes(x: &Tensor, per_channel: [&Tensor; 4]) -> bool {
    if x.device() != Device::Cpu || x.kind() != Kind::Float || x.dim() != 4 {
        return false;
    }
    let c = x.size()[1];
    let vector = |t: &Tensor| {
        t.device() == Device::Cpu && t.kind() == Kind::Float && t.size() == [c] && t.is_contiguous()
    };
    c > 0
        && x.numel() / c as usize > 1
        && is_channels_last(x)
        && per_channel.iter().all(|t| vector(t))
}

/// F.batch_norm(x, running_mean, running_var, weight, bias, training=True,
/// momentum, eps) through the kernels where they take `x` (`takes`), None
/// otherwise. Moves the running statistics in place.
pub fn train_channels_last(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    momentum: f64,
    eps: f64,
) -> Option<Tensor> {
    if !takes(x, [weight, bias, running_mean, running_var]) {
        return None;
    }
    // Safety: the tensors are live and checked by `takes`; KERNELS is static;
    // the shim writes a new handle to `out` or a message to `err`.
    let y = super::shim::call("batch_norm", |out, err, len| unsafe {
        minima_batch_norm_channels_last(
            x.as_ptr(),
            weight.as_ptr(),
            bias.as_ptr(),
            running_mean.as_ptr(),
            running_var.as_ptr(),
            momentum,
            eps,
            &KERNELS,
            out,
            err,
            len,
        )
    });
    Some(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Channels-last [n, c, h, w] activations whose channels sit far from zero
    /// against their spread (the case where float32 sums lose digits).
    fn activations(n: i64, c: i64, h: i64, w: i64, seed: i64) -> Tensor {
        tch::manual_seed(seed);
        let shift = Tensor::arange(c, (Kind::Float, Device::Cpu)).view([1, c, 1, 1]) * 7.0 - 3.0;
        let x = Tensor::randn([n, h, w, c], (Kind::Float, Device::Cpu)).permute([0, 3, 1, 2]);
        x * 0.5 + shift
    }

    struct Norm {
        weight: Tensor,
        bias: Tensor,
        running_mean: Tensor,
        running_var: Tensor,
    }

    impl Norm {
        fn new(c: i64, kind: Kind) -> Norm {
            let opts = (kind, Device::Cpu);
            Norm {
                weight: (Tensor::rand([c], opts) + 0.5).set_requires_grad(true),
                bias: Tensor::randn([c], opts).set_requires_grad(true),
                running_mean: Tensor::randn([c], opts),
                running_var: Tensor::rand([c], opts) + 0.5,
            }
        }

        fn to(&self, kind: Kind) -> Norm {
            let leaf = |t: &Tensor| t.detach().to_kind(kind).set_requires_grad(true);
            Norm {
                weight: leaf(&self.weight),
                bias: leaf(&self.bias),
                // A copy even in the same kind: each run moves its own.
                running_mean: self.running_mean.to_kind(kind).copy(),
                running_var: self.running_var.to_kind(kind).copy(),
            }
        }

        fn libtorch(&self, x: &Tensor) -> Tensor {
            Tensor::batch_norm(
                x,
                Some(&self.weight),
                Some(&self.bias),
                Some(&self.running_mean),
                Some(&self.running_var),
                true,
                0.1,
                1e-5,
                false,
            )
        }

        fn kernels(&self, x: &Tensor) -> Tensor {
            let n = (
                &self.weight,
                &self.bias,
                &self.running_mean,
                &self.running_var,
            );
            train_channels_last(x, n.0, n.1, n.2, n.3, 0.1, 1e-5).expect("the kernels take x")
        }
    }

    /// Output, running statistics and the gradients of x, weight and bias for
    /// an output gradient `g`, through `f`.
    fn run(f: impl Fn(&Norm, &Tensor) -> Tensor, n: &Norm, x: &Tensor, g: &Tensor) -> Vec<Tensor> {
        let leaf = x.detach().set_requires_grad(true);
        let y = f(n, &leaf);
        let grads = Tensor::run_backward(
            &[(&y * g).sum(y.kind())],
            &[&leaf, &n.weight, &n.bias],
            false,
            false,
        );
        let mut out = vec![y.detach(), n.running_mean.copy(), n.running_var.copy()];
        out.extend(grads);
        out
    }

    fn bits(t: &Tensor) -> Vec<u32> {
        let t = t.contiguous().flatten(0, -1);
        Vec::<f32>::try_from(t)
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    fn count_differing(a: &Tensor, b: &Tensor) -> usize {
        bits(a)
            .iter()
            .zip(bits(b))
            .filter(|(x, y)| **x != *y)
            .count()
    }

    /// |a − b| at its largest, against b's largest |value|.
    fn relative(a: &Tensor, b: &Tensor) -> f64 {
        let diff = (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
            .abs()
            .max();
        diff.double_value(&[]) / b.abs().max().to_kind(Kind::Double).double_value(&[])
    }

    #[test]
    fn the_forward_is_libtorchs_nchw_bit_for_bit_and_the_gradients_as_accurate() {
        // c = 16 and 24: vectorised channels; 3 and 1: a partial or no vector;
        // odd planes; a single pixel per image.
        for (k, (n, c, h, w)) in [
            (8, 16, 6, 6),
            (4, 3, 7, 5),
            (16, 1, 4, 4),
            (5, 24, 3, 9),
            (64, 8, 1, 1),
        ]
        .into_iter()
        .enumerate()
        {
            let x = activations(n, c, h, w, k as i64);
            tch::manual_seed(100 + k as i64);
            let g = x.randn_like();
            let norm = Norm::new(c, Kind::Float);
            let (ours_n, nchw_n, f64_n) = (
                norm.to(Kind::Float),
                norm.to(Kind::Float),
                norm.to(Kind::Double),
            );
            let ours = run(Norm::kernels, &ours_n, &x, &g);
            let nchw = run(Norm::libtorch, &nchw_n, &x.contiguous(), &g.contiguous());
            let exact = run(
                Norm::libtorch,
                &f64_n,
                &x.to_kind(Kind::Double).contiguous(),
                &g.to_kind(Kind::Double),
            );
            let what = format!("{n}x{c}x{h}x{w}");
            assert!(
                is_channels_last(&ours[0]),
                "{what}: the output stays channels-last"
            );
            for (i, name) in ["output", "running mean", "running variance"]
                .iter()
                .enumerate()
            {
                // One-pixel planes: libtorch sums those in its channels-last
                // float32 kernel (an [n, c, 1, 1] tensor is in both layouts),
                // where these keep float64's sums.
                if h * w == 1 {
                    let (ours_err, nchw_err) =
                        (relative(&ours[i], &exact[i]), relative(&nchw[i], &exact[i]));
                    assert!(
                        ours_err <= nchw_err.max(1e-7),
                        "{what}: {name} off float64 by {ours_err:e} (libtorch {nchw_err:e})"
                    );
                    continue;
                }
                let differ = count_differing(&ours[i], &nchw[i]);
                let by = relative(&ours[i], &nchw[i]);
                assert_eq!(
                    differ, 0,
                    "{what}: {name}: {differ} floats differ, by up to {by:e}"
                );
            }
            // The gradients: libtorch's NCHW kernel sums in float32 lanes where
            // these sum in float64, so they agree to rounding, and are at least
            // as close to float64's.
            for (i, name) in [
                (3, "input gradient"),
                (4, "weight gradient"),
                (5, "bias gradient"),
            ] {
                let (to_nchw, ours_err) =
                    (relative(&ours[i], &nchw[i]), relative(&ours[i], &exact[i]));
                let nchw_err = relative(&nchw[i], &exact[i]);
                assert!(
                    to_nchw <= 1e-5,
                    "{what}: {name} differs from NCHW's by {to_nchw:e}"
                );
                assert!(
                    ours_err <= 2.0 * nchw_err + 1e-7,
                    "{what}: {name} off float64 by {ours_err:e} (NCHW {nchw_err:e})"
                );
            }
            // Without a gradient: the same output and running statistics.
            let plain_n = norm.to(Kind::Float);
            let plain = tch::no_grad(|| plain_n.kernels(&x));
            assert_eq!(
                bits(&plain),
                bits(&ours[0]),
                "{what}: the forward without a gradient"
            );
            assert_eq!(
                bits(&plain_n.running_var),
                bits(&ours[2]),
                "{what}: its running variance"
            );
        }
    }

    #[test]
    fn other_layouts_kinds_and_sizes_take_libtorchs_batch_norm() {
        let x = activations(2, 8, 4, 4, 0);
        let norm = Norm::new(8, Kind::Float);
        let per_channel = [
            &norm.weight,
            &norm.bias,
            &norm.running_mean,
            &norm.running_var,
        ];
        assert!(takes(&x, per_channel));
        assert!(!takes(&x.contiguous(), per_channel), "NCHW");
        assert!(!takes(&x.to_kind(Kind::Double), per_channel), "float64");
        assert!(
            !takes(
                &x.narrow(0, 0, 1).narrow(2, 0, 1).narrow(3, 0, 1),
                per_channel
            ),
            "one value a channel"
        );
        let short = Tensor::zeros([4], (Kind::Float, Device::Cpu));
        assert!(
            !takes(&x, [&norm.weight, &norm.bias, &short, &norm.running_var]),
            "statistics of another size"
        );
    }
}
