//! Script bindings for data sets: `dataset`, `toy`, `random_labels`, `subset` and
//! the `Data` type.

use super::cifar::Format;
use super::images::Normalize;
use super::load::{self, Options};
use super::names::Name;
pub use super::random_labels::RANDOM_LABELS;
use super::random_labels::{random_labels, RandomLabelOptions};
pub use super::toy::TOY;
use super::toy::{toy, ToyOptions};
use super::{Dataset, Inputs, Part};
use crate::kit::config::{Default as D, Rule, Spec};
use crate::kit::error::{script_error, OrScript, ScriptResult};
use crate::kit::rules::SEED;
use crate::kit::typed::{key, KeyDef};
use crate::kit::Session;
use crate::results::Value;
use crate::typed_config;
use rhai::{Array, Dynamic, Engine, Map};
use std::rc::Rc;

pub type Data = Rc<Dataset>;

const ROOT: KeyDef = key(
    Rule::Str { choices: &[] },
    D::Absent,
    "folder to read from (default: $MINIMA_DATA/NAME, a system folder, ~/.cache/minima/data/NAME)",
);

/// `normalize`: true, false or "paper".
fn normalize_value(v: &Dynamic) -> Result<Value, String> {
    match (v.as_bool(), v.clone().into_string()) {
        (Ok(b), _) => Ok(Value::Bool(b)),
        (_, Ok(s)) if s == "paper" => Ok(Value::Str(s)),
        _ => Err(format!(
            "`normalize` must be true, false or \"paper\", found {v}"
        )),
    }
}

const NORMALIZE: KeyDef = key(
    Rule::Custom(normalize_value),
    D::Bool(true),
    "true: the training split's per-channel mean and population std; \"paper\": as the paper's code (CIFAR-10's published constants, elsewhere the mean of per-image stds); false: none",
);

const FORMAT: KeyDef = key(
    Rule::Str {
        choices: &["auto", "binary", "python"],
    },
    D::Str("auto"),
    "which CIFAR version to read; auto: binary if present, else python",
);

typed_config! {
    /// `dataset("cifar10", #{..})`.
    pub struct Cifar10Keys as CIFAR10("dataset(\"cifar10\") options") {
        root: Option<String> = ROOT;
        normalize: Value = NORMALIZE;
        format: String = FORMAT;
    }
}

typed_config! {
    /// `dataset("cifar100", #{..})`.
    pub struct Cifar100Keys as CIFAR100("dataset(\"cifar100\") options") {
        root: Option<String> = ROOT;
        normalize: Value = NORMALIZE;
        format: String = FORMAT;
        labels: String = key(Rule::Str { choices: &["fine", "coarse"] }, D::Str("fine"), "the 100 fine classes or the 20 coarse super-classes");
    }
}

typed_config! {
    /// `dataset("cinic10" | "restricted_imagenet", #{..})`: image folders.
    pub struct FolderKeys as CINIC10("dataset(\"cinic10\") options") {
        root: Option<String> = ROOT;
        normalize: Value = NORMALIZE;
    }
}

/// The same keys as CINIC-10's, named for the map they check.
pub const RESTRICTED_IMAGENET: Spec = Spec {
    what: "dataset(\"restricted_imagenet\") options",
    keys: CINIC10.keys,
};

typed_config! {
    /// `dataset("fashion_mnist", #{..})`.
    pub struct FashionKeys as FASHION_MNIST("dataset(\"fashion_mnist\") options") {
        root: Option<String> = ROOT;
        normalize: Value = NORMALIZE;
        pad: i64 = key(Rule::Int { min: 0, max: 16 }, D::Int(0), "zero pixels added on each side of the 28x28 images; 2 gives 32x32");
    }
}

typed_config! {
    /// `data.subset(n, #{..})`.
    pub struct SubsetKeys as SUBSET("subset options") {
        seed: i64 = key(SEED, D::Int(0), "seed of the choice of examples");
        stratified: bool = key(Rule::Bool, D::Bool(true), "the same number of examples from every class");
    }
}

