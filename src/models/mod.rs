//! Models: an architecture spec, its parameters and buffers in a tch VarStore, and
//! the network.
//!
//! Scripts treat models as values: training never changes the model it is given
//! (it trains a copy), so one initialisation can start several runs.

mod batch_norm;
pub mod cnn;
pub mod densenet;
pub mod docs;
pub mod init;
pub mod layers;
pub mod mlp;
pub mod pool_relu;
pub mod resnet;
pub mod rhai;
mod shim;
pub mod spec;
mod stem_conv;
pub mod vgg;
pub mod weights;

pub use spec::{Arch, ModelSpec};

use anyhow::{anyhow, Result};
pub use layers::ConvLayout;
use layers::Scope;
use std::cell::RefCell;
use std::path::Path;
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

pub const ARCHS: &[&str] = &["mlp", "cnn", "vgg16", "resnet18", "resnet50", "densenet40"];

pub struct Model {
    pub spec: ModelSpec,
    pub vs: nn::VarStore,
    net: Box<dyn ModuleT>,
    /// Every parameter and buffer name, in PyTorch's `state_dict()` order.
    names: Vec<String>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.summary())
    }
}

/// The environment variable that chooses the CPU convolutions' layout: `nchw`
/// keeps every architecture NCHW (to compare, or to repeat runs made before the
/// channels-last default).
pub const CONV_LAYOUT_VAR: &str = "MINIMA_CONV_LAYOUT";

/// How an architecture's convolutions run on the CPU: channels-last for every
/// convolutional net, where the cnn trains 1.3–1.8× and the nets with batch
/// norms 1.1–1.5× as fast as NCHW (docs/PERFORMANCE.md), their batch norms in
/// training through `batch_norm` (libtorch's own channels-last batch norm sums in
/// float32 and is less accurate: docs/TRAINING.md); the mlp has none. Within
/// such a net, wide convolutions on maps of 8x8 or less run NCHW, where
/// oneDNN's NCHW kernels are the faster (`Conv2d::wide_on_a_small_map`). Under
/// `MINIMA_CONV_LAYOUT=nchw` every architecture runs NCHW; config.json records the
/// choice as `conv_layout`.
pub fn conv_layout(arch: Arch) -> ConvLayout {
    match arch {
        Arch::Mlp => ConvLayout::Nchw,
        _ if channels_last_allowed() => ConvLayout::ChannelsLast,
        _ => ConvLayout::Nchw,
    }
}

/// False under `MINIMA_CONV_LAYOUT=nchw`.
pub fn channels_last_allowed() -> bool {
    std::env::var(CONV_LAYOUT_VAR).map_or(true, |v| v != "nchw")
}

/// Builds the network with freshly drawn weights; call inside `rng::seeded`.
fn build(
    spec: &ModelSpec,
    vs: &nn::VarStore,
    layout: ConvLayout,
) -> Result<(Box<dyn ModuleT>, Vec<String>)> {
    let names = RefCell::new(Vec::new());
    let s = Scope::new(vs.root(), &names, layout);
    let net: Box<dyn ModuleT> = match spec.arch {
        Arch::Mlp => Box::new(mlp::Mlp::new(
            &s,
            spec.inputs(),
            &spec.hidden,
            spec.classes,
        )?),
        Arch::Cnn => Box::new(cnn::Cnn::new(&s, spec)?),
        Arch::Vgg16 => Box::new(vgg::Vgg::new(&s, spec)?),
        Arch::Resnet18 | Arch::Resnet50 => Box::new(resnet::ResNet::new(&s, spec)?),
        Arch::Densenet40 => Box::new(densenet::DenseNet::new(&s, spec)?),
    };
    Ok((net, names.into_inner()))
}

impl Model {
    /// A freshly initialised model; the same spec (seed included) gives the same
    /// weights bit for bit.
    pub fn new(spec: ModelSpec, device: Device) -> Result<Model> {
        spec.check()?;
        // Parameters are created as f32; buffers add little (batch-norm statistics).
        let bytes = 4.0 * spec.estimated_parameters();
        crate::memory::check_fits(&format!("the {}", spec.describe()), bytes, device)?;
        Model::unchecked(spec, device)
    }

    /// A fresh model without the memory estimate (for copies of one that exists).
    fn unchecked(spec: ModelSpec, device: Device) -> Result<Model> {
        let layout = conv_layout(spec.arch);
        Model::with_layout(spec, device, layout)
    }

    fn with_layout(spec: ModelSpec, device: Device, layout: ConvLayout) -> Result<Model> {
        let vs = nn::VarStore::new(device);
        let build = || build(&spec, &vs, layout);
        let (net, names) = crate::rng::seeded(spec.seed, build).map_err(|e| {
            // libtorch's messages carry a C++ stack trace after the first line.
            let why = e.to_string();
            let why = why.lines().next().unwrap_or_default().to_string();
            anyhow!("cannot build the {}: {why}", spec.describe())
        })?;
        Ok(Model {
            spec,
            vs,
            net,
            names,
        })
    }

