//! Models: an architecture spec, its parameters and buffers in a tch VarStore, and
//! the network.
//!
//! Scripts treat models as values: training never changes the model it is given
//! (it trains a copy), so one initialisation can start several runs.

pub mod cnn;
pub mod densenet;
pub mod docs;
pub mod init;
pub mod layers;
pub mod mlp;
pub mod resnet;
pub mod rhai;
pub mod spec;
pub mod vgg;
pub mod weights;

pub use spec::{Arch, ModelSpec};

use anyhow::{anyhow, Result};
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

/// Builds the network with freshly drawn weights; call inside `rng::seeded`.
fn build(spec: &ModelSpec, vs: &nn::VarStore) -> Result<(Box<dyn ModuleT>, Vec<String>)> {
    let names = RefCell::new(Vec::new());
    let s = Scope::new(vs.root(), &names);
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
        let vs = nn::VarStore::new(device);
        let (net, names) = crate::rng::seeded(spec.seed, || build(&spec, &vs)).map_err(|e| {
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