fn normalize(v: &Value) -> Normalize {
    match v {
        Value::Bool(false) => Normalize::None,
        Value::Str(_) => Normalize::Paper,
        _ => Normalize::Population,
    }
}

fn format(name: &str) -> Option<Format> {
    match name {
        "binary" => Some(Format::Binary),
        "python" => Some(Format::Python),
        _ => None,
    }
}

pub fn dataset_from_map(session: &Session, name: &str, map: &Map) -> ScriptResult<Data> {
    let mut o = Options {
        quiet: session.quiet(),
        ..Options::default()
    };
    match Name::parse(name).or_script()? {
        Name::Cifar10 => {
            let (k, _) = Cifar10Keys::read(map).or_script()?;
            (o.root, o.normalize, o.format) = (
                k.root.map(Into::into),
                normalize(&k.normalize),
                format(&k.format),
            );
        }
        Name::Cifar100 => {
            let (k, _) = Cifar100Keys::read(map).or_script()?;
            (o.root, o.normalize, o.format) = (
                k.root.map(Into::into),
                normalize(&k.normalize),
                format(&k.format),
            );
            o.coarse = k.labels == "coarse";
        }
        folder @ (Name::Cinic10 | Name::RestrictedImagenet) => {
            let spec = if folder == Name::Cinic10 {
                CINIC10
            } else {
                RESTRICTED_IMAGENET
            };
            let k = FolderKeys::from_config(&spec.read(map).or_script()?).or_script()?;
            (o.root, o.normalize) = (k.root.map(Into::into), normalize(&k.normalize));
        }
        Name::FashionMnist => {
            let (k, _) = FashionKeys::read(map).or_script()?;
            (o.root, o.normalize, o.pad) = (
                k.root.map(Into::into),
                normalize(&k.normalize),
                k.pad as usize,
            );
        }
    }
    let data = load::load(name, &o, session.device()).or_script()?;
    Ok(Rc::new(data))
}

pub fn subset_from_map(data: &Dataset, n: i64, map: &Map) -> ScriptResult<Data> {
    let (k, _) = SubsetKeys::read(map).or_script()?;
    let sub = super::subset::subset(data, n, k.seed, k.stratified).or_script()?;
    Ok(Rc::new(sub))
}

/// Per-channel mean or std of image data, as inputs are normalised with.
fn channel_stat(d: &Dataset, std: bool) -> ScriptResult<Array> {
    match &d.inputs {
        Inputs::Images { mean, std: s } => Ok(if std { s } else { mean }
            .iter()
            .map(|&v| Dynamic::from_float(v))
            .collect()),
        Inputs::Features => Err(script_error(format!(
            "{} has feature inputs, not images: only image data sets have a per-channel mean and std",
            d.name
        ))),
    }
}

pub fn toy_from_map(session: &Session, map: &Map) -> ScriptResult<Data> {
    let (o, _) = ToyOptions::read(map).or_script()?;
    Ok(Rc::new(toy(&o, session.device())))
}

pub fn random_labels_from_map(data: &Dataset, map: &Map) -> ScriptResult<Data> {
    let (o, _) = RandomLabelOptions::read(map).or_script()?;
    if data.relabel.is_some() {
        return Err(script_error(
            "random_labels: the data set already has random labels; start from the original data",
        ));
    }
    let values = data.input_size();
    let zeroed = (values as f64 * o.zero_out) as i64;
    if o.replicas > 1 && zeroed == 0 {
        return Err(script_error(format!(
            "random_labels: replicas = {} with zero_out = {} zeroes none of an example's {values} \
             values, so the copies are identical and their random labels contradict each other; \
             raise zero_out (the paper uses 0.1 on 3072-value images)",
            o.replicas, o.zero_out
        )));
    }
    Ok(Rc::new(random_labels(data, &o)))
}

