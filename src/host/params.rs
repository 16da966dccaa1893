//! `--set key=value` overrides and the script's `param(name, default)` reads.
//!
//! A value is read as a Rhai literal (`3`, `0.5`, `true`, `[1, 2]`, `"text"`), and
//! as a plain string when it is not one. Before a script runs, every override must
//! name a `param("...")` the script (or its imports) contains, so a typo in `--set`
//! fails at once instead of silently running a long experiment with the default.

use crate::results::Value;
use anyhow::{bail, Result};
use rhai::{Dynamic, Engine};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Params {
    overrides: BTreeMap<String, Dynamic>,
    raw: BTreeMap<String, String>,
    /// Every param the script read, with the value it got.
    used: BTreeMap<String, Dynamic>,
}

impl Params {
    pub fn parse(sets: &[String]) -> Result<Params> {
        let engine = Engine::new_raw();
        let mut params = Params::default();
        for set in sets {
            let Some((key, raw)) = set.split_once('=') else {
                bail!("--set {set}: expected key=value");
            };
            let key = key.trim();
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                bail!("--set {set}: the key must be a name of letters, digits and _");
            }
            let value = engine
                .eval_expression::<Dynamic>(raw)
                .unwrap_or_else(|_| Dynamic::from(raw.to_string()));
            params.overrides.insert(key.to_string(), value);
            params.raw.insert(key.to_string(), raw.to_string());
        }
        Ok(params)
    }

    /// Fails when an override names no `param("...")` in `sources`.
    pub fn check_known(&self, sources: &[String]) -> Result<()> {
        let names: Vec<String> = sources.iter().flat_map(|s| param_names(s)).collect();
        for key in self.overrides.keys() {
            if !names.contains(key) {
                let mut known = names.clone();
                known.sort();
                known.dedup();
                let known = if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                };
                bail!("--set {key}: the script reads no param \"{key}\"; its params: {known}");
            }
        }
        Ok(())
    }

    /// The override for `name` converted to the type of `default`, or `default`.
    pub fn read(&mut self, name: &str, default: Dynamic) -> Result<Dynamic, String> {
        let value = match self.overrides.get(name) {
            None => default,
            Some(v) => convert(name, &self.raw[name], v, &default)?,
        };
        self.used.insert(name.to_string(), value.clone());
        Ok(value)
    }

    pub fn overrides_json(&self) -> serde_json::Value {
        self.raw
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
            .collect()
    }

    pub fn used_json(&self) -> serde_json::Value {
        self.used
            .iter()
            .map(|(k, v)| (k.clone(), scalar(v).to_json()))
            .collect()
    }

    /// Scalar params as result columns (`param_<name>`), so every row says which
    /// settings produced it.
    pub fn columns(&self) -> Vec<(String, Value)> {
        self.used
            .iter()
            .map(|(k, v)| (format!("param_{k}"), scalar(v)))
            .collect()
    }
}

fn scalar(v: &Dynamic) -> Value {
    if let Ok(i) = v.as_int() {
        Value::Int(i)
    } else if let Ok(f) = v.as_float() {
        Value::Float(f)
    } else if let Ok(b) = v.as_bool() {
        Value::Bool(b)
    } else {
        Value::Str(v.to_string())
    }
}

fn convert(name: &str, raw: &str, v: &Dynamic, default: &Dynamic) -> Result<Dynamic, String> {
    let bad =
        |what: &str| format!("--set {name}={raw}: expected {what} (the default is {default})");
    if default.is_int() {
        v.as_int()
            .map(Dynamic::from_int)
            .map_err(|_| bad("an integer"))
    } else if default.is_float() {
        if let Ok(i) = v.as_int() {
            Ok(Dynamic::from_float(i as f64))
        } else {
            v.as_float()
                .map(Dynamic::from_float)
                .map_err(|_| bad("a number"))
        }
    } else if default.is_bool() {
        v.as_bool()
            .map(Dynamic::from_bool)
            .map_err(|_| bad("true or false"))
    } else if default.is_string() {
        Ok(Dynamic::from(if v.is_string() {
            v.to_string()
        } else {
            raw.to_string()
        }))
    } else if default.is_array() {
        if v.is_array() {
            Ok(v.clone())
        } else {
            Err(bad("an array like [1, 2]"))
        }
    } else {
        Ok(v.clone())
    }
}

/// Names given to `param("NAME", ...)` in a source text.
fn param_names(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("param(") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "param(".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let arg = rest.trim_start();
        if let Some(body) = arg.strip_prefix('"') {
            if let Some(end) = body.find('"') {
                names.push(body[..end].to_string());
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_take_the_default_type() {
        let mut p = Params::parse(&["epochs=7".into(), "lr=1".into(), "name=abc".into()]).unwrap();
        assert_eq!(
            p.read("epochs", Dynamic::from_int(3))
                .unwrap()
                .as_int()
                .unwrap(),
            7
        );
        assert_eq!(
            p.read("lr", Dynamic::from_float(0.1))
                .unwrap()
                .as_float()
                .unwrap(),
            1.0
        );
        assert_eq!(
            p.read("name", Dynamic::from("x".to_string()))
                .unwrap()
                .to_string(),
            "abc"
        );
        assert_eq!(
            p.read("seed", Dynamic::from_int(4))
                .unwrap()
                .as_int()
                .unwrap(),
            4
        );
        let e = Params::parse(&["epochs=many".into()])
            .unwrap()
            .read("epochs", Dynamic::from_int(3))
            .unwrap_err();
        assert!(e.contains("--set epochs=many: expected an integer"), "{e}");
    }

    #[test]
    fn unknown_override_is_refused_before_running() {
        let p = Params::parse(&["epocs=3".into()]).unwrap();
        let e = p
            .check_known(&["let e = param(\"epochs\", 3); let s = param( \"seed\", 0);".into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no param \"epocs\"; its params: epochs, seed"),
            "{e}"
        );
        assert!(Params::parse(&["bad".into()]).is_err());
    }
}
