//! Output margins: for each example, the true class's logit minus the largest other
//! logit (positive when correctly classified), in eval mode, and their quantiles.

use super::evaluate::EVAL_BATCH;
use crate::data::{Dataset, Part};
use crate::models::Model;
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

/// The margin of every example of `part`, in order.
pub fn margins(model: &Model, data: &Dataset, part: Part) -> Result<Vec<f64>> {
    if data.num_classes() < 2 {
        bail!("margins need at least two classes");
    }
    let per_batch: Vec<Tensor> = tch::no_grad(|| {
        data.batches(part, EVAL_BATCH)
            .map(|b| {
                let logits = model.forward_t(&b.x, false).to_kind(Kind::Double);
                let y = b.y.unsqueeze(1);
                let own = logits.gather(1, &y, false).squeeze_dim(1);
                let others = logits.scatter_value(1, &y, f64::NEG_INFINITY);
                own - others.amax([1], false)
            })
            .collect()
    });
    if per_batch.is_empty() {
        return Ok(Vec::new());
    }
    Ok(Vec::<f64>::try_from(
        Tensor::cat(&per_batch, 0).to_device(tch::Device::Cpu),
    )?)
}

/// The q-quantile (q in [0, 1]) of `values` with linear interpolation between
/// order statistics, numpy's and torch.quantile's default ('linear'); NaN when
/// empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 4.0);
        assert_eq!(quantile(&v, 0.5), 2.5);
        // numpy.quantile([1, 2, 3, 4], 0.1) = 1.3
        assert!((quantile(&v, 0.1) - 1.3).abs() < 1e-12);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
