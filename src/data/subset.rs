//! `data.subset(n, #{ seed, stratified })`: n training examples drawn without
//! replacement, by default class-balanced. The test split, classes and
//! normalisation (the full training split's mean/std) stay as they are, so a
//! subset's inputs are normalised exactly as the full set's.

use super::{Dataset, Split};
use crate::results::Value;
use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

/// Indices 0..len in a seeded random order (drawn on the CPU, so the same on
/// every device). The caller holds the seed via `rng::seeded`.
fn shuffled(len: usize) -> Result<Vec<i64>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let perm = Tensor::randperm(len as i64, (Kind::Int64, Device::Cpu));
    Ok(Vec::<i64>::try_from(perm)?)
}

/// Which training examples a subset keeps, in increasing order. Stratified: each
/// of the k classes gets ⌊n/k⌋ examples and n mod k randomly chosen classes one
/// more; within a class the examples are a uniformly random choice.
pub fn choose(
    labels: &[i64],
    classes: &[String],
    n: usize,
    seed: i64,
    stratified: bool,
) -> Result<Vec<i64>> {
    if n == 0 || n > labels.len() {
        bail!(
            "subset: n = {n} is out of range: the training split has {} examples",
            labels.len()
        );
    }
    let mut chosen = crate::rng::seeded(seed, || -> Result<Vec<i64>> {
        if !stratified {
            let mut all = shuffled(labels.len())?;
            all.truncate(n);
            return Ok(all);
        }
        let k = classes.len();
        let extra: Vec<i64> = shuffled(k)?.into_iter().take(n % k).collect();
        let mut groups = vec![Vec::new(); k];
        for (i, &l) in labels.iter().enumerate() {
            if let Some(g) = groups.get_mut(l as usize) {
                g.push(i as i64);
            }
        }
        let mut out = Vec::with_capacity(n);
        for (class, (name, members)) in classes.iter().zip(&groups).enumerate() {
            let want = n / k + usize::from(extra.contains(&(class as i64)));
            if members.len() < want {
                bail!(
                    "subset: a stratified subset of {n} needs {want} examples of class \
                     `{name}`, but the training split has {}; use a smaller n or \
                     stratified: false",
                    members.len()
                );
            }
            out.extend(
                shuffled(members.len())?
                    .iter()
                    .take(want)
                    .map(|&j| members[j as usize]),
            );
        }
        Ok(out)
    })?;
    chosen.sort_unstable();
    Ok(chosen)
}

pub fn subset(data: &Dataset, n: i64, seed: i64, stratified: bool) -> Result<Dataset> {
    if data.relabel.is_some() {
        bail!("subset: take the subset of the original data, then apply random_labels to it");
    }
    if data.describe.iter().any(|(k, _)| k == "subset_seed") {
        bail!("subset: the data set is already a subset; take the subset of the full data set");
    }
    let labels = Vec::<i64>::try_from(data.train.y.to_device(Device::Cpu))?;
    let Some(n) = usize::try_from(n).ok().filter(|&n| n >= 1) else {
        bail!("subset: n = {n} is out of range: it must be at least 1");
    };
    let chosen = choose(&labels, &data.classes, n, seed, stratified)?;
    let index = Tensor::from_slice(&chosen).to_device(data.device());
    let mut describe = data.describe.clone();
    describe.extend([
        ("subset_seed".into(), Value::Int(seed)),
        ("subset_stratified".into(), Value::Bool(stratified)),
    ]);
    let train = Split {
        x: data.train.x.index_select(0, &index),
        y: data.train.y.index_select(0, &index),
    };
    Ok(data.derive(train, None, describe))
}
