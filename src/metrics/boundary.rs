//! Distance from each training point to the model's decision boundary, for 2-D
//! inputs: the smallest r such that the predicted class at p + r·u differs from
//! the prediction at p, over 48 evenly spaced directions u. Each ray is scanned at
//! 40 steps up to the diagonal of the data's bounding box, then the first crossing
//! is refined by 16 bisection steps. A point with no crossing on any ray gets +∞.

use super::evaluate::predict;
use crate::models::Model;
use anyhow::{bail, Result};
use std::f64::consts::PI;
use tch::{Kind, Tensor};

const DIRECTIONS: i64 = 48;
const STEPS: i64 = 40;
const BISECTIONS: usize = 16;

pub fn distances(model: &Model, x: &Tensor) -> Result<Vec<f64>> {
    let size = x.size();
    if size.len() != 2 || size[1] != 2 {
        bail!(
            "decision-boundary distances need 2-D inputs, found examples of shape {:?}",
            &size[1..]
        );
    }
    let n = size[0];
    let device = x.device();
    let x = x.to_kind(Kind::Float);
    let span = (x.amax([0], false) - x.amin([0], false))
        .square()
        .sum(Kind::Float)
        .sqrt();
    let reach = span.double_value(&[]).max(1e-3);
    let opts = (Kind::Float, device);
    let angles = Tensor::arange(DIRECTIONS, opts) * (2.0 * PI / DIRECTIONS as f64);
    let dirs = Tensor::stack(&[angles.cos(), angles.sin()], 1); // [D, 2]
    let radii = (Tensor::arange(STEPS, opts) + 1.0) * (reach / STEPS as f64); // [S]
    let base = predict(model, &x); // [N]

    let points =
        x.view([n, 1, 1, 2]) + dirs.view([1, DIRECTIONS, 1, 2]) * radii.view([1, 1, STEPS, 1]);
    let pred = predict(model, &points.view([-1, 2])).view([n, DIRECTIONS, STEPS]);
    let crossed = pred.ne_tensor(&base.view([n, 1, 1]));
    let has = crossed.any_dim(2, false); // [N, D]
                                         // argmax returns the first maximal index: the first step past the boundary.
    let first = crossed
        .to_kind(Kind::Int64)
        .argmax(2, false)
        .to_kind(Kind::Float);
    let step = reach / STEPS as f64;
    let mut lo = &first * step;
    let mut hi = (first + 1.0) * step;
    let xs = x.view([n, 1, 2]);
    let base_nd = base.view([n, 1]);
    for _ in 0..BISECTIONS {
        let mid = (&lo + &hi) * 0.5;
        let p = &xs + dirs.view([1, DIRECTIONS, 2]) * mid.unsqueeze(-1);
        let cross = predict(model, &p.view([-1, 2]))
            .view([n, DIRECTIONS])
            .ne_tensor(&base_nd);
        hi = hi.where_self(&cross.logical_not(), &mid);
        lo = mid.where_self(&cross.logical_not(), &lo);
    }
    let inf = Tensor::full([n, DIRECTIONS], f64::INFINITY, opts);
    let per_ray = hi.where_self(&has, &inf);
    let per_point = per_ray
        .amin([1], false)
        .to_kind(Kind::Double)
        .to_device(tch::Device::Cpu);
    Ok(Vec::<f64>::try_from(per_point)?)
}

/// min, mean and median of the finite distances (NaN when there are none).
pub fn summarize(d: &[f64]) -> (f64, f64, f64) {
    let mut finite: Vec<f64> = d.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    finite.sort_by(|a, b| a.total_cmp(b));
    let n = finite.len();
    let median = if n % 2 == 1 {
        finite[n / 2]
    } else {
        (finite[n / 2 - 1] + finite[n / 2]) / 2.0
    };
    (finite[0], finite.iter().sum::<f64>() / n as f64, median)
}
