//! A ReLU multilayer perceptron, `inputs → hidden… → classes`. Inputs of any shape
//! are flattened. Parameter names match a PyTorch module holding
//! `self.layers = nn.Sequential(Linear, ReLU, Linear, ReLU, ..., Linear)`:
//! `layers.0.weight`, `layers.2.weight`, ...

use super::layers::{Linear, Scope};
use anyhow::Result;
use tch::nn::ModuleT;
use tch::Tensor;

#[derive(Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
}

impl Mlp {
    pub fn new(s: &Scope, inputs: i64, hidden: &[i64], classes: i64) -> Result<Mlp> {
        let layers_scope = s.sub("layers");
        let mut sizes = vec![inputs];
        sizes.extend_from_slice(hidden);
        sizes.push(classes);
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| Linear::new(&layers_scope.sub(2 * i), w[0], w[1]))
            .collect::<Result<_>>()?;
        Ok(Mlp { layers })
    }
}

impl ModuleT for Mlp {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let mut h = xs.flatten(1, -1);
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h);
            if i < last {
                h = h.relu();
            }
        }
        h
    }
}
