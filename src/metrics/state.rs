//! A model's layers found by their PyTorch `state_dict()` names, so metrics work on
//! every architecture without knowing how it is built: weight matrices and conv
//! kernels are the trainable tensors with two or more dimensions, and a batch norm
//! is a prefix holding `running_mean` (with `weight`, `bias`, `running_var`,
//! `num_batches_tracked` beside it).

use crate::models::Model;
use anyhow::{anyhow, Result};
use std::collections::HashMap;
use tch::Tensor;

/// One BatchNorm2d's tensors, shared with the model (writes change the model).
pub struct BatchNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub num_batches_tracked: Tensor,
}

/// Every batch norm of `model`, in state_dict order.
pub fn batch_norms(model: &Model) -> Result<Vec<BatchNorm>> {
    let state: HashMap<String, Tensor> = model.state().into_iter().collect();
    let get = |prefix: &str, name: &str| -> Result<Tensor> {
        state
            .get(&format!("{prefix}{name}"))
            .map(Tensor::shallow_clone)
            .ok_or_else(|| anyhow!("batch norm `{prefix}` of the model has no `{name}`"))
    };
    model
        .state()
        .iter()
        .filter_map(|(name, _)| name.strip_suffix("running_mean"))
        .map(|prefix| {
            Ok(BatchNorm {
                weight: get(prefix, "weight")?,
                bias: get(prefix, "bias")?,
                running_mean: get(prefix, "running_mean")?,
                running_var: get(prefix, "running_var")?,
                num_batches_tracked: get(prefix, "num_batches_tracked")?,
            })
        })
        .collect()
}

/// Names of the batch norms' own tensors (parameters and buffers).
pub fn batch_norm_names(model: &Model) -> Vec<String> {
    let state = model.state();
    let prefixes: Vec<&str> = state
        .iter()
        .filter_map(|(name, _)| name.strip_suffix("running_mean"))
        .collect();
    state
        .iter()
        .map(|(name, _)| name)
        .filter(|name| {
            prefixes.iter().any(|p| {
                name.strip_prefix(p)
                    .is_some_and(|rest| !rest.is_empty() && !rest.contains('.'))
            })
        })
        .cloned()
        .collect()
}

/// Conv kernels and linear weight matrices, by name, in state_dict order.
pub fn layer_weights(model: &Model) -> Vec<(String, Tensor)> {
    model
        .state()
        .into_iter()
        .filter(|(_, t)| t.requires_grad() && t.dim() >= 2)
        .collect()
}
