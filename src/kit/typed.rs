//! Typed configs: `typed_config!` turns one declaration of a config map into a
//! struct with a field per key and the [`Spec`](super::config::Spec) that
//! checks it, so a key is written once and domain code never reads a config by
//! its name.

use super::config::{Config, Default, Rule};
use crate::results::Value;

/// A config value as a Rust type; `None` when the value has another type, which
/// a config validated by the same spec never has.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<i64> {
        match v {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Option<f64> {
        v.as_f64()
    }
}

impl FromValue for bool {
    fn from_value(v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Option<String> {
        match v {
            Value::Str(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl FromValue for Vec<i64> {
    fn from_value(v: &Value) -> Option<Vec<i64>> {
        match v {
            Value::Ints(v) => Some(v.clone()),
            _ => None,
        }
    }
}

/// The entries of a `Rule::Strs` key (kept as one comma-separated cell).
impl FromValue for Vec<String> {
    fn from_value(v: &Value) -> Option<Vec<String>> {
        match v {
            Value::Str(s) => Some(
                s.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            ),
            _ => None,
        }
    }
}

/// `Rule::Custom` keys: the value as the rule returned it.
impl FromValue for Value {
    fn from_value(v: &Value) -> Option<Value> {
        Some(v.clone())
    }
}

/// A key with `Default::Absent`: `None` when left out.
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Option<T>> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// Reads key `name` of a config validated by its own spec as `T`.
pub fn field<T: FromValue>(config: &Config, what: &str, name: &str) -> Result<T, String> {
    T::from_value(config.get(name)).ok_or_else(|| {
        format!(
            "{what}: `{name}` holds {:?}, not the type its spec declares (a bug in minima)",
            config.get(name)
        )
    })
}

/// What a key of a [`typed_config!`] declares besides its name (the field's).
#[derive(Debug, Clone, Copy)]
pub struct KeyDef {
    pub rule: Rule,
    pub default: Default,
    pub help: &'static str,
}

pub const fn key(rule: Rule, default: Default, help: &'static str) -> KeyDef {
    KeyDef {
        rule,
        default,
        help,
    }
}

/// One declaration of a config map: a typed struct, its [`Spec`] (whose keys give
/// the checks, the defaults, `minima doc` and REPL completion), and `read`, which
/// validates a script's map and returns both the struct and the [`Config`] (the
/// values as result columns). Each key is written once, as a field; a key several
/// maps share is a `KeyDef` constant:
///
/// ```ignore
/// typed_config! {
///     /// The `fgsm` options.
///     pub struct Fgsm as FGSM("fgsm options") {
///         examples: Option<i64> = key(POSITIVE_INT, Default::Absent, "test images");
///         split: String = SPLIT;
///     }
/// }
/// ```
#[macro_export]
macro_rules! typed_config {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident as $spec:ident($what:literal) {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $def:expr; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        $vis struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        $vis const $spec: $crate::kit::config::Spec = $crate::kit::config::Spec {
            what: $what,
            keys: &[
                $( $crate::kit::config::Key {
                    name: stringify!($field),
                    rule: $def.rule,
                    default: $def.default,
                    help: $def.help,
                }, )*
            ],
        };

        impl $name {
            /// Validates `map` against the spec; the typed values and the config.
            #[allow(dead_code)]
            pub fn read(map: &rhai::Map) -> Result<($name, $crate::kit::config::Config), String> {
                $name::read_except(map, &[])
            }

            /// `read`, leaving the keys in `skip` to the caller.
            #[allow(dead_code)]
            pub fn read_except(
                map: &rhai::Map,
                skip: &[&str],
            ) -> Result<($name, $crate::kit::config::Config), String> {
                let config = $spec.read_except(map, skip)?;
                Ok(($name::from_config(&config)?, config))
            }

            /// Every key at its default (an error names a required key).
            #[allow(dead_code)]
            pub fn defaults() -> Result<$name, String> {
                $name::read(&rhai::Map::new()).map(|(typed, _)| typed)
            }

            /// The typed values of a config validated by this struct's spec.
            pub fn from_config(config: &$crate::kit::config::Config) -> Result<$name, String> {
                Ok($name {
                    $( $field: $crate::kit::typed::field(config, $what, stringify!($field))?, )*
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::config::{Default, Rule};
    use rhai::{Dynamic, Map};

    crate::typed_config! {
        struct TestKeys as SPEC("test config") {
            lr: f64 = key(Rule::Float { min: 0.0, max: f64::INFINITY, min_open: true }, Default::Float(0.1), "learning rate");
            epochs: i64 = key(Rule::Int { min: 1, max: i64::MAX }, Default::Int(3), "epochs");
            stop: Option<bool> = key(Rule::Bool, Default::Absent, "stop");
            names: Vec<String> = key(Rule::Strs { choices: &["a", "b"] }, Default::Str(""), "names");
        }
    }

    fn map(pairs: &[(&str, Dynamic)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect()
    }

    #[test]
    fn defaults_fill_and_ints_widen_to_floats() {
        let (k, c) = TestKeys::read(&map(&[("lr", Dynamic::from_int(1))])).unwrap();
        assert_eq!(
            k,
            TestKeys {
                lr: 1.0,
                epochs: 3,
                stop: None,
                names: vec![]
            }
        );
        assert_eq!(c.get("stop"), &Value::Null);
        let names = Dynamic::from_array(vec!["b".into(), "a".into(), "b".into()]);
        let (k, _) = TestKeys::read(&map(&[("names", names), ("stop", true.into())])).unwrap();
        assert_eq!(
            (k.names, k.stop),
            (vec!["b".to_string(), "a".to_string()], Some(true))
        );
    }

    #[test]
    fn a_value_of_another_type_than_declared_is_an_error_not_a_default() {
        let mut c = SPEC.read(&Map::new()).unwrap();
        c.set("epochs", Value::Str("three".into()));
        let e = TestKeys::from_config(&c).unwrap_err();
        assert!(
            e.contains("`epochs`") && e.contains("a bug in minima"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_suggests_and_lists() {
        let e = SPEC
            .read(&map(&[("epochz", Dynamic::from_int(1))]))
            .unwrap_err();
        assert!(e.contains("unknown key `epochz`"), "{e}");
        assert!(e.contains("did you mean `epochs`"), "{e}");
        assert!(e.contains("allowed keys: lr, epochs, stop, names"), "{e}");
    }

    #[test]
    fn wrong_type_and_range_name_the_key() {
        let e = SPEC
            .read(&map(&[("epochs", Dynamic::from_float(2.5))]))
            .unwrap_err();
        assert!(
            e.contains("`epochs` must be an integer, found a number"),
            "{e}"
        );
        let e = SPEC
            .read(&map(&[("lr", Dynamic::from_float(0.0))]))
            .unwrap_err();
        assert!(
            e.contains("`lr` = 0 is out of range: must be greater than 0"),
            "{e}"
        );
    }
}
