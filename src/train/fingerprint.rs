//! What a run is, as its checkpoint records it: the setting columns (data, model,
//! train config, kind, index) plus digests of the weights it starts from and of
//! the examples it sees. A checkpoint is continued only when all of these are the
//! same now, so a run never mixes two starting points, two data sets or two
//! configs; a refusal names the keys that changed.

use crate::data::Dataset;
use crate::models::Model;
use crate::results::{Row, Value};
use anyhow::Result;
use md5::{Digest, Md5};
use tch::{Device, Tensor};

/// The md5 of tensors' kinds, shapes and bytes (on the host), in hex.
fn digest<'a>(tensors: impl IntoIterator<Item = &'a Tensor>) -> Result<String> {
    let mut md5 = Md5::new();
    for t in tensors {
        let t = t.detach().to_device(Device::Cpu).contiguous();
        md5.update(format!("{:?}{:?}", t.kind(), t.size()).as_bytes());
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut bytes, numel)?;
        md5.update(&bytes);
    }
    Ok(md5.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The fingerprint as JSON text: `[[key, value], ...]` in setting order, then
/// `init_weights` (every parameter and buffer of the model the run starts from)
/// and `data` (inputs and labels of both splits; random labels and augmentation
/// are derived from seeds that the setting columns hold).
pub fn fingerprint(setting: &Row, init: &Model, data: &Dataset) -> Result<String> {
    let state = init.state();
    let weights = digest(state.iter().map(|(_, t)| t))?;
    let examples = digest([&data.train.x, &data.train.y, &data.test.x, &data.test.y])?;
    let pairs = setting
        .iter()
        .cloned()
        .chain([
            ("init_weights".to_string(), Value::Str(weights)),
            ("data".to_string(), Value::Str(examples)),
        ])
        .map(|(k, v)| serde_json::json!([k, v.to_json()]))
        .collect();
    Ok(serde_json::Value::Array(pairs).to_string())
}

fn pairs(fingerprint: &str) -> Vec<(String, serde_json::Value)> {
    let parsed: serde_json::Value = serde_json::from_str(fingerprint).unwrap_or_default();
    parsed
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p.get(0)?.as_str()?.to_string(), p.get(1)?.clone())))
                .collect()
        })
        .unwrap_or_default()
}

/// Setting keys added after checkpoints began to be written, each with the value
/// that trains and scores as a checkpoint without the key did: a checkpoint that
/// lacks such a key still belongs to a run that has it at that value.
const ADDED: &[(&str, &str)] = &[("train_eval", "clean")];

/// Whether a checkpoint's fingerprint is this run's: the same, or short only of
/// keys added since (`ADDED`) that the run has at their old behaviour.
pub fn matches(old: &str, new: &str) -> bool {
    if old == new {
        return true;
    }
    let (old, new) = (pairs(old), pairs(new));
    let added_since = |(key, value): &&(String, serde_json::Value)| {
        !old.iter().any(|(k, _)| k == key)
            && ADDED
                .iter()
                .any(|(k, v)| k == key && value.as_str() == Some(v))
    };
    let rest: Vec<_> = new.iter().filter(|p| !added_since(p)).collect();
    rest.len() == old.len() && rest.iter().zip(&old).all(|(a, b)| *a == b)
}

/// What differs between an old fingerprint and a new one, one `key: old → new`
/// per changed key (`(none)` where one side lacks the key), in setting order.
pub fn changes(old: &str, new: &str) -> Vec<String> {
    let (old, new) = (pairs(old), pairs(new));
    let find = |list: &[(String, serde_json::Value)], key: &str| {
        list.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    };
    let show = |v: Option<serde_json::Value>, key: &str| match v {
        None => "(none)".to_string(),
        Some(v) if key == "init_weights" || key == "data" => {
            format!("md5 {}", v.as_str().unwrap_or_default())
        }
        Some(v) => v.to_string(),
    };
    let mut keys: Vec<&str> = new.iter().map(|(k, _)| k.as_str()).collect();
    for (k, _) in &old {
        if !keys.contains(&k.as_str()) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .filter_map(|key| {
            let (a, b) = (find(&old, key), find(&new, key));
            (a != b).then(|| {
                let what = match key {
                    "init_weights" => " (the weights the run starts from)",
                    "data" => " (the examples the run sees)",
                    _ => "",
                };
                format!("{key}{what}: {} → {}", show(a, key), show(b, key))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{changes, matches};

    #[test]
    fn changes_name_only_the_keys_that_differ() {
        let old = r#"[["run",0],["lr",0.05],["epochs",3],["init_weights","aa"]]"#;
        let new = r#"[["run",0],["lr",0.06],["epochs",3],["init_weights","bb"],["data","cc"]]"#;
        assert_eq!(
            changes(old, new),
            [
                "lr: 0.05 → 0.06",
                "init_weights (the weights the run starts from): md5 aa → md5 bb",
                "data (the examples the run sees): (none) → md5 cc",
            ]
        );
        assert!(changes(new, new).is_empty());
    }

    #[test]
    fn a_checkpoint_from_before_an_added_key_matches_only_its_old_behaviour() {
        let old = r#"[["run",0],["eval_every",1],["seed",2],["data","cc"]]"#;
        let new = |v: &str| {
            format!(r#"[["run",0],["eval_every",1],["train_eval","{v}"],["seed",2],["data","cc"]]"#)
        };
        assert!(matches(old, &new("clean")));
        assert!(!matches(old, &new("augmented")));
        assert!(!matches(
            old,
            &new("clean").replace(r#"["seed",2]"#, r#"["seed",3]"#)
        ));
        // A checkpoint that has the key must have the same value.
        assert!(!matches(&new("augmented"), &new("clean")));
        assert!(matches(&new("clean"), &new("clean")));
    }
}