    /// An independent model with the same weights and batch-norm statistics.
    pub fn copy(&self) -> Result<Model> {
        let mut copy = Model::unchecked(self.spec.clone(), self.device())?;
        copy.vs.copy(&self.vs)?;
        Ok(copy)
    }

    pub fn load(path: &Path, device: Device) -> Result<Model> {
        weights::load(path, device)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        weights::save(self, path)
    }

    /// Training mode (`train` true) normalises batch norms with batch statistics
    /// and updates their running statistics; eval mode uses and keeps them.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.net.forward_t(xs, train)
    }

    /// Trainable parameters in creation order.
    pub fn parameters(&self) -> Vec<Tensor> {
        self.vs.trainable_variables()
    }

    pub fn num_parameters(&self) -> i64 {
        self.parameters().iter().map(|t| t.numel() as i64).sum()
    }

    /// Parameters and buffers by PyTorch `state_dict()` name, in its order.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let vars = self.vs.variables();
        self.names
            .iter()
            .filter_map(|n| vars.get(n).map(|t| (n.clone(), t.shallow_clone())))
            .collect()
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    pub fn summary(&self) -> String {
        format!(
            "Model({}, {} parameters, seed {})",
            self.spec.describe(),
            self.num_parameters(),
            self.spec.seed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    /// Loss and gradients of one training-mode step on a fixed batch, accumulated
    /// into the parameters' `.grad` as training does.
    fn loss_and_grads(model: &Model, x: &Tensor, y: &Tensor) -> (f64, Vec<Tensor>) {
        let loss = model.forward_t(x, true).cross_entropy_for_logits(y);
        loss.backward();
        let grads = model.parameters().iter().map(|p| p.grad()).collect();
        (loss.double_value(&[]), grads)
    }

    /// How far `g` is from `exact`: the norm of the difference over the norm of
    /// `exact`, all parameters' gradients as one vector.
    fn gradient_error(g: &[Tensor], exact: &[Tensor]) -> f64 {
        let (mut diff, mut norm) = (0.0, 0.0);
        for (a, e) in g.iter().zip(exact) {
            diff += (a.to_kind(Kind::Double) - e)
                .square()
                .sum(Kind::Double)
                .double_value(&[]);
            norm += e.square().sum(Kind::Double).double_value(&[]);
        }
        (diff / norm).sqrt()
    }

    #[test]
    fn channels_last_nets_compute_what_nchw_ones_do_as_accurately() {
        // Inputs far from zero against their spread, as normalised images with
        // a constant background are: where float32 sums of a batch norm lose
        // digits.
        let (x, y) = crate::rng::seeded(3, || {
            let x = Tensor::randn([8, 1, 32, 32], (Kind::Float, Device::Cpu)) * 0.25 + 3.0;
            (x, Tensor::randint(10, [8], (Kind::Int64, Device::Cpu)))
        });
        let nets = [
            (Arch::Cnn, 0.25),
            (Arch::Cnn, 1.0),
            (Arch::Resnet18, 0.125),
            (Arch::Vgg16, 0.125),
            (Arch::Densenet40, 0.25),
            (Arch::Resnet50, 0.0625),
            // Their 256-channel layers on 4x4 and 2x2 maps run NCHW inside the
            // channels-last net (`Conv2d::wide_on_a_small_map`).
            (Arch::Resnet18, 0.5),
            (Arch::Vgg16, 0.5),
        ];
        for (arch, width) in nets {
            let spec = ModelSpec {
                arch,
                hidden: vec![],
                width,
                input_shape: vec![1, 32, 32],
                classes: 10,
                seed: 0,
            };
            let nchw = Model::with_layout(spec.clone(), Device::Cpu, ConvLayout::Nchw).unwrap();
            let last =
                Model::with_layout(spec.clone(), Device::Cpu, ConvLayout::ChannelsLast).unwrap();
            let mut wide = Model::with_layout(spec, Device::Cpu, ConvLayout::Nchw).unwrap();
            wide.vs.double();
            let (l0, g0) = loss_and_grads(&nchw, &x, &y);
            let (l1, g1) = loss_and_grads(&last, &x, &y);
            let (_, exact) = loss_and_grads(&wide, &x.to_kind(Kind::Double), &y);
            assert!(
                (l0 - l1).abs() <= 1e-5 * l0.abs(),
                "{arch}: loss {l0} against {l1}"
            );
            // Gradients reach the parameters in their own (NCHW) layout, which
            // the SGD update and saved files rely on.
            assert!(
                g1.iter().all(|g| g.is_contiguous()),
                "{arch}: a gradient is not contiguous"
            );
            // Against float64, the same nets' gradients: rounding in a deep net
            // at its initial weights moves whole gradients by up to about 1%
            // (ResNet50), so channels-last is held to NCHW's own error.
            let (e0, e1) = (gradient_error(&g0, &exact), gradient_error(&g1, &exact));
            assert!(
                e1 <= 3.0 * e0 + 1e-5,
                "{arch}: gradient off float64 by {e1:e} channels-last, {e0:e} NCHW"
            );
        }
    }
}
