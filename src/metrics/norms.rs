//! Norm-based capacity measures of a model (definitions in docs/METRICS.md).
//!
//! - `frobenius`: ‖W‖_F over every trainable parameter (the W of `distance`).
//! - `prod_frobenius`, `prod_spectral`: Π_l ‖W_l‖_F and Π_l σ_max(W_l) over the conv
//!   kernels and linear weight matrices W_l; a kernel [out, in, k, k] counts as the
//!   matrix [out, in·k·k], the matrix `torch.nn.utils.spectral_norm` normalises.
//! - `path_l1`, `path_l2`: the l_p path norms of Neyshabur et al. 2017,
//!   (Σ_paths Π_e |w_e|^p)^{1/p}, computed as one forward pass of a modified copy
//!   of the network on an all-ones input (see [`path_norm`]).

use super::distance;
use super::state::{batch_norm_names, batch_norms, layer_weights};
use crate::models::layers::BatchNorm2d;
use crate::models::Model;
use anyhow::Result;
use tch::{Kind, Tensor};

/// Power iteration stops when σ² changes by less than this, relative.
const TOLERANCE: f64 = 1e-12;
/// Iterations between convergence checks (each check waits for the device).
const CHECK_EVERY: usize = 10;
const MAX_CHECKS: usize = 1000;
/// Seed of the power iteration's start vector.
const START_SEED: i64 = 0;

/// Largest singular value of `w` viewed as the matrix W = [w.size(0), rest]: power
/// iteration in float64, from a seeded random start, on the smaller Gram matrix G
/// (WWᵀ or WᵀW), whose largest eigenvalue is σ²; σ² is read as the Rayleigh
/// quotient vᵀGv.
pub fn spectral_norm(w: &Tensor) -> f64 {
    tch::no_grad(|| {
        let m = w.reshape([w.size()[0], -1]).to_kind(Kind::Double);
        let (rows, cols) = (m.size()[0], m.size()[1]);
        let g = match rows <= cols {
            true => m.matmul(&m.tr()),
            false => m.tr().matmul(&m),
        };
        if g.abs().max().double_value(&[]) == 0.0 {
            return 0.0;
        }
        let mut v = crate::rng::seeded(START_SEED, || {
            Tensor::randn([rows.min(cols)], (Kind::Double, g.device()))
        });
        let mut lambda = 0.0;
        for _ in 0..MAX_CHECKS {
            for _ in 0..CHECK_EVERY {
                let gv = g.mv(&v);
                v = &gv / gv.norm();
            }
            let next = v.dot(&g.mv(&v)).double_value(&[]);
            let converged = (next - lambda).abs() <= TOLERANCE * next;
            lambda = next;
            if converged {
                break;
            }
        }
        lambda.sqrt()
    })
}

/// The l_p path norm (p ≥ 1): Neyshabur et al. 2017's forward-pass construction on
/// a float64 copy of the model. Every conv/linear weight becomes |w|^p and every
/// bias 0; every batch norm becomes the per-channel scale (|γ|/√(σ²+ε))^p with its
/// running mean and β dropped; the copy runs in eval mode on one all-ones input and
/// the sum of its outputs is raised to 1/p. ReLUs see only non-negative values and
/// pass them unchanged; a max-pool keeps the largest path sum in its window; a
/// residual join adds the paths of both branches (an identity shortcut is a path of
/// weight 1); a DenseNet concatenation keeps both sets; average pools keep their
/// 1/k (they are the architecture, not weights).
pub fn path_norm(model: &Model, p: f64) -> Result<f64> {
    let mut net = model.copy()?;
    net.vs.double();
    let bn_names = batch_norm_names(&net);
    tch::no_grad(|| -> Result<f64> {
        for bn in batch_norms(&net)? {
            let scale = (bn.weight.abs() / (&bn.running_var + BatchNorm2d::EPS).sqrt()).pow_(p);
            bn.weight.shallow_clone().f_copy_(&scale)?;
            let _ = bn.bias.shallow_clone().f_zero_()?;
            let _ = bn.running_mean.shallow_clone().f_zero_()?;
            // σ² + ε = 1: the eval-mode batch norm is then x·scale exactly.
            let _ = bn
                .running_var
                .shallow_clone()
                .f_fill_(1.0 - BatchNorm2d::EPS)?;
        }
        for (name, t) in net.state() {
            if bn_names.contains(&name) || !t.requires_grad() {
                continue;
            }
            let mut t = t.shallow_clone();
            if t.dim() >= 2 {
                let powered = t.abs().pow_(p);
                t.f_copy_(&powered)?;
            } else {
                let _ = t.f_zero_()?;
            }
        }
        let mut shape = vec![1];
        shape.extend_from_slice(&net.spec.input_shape);
        let ones = Tensor::ones(shape.as_slice(), (Kind::Double, net.device()));
        let total = net.forward_t(&ones, false).sum(Kind::Double);
        Ok(total.double_value(&[]).powf(1.0 / p))
    })
}

/// The measures above, as (column name, value).
pub fn norms(model: &Model) -> Result<Vec<(&'static str, f64)>> {
    let layers = layer_weights(model);
    let prod_frobenius = layers
        .iter()
        .map(|(_, w)| distance::norm(std::slice::from_ref(w)))
        .product();
    let prod_spectral = layers.iter().map(|(_, w)| spectral_norm(w)).product();
    Ok(vec![
        ("frobenius", distance::norm(&model.parameters())),
        ("prod_frobenius", prod_frobenius),
        ("prod_spectral", prod_spectral),
        ("path_l1", path_norm(model, 1.0)?),
        ("path_l2", path_norm(model, 2.0)?),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn spectral_norm_of_a_diagonal_matrix_is_its_largest_absolute_entry() {
        let d = Tensor::from_slice(&[3.0f32, -5.0, 1.0, 0.5]).diag(0);
        assert!((spectral_norm(&d) - 5.0).abs() < 1e-6);
        assert_eq!(
            spectral_norm(&Tensor::zeros([3, 4], (Kind::Float, Device::Cpu))),
            0.0
        );
    }

    #[test]
    fn spectral_norm_of_a_kernel_is_that_of_its_unfolded_matrix() {
        let w = crate::rng::seeded(3, || {
            Tensor::randn([6, 2, 3, 3], (Kind::Double, Device::Cpu))
        });
        let (_, singular, _) = w.reshape([6, 18]).svd(true, false);
        let svd = singular.double_value(&[0]);
        assert!((spectral_norm(&w) - svd).abs() < 1e-6 * svd, "{svd}");
    }
}
