//! Models as files: safetensors whose tensor names are PyTorch `state_dict()` keys
//! (parameters and batch-norm buffers), with the spec as JSON under the metadata
//! key [`SPEC_KEY`], so a file needs nothing else to be loaded, here or by
//! `module.load_state_dict(safetensors.torch.load_file(path), strict=True)`.

use super::{Model, ModelSpec};
use crate::results::atomic;
use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

pub const SPEC_KEY: &str = "minima_model";

/// One tensor's bytes on the host, as safetensors stores them.
struct HostTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl HostTensor {
    fn new(name: &str, t: &Tensor) -> Result<HostTensor> {
        let dtype = match t.kind() {
            Kind::Float => Dtype::F32,
            Kind::Int64 => Dtype::I64,
            Kind::Double => Dtype::F64,
            other => bail!("cannot save {name}: tensors of kind {other:?} are not supported"),
        };
        let t = t.detach().to_device(Device::Cpu).contiguous();
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut bytes, numel)?;
        Ok(HostTensor {
            dtype,
            shape: t.size().iter().map(|&d| d as usize).collect(),
            bytes,
        })
    }
}

impl View for &HostTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

pub fn save(model: &Model, path: &Path) -> Result<()> {
    save_with(model, &[], HashMap::new(), path)
}

/// The model plus `extra` tensors (named outside the model's state, e.g. `sgd.0`)
/// and `metadata` entries: one file, written atomically (checkpoints).
pub fn save_with(
    model: &Model,
    extra: &[(String, Tensor)],
    mut metadata: HashMap<String, String>,
    path: &Path,
) -> Result<()> {
    let state = model.state();
    let host = state
        .iter()
        .chain(extra)
        .map(|(name, t)| Ok((name.clone(), HostTensor::new(name, t)?)))
        .collect::<Result<Vec<_>>>()?;
    metadata.insert(SPEC_KEY.to_string(), serde_json::to_string(&model.spec)?);
    let bytes = safetensors::tensor::serialize(host.iter().map(|(n, t)| (n, t)), &Some(metadata))
        .map_err(|e| anyhow!("{e:?}"))?;
    atomic::write_bytes(path, &bytes)
}

fn list(names: &[&str]) -> String {
    const SHOWN: usize = 8;
    let mut text = names
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

pub fn load(path: &Path, device: Device) -> Result<Model> {
    Ok(load_with(path, device, &[])?.model)
}

/// What a file written by [`save_with`] holds.
pub struct Loaded {
    pub model: Model,
    pub extra: HashMap<String, Tensor>,
    pub metadata: HashMap<String, String>,
}

/// Loads a model; tensors whose names start with one of `extra_prefixes` are
/// returned apart instead of being refused as unexpected.
pub fn load_with(path: &Path, device: Device, extra_prefixes: &[&str]) -> Result<Loaded> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = || format!("{} is not a safetensors file", path.display());
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow!("{e:?}"))
        .with_context(file)?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(SPEC_KEY))
        .ok_or_else(|| {
            anyhow!(
                "{} has no `{SPEC_KEY}` metadata saying which architecture it holds \
                 (save it with m.save(path), or from PyTorch with \
                 safetensors.torch.save_file(state_dict, path, metadata={{\"{SPEC_KEY}\": spec_json}}), \
                 see docs/MODELS.md)",
                path.display()
            )
        })?;
    let spec: ModelSpec = serde_json::from_str(json)
        .with_context(|| format!("{}: bad `{SPEC_KEY}` metadata {json}", path.display()))?;
    let tensors = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow!("{e:?}"))
        .with_context(file)?;
    let model = Model::new(spec, device).with_context(|| format!("{}", path.display()))?;
    let state = model.state();
    let ours: Vec<&str> = state.iter().map(|(n, _)| n.as_str()).collect();
    let is_extra = |n: &str| extra_prefixes.iter().any(|p| n.starts_with(p));
    let mut theirs: Vec<&str> = tensors
        .names()
        .into_iter()
        .map(|n| n.as_str())
        .filter(|n| !is_extra(n))
        .collect();
    theirs.sort();
    let missing: Vec<&str> = ours
        .iter()
        .copied()
        .filter(|n| !theirs.contains(n))
        .collect();
    let extra: Vec<&str> = theirs
        .iter()
        .copied()
        .filter(|n| !ours.contains(n))
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing {}", list(&missing)));
        }
        if !extra.is_empty() {
            parts.push(format!("unexpected {}", list(&extra)));
        }
        bail!(
            "{} does not hold a {} (its metadata says so, but its tensors do not match): {}",
            path.display(),
            model.spec.describe(),
            parts.join("; ")
        );
    }
    tch::no_grad(|| -> Result<()> {
        for (name, target) in &state {
            let view = tensors.tensor(name).map_err(|e| anyhow!("{e:?}"))?;
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            if shape != target.size() {
                bail!(
                    "{}: tensor {name} has shape {:?}, the {} needs {:?}",
                    path.display(),
                    shape,
                    model.spec.arch,
                    target.size()
                );
            }
            let source = Tensor::try_from(view)
                .with_context(|| format!("{}: tensor {name}", path.display()))?;
            let mut target = target.shallow_clone();
            target.f_copy_(&source.to_kind(target.kind()).to_device(device))?;
        }
        Ok(())
    })?;
    let mut extra = HashMap::new();
    for name in tensors.names() {
        if is_extra(name) {
            let view = tensors.tensor(name).map_err(|e| anyhow!("{e:?}"))?;
            let t = Tensor::try_from(view)
                .with_context(|| format!("{}: tensor {name}", path.display()))?;
            extra.insert(name.clone(), t.to_device(device));
        }
    }
    let metadata = header.metadata().clone().unwrap_or_default();
    Ok(Loaded {
        model,
        extra,
        metadata,
    })
}
