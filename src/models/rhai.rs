//! Script bindings for models: `model(spec[, data[, extra]])`, `load_model(path)`
//! and the `Model` type.

use super::{Arch, Model, ModelSpec, ARCHS};
use crate::data::rhai::Data;
use crate::kit::config::{Default as D, Rule};
use crate::kit::error::{script_error, OrScript, ScriptResult};
use crate::kit::rules::{self, POSITIVE_INT, SEED};
use crate::kit::typed::key;
use crate::kit::Session;
use crate::typed_config;
use rhai::{Array, Dynamic, Engine, Map};
use std::path::PathBuf;
use std::rc::Rc;

pub type ModelRef = Rc<Model>;

/// Channels and image sides; more is a typo that would not fit in memory.
const SIZE: Rule = rules::count(1 << 20);

typed_config! {
    /// `model(#{..})`: the map a `ModelSpec` is built from.
    pub struct ModelKeys as MODEL("model spec") {
        arch: String = key(Rule::Str { choices: ARCHS }, D::Required, "architecture");
        classes: Option<i64> = key(Rule::Int { min: 2, max: i64::MAX }, D::Absent, "number of classes; taken from the data set when one is given");
        in_channels: Option<i64> = key(SIZE, D::Absent, "input channels of the conv archs; from the data set, else 3");
        input_size: Option<i64> = key(SIZE, D::Absent, "input height = width of the conv archs; from the data set, else 32");
        width: f64 = key(Rule::Float { min: 0.0, max: 64.0, min_open: true }, D::Float(1.0), "multiplier of every channel count of the conv archs (1 = the paper's)");
        hidden: Vec<i64> = key(Rule::Ints { min: 1 }, D::Ints(&[100, 100]), "hidden layer widths of the mlp");
        inputs: Option<i64> = key(POSITIVE_INT, D::Absent, "input size of the mlp; taken from the data set when one is given");
        seed: i64 = key(SEED, D::Int(0), "seed of the initial weights");
    }
}

/// Keys that only one kind of architecture takes, and what to use instead.
const MLP_ONLY: &[(&str, &str)] = &[
    ("hidden", "conv archs are sized by `width`"),
    (
        "inputs",
        "conv archs take `in_channels` and `input_size`, or the data set's image shape",
    ),
];
const CONV_ONLY: &[(&str, &str)] = &[
    ("width", "the mlp is sized by `hidden`"),
    ("in_channels", "the mlp takes `inputs` (values per example)"),
    ("input_size", "the mlp takes `inputs` (values per example)"),
];

/// Builds a spec from a map; sizes the map leaves out come from `data`.
pub fn spec_from_map(map: &Map, data: Option<&Data>) -> ScriptResult<ModelSpec> {
    let (c, _) = ModelKeys::read(map).or_script()?;
    let arch = Arch::parse(&c.arch).or_script()?;
    let (refused, kind) = if arch.is_conv() {
        (MLP_ONLY, "the mlp")
    } else {
        (CONV_ONLY, "the conv archs")
    };
    for (key, instead) in refused {
        if map.contains_key(*key) {
            return Err(script_error(format!(
                "model spec: `{key}` applies to {kind}, not {arch}; {instead}"
            )));
        }
    }
    let size = |key: &str, given: Option<i64>, from_data: Option<i64>| -> ScriptResult<i64> {
        match (given, from_data) {
            (Some(given), Some(found)) if given != found => Err(script_error(format!(
                "model spec: `{key}` = {given} but the data set has {found}"
            ))),
            (Some(given), _) => Ok(given),
            (None, Some(found)) => Ok(found),
            (None, None) => Err(script_error(format!(
                "model spec: `{key}` is needed when no data set is given (model(spec, data) takes it from the data)"
            ))),
        }
    };
    let classes = size("classes", c.classes, data.map(|d| d.num_classes()))?;
    let input_shape = match (arch.is_conv(), data) {
        (false, Some(d)) => {
            size("inputs", c.inputs, Some(d.input_size()))?;
            d.input_shape()
        }
        (false, None) => vec![size("inputs", c.inputs, None)?],
        (true, None) => {
            let side = c.input_size.unwrap_or(32);
            vec![c.in_channels.unwrap_or(3), side, side]
        }
        (true, Some(d)) => {
            let shape = d.input_shape();
            if let [channels, h, w] = shape[..] {
                size("in_channels", c.in_channels, Some(channels))?;
                if let Some(side) = c.input_size {
                    if side != h || side != w {
                        return Err(script_error(format!(
                            "model spec: `input_size` = {side} but the data set's images are {h}x{w}"
                        )));
                    }
                }
            }
            shape
        }
    };
    Ok(ModelSpec {
        arch,
        hidden: if arch.is_conv() { Vec::new() } else { c.hidden },
        width: if arch.is_conv() { c.width } else { 1.0 },
        input_shape,
        classes,
        seed: c.seed,
    })
}

