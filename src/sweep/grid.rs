//! `grid(#{ ... })`: the cartesian product of a map's values as configurations,
//! each with a stable `index` (its position) and a stable `id` (a hash of the
//! configuration's canonical JSON).
//!
//! Keys are taken in sorted order (a Rhai map is ordered by key), the last key
//! varying fastest, as sklearn's `ParameterGrid` does; so neither the order of
//! the configurations nor their ids depend on how the script wrote the map.

use crate::results::{Row, Value};
use md5::{Digest, Md5};
use rhai::{Dynamic, Map};
use std::ops::{Range, RangeInclusive};

/// Keys every configuration map carries besides the grid's own.
pub const INDEX: &str = "index";
pub const ID: &str = "id";

#[derive(Debug, Clone)]
pub struct Configuration {
    pub index: i64,
    pub id: String,
    /// The grid's keys and this configuration's values (no `index`, `id`).
    pub values: Map,
    /// Keys sorted, no spaces: what `id` hashes.
    pub canonical: String,
}

impl Configuration {
    /// Builds one from its values, computing the canonical JSON and the id.
    pub fn new(index: i64, values: Map) -> Result<Configuration, String> {
        let json = object_json(&values)?;
        let canonical = serde_json::to_string(&json).map_err(|e| e.to_string())?;
        Ok(Configuration {
            index,
            id: id_of(&canonical),
            values,
            canonical,
        })
    }

    /// The map a sweep body receives: the values plus `index` and `id`.
    pub fn to_map(&self) -> Map {
        let mut map = self.values.clone();
        map.insert(INDEX.into(), Dynamic::from_int(self.index));
        map.insert(ID.into(), Dynamic::from(self.id.clone()));
        map
    }

    /// Result columns: `sweep_index`, `sweep_id`, then `sweep_<key>` per key;
    /// scalars as they are, arrays and maps as their canonical JSON text.
    pub fn columns(&self) -> Row {
        let mut row: Row = vec![
            ("sweep_index".into(), Value::Int(self.index)),
            ("sweep_id".into(), Value::Str(self.id.clone())),
        ];
        for (key, v) in &self.values {
            let value = if let Ok(i) = v.as_int() {
                Value::Int(i)
            } else if let Ok(f) = v.as_float() {
                Value::Float(f)
            } else if let Ok(b) = v.as_bool() {
                Value::Bool(b)
            } else if v.is_string() {
                Value::Str(v.to_string())
            } else {
                Value::Str(json(key, v).map(|j| j.to_string()).unwrap_or_default())
            };
            row.push((format!("sweep_{key}"), value));
        }
        row
    }
}

/// First 12 hex digits of the md5 of the canonical JSON: 48 bits, ample for the
/// grids of one results folder.
pub fn id_of(canonical: &str) -> String {
    Md5::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..12]
        .to_string()
}

fn object_json(values: &Map) -> Result<serde_json::Value, String> {
    let mut object = serde_json::Map::new();
    for (key, v) in values {
        object.insert(key.to_string(), json(key, v)?);
    }
    Ok(serde_json::Value::Object(object))
}

/// A configuration value as JSON; `key` names the grid key in errors.
fn json(key: &str, v: &Dynamic) -> Result<serde_json::Value, String> {
    if let Ok(i) = v.as_int() {
        Ok(i.into())
    } else if let Ok(f) = v.as_float() {
        serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .ok_or_else(|| format!("grid: key `{key}`: {f} is not a finite number"))
    } else if let Ok(b) = v.as_bool() {
        Ok(b.into())
    } else if v.is_string() {
        Ok(v.to_string().into())
    } else if let Some(array) = v.read_lock::<rhai::Array>() {
        array.iter().map(|e| json(key, e)).collect()
    } else if let Some(map) = v.read_lock::<Map>() {
        let mut object = serde_json::Map::new();
        for (k, e) in map.iter() {
            object.insert(k.to_string(), json(key, e)?);
        }
        Ok(serde_json::Value::Object(object))
    } else {
        Err(format!(
            "grid: key `{key}`: a {} cannot be a configuration value; use numbers, strings, booleans, or arrays and maps of them",
            v.type_name()
        ))
    }
}

/// The values a grid key takes: each element of an array, each integer of a
/// range, or a scalar (or map) as its one value. An array as one value is
/// written inside an array: `hidden: [[100, 100]]`.
fn choices(key: &str, v: &Dynamic) -> Result<Vec<Dynamic>, String> {
    let values: Vec<Dynamic> = if let Some(r) = v.read_lock::<Range<i64>>() {
        (*r).clone().map(Dynamic::from_int).collect()
    } else if let Some(r) = v.read_lock::<RangeInclusive<i64>>() {
        (*r).clone().map(Dynamic::from_int).collect()
    } else if let Some(array) = v.read_lock::<rhai::Array>() {
        array.to_vec()
    } else {
        vec![v.clone()]
    };
    if values.is_empty() {
        return Err(format!(
            "grid: key `{key}` has no values (an empty array or range)"
        ));
    }
    let mut seen = Vec::with_capacity(values.len());
    for value in &values {
        let text = json(key, value)?.to_string();
        if seen.contains(&text) {
            return Err(format!(
                "grid: key `{key}` lists the value {text} twice; each configuration must be distinct"
            ));
        }
        seen.push(text);
    }
    Ok(values)
}