/// A feature data set's examples as a frame (`points(d)`): `split`, `index`,
/// `x0`, `x1`, ..., `label`, one row per training example as the model sees it
/// (a random-label view's labels and copies, no augmentation) and per test example.
fn points(d: &Dataset) -> ScriptResult<polars::prelude::DataFrame> {
    use polars::prelude::{Column, DataFrame};
    if let Inputs::Images { .. } = d.inputs {
        return Err(script_error(format!(
            "points: {} holds images; points lists data sets of features, such as toy()",
            d.name
        )));
    }
    let (mut split, mut index, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    let mut features: Vec<Vec<f64>> = Vec::new();
    for (name, part) in [("train", Part::Train), ("test", Part::Test)] {
        let s = d.materialize(part);
        let x = s.x.to_device(tch::Device::Cpu).to_kind(tch::Kind::Double);
        let width = x.size().get(1).copied().unwrap_or(0) as usize;
        let values =
            Vec::<f64>::try_from(x.flatten(0, -1)).map_err(|e| script_error(e.to_string()))?;
        let y = Vec::<i64>::try_from(s.y.to_device(tch::Device::Cpu))
            .map_err(|e| script_error(e.to_string()))?;
        features.resize_with(width, Vec::new);
        for (i, row) in values.chunks(width.max(1)).enumerate() {
            for (column, v) in features.iter_mut().zip(row) {
                column.push(*v);
            }
            split.push(name);
            index.push(i as i64);
        }
        labels.extend(y);
    }
    let height = split.len();
    let mut columns = vec![
        Column::new("split".into(), split),
        Column::new("index".into(), index),
    ];
    for (j, values) in features.into_iter().enumerate() {
        columns.push(Column::new(format!("x{j}").into(), values));
    }
    columns.push(Column::new("label".into(), labels));
    DataFrame::new(height, columns).map_err(|e| script_error(format!("points: {e}")))
}

pub fn register(engine: &mut Engine, session: &Rc<Session>) {
    engine.register_type_with_name::<Data>("Data");
    let s = session.clone();
    engine.register_fn("toy", move || toy_from_map(&s, &Map::new()));
    let s = session.clone();
    engine.register_fn("toy", move |map: Map| toy_from_map(&s, &map));
    engine.register_fn("random_labels", |d: Data, map: Map| {
        random_labels_from_map(&d, &map)
    });
    engine.register_fn("random_labels", |d: Data| {
        random_labels_from_map(&d, &Map::new())
    });

    let s = session.clone();
    engine.register_fn("dataset", move |name: &str| {
        dataset_from_map(&s, name, &Map::new())
    });
    let s = session.clone();
    engine.register_fn("dataset", move |name: &str, map: Map| {
        dataset_from_map(&s, name, &map)
    });
    engine.register_fn("subset", |d: &mut Data, n: i64| {
        subset_from_map(d, n, &Map::new())
    });
    engine.register_fn("subset", |d: &mut Data, n: i64, map: Map| {
        subset_from_map(d, n, &map)
    });

    engine.register_get("name", |d: &mut Data| d.name.clone());
    engine.register_get("labels", |d: &mut Data| d.labels().to_string());
    engine.register_get("n_train", |d: &mut Data| d.len(Part::Train));
    engine.register_get("n_test", |d: &mut Data| d.len(Part::Test));
    engine.register_get("num_classes", |d: &mut Data| d.num_classes());
    engine.register_get("classes", |d: &mut Data| -> Array {
        d.classes.iter().map(|c| Dynamic::from(c.clone())).collect()
    });
    engine.register_get("input_shape", |d: &mut Data| -> Array {
        d.input_shape().into_iter().map(Dynamic::from_int).collect()
    });
    engine.register_get("mean", |d: &mut Data| channel_stat(d, false));
    engine.register_get("std", |d: &mut Data| channel_stat(d, true));
    engine.register_get("class_counts", |d: &mut Data| -> ScriptResult<Array> {
        let y = Vec::<i64>::try_from(d.train.y.to_device(tch::Device::Cpu))
            .map_err(|e| script_error(e.to_string()))?;
        let mut counts = vec![0i64; d.classes.len()];
        for l in y {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        Ok(counts.into_iter().map(Dynamic::from_int).collect())
    });
    engine.register_fn("points", |d: Data| points(&d));
    engine.register_fn("to_string", |d: &mut Data| d.summary());
    engine.register_fn("to_debug", |d: &mut Data| d.summary());
}
