//! Models: an architecture spec, its parameters in a tch VarStore, and the network.
//!
//! Scripts treat models as values: training never changes the model it is given
//! (it trains a copy), so one initialisation can start several runs.

pub mod init;
pub mod mlp;
pub mod rhai;

use crate::results::{Row, Value};
use anyhow::{bail, Result};
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

pub const ARCHS: &[&str] = &["mlp"];

#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub arch: String,
    pub hidden: Vec<i64>,
    pub inputs: i64,
    pub classes: i64,
    pub seed: i64,
}

impl ModelSpec {
    pub fn columns(&self) -> Row {
        vec![
            ("arch".into(), Value::Str(self.arch.clone())),
            ("hidden".into(), Value::Ints(self.hidden.clone())),
            ("model_seed".into(), Value::Int(self.seed)),
        ]
    }
}

pub struct Model {
    pub spec: ModelSpec,
    pub vs: nn::VarStore,
    net: Box<dyn ModuleT>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.summary())
    }
}

fn build(spec: &ModelSpec, vs: &nn::VarStore) -> Result<Box<dyn ModuleT>> {
    match spec.arch.as_str() {
        "mlp" => Ok(Box::new(mlp::Mlp::new(
            &vs.root(),
            spec.inputs,
            &spec.hidden,
            spec.classes,
        ))),
        other => bail!("unknown arch \"{other}\"; known: {}", ARCHS.join(", ")),
    }
}

impl Model {
    /// A freshly initialised model; the same spec (seed included) gives the same
    /// weights bit for bit.
    pub fn new(spec: ModelSpec, device: Device) -> Result<Model> {
        let vs = nn::VarStore::new(device);
        let net = crate::rng::seeded(spec.seed, || build(&spec, &vs))?;
        Ok(Model { spec, vs, net })
    }

    /// An independent model with the same weights.
    pub fn copy(&self) -> Result<Model> {
        let mut vs = nn::VarStore::new(self.vs.device());
        let net = build(&self.spec, &vs)?;
        vs.copy(&self.vs)?;
        Ok(Model {
            spec: self.spec.clone(),
            vs,
            net,
        })
    }

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

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    pub fn summary(&self) -> String {
        format!(
            "Model({} {} → {:?} → {}, {} parameters, seed {})",
            self.spec.arch,
            self.spec.inputs,
            self.spec.hidden,
            self.spec.classes,
            self.num_parameters(),
            self.spec.seed
        )
    }
}