/// Every configuration of the grid, in index order.
pub fn expand(spec: &Map) -> Result<Vec<Configuration>, String> {
    let mut axes: Vec<(String, Vec<Dynamic>)> = Vec::with_capacity(spec.len());
    for (key, v) in spec {
        if key == INDEX || key == ID {
            return Err(format!(
                "grid: `{key}` is reserved (every configuration carries its own `index` and `id`); rename the key"
            ));
        }
        axes.push((key.to_string(), choices(key, v)?));
    }
    let total: usize = axes.iter().map(|(_, vs)| vs.len()).product();
    let mut out = Vec::with_capacity(total);
    for n in 0..total {
        let mut values = Map::new();
        let mut rest = n;
        for (key, vs) in axes.iter().rev() {
            values.insert(key.as_str().into(), vs[rest % vs.len()].clone());
            rest /= vs.len();
        }
        out.push(Configuration::new(n as i64, values)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str) -> Map {
        rhai::Engine::new().eval::<Map>(text).unwrap()
    }

    fn summary(configs: &[Configuration]) -> Vec<String> {
        configs.iter().map(|c| c.canonical.clone()).collect()
    }

    #[test]
    fn last_key_varies_fastest_and_ranges_expand() {
        let configs = expand(&eval(
            r#"#{ seed: 0..2, init: ["random", "adversarial"], lr: 0.1 }"#,
        ))
        .unwrap();
        assert_eq!(
            summary(&configs),
            [
                r#"{"init":"random","lr":0.1,"seed":0}"#,
                r#"{"init":"random","lr":0.1,"seed":1}"#,
                r#"{"init":"adversarial","lr":0.1,"seed":0}"#,
                r#"{"init":"adversarial","lr":0.1,"seed":1}"#,
            ]
        );
        let indices: Vec<i64> = configs.iter().map(|c| c.index).collect();
        assert_eq!(indices, [0, 1, 2, 3]);
        assert_eq!(expand(&eval("#{ seed: 1..=3 }")).unwrap().len(), 3);
    }

    #[test]
    fn ids_are_stable_distinct_and_independent_of_key_order() {
        let a = expand(&eval(
            r#"#{ b: [1, 2.5], a: ["x", [1, 2]], c: #{ q: 1, p: true } }"#,
        ))
        .unwrap();
        let b = expand(&eval(
            r#"#{ c: #{ p: true, q: 1 }, a: ["x", [1, 2]], b: [1, 2.5] }"#,
        ))
        .unwrap();
        let ids = |cs: &[Configuration]| cs.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        let mut unique = ids(&a);
        unique.dedup();
        assert_eq!(unique.len(), 4);
        // The id is the hash of the canonical JSON alone: recomputed, it agrees.
        assert_eq!(a[0].id, id_of(r#"{"a":"x","b":1,"c":{"p":true,"q":1}}"#));
        // 1 and 1.0 are different configurations.
        let ints = expand(&eval("#{ lr: 1 }")).unwrap();
        let floats = expand(&eval("#{ lr: 1.0 }")).unwrap();
        assert_ne!(ints[0].id, floats[0].id);
    }

    #[test]
    fn bad_grids_name_the_key() {
        for (text, expected) in [
            ("#{ seed: [] }", "key `seed` has no values"),
            ("#{ seed: 3..3 }", "key `seed` has no values"),
            ("#{ seed: [1, 1] }", "key `seed` lists the value 1 twice"),
            ("#{ index: [1] }", "`index` is reserved"),
            ("#{ f: [|| 1] }", "key `f`: a Fn cannot be"),
        ] {
            let e = expand(&eval(text)).unwrap_err();
            assert!(e.contains(expected), "{text}: {e}");
        }
    }

    #[test]
    fn columns_carry_every_key() {
        let c = &expand(&eval(r#"#{ hidden: [[4, 4]], init: "random", wd: 5e-4 }"#)).unwrap()[0];
        let names: Vec<String> = c.columns().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            [
                "sweep_index",
                "sweep_id",
                "sweep_hidden",
                "sweep_init",
                "sweep_wd"
            ]
        );
        assert_eq!(c.columns()[2].1, Value::Str("[4,4]".into()));
        assert_eq!(c.columns()[4].1, Value::Float(5e-4));
    }
}
