//! Script bindings for metrics: `evaluate`, `boundary_distance`, `distance`,
//! `norms`, `fgsm`, `margins`, `interpolate`. Results are maps (one row) or arrays
//! of maps (one row each), with a `metric` column, for `record_metrics`.

use super::interpolate::{self, interpolate};
use super::{boundary, distance, evaluate, fgsm, margins, norms};
use crate::data::rhai::Data;
use crate::data::Part;
use crate::kit::config::Default as D;
use crate::kit::error::{script_error, OrScript, ScriptResult};
use crate::kit::rules::{POSITIVE_INT, SPLIT};
use crate::kit::typed::key;
use crate::models::rhai::ModelRef;
use crate::typed_config;
use rhai::{Array, Dynamic, Engine, Map};

fn map(pairs: &[(&str, f64)]) -> Map {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), Dynamic::from_float(*v)))
        .collect()
}

/// A result row: `metric` (and `split`) first, then the numbers.
fn row(metric: &str, split: Option<&str>, pairs: &[(&str, f64)]) -> Map {
    let mut m = map(pairs);
    m.insert("metric".into(), metric.into());
    if let Some(s) = split {
        m.insert("split".into(), s.into());
    }
    m
}

fn check_fits(m: &ModelRef, d: &Data) -> ScriptResult<()> {
    m.spec.check_fits(d).or_script()
}

fn part(split: &str) -> Part {
    match split {
        "train" => Part::Train,
        _ => Part::Test,
    }
}

typed_config! {
    /// `fgsm(model, data, #{..})`, besides `eps` (a list, read by `eps_list`).
    pub struct FgsmKeys as FGSM("fgsm options") {
        split: String = key(SPLIT, D::Str("test"), "split to attack");
        examples: Option<i64> = key(POSITIVE_INT, D::Absent, "attack only the first this many examples of the split");
    }
}

/// `eps` is read by hand: a list of floats.
const FGSM_EPS: &str = "eps";
const DEFAULT_EPS_255: [f64; 5] = [0.0, 1.0, 2.0, 4.0, 8.0];

fn eps_list(map: &Map) -> ScriptResult<Vec<f64>> {
    let Some(v) = map.get(FGSM_EPS) else {
        return Ok(DEFAULT_EPS_255.iter().map(|k| k / 255.0).collect());
    };
    let bad = |found: String| {
        script_error(format!(
            "fgsm options: `eps` must be an array of numbers in [0, 1] (perturbation sizes in pixel units), found {found}"
        ))
    };
    let arr = v
        .as_array_ref()
        .map_err(|_| bad(v.type_name().to_string()))?;
    if arr.is_empty() {
        return Err(bad("an empty array".into()));
    }
    arr.iter()
        .map(|e| {
            let x = e
                .as_float()
                .or_else(|_| e.as_int().map(|i| i as f64))
                .map_err(|_| bad(e.type_name().to_string()))?;
            match (0.0..=1.0).contains(&x) {
                true => Ok(x),
                false => Err(bad(x.to_string())),
            }
        })
        .collect()
}

typed_config! {
    /// `margins(model, data, #{..})`.
    pub struct MarginKeys as MARGINS("margins options") {
        split: String = key(SPLIT, D::Str("train"), "split whose margins are summarised");
    }
}

pub use super::distance::DISTANCE;
pub use super::interpolate::INTERPOLATE;

fn distance_fn(a: &ModelRef, b: &ModelRef, opts: &Map) -> ScriptResult<f64> {
    let (opts, _) = distance::Options::read(opts).or_script()?;
    distance::between(a, b, opts).or_script()
}

fn norms_fn(m: &ModelRef) -> ScriptResult<Map> {
    Ok(row("norms", None, &norms::norms(m).or_script()?))
}

fn fgsm_fn(m: &ModelRef, d: &Data, opts: &Map) -> ScriptResult<Array> {
    check_fits(m, d)?;
    let (c, _) = FgsmKeys::read_except(opts, &[FGSM_EPS]).or_script()?;
    let eps = eps_list(opts)?;
    let rows = fgsm::fgsm(m, d, part(&c.split), &eps, c.examples).or_script()?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let pairs = [("eps", r.eps), ("acc", r.acc), ("loss", r.loss)];
            Dynamic::from_map(row("fgsm", Some(&c.split), &pairs))
        })
        .collect())
}

