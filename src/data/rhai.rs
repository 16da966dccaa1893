//! Script bindings for data sets: `dataset`, `toy`, `random_labels`, `subset` and
//! the `Data` type.

use super::cifar::Format;
use super::images::Normalize;
use super::load::{self, Options};
use super::random_labels::{random_labels, RandomLabelOptions};
use super::toy::{toy, ToyOptions};
use super::{Dataset, Inputs, Part};
use crate::kit::config::{Default as D, Key, Rule, Spec};
use crate::kit::error::{script_error, OrScript, ScriptResult};
use crate::kit::Session;
use crate::results::Value;
use rhai::{Array, Dynamic, Engine, Map};
use std::rc::Rc;

pub type Data = Rc<Dataset>;

const COUNT: Rule = Rule::Int {
    min: 1,
    max: 10_000_000,
};
const SEED: Rule = Rule::Int {
    min: 0,
    max: i64::MAX,
};

pub const TOY: Spec = Spec {
    what: "toy options",
    keys: &[
        Key {
            name: "n_train",
            rule: COUNT,
            default: D::Int(50),
            help: "training points per class",
        },
        Key {
            name: "n_test",
            rule: COUNT,
            default: D::Int(50),
            help: "test points per class",
        },
        Key {
            name: "seed",
            rule: SEED,
            default: D::Int(0),
            help: "seed of the sample",
        },
        Key {
            name: "augment_copies",
            rule: COUNT,
            default: D::Int(2),
            help: "copies of each point per epoch when training with augment: true",
        },
        Key {
            name: "augment_std",
            rule: Rule::Float {
                min: 0.0,
                max: f64::INFINITY,
                min_open: false,
            },
            default: D::Float(0.1),
            help: "std of the Gaussian noise added to each copy",
        },
        Key {
            name: "augment_original",
            rule: Rule::Bool,
            default: D::Bool(false),
            help: "also keep each point as it is in an augmented epoch (the authors' toy code)",
        },
    ],
};

pub const RANDOM_LABELS: Spec = Spec {
    what: "random_labels options",
    keys: &[
        Key {
            name: "replicas",
            rule: COUNT,
            default: D::Int(1),
            help: "copies R of each example",
        },
        Key {
            name: "zero_out",
            rule: Rule::Float {
                min: 0.0,
                max: 1.0,
                min_open: false,
            },
            default: D::Float(0.0),
            help: "fraction of each copy's values set to zero",
        },
        Key {
            name: "seed",
            rule: SEED,
            default: D::Int(0),
            help: "seed of labels and masks",
        },
    ],
};

const ROOT: Key = Key {
    name: "root",
    rule: Rule::Str { choices: &[] },
    default: D::Absent,
    help: "folder to read from (default: $MINIMA_DATA/NAME, a system folder, ~/.cache/minima/data/NAME)",
};

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

const NORMALIZE: Key = Key {
    name: "normalize",
    rule: Rule::Custom(normalize_value),
    default: D::Bool(true),
    help: "true: the training split's per-channel mean and population std; \"paper\": as the paper's code (CIFAR-10's published constants, elsewhere the mean of per-image stds); false: none",
};

const FORMAT: Key = Key {
    name: "format",
    rule: Rule::Str {
        choices: &["auto", "binary", "python"],
    },
    default: D::Str("auto"),
    help: "which CIFAR version to read; auto: binary if present, else python",
};

pub const CIFAR10: Spec = Spec {
    what: "dataset(\"cifar10\") options",
    keys: &[ROOT, NORMALIZE, FORMAT],
};

pub const CIFAR100: Spec = Spec {
    what: "dataset(\"cifar100\") options",
    keys: &[
        ROOT,
        NORMALIZE,
        FORMAT,
        Key {
            name: "labels",
            rule: Rule::Str {
                choices: &["fine", "coarse"],
            },
            default: D::Str("fine"),
            help: "the 100 fine classes or the 20 coarse super-classes",
        },
    ],
};

pub const CINIC10: Spec = Spec {
    what: "dataset(\"cinic10\") options",
    keys: &[ROOT, NORMALIZE],
};

pub const RESTRICTED_IMAGENET: Spec = Spec {
    what: "dataset(\"restricted_imagenet\") options",
    keys: &[ROOT, NORMALIZE],
};

pub const FASHION_MNIST: Spec = Spec {
    what: "dataset(\"fashion_mnist\") options",
    keys: &[
        ROOT,
        NORMALIZE,
        Key {
            name: "pad",
            rule: Rule::Int { min: 0, max: 16 },
            default: D::Int(0),
            help: "zero pixels added on each side of the 28x28 images; 2 gives 32x32",
        },
    ],
};

pub const SUBSET: Spec = Spec {
    what: "subset options",
    keys: &[
        Key {
            name: "seed",
            rule: SEED,
            default: D::Int(0),
            help: "seed of the choice of examples",
        },
        Key {
            name: "stratified",
            rule: Rule::Bool,
            default: D::Bool(true),
            help: "the same number of examples from every class",
        },
    ],
};

pub fn dataset_from_map(session: &Session, name: &str, map: &Map) -> ScriptResult<Data> {
    let spec = match name {
        "cifar10" => CIFAR10,
        "cifar100" => CIFAR100,
        "cinic10" => CINIC10,
        "restricted_imagenet" => RESTRICTED_IMAGENET,
        "fashion_mnist" => FASHION_MNIST,
        _ => return Err(script_error(load::unknown(name))),
    };
    let c = spec.read(map).or_script()?;
    let o = Options {
        root: map.contains_key("root").then(|| c.str("root").into()),
        normalize: match c.get("normalize") {
            Value::Bool(false) => Normalize::None,
            Value::Str(_) => Normalize::Paper,
            _ => Normalize::Population,
        },
        format: match c.str("format") {
            "binary" => Some(Format::Binary),
            "python" => Some(Format::Python),
            _ => None,
        },
        coarse: c.str("labels") == "coarse",
        pad: c.i64("pad") as usize,
        quiet: session.quiet(),
    };
    let data = load::load(name, &o, session.device()).or_script()?;
    Ok(Rc::new(data))
}

pub fn subset_from_map(data: &Dataset, n: i64, map: &Map) -> ScriptResult<Data> {
    let c = SUBSET.read(map).or_script()?;
    let sub = super::subset::subset(data, n, c.i64("seed"), c.bool("stratified")).or_script()?;
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
    let c = TOY.read(map).or_script()?;
    let o = ToyOptions {
        n_train: c.i64("n_train"),
        n_test: c.i64("n_test"),
        seed: c.i64("seed"),
        augment_copies: c.i64("augment_copies"),
        augment_std: c.f64("augment_std"),
        augment_original: c.bool("augment_original"),
    };
    Ok(Rc::new(toy(&o, session.device())))
}

pub fn random_labels_from_map(data: &Dataset, map: &Map) -> ScriptResult<Data> {
    let c = RANDOM_LABELS.read(map).or_script()?;
    let o = RandomLabelOptions {
        replicas: c.i64("replicas"),
        zero_out: c.f64("zero_out"),
        seed: c.i64("seed"),
    };
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
    engine.register_fn("to_string", |d: &mut Data| d.summary());
    engine.register_fn("to_debug", |d: &mut Data| d.summary());
}