fn ints(values: &[i64]) -> Array {
    values.iter().map(|v| Dynamic::from_int(*v)).collect()
}

/// `m.layers()`: every parameter and buffer with its shape, in state_dict order.
fn layers(m: &Model) -> Array {
    m.state()
        .into_iter()
        .map(|(name, t)| {
            let map: Map = [
                ("name".into(), Dynamic::from(name)),
                ("shape".into(), Dynamic::from_array(ints(&t.size()))),
                ("trainable".into(), Dynamic::from_bool(t.requires_grad())),
            ]
            .into_iter()
            .collect();
            Dynamic::from_map(map)
        })
        .collect()
}

fn build(session: &Session, spec: &Map, data: Option<&Data>) -> ScriptResult<ModelRef> {
    let spec = spec_from_map(spec, data)?;
    Ok(Rc::new(Model::new(spec, session.device()).or_script()?))
}

pub fn register(engine: &mut Engine, session: &Rc<Session>) {
    engine.register_type_with_name::<ModelRef>("Model");
    let s = session.clone();
    engine.register_fn("model", move |spec: Map| build(&s, &spec, None));
    let s = session.clone();
    engine.register_fn("model", move |spec: Map, data: Data| {
        build(&s, &spec, Some(&data))
    });
    let s = session.clone();
    engine.register_fn("model", move |spec: Map, data: Data, extra: Map| {
        let mut merged = spec;
        merged.extend(extra);
        build(&s, &merged, Some(&data))
    });
    let s = session.clone();
    engine.register_fn("load_model", move |path: &str| -> ScriptResult<ModelRef> {
        Ok(Rc::new(
            Model::load(&PathBuf::from(path), s.device()).or_script()?,
        ))
    });
    let s = session.clone();
    engine.register_fn(
        "save",
        move |m: &mut ModelRef, path: &str| -> ScriptResult<String> {
            let path = s.with_run_dir(|d| Ok(d.resolve(path))).or_script()?;
            m.save(&path).or_script()?;
            Ok(path.display().to_string())
        },
    );
    engine.register_fn("copy", |m: &mut ModelRef| -> ScriptResult<ModelRef> {
        Ok(Rc::new(m.copy().or_script()?))
    });
    engine.register_fn("params", |m: &mut ModelRef| m.num_parameters());
    engine.register_fn("layers", |m: &mut ModelRef| layers(m));
    engine.register_get("arch", |m: &mut ModelRef| m.spec.arch.to_string());
    engine.register_get("seed", |m: &mut ModelRef| m.spec.seed);
    engine.register_get("classes", |m: &mut ModelRef| m.spec.classes);
    engine.register_get("width", |m: &mut ModelRef| m.spec.width);
    engine.register_get("hidden", |m: &mut ModelRef| ints(&m.spec.hidden));
    engine.register_get("input_shape", |m: &mut ModelRef| ints(&m.spec.input_shape));
    engine.register_fn("to_string", |m: &mut ModelRef| m.summary());
    engine.register_fn("to_debug", |m: &mut ModelRef| m.summary());
}
