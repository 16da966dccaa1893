//! Script bindings for metrics: `evaluate`, `boundary_distance`, `distance`.

use super::{boundary, distance, evaluate};
use crate::data::rhai::Data;
use crate::data::Part;
use crate::host::error::{script_error, OrScript, ScriptResult};
use crate::models::rhai::ModelRef;
use rhai::{Dynamic, Engine, Map};

fn map(pairs: &[(&str, f64)]) -> Map {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), Dynamic::from_float(*v)))
        .collect()
}

fn check_fits(m: &ModelRef, d: &Data) -> ScriptResult<()> {
    m.spec.check_fits(d).or_script()
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
    engine.register_fn(
        "distance",
        |a: ModelRef, b: ModelRef| -> ScriptResult<f64> {
            if !a.spec.same_architecture(&b.spec) {
                return Err(script_error(format!(
                    "distance needs two models of one architecture, found {} and {}",
                    a.summary(),
                    b.summary()
                )));
            }
            Ok(distance::relative(&a.parameters(), &b.parameters()))
        },
    );
}
