//! Validation of configuration maps passed from scripts.
//!
//! Every binding that takes a map declares a [`Spec`]: the allowed keys, their
//! types, ranges and defaults. Unknown keys, wrong types and out-of-range values
//! become errors that name the key and list the allowed keys; the engine adds the
//! script position of the call. `typed_config!` (kit/typed.rs) declares a spec and
//! its typed struct at once.

use crate::results::{Row, Value};
use rhai::{Dynamic, Map};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy)]
pub enum Rule {
    Bool,
    /// Inclusive bounds.
    Int {
        min: i64,
        max: i64,
    },
    /// `min_open` excludes `min` itself (a learning rate of 0 is not allowed).
    Float {
        min: f64,
        max: f64,
        min_open: bool,
    },
    Str {
        choices: &'static [&'static str],
    },
    /// A list of integers, each at least `min`.
    Ints {
        min: i64,
    },
    /// Checked by the given function, which returns the value for result columns
    /// or a message naming what is wrong.
    Custom(fn(&Dynamic) -> Result<Value, String>),
    /// A list of distinct strings from `choices`, kept as one comma-separated
    /// string so it is one readable result column.
    Strs {
        choices: &'static [&'static str],
    },
}

#[derive(Debug, Clone, Copy)]
pub enum Default {
    Required,
    /// The key may be left out and then has no value (e.g. "no early stop").
    Absent,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'static str),
    Ints(&'static [i64]),
}

#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub rule: Rule,
    pub default: Default,
    pub help: &'static str,
}

/// The keys one binding accepts; `what` names the map in messages ("train config").
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub what: &'static str,
    pub keys: &'static [Key],
}

/// A validated map: every key of its spec, with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    values: BTreeMap<&'static str, Value>,
    order: Vec<&'static str>,
}

impl Config {
    /// The value of `key`: domain code reads the typed struct of its
    /// [`typed_config!`] instead, which this serves.
    pub fn get(&self, key: &str) -> &Value {
        self.values.get(key).unwrap_or(&Value::Null)
    }
    pub fn set(&mut self, key: &'static str, value: Value) {
        if !self.values.contains_key(key) {
            self.order.push(key);
        }
        self.values.insert(key, value);
    }
    /// The values as result columns, in the spec's order.
    pub fn to_row(&self) -> Row {
        self.order
            .iter()
            .map(|k| (k.to_string(), self.values[k].clone()))
            .collect()
    }
}

impl Spec {
    pub fn allowed(&self) -> String {
        self.keys
            .iter()
            .map(|k| k.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn key(&self, name: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.name == name)
    }

    /// Reads `map`, ignoring the keys in `skip` (handled by the caller).
    pub fn read_except(&self, map: &Map, skip: &[&str]) -> Result<Config, String> {
        let mut allowed: Vec<&str> = self.keys.iter().map(|k| k.name).collect();
        allowed.extend_from_slice(skip);
        check_keys(self.what, map, &allowed)?;
        let mut config = Config {
            values: BTreeMap::new(),
            order: Vec::new(),
        };
        for key in self.keys {
            let value = match map.get(key.name) {
                Some(v) => check(self.what, key, v)?,
                None => match key.default {
                    Default::Required => {
                        return Err(format!(
                            "{}: missing key `{}` ({})",
                            self.what, key.name, key.help
                        ))
                    }
                    Default::Absent => Value::Null,
                    Default::Bool(b) => Value::Bool(b),
                    Default::Int(i) => Value::Int(i),
                    Default::Float(f) => Value::Float(f),
                    Default::Str(s) => Value::Str(s.to_string()),
                    Default::Ints(v) => Value::Ints(v.to_vec()),
                },
            };
            config.set(key.name, value);
        }
        Ok(config)
    }

    pub fn read(&self, map: &Map) -> Result<Config, String> {
        self.read_except(map, &[])
    }
}

/// Fails on the first key of `map` not in `allowed`, suggesting the nearest one.
pub fn check_keys(what: &str, map: &Map, allowed: &[&str]) -> Result<(), String> {
    for name in map.keys() {
        if !allowed.contains(&name.as_str()) {
            let hint = closest(name, allowed.iter().copied())
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            return Err(format!(
                "{what}: unknown key `{name}`{hint}; allowed keys: {}",
                allowed.join(", ")
            ));
        }
    }
    Ok(())
}

fn type_name(v: &Dynamic) -> &'static str {
    if v.is_int() {
        "an integer"
    } else if v.is_float() {
        "a number"
    } else if v.is_bool() {
        "a boolean"
    } else if v.is_string() {
        "a string"
    } else if v.is_array() {
        "an array"
    } else if v.is_map() {
        "a map"
    } else if v.is_unit() {
        "()"
    } else {
        "a value of another type"
    }
}

