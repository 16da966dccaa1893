//! Script bindings for training: `train`, `adversarial_init` and the `Run` type.

use super::config::{Settings, TRAIN};
use super::fit::{train, TrainRequest};
use super::history::Run;
use crate::data::rhai::{random_labels_from_map, Data, RANDOM_LABELS};
use crate::kit::config::check_keys;
use crate::kit::error::{OrScript, ScriptResult};
use crate::kit::Session;
use crate::models::rhai::{spec_from_map, ModelRef};
use crate::models::Model;
use crate::results::Value;
use rhai::{Array, Dynamic, Engine, Map};
use std::rc::Rc;

pub type RunRef = Rc<Run>;

fn run_training(
    session: &Session,
    model: &Model,
    data: &Data,
    config: &Map,
    kind: &str,
) -> ScriptResult<RunRef> {
    let settings = Settings::read(config).or_script()?;
    let index = session.take_run_index();
    let checkpoint = session.checkpoint_path(index).or_script()?;
    let run = train(TrainRequest {
        checkpoint,
        init: model,
        data,
        settings,
        kind,
        index,
        quiet: session.quiet(),
    })
    .or_script()?;
    Ok(Rc::new(run))
}

/// Algorithm 1: random labels (R replicas, zero-out), then vanilla SGD until 100%
/// train accuracy (or `stop_at_train_acc`), from a random initialisation.
fn adversarial_init(
    session: &Session,
    model: &Model,
    data: &Data,
    map: &Map,
) -> ScriptResult<RunRef> {
    let label_keys: Vec<&str> = RANDOM_LABELS.keys.iter().map(|k| k.name).collect();
    let train_keys: Vec<&str> = TRAIN.keys.iter().map(|k| k.name).collect();
    let mut allowed = label_keys.clone();
    allowed.extend(train_keys.iter().filter(|k| !label_keys.contains(k)));
    check_keys("adversarial_init config", map, &allowed).or_script()?;
    let pick = |keys: &[&str]| -> Map {
        map.iter()
            .filter(|(k, _)| keys.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let mut training = pick(&train_keys);
    training
        .entry("stop_at_train_acc".into())
        .or_insert(Dynamic::from_float(1.0));
    let random = random_labels_from_map(data, &pick(&label_keys))?;
    run_training(session, model, &random, &training, "adversarial_init")
}

fn history(run: &Run) -> Array {
    run.history_rows()
        .into_iter()
        .map(|row| {
            let map: Map = row
                .into_iter()
                .map(|(k, v)| (k.into(), to_dynamic(v)))
                .collect();
            Dynamic::from_map(map)
        })
        .collect()
}

pub fn to_dynamic(v: Value) -> Dynamic {
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(b),
        Value::Int(i) => Dynamic::from_int(i),
        Value::Float(f) => Dynamic::from_float(f),
        Value::Str(s) => Dynamic::from(s),
        Value::Ints(v) => Dynamic::from_array(v.into_iter().map(Dynamic::from_int).collect()),
    }
}

/// The metric at the last epoch that has it (evaluation may skip epochs).
fn last_metric(run: &Run, f: impl Fn(&super::history::Epoch) -> Option<f64>) -> f64 {
    run.history.iter().rev().find_map(f).unwrap_or(f64::NAN)
}

pub fn register(engine: &mut Engine, session: &Rc<Session>) {
    engine.register_type_with_name::<RunRef>("Run");
    let s = session.clone();
    engine.register_fn("train", move |m: ModelRef, d: Data, c: Map| {
        run_training(&s, &m, &d, &c, "train")
    });
    let s = session.clone();
    engine.register_fn("train", move |m: ModelRef, d: Data| {
        run_training(&s, &m, &d, &Map::new(), "train")
    });
    let s = session.clone();
    engine.register_fn("adversarial_init", move |m: ModelRef, d: Data, c: Map| {
        adversarial_init(&s, &m, &d, &c)
    });
    let s = session.clone();
    engine.register_fn(
        "adversarial_init",
        move |spec: Map, d: Data, c: Map| -> ScriptResult<RunRef> {
            let model = Model::new(spec_from_map(&spec, Some(&d))?, s.device()).or_script()?;
            adversarial_init(&s, &model, &d, &c)
        },
    );

    engine.register_fn(
        "lr_at",
        |lr: Dynamic, epoch: i64, epochs: i64| -> ScriptResult<f64> {
            let schedule = super::schedule::parse(&lr).or_script()?;
            if let super::schedule::Schedule::Plateau(_) = schedule {
                return Err("lr_at: a \"plateau\" schedule's lr depends on the run's measurements; a run's history has the lr of each epoch (column `epoch_lr`)".into());
            }
            Ok(schedule.at(epoch, epochs))
        },
    );

    engine.register_get("model", |r: &mut RunRef| r.model.clone());
    engine.register_get("data", |r: &mut RunRef| r.data.clone());
    engine.register_get("kind", |r: &mut RunRef| r.kind.clone());
    engine.register_get("index", |r: &mut RunRef| r.index);
    engine.register_get("status", |r: &mut RunRef| r.status.as_str().to_string());
    engine.register_get("epochs", |r: &mut RunRef| r.history.len() as i64);
    engine.register_get("train_acc", |r: &mut RunRef| {
        last_metric(r, |e| e.train.map(|s| s.acc))
    });
    engine.register_get("test_acc", |r: &mut RunRef| {
        last_metric(r, |e| e.test.map(|s| s.acc))
    });
    engine.register_get("train_loss", |r: &mut RunRef| {
        last_metric(r, |e| e.train.map(|s| s.loss))
    });
    engine.register_get("test_loss", |r: &mut RunRef| {
        last_metric(r, |e| e.test.map(|s| s.loss))
    });
    engine.register_get("distance_from_init", |r: &mut RunRef| {
        last_metric(r, |e| Some(e.distance_from_init))
    });
    engine.register_get("history", |r: &mut RunRef| history(r));
    engine.register_fn("to_string", |r: &mut RunRef| r.summary());
    engine.register_fn("to_debug", |r: &mut RunRef| r.summary());
}
