//! Loss and accuracy along the straight line between two models of one
//! architecture: W(α) = (1 − α)·W1 + α·W2 over the trainable parameters, at `steps`
//! evenly spaced α from 0 to 1. Batch-norm statistics are not interpolated: at each
//! point they are recomputed from training batches (see [`recompute_batch_norms`]).

use super::distance::check_same_architecture;
use super::evaluate::{evaluate, Score};
use super::state::batch_norms;
use crate::data::{Dataset, Part};
use crate::kit::config::{Default as D, Rule};
use crate::kit::rules::{self, SEED};
use crate::kit::typed::key;
use crate::models::layers::BatchNorm2d;
use crate::models::Model;
use crate::typed_config;
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

/// Batches and batch sizes of the batch-norm recomputation.
const COUNT: Rule = rules::count(1 << 20);

typed_config! {
    /// `interpolate(a, b, data, #{..})`.
    #[derive(Copy)]
    pub struct Options as INTERPOLATE("interpolate options") {
        steps: i64 = key(Rule::Int { min: 2, max: 1001 }, D::Int(21), "points from the first model (alpha 0) to the second (alpha 1)");
        bn_batches: i64 = key(COUNT, D::Int(20), "training batches that recompute batch-norm statistics at each point");
        batch_size: i64 = key(COUNT, D::Int(128), "examples per batch-norm batch");
        seed: i64 = key(SEED, D::Int(0), "seed of the training subset for the batch-norm statistics");
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub alpha: f64,
    pub train: Score,
    pub test: Score,
}

pub fn interpolate(a: &Model, b: &Model, data: &Dataset, opts: Options) -> Result<Vec<Point>> {
    check_same_architecture("interpolate", a, b)?;
    a.spec.check_fits(data)?;
    if opts.steps < 2 {
        bail!(
            "interpolate: `steps` must be at least 2, found {}",
            opts.steps
        );
    }
    let net = a.copy()?;
    let (wa, wb, mut w) = (a.parameters(), b.parameters(), net.parameters());
    let mut points = Vec::new();
    for i in 0..opts.steps {
        crate::kit::interrupt::check()?;
        let alpha = i as f64 / (opts.steps - 1) as f64;
        tch::no_grad(|| -> Result<()> {
            for ((p, x), y) in w.iter_mut().zip(&wa).zip(&wb) {
                p.f_copy_(&(x * (1.0 - alpha) + y * alpha))?;
            }
            Ok(())
        })?;
        recompute_batch_norms(&net, data, &opts)?;
        points.push(Point {
            alpha,
            train: evaluate(&net, data, Part::Train),
            test: evaluate(&net, data, Part::Test),
        });
    }
    Ok(points)
}

/// Batch-norm running statistics as torch.optim.swa_utils.update_bn sets them:
/// reset, then the plain average (momentum None) of the per-batch statistics over
/// `bn_batches` un-augmented training batches of `batch_size` examples, drawn
/// without replacement from a random subset fixed by `seed` (the same at every
/// point). minima's BatchNorm2d has momentum 0.1, so each batch's statistic is
/// recovered from the momentum update, b = (r_new − 0.9·r_old)/0.1, and averaged.
pub fn recompute_batch_norms(model: &Model, data: &Dataset, opts: &Options) -> Result<()> {
    let bns = batch_norms(model)?;
    if bns.is_empty() {
        return Ok(());
    }
    let n = data.len(Part::Train);
    let take = (opts.bn_batches * opts.batch_size).min(n);
    let order = crate::rng::seeded(opts.seed, || {
        Tensor::randperm(n, (Kind::Int64, data.device()))
    });
    let m = BatchNorm2d::MOMENTUM;
    tch::no_grad(|| -> Result<()> {
        for bn in &bns {
            let _ = bn.running_mean.shallow_clone().f_zero_()?;
            let _ = bn.running_var.shallow_clone().f_fill_(1.0)?;
            let _ = bn.num_batches_tracked.shallow_clone().f_zero_()?;
        }
        let mut start = 0;
        let mut k = 0.0;
        while start < take {
            let len = opts.batch_size.min(take - start);
            let batch = data.train_batch(&order.narrow(0, start, len), None);
            let before: Vec<(Tensor, Tensor)> = bns
                .iter()
                .map(|bn| (bn.running_mean.copy(), bn.running_var.copy()))
                .collect();
            let _ = model.forward_t(&batch.x, true);
            k += 1.0;
            for (bn, (mean, var)) in bns.iter().zip(before) {
                for (running, avg) in [(&bn.running_mean, mean), (&bn.running_var, var)] {
                    let stat = (running - &avg * (1.0 - m)) / m;
                    running
                        .shallow_clone()
                        .f_copy_(&(&avg + (stat - &avg) / k))?;
                }
            }
            start += len;
        }
        Ok(())
    })
}
