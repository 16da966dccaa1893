//! Script bindings for models: `model(spec[, data[, extra]])` and the `Model` type.

use super::{Model, ModelSpec, ARCHS};
use crate::data::rhai::Data;
use crate::host::config::{Default as D, Key, Rule, Spec};
use crate::host::error::{script_error, OrScript, ScriptResult};
use crate::host::Session;
use rhai::{Dynamic, Engine, Map};
use std::rc::Rc;

pub type ModelRef = Rc<Model>;

pub const MODEL: Spec = Spec {
    what: "model spec",
    keys: &[
        Key {
            name: "arch",
            rule: Rule::Str { choices: ARCHS },
            default: D::Required,
            help: "architecture",
        },
        Key {
            name: "hidden",
            rule: Rule::Ints { min: 1 },
            default: D::Ints(&[100, 100]),
            help: "hidden layer widths of the mlp",
        },
        Key {
            name: "inputs",
            rule: Rule::Int {
                min: 1,
                max: i64::MAX,
            },
            default: D::Absent,
            help: "input size; taken from the data set when one is given",
        },
        Key {
            name: "classes",
            rule: Rule::Int {
                min: 2,
                max: i64::MAX,
            },
            default: D::Absent,
            help: "number of classes; taken from the data set when one is given",
        },
        Key {
            name: "seed",
            rule: Rule::Int {
                min: 0,
                max: i64::MAX,
            },
            default: D::Int(0),
            help: "seed of the initial weights",
        },
    ],
};

/// Builds a spec from a map; sizes the map leaves out come from `data`.
pub fn spec_from_map(map: &Map, data: Option<&Data>) -> ScriptResult<ModelSpec> {
    let c = MODEL.read(map).or_script()?;
    let size = |key: &str, from_data: Option<i64>| -> ScriptResult<i64> {
        match (c.get(key).as_f64(), from_data) {
            (Some(given), Some(found)) if given as i64 != found => Err(script_error(format!(
                "model spec: `{key}` = {given} but the data set has {found}"
            ))),
            (Some(given), _) => Ok(given as i64),
            (None, Some(found)) => Ok(found),
            (None, None) => Err(script_error(format!(
                "model spec: `{key}` is needed when no data set is given (model(spec, data) takes it from the data)"
            ))),
        }
    };
    Ok(ModelSpec {
        arch: c.str("arch").to_string(),
        hidden: c.ints("hidden"),
        inputs: size("inputs", data.map(|d| d.input_size()))?,
        classes: size("classes", data.map(|d| d.num_classes()))?,
        seed: c.i64("seed"),
    })
}

pub fn register(engine: &mut Engine, session: &Rc<Session>) {
    engine.register_type_with_name::<ModelRef>("Model");
    let s = session.clone();
    engine.register_fn("model", move |spec: Map| -> ScriptResult<ModelRef> {
        let spec = spec_from_map(&spec, None)?;
        Ok(Rc::new(Model::new(spec, s.device()).or_script()?))
    });
    let s = session.clone();
    engine.register_fn(
        "model",
        move |spec: Map, data: Data| -> ScriptResult<ModelRef> {
            let spec = spec_from_map(&spec, Some(&data))?;
            Ok(Rc::new(Model::new(spec, s.device()).or_script()?))
        },
    );
    let s = session.clone();
    engine.register_fn(
        "model",
        move |spec: Map, data: Data, extra: Map| -> ScriptResult<ModelRef> {
            let mut merged = spec;
            merged.extend(extra);
            let spec = spec_from_map(&merged, Some(&data))?;
            Ok(Rc::new(Model::new(spec, s.device()).or_script()?))
        },
    );
    engine.register_fn("copy", |m: &mut ModelRef| -> ScriptResult<ModelRef> {
        Ok(Rc::new(m.copy().or_script()?))
    });
    engine.register_fn("params", |m: &mut ModelRef| m.num_parameters());
    engine.register_get("arch", |m: &mut ModelRef| m.spec.arch.clone());
    engine.register_get("seed", |m: &mut ModelRef| m.spec.seed);
    engine.register_get("hidden", |m: &mut ModelRef| -> rhai::Array {
        m.spec
            .hidden
            .iter()
            .map(|h| Dynamic::from_int(*h))
            .collect()
    });
    engine.register_fn("to_string", |m: &mut ModelRef| m.summary());
    engine.register_fn("to_debug", |m: &mut ModelRef| m.summary());
}
