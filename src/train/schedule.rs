//! Learning-rate schedules, evaluated per epoch (1-based), as a script writes them:
//!
//! - a number: constant;
//! - `#{ schedule: "piecewise", values: [0.1, 0.01, 0.001], starts: [1, 151, 251] }`:
//!   `values[i]` from epoch `starts[i]` on (the paper's schedules);
//! - `#{ schedule: "step", base: 0.1, every: 30, gamma: 0.1 }`:
//!   base·gamma^⌊(epoch−1)/every⌋, as torch's StepLR stepped once per epoch;
//! - `#{ schedule: "cosine", base: 0.1, min: 0.0 }`: over the run's `epochs`,
//!   min + (base − min)·(1 + cos(π·(epoch−1)/epochs))/2, as torch's
//!   CosineAnnealingLR(T_max = epochs) stepped once per epoch; `min` after that;
//! - `#{ schedule: "plateau", base: 0.1, factor: 0.3, patience: 9999, min: 0.0,
//!   metric: "train_acc" }`: base, multiplied by `factor` once more than
//!   `patience` epochs in a row end without a better `metric`, as torch's
//!   ReduceLROnPlateau (train/plateau.rs).

use super::plateau::PlateauRule;
use rhai::{Dynamic, Map};
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Constant(f64),
    Piecewise { starts: Vec<i64>, values: Vec<f64> },
    Step { base: f64, every: i64, gamma: f64 },
    Cosine { base: f64, min: f64 },
    Plateau(PlateauRule),
}

impl Schedule {
    /// The lr at `epoch` of a run of `epochs`; a plateau schedule's is its `base`
    /// until the run's measurements lower it (train/plateau.rs).
    pub fn at(&self, epoch: i64, epochs: i64) -> f64 {
        match self {
            Schedule::Plateau(rule) => rule.base,
            Schedule::Constant(lr) => *lr,
            Schedule::Piecewise { starts, values } => {
                let i = starts.iter().rposition(|&s| s <= epoch).unwrap_or(0);
                values[i]
            }
            Schedule::Step { base, every, gamma } => {
                base * gamma.powi(((epoch - 1) / every) as i32)
            }
            Schedule::Cosine { base, min } => {
                let t = ((epoch - 1) as f64).min(epochs as f64);
                min + (base - min) * (1.0 + (std::f64::consts::PI * t / epochs as f64).cos()) / 2.0
            }
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Constant(lr) => write!(f, "{lr}"),
            Schedule::Piecewise { starts, values } => {
                let parts: Vec<String> = starts
                    .iter()
                    .zip(values)
                    .map(|(s, v)| format!("{v} from {s}"))
                    .collect();
                write!(f, "piecewise: {}", parts.join(", "))
            }
            Schedule::Step { base, every, gamma } => {
                write!(f, "step: {base} ×{gamma} every {every}")
            }
            Schedule::Cosine { base, min } => write!(f, "cosine: {base} to {min}"),
            Schedule::Plateau(rule) => write!(f, "{rule}"),
        }
    }
}

const KINDS: &str = "piecewise, step, cosine, plateau";

fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

fn number(map: &Map, key: &str, kind: &str) -> Result<f64, String> {
    let v = map
        .get(key)
        .ok_or_else(|| format!("lr schedule \"{kind}\": missing `{key}`"))?;
    v.as_float()
        .or_else(|_| v.as_int().map(|i| i as f64))
        .map_err(|_| format!("lr schedule \"{kind}\": `{key}` must be a number"))
}

fn list<T>(map: &Map, key: &str, read: impl Fn(&Dynamic) -> Option<T>) -> Result<Vec<T>, String> {
    let arr = map
        .get(key)
        .and_then(|v| v.as_array_ref().ok().map(|a| a.clone()))
        .ok_or_else(|| format!("lr schedule \"piecewise\": `{key}` must be an array"))?;
    arr.iter()
        .map(|v| {
            read(v).ok_or_else(|| {
                format!("lr schedule \"piecewise\": every entry of `{key}` must be a number")
            })
        })
        .collect()
}

