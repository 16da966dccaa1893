//! `--set key=value` overrides and the script's `param(name, default)` reads.
//!
//! A value is read as a Rhai literal (`3`, `0.5`, `true`, `[1, 2]`, `"text"`), and
//! as a plain string when it is not one. A key may be given once. Before a script
//! runs, every override must name a `param("...")` the script (or its imports)
//! contains, and fit the type of that call's default when the default is a literal,
//! so a typo in `--set` fails at once instead of silently running a long
//! experiment with the default. When the script builds a param name at run time
//! (`param("ep" + "ochs", 3)`), the scan cannot know every name: an override it does
//! not find is then accepted, and the run fails at its end if no `param` read it.

use super::scan::ScriptScan;
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
            if let Some(first) = params.raw.get(key) {
                bail!("--set {key} is given twice ({key}={first} and {key}={raw}); give each key once");
            }
            let value = engine
                .eval_expression::<Dynamic>(raw)
                .unwrap_or_else(|_| Dynamic::from(raw.to_string()));
            params.overrides.insert(key.to_string(), value);
            params.raw.insert(key.to_string(), raw.to_string());
        }
        Ok(params)
    }

    /// Fails when an override names no `param("...")` the scan found (unless the
    /// scan is incomplete) or does not fit the type of a literal default. Returns
    /// the overrides left to check when the run ends ([`Params::unread`]).
    pub fn check_known(&self, scan: &ScriptScan) -> Result<Vec<String>> {
        let mut deferred = Vec::new();
        for (key, value) in &self.overrides {
            let calls: Vec<_> = scan.params.iter().filter(|p| p.name == *key).collect();
            for default in calls.iter().filter_map(|c| c.default.as_ref()) {
                if let Err(e) = convert(key, &self.raw[key], value, default) {
                    bail!("{e}");
                }
            }
            if !calls.is_empty() {
                continue;
            }
            if !scan.complete {
                deferred.push(key.clone());
                continue;
            }
            let mut known: Vec<&str> = scan.params.iter().map(|p| p.name.as_str()).collect();
            known.sort();
            known.dedup();
            let known = if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            };
            bail!("--set {key}: the script reads no param \"{key}\"; its params: {known}");
        }
        Ok(deferred)
    }

    /// The `keys` no `param` call read during the run, as `--set` messages.
    pub fn unread(&self, keys: &[String]) -> Vec<String> {
        let read: Vec<&str> = self.used.keys().map(String::as_str).collect();
        keys.iter()
            .filter(|k| !self.used.contains_key(*k))
            .map(|k| {
                format!(
                    "--set {k}={}: no param(\"{k}\") was read during the run, so the override did nothing; params read: {}",
                    self.raw[k],
                    if read.is_empty() { "none".to_string() } else { read.join(", ") }
                )
            })
            .collect()
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

    fn scanned(text: &str) -> ScriptScan {
        crate::kit::scan::scan(None, text)
    }

    #[test]
    fn unknown_override_is_refused_before_running() {
        let p = Params::parse(&["epocs=3".into()]).unwrap();
        let e = p
            .check_known(&scanned(
                "let e = param(\"epochs\", 3); let s = param( \"seed\", 0);",
            ))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no param \"epocs\"; its params: epochs, seed"),
            "{e}"
        );
        assert!(Params::parse(&["bad".into()]).is_err());
    }

    #[test]
    fn a_key_given_twice_is_refused() {
        let e = Params::parse(&["epochs=5".into(), "lr=0.1".into(), "epochs=6".into()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--set epochs is given twice (epochs=5 and epochs=6)"),
            "{e}"
        );
    }

    #[test]
    fn an_override_of_the_wrong_type_is_refused_before_running() {
        let script = "let e = param(\"epochs\", 3); let h = param(\"hidden\", [8]);";
        let p = Params::parse(&["epochs=[1,2]".into()]).unwrap();
        let e = p.check_known(&scanned(script)).unwrap_err().to_string();
        assert_eq!(
            e,
            "--set epochs=[1,2]: expected an integer (the default is 3)"
        );
        let p = Params::parse(&["hidden=8".into()]).unwrap();
        let e = p.check_known(&scanned(script)).unwrap_err().to_string();
        assert!(e.contains("--set hidden=8: expected an array"), "{e}");
        // Values that fit pass; a non-literal default is checked when read.
        let p = Params::parse(&["epochs=4".into(), "hidden=[2, 2]".into(), "d=x".into()]).unwrap();
        let ok = p.check_known(&scanned(&format!("{script} param(\"d\", cfg.d);")));
        assert_eq!(ok.unwrap(), Vec::<String>::new());
    }

    #[test]
    fn computed_names_defer_the_check_to_the_end_of_the_run() {
        let scan = scanned("let e = param(\"ep\" + \"ochs\", 3);");
        let mut p = Params::parse(&["epochs=5".into(), "seeed=1".into()]).unwrap();
        let deferred = p.check_known(&scan).unwrap();
        assert_eq!(deferred, ["epochs", "seeed"]);
        assert_eq!(
            p.read("epochs", Dynamic::from_int(3)).unwrap().as_int(),
            Ok(5)
        );
        let unread = p.unread(&deferred);
        assert_eq!(unread.len(), 1);
        assert!(
            unread[0].starts_with("--set seeed=1: no param(\"seeed\") was read during the run"),
            "{}",
            unread[0]
        );
    }
}