fn margins_fn(m: &ModelRef, d: &Data, opts: &Map) -> ScriptResult<Map> {
    check_fits(m, d)?;
    let (c, _) = MarginKeys::read(opts).or_script()?;
    let all = margins::margins(m, d, part(&c.split)).or_script()?;
    let q = |p| margins::quantile(&all, p);
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let mut pairs = vec![
        ("min", q(0.0)),
        ("q05", q(0.05)),
        ("q10", q(0.1)),
        ("q25", q(0.25)),
        ("median", q(0.5)),
        ("q75", q(0.75)),
        ("q90", q(0.9)),
        ("max", q(1.0)),
        ("mean", mean),
    ];
    if d.input_shape() == [2] {
        let dist = boundary::distances(m, &d.materialize(Part::Train).x).or_script()?;
        let (min, mean, median) = boundary::summarize(&dist);
        pairs.extend([
            ("boundary_min", min),
            ("boundary_mean", mean),
            ("boundary_median", median),
        ]);
    }
    Ok(row("margins", Some(&c.split), &pairs))
}

fn interpolate_fn(a: &ModelRef, b: &ModelRef, d: &Data, opts: &Map) -> ScriptResult<Array> {
    let (opts, _) = interpolate::Options::read(opts).or_script()?;
    let points = interpolate(a, b, d, opts).or_script()?;
    Ok(points
        .into_iter()
        .map(|p| {
            let pairs = [
                ("alpha", p.alpha),
                ("train_loss", p.train.loss),
                ("train_acc", p.train.acc),
                ("test_loss", p.test.loss),
                ("test_acc", p.test.acc),
            ];
            Dynamic::from_map(row("interpolate", None, &pairs))
        })
        .collect())
}

pub fn register(engine: &mut Engine) {
    engine.register_fn("evaluate", |m: ModelRef, d: Data| -> ScriptResult<Map> {
        check_fits(&m, &d)?;
        let train = evaluate::evaluate(&m, &d, Part::Train);
        let test = evaluate::evaluate(&m, &d, Part::Test);
        Ok(map(&[
            ("train_loss", train.loss),
            ("train_acc", train.acc),
            ("test_loss", test.loss),
            ("test_acc", test.acc),
        ]))
    });
    engine.register_fn(
        "boundary_distance",
        |m: ModelRef, d: Data| -> ScriptResult<Map> {
            check_fits(&m, &d)?;
            let all = boundary::distances(&m, &d.materialize(Part::Train).x).or_script()?;
            let (min, mean, median) = boundary::summarize(&all);
            Ok(map(&[("min", min), ("mean", mean), ("median", median)]))
        },
    );
    engine.register_fn("distance", |a: ModelRef, b: ModelRef| {
        distance_fn(&a, &b, &Map::new())
    });
    engine.register_fn("distance", |a: ModelRef, b: ModelRef, o: Map| {
        distance_fn(&a, &b, &o)
    });
    engine.register_fn("norms", |m: ModelRef| norms_fn(&m));
    engine.register_fn("fgsm", |m: ModelRef, d: Data| fgsm_fn(&m, &d, &Map::new()));
    engine.register_fn("fgsm", |m: ModelRef, d: Data, o: Map| fgsm_fn(&m, &d, &o));
    engine.register_fn("margins", |m: ModelRef, d: Data| {
        margins_fn(&m, &d, &Map::new())
    });
    engine.register_fn("margins", |m: ModelRef, d: Data, o: Map| {
        margins_fn(&m, &d, &o)
    });
    engine.register_fn("interpolate", |a: ModelRef, b: ModelRef, d: Data| {
        interpolate_fn(&a, &b, &d, &Map::new())
    });
    engine.register_fn(
        "interpolate",
        |a: ModelRef, b: ModelRef, d: Data, o: Map| interpolate_fn(&a, &b, &d, &o),
    );
}