/// Reads the `lr` value of a train config.
pub fn parse(v: &Dynamic) -> Result<Schedule, String> {
    if let Ok(x) = v.as_float().or_else(|_| v.as_int().map(|i| i as f64)) {
        return if positive(x) {
            Ok(Schedule::Constant(x))
        } else {
            Err(format!(
                "train config: `lr` = {x} is out of range: must be greater than 0"
            ))
        };
    }
    let map = v.read_lock::<Map>().ok_or_else(|| {
        "train config: `lr` must be a number or a schedule map like #{ schedule: \"piecewise\", values: [0.1, 0.01], starts: [1, 151] }".to_string()
    })?;
    let kind = map
        .get("schedule")
        .and_then(|k| k.clone().into_string().ok())
        .ok_or_else(|| format!("lr schedule: `schedule` must be one of {KINDS}"))?;
    let allowed: &[&str] = match kind.as_str() {
        "piecewise" => &["schedule", "values", "starts"],
        "step" => &["schedule", "base", "every", "gamma"],
        "cosine" => &["schedule", "base", "min"],
        "plateau" => super::plateau::KEYS,
        other => {
            return Err(format!(
                "lr schedule: unknown schedule \"{other}\"; known: {KINDS}"
            ))
        }
    };
    crate::kit::config::check_keys(&format!("lr schedule \"{kind}\""), &map, allowed)?;
    let schedule = match kind.as_str() {
        "piecewise" => {
            let values = list(&map, "values", |v| {
                v.as_float()
                    .ok()
                    .or_else(|| v.as_int().ok().map(|i| i as f64))
            })?;
            let starts = list(&map, "starts", |v| v.as_int().ok())?;
            if values.is_empty() || values.len() != starts.len() {
                return Err(format!(
                    "lr schedule \"piecewise\": `values` ({}) and `starts` ({}) must be non-empty and of one length",
                    values.len(),
                    starts.len()
                ));
            }
            if starts[0] != 1 {
                return Err(format!(
                    "lr schedule \"piecewise\": `starts` must begin at epoch 1, found {}",
                    starts[0]
                ));
            }
            if let Some(w) = starts.windows(2).find(|w| w[1] <= w[0]) {
                return Err(format!(
                    "lr schedule \"piecewise\": `starts` must increase, found {} after {}",
                    w[1], w[0]
                ));
            }
            if let Some(bad) = values.iter().find(|v| !positive(**v)) {
                return Err(format!(
                    "lr schedule \"piecewise\": every value must be greater than 0, found {bad}"
                ));
            }
            Schedule::Piecewise { starts, values }
        }
        "step" => {
            let (base, gamma) = (
                number(&map, "base", "step")?,
                number(&map, "gamma", "step")?,
            );
            let every = map
                .get("every")
                .and_then(|v| v.as_int().ok())
                .filter(|e| *e >= 1)
                .ok_or("lr schedule \"step\": `every` must be an integer ≥ 1")?;
            if !positive(base) || !positive(gamma) {
                return Err(
                    "lr schedule \"step\": `base` and `gamma` must be greater than 0".into(),
                );
            }
            Schedule::Step { base, every, gamma }
        }
        "plateau" => plateau(&map)?,
        _ => {
            let base = number(&map, "base", "cosine")?;
            let min = map
                .get("min")
                .map_or(Ok(0.0), |_| number(&map, "min", "cosine"))?;
            if !positive(base) || !(0.0..=base).contains(&min) {
                return Err("lr schedule \"cosine\": need base > 0 and 0 ≤ min ≤ base".into());
            }
            Schedule::Cosine { base, min }
        }
    };
    Ok(schedule)
}

/// A plateau schedule's values (train/plateau.rs checks them).
fn plateau(map: &Map) -> Result<Schedule, String> {
    let kind = "plateau";
    let patience = map
        .get("patience")
        .and_then(|v| v.as_int().ok())
        .ok_or("lr schedule \"plateau\": `patience` must be an integer ≥ 0")?;
    let min = map
        .get("min")
        .map_or(Ok(0.0), |_| number(map, "min", kind))?;
    let values = (
        number(map, "base", kind)?,
        number(map, "factor", kind)?,
        patience,
        min,
    );
    let metric = match map.get("metric") {
        None => None,
        Some(v) => Some(v.clone().into_string().map_err(|_| {
            "lr schedule \"plateau\": `metric` must be a string such as \"train_acc\"".to_string()
        })?),
    };
    PlateauRule::new(values, metric.as_deref()).map(Schedule::Plateau)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(src: &str) -> Result<Schedule, String> {
        parse(&rhai::Engine::new().eval::<Dynamic>(src).unwrap())
    }

    #[test]
    fn the_papers_piecewise_schedule() {
        let s =
            eval("#{ schedule: \"piecewise\", values: [0.1, 0.01, 0.001], starts: [1, 151, 251] }")
                .unwrap();
        let at = |e| s.at(e, 350);
        assert_eq!(
            (at(1), at(150), at(151), at(250), at(251), at(350)),
            (0.1, 0.1, 0.01, 0.01, 0.001, 0.001)
        );
    }

    #[test]
    fn step_and_cosine_follow_torch() {
        let s = eval("#{ schedule: \"step\", base: 0.1, every: 2, gamma: 0.5 }").unwrap();
        assert_eq!(
            [1, 2, 3, 4, 5].map(|e| s.at(e, 10)),
            [0.1, 0.1, 0.05, 0.05, 0.025]
        );
        let c = eval("#{ schedule: \"cosine\", base: 0.2, min: 0.0 }").unwrap();
        assert_eq!(c.at(1, 4), 0.2);
        assert!((c.at(3, 4) - 0.1).abs() < 1e-15, "half way: {}", c.at(3, 4));
        assert!(c.at(5, 4).abs() < 1e-15 && c.at(9, 4).abs() < 1e-15);
        assert_eq!(eval("0.05").unwrap().at(7, 10), 0.05);
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        let e =
            eval("#{ schedule: \"piecewise\", values: [0.1, 0.01], starts: [1, 1] }").unwrap_err();
        assert!(e.contains("`starts` must increase, found 1 after 1"), "{e}");
        let e = eval("#{ schedule: \"piecewise\", values: [0.1], starts: [5] }").unwrap_err();
        assert!(e.contains("must begin at epoch 1"), "{e}");
        let e = eval("#{ schedule: \"linear\" }").unwrap_err();
        assert!(
            e.contains("unknown schedule \"linear\"; known: piecewise, step, cosine, plateau"),
            "{e}"
        );
        let e =
            eval("#{ schedule: \"plateau\", base: 0.1, factor: 0.3, patience: 1.5 }").unwrap_err();
        assert!(e.contains("`patience` must be an integer"), "{e}");
        let e = eval("#{ schedule: \"plateau\", base: 0.1, factor: 0.3, patience: 9, metric: 1 }")
            .unwrap_err();
        assert!(e.contains("`metric` must be a string"), "{e}");
        let e = eval("#{ schedule: \"step\", base: 0.1, every: 2, gama: 0.5 }").unwrap_err();
        assert!(
            e.contains("unknown key `gama` (did you mean `gamma`?)"),
            "{e}"
        );
        assert!(eval("-1")
            .unwrap_err()
            .contains("`lr` = -1 is out of range"));
        assert!(eval("\"fast\"")
            .unwrap_err()
            .contains("`lr` must be a number or a schedule map"));
    }
}