fn check(what: &str, key: &Key, v: &Dynamic) -> Result<Value, String> {
    let name = key.name;
    let wrong = |expected: &str| {
        format!(
            "{what}: `{name}` must be {expected}, found {} ({})",
            type_name(v),
            key.help
        )
    };
    match key.rule {
        Rule::Bool => v
            .as_bool()
            .map(Value::Bool)
            .map_err(|_| wrong("true or false")),
        Rule::Int { min, max } => {
            let i = v.as_int().map_err(|_| wrong("an integer"))?;
            if i < min || i > max {
                return Err(format!(
                    "{what}: `{name}` = {i} is out of range: {} ({})",
                    range_text(min as f64, max as f64, false),
                    key.help
                ));
            }
            Ok(Value::Int(i))
        }
        Rule::Float { min, max, min_open } => {
            let x = if v.is_int() {
                v.as_int().unwrap_or_default() as f64
            } else {
                v.as_float().map_err(|_| wrong("a number"))?
            };
            let below = if min_open { x <= min } else { x < min };
            if x.is_nan() || below || x > max {
                return Err(format!(
                    "{what}: `{name}` = {x} is out of range: {} ({})",
                    range_text(min, max, min_open),
                    key.help
                ));
            }
            Ok(Value::Float(x))
        }
        Rule::Str { choices } => {
            let s = v.clone().into_string().map_err(|_| wrong("a string"))?;
            if !choices.is_empty() && !choices.contains(&s.as_str()) {
                return Err(format!(
                    "{what}: `{name}` = \"{s}\" is not one of: {}",
                    choices.join(", ")
                ));
            }
            Ok(Value::Str(s))
        }
        Rule::Custom(read) => read(v),
        Rule::Ints { min } => {
            let arr = v
                .as_array_ref()
                .map_err(|_| wrong("an array of integers"))?;
            let mut out = Vec::with_capacity(arr.len());
            for item in arr.iter() {
                let i = item.as_int().map_err(|_| wrong("an array of integers"))?;
                if i < min {
                    return Err(format!(
                        "{what}: every entry of `{name}` must be at least {min}, found {i}"
                    ));
                }
                out.push(i);
            }
            Ok(Value::Ints(out))
        }
        Rule::Strs { choices } => {
            let wrong = || wrong("an array of strings");
            let arr = v.as_array_ref().map_err(|_| wrong())?;
            let mut out: Vec<String> = Vec::with_capacity(arr.len());
            for item in arr.iter() {
                let s = item.clone().into_string().map_err(|_| wrong())?;
                if !choices.contains(&s.as_str()) {
                    return Err(format!(
                        "{what}: `{name}` names \"{s}\", which is not one of: {}",
                        choices.join(", ")
                    ));
                }
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            Ok(Value::Str(out.join(", ")))
        }
    }
}

fn range_text(min: f64, max: f64, min_open: bool) -> String {
    let lo = if min_open {
        format!("greater than {min}")
    } else {
        format!("at least {min}")
    };
    if max.is_infinite() || max >= i64::MAX as f64 {
        format!("must be {lo}")
    } else {
        format!("must be {lo} and at most {max}")
    }
}

/// The candidate nearest to `name` by edit distance, if it is a plausible typo.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("momentun", "momentum"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
    }
}
