//! A small convolutional network for quick CPU runs (minima's own, not from the
//! paper): two 3x3 conv (with bias) + ReLU + 2x2 max-pool stages of 32 and 64
//! channels, then a 128-unit hidden linear layer. Names match a PyTorch module with
//! `features = nn.Sequential(Conv2d, ReLU, MaxPool2d, Conv2d, ReLU, MaxPool2d)` and
//! `classifier = nn.Sequential(Linear, ReLU, Linear)` applied to the flattened
//! features: `features.0.weight`, `features.3.weight`, `classifier.0.weight`,
//! `classifier.2.weight`. On the CPU its first convolution runs through
//! `stem_conv`'s kernels (channels-last, float32), where oneDNN's took most of a step.

use super::layers::{Conv2d, Linear, Scope};
use super::pool_relu::pool2_relu;
use super::spec::{scaled, ModelSpec};
use anyhow::Result;
use tch::nn::ModuleT;
use tch::Tensor;

#[derive(Debug)]
pub struct Cnn {
    conv1: Conv2d,
    conv2: Conv2d,
    fc1: Linear,
    fc2: Linear,
}

impl Cnn {
    pub fn new(s: &Scope, spec: &ModelSpec) -> Result<Cnn> {
        let (c, h, w) = spec.image();
        let (c1, c2, hidden) = (
            scaled(32, spec.width),
            scaled(64, spec.width),
            scaled(128, spec.width),
        );
        let features = s.sub("features");
        let classifier = s.sub("classifier");
        Ok(Cnn {
            conv1: Conv2d::new(&features.sub(0), c, c1, 3, 1, 1, true)?.with_stem_kernel(),
            conv2: Conv2d::new(&features.sub(3), c1, c2, 3, 1, 1, true)?,
            fc1: Linear::new(&classifier.sub(0), c2 * (h / 4) * (w / 4), hidden)?,
            fc2: Linear::new(&classifier.sub(2), hidden, spec.classes)?,
        })
    }
}

impl ModuleT for Cnn {
    /// Pools before the ReLU, a quarter of the values to rectify: the two commute
    /// bit for bit (max(relu(a), relu(b)) = relu(max(a, b))), and so do their
    /// gradients: a window with a positive maximum sends its gradient to the same
    /// first maximum either way, one without sends none (ReLU's gradient at and
    /// below zero is zero). That is the PyTorch module's Conv, ReLU, MaxPool.
    /// Channels-last on the CPU both run as one pass (`pool_relu`), and the
    /// first stage with its convolution as one node (`stem_conv`'s pooled
    /// kernels).
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let first = self.conv1.stem_pool2_relu(xs);
        let h = first.unwrap_or_else(|| pool2_relu(&self.conv1.forward(xs)));
        let h = pool2_relu(&self.conv2.forward(&h));
        let h = self.fc1.forward(&h.flatten(1, -1)).relu();
        self.fc2.forward(&h)
    }
}

#[cfg(test)]
mod tests {
    use super::super::layers::channels_last;
    use super::super::spec::Arch;
    use super::super::{stem_conv, Model};
    use super::*;
    use tch::{Device, Kind};

    /// The channels-last cnn's forward is its layers with the first through
    /// `stem_conv`'s kernel, bit for bit: a net built without the opt-in
    /// would take libtorch's convolution there and round otherwise.
    #[test]
    fn the_first_convolution_takes_the_stem_kernel() {
        let spec = ModelSpec {
            arch: Arch::Cnn,
            hidden: vec![],
            width: 0.25,
            input_shape: vec![1, 32, 32],
            classes: 10,
            seed: 0,
        };
        let model = Model::new(spec, Device::Cpu).unwrap();
        let p = model.vs.variables();
        let x = crate::rng::seeded(1, || {
            Tensor::randn([4, 1, 32, 32], (Kind::Float, Device::Cpu))
        });
        let Some(h) = stem_conv::conv3x3(
            &x,
            &p["features.0.weight"],
            Some(&p["features.0.bias"]),
            1,
            1,
        ) else {
            panic!("this CPU lacks AVX2 and FMA: the cnn's first convolution is libtorch's here");
        };
        let h = pool2_relu(&h);
        let w = channels_last(&p["features.3.weight"]);
        let h = pool2_relu(&h.conv2d(&w, Some(&p["features.3.bias"]), [1, 1], [1, 1], [1, 1], 1));
        let h = h
            .flatten(1, -1)
            .linear(&p["classifier.0.weight"], Some(&p["classifier.0.bias"]));
        let by_hand = h
            .relu()
            .linear(&p["classifier.2.weight"], Some(&p["classifier.2.bias"]));
        let out = model.forward_t(&x, true);
        assert!(
            out.equal(&by_hand),
            "the cnn's output is not its layers' through the kernel"
        );
    }
}
