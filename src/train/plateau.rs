//! The `"plateau"` lr schedule: torch's `ReduceLROnPlateau(mode, factor,
//! patience, threshold=0, threshold_mode="abs", cooldown=0, min_lr=min,
//! eps=1e-8)` stepped once per epoch with that epoch's `metric`: an epoch is
//! better when its value beats the best so far (higher for accuracies, lower for
//! losses: torch's mode "max" and "min"); after more than `patience` epochs in a
//! row that are not, lr becomes max(lr·factor, min) (kept if that changes it by
//! 1e-8 or less) and the count starts again.
//!
//! Why train accuracy by default: it is what Algorithm 1 trains towards, and the
//! authors' toy code decays its lr on it (Figure 1's (b)).

use crate::data::Part;
use crate::metrics::evaluate::Score;
use std::fmt;

/// The keys of a plateau schedule map.
pub const KEYS: &[&str] = &["schedule", "base", "factor", "patience", "min", "metric"];

/// torch's `eps`: a reduction smaller than this is skipped.
const EPS: f64 = 1e-8;

/// What the schedule watches: one split's accuracy or loss, measured every epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    pub part: Part,
    /// Accuracy (higher is better) or loss (lower is better).
    pub accuracy: bool,
}

impl Metric {
    const NAMES: [(&'static str, Metric); 4] = [
        (
            "train_acc",
            Metric {
                part: Part::Train,
                accuracy: true,
            },
        ),
        (
            "train_loss",
            Metric {
                part: Part::Train,
                accuracy: false,
            },
        ),
        (
            "test_acc",
            Metric {
                part: Part::Test,
                accuracy: true,
            },
        ),
        (
            "test_loss",
            Metric {
                part: Part::Test,
                accuracy: false,
            },
        ),
    ];

    fn name(&self) -> &'static str {
        Metric::NAMES
            .iter()
            .find(|(_, m)| m == self)
            .map_or("?", |(n, _)| n)
    }

    /// Its value in an evaluation of its split.
    fn of(&self, score: Score) -> f64 {
        if self.accuracy {
            score.acc
        } else {
            score.loss
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlateauRule {
    pub base: f64,
    pub factor: f64,
    pub patience: i64,
    pub min: f64,
    pub metric: Metric,
}

impl fmt::Display for PlateauRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "plateau: {} ×{} after {} epochs without a better {}, down to {}",
            self.base,
            self.factor,
            self.patience + 1,
            self.metric.name(),
            self.min
        )
    }
}

/// A plateau schedule under way: the lr it gives now, from the values seen so far.
#[derive(Debug, Clone)]
pub struct Plateau {
    rule: PlateauRule,
    lr: f64,
    best: f64,
    bad_epochs: i64,
}

impl Plateau {
    pub fn new(rule: &PlateauRule) -> Plateau {
        Plateau {
            rule: rule.clone(),
            lr: rule.base,
            best: if rule.metric.accuracy {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            },
            bad_epochs: 0,
        }
    }

    /// The lr for the next epoch.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    pub fn metric(&self) -> Metric {
        self.rule.metric
    }

    /// Steps the schedule with an epoch's evaluations: its metric's split is
    /// one of them (the run evaluates it every epoch under this schedule).
    pub fn observe_epoch(&mut self, train: Option<Score>, test: Option<Score>) {
        let metric = self.rule.metric;
        let score = match metric.part {
            Part::Train => train,
            Part::Test => test,
        };
        if let Some(s) = score {
            self.observe(metric.of(s));
        }
    }

    /// One epoch's value of the metric (torch's `scheduler.step(metric)`).
    pub fn observe(&mut self, value: f64) {
        let better = if self.rule.metric.accuracy {
            value > self.best
        } else {
            value < self.best
        };
        if better {
            self.best = value;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.bad_epochs > self.rule.patience {
            let lower = (self.lr * self.rule.factor).max(self.rule.min);
            if self.lr - lower > EPS {
                self.lr = lower;
            }
            self.bad_epochs = 0;
        }
    }
}

impl PlateauRule {
    /// The rule from a schedule map's values (train/schedule.rs reads them);
    /// `metric` by name, train accuracy when absent.
    pub fn new(
        (base, factor, patience, min): (f64, f64, i64, f64),
        metric: Option<&str>,
    ) -> Result<PlateauRule, String> {
        if !(base.is_finite() && base > 0.0 && (0.0..=base).contains(&min)) {
            return Err("lr schedule \"plateau\": need base > 0 and 0 ≤ min ≤ base".into());
        }
        if !(factor > 0.0 && factor < 1.0) {
            return Err(format!(
                "lr schedule \"plateau\": `factor` = {factor} must be between 0 and 1 (exclusive)"
            ));
        }
        if patience < 0 {
            return Err("lr schedule \"plateau\": `patience` must be an integer ≥ 0".into());
        }
        let metric = match metric {
            None => Metric::NAMES[0].1,
            Some(name) => Metric::NAMES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, m)| *m)
                .ok_or_else(|| {
                    let names: Vec<&str> = Metric::NAMES.iter().map(|(n, _)| *n).collect();
                    format!(
                        "lr schedule \"plateau\": `metric` must be one of {}, found \"{name}\"",
                        names.join(", ")
                    )
                })?,
        };
        Ok(PlateauRule {
            base,
            factor,
            patience,
            min,
            metric,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lrs(rule: &PlateauRule, values: &[f64]) -> Vec<f64> {
        let mut p = Plateau::new(rule);
        values
            .iter()
            .map(|&v| {
                p.observe(v);
                p.lr()
            })
            .collect()
    }

    /// The sequences torch 2.13's ReduceLROnPlateau(mode=..., factor=0.5,
    /// patience=2, threshold=0, threshold_mode="abs", min_lr=0.03) gives for these
    /// values, stepped after each epoch (printed by PyTorch).
    #[test]
    fn plateau_follows_torch() {
        let values = [
            0.5, 0.6, 0.6, 0.55, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7,
        ];
        let max = PlateauRule::new((0.2, 0.5, 2, 0.03), None).unwrap();
        assert_eq!(max.metric, Metric::NAMES[0].1, "train accuracy by default");
        let torch_max = [
            0.2, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.03, 0.03, 0.03, 0.03,
        ];
        assert_eq!(lrs(&max, &values), torch_max);
        let min = PlateauRule::new((0.2, 0.5, 2, 0.03), Some("test_loss")).unwrap();
        let torch_min = [
            0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.03, 0.03, 0.03, 0.03, 0.03, 0.03,
        ];
        assert_eq!(lrs(&min, &values), torch_min);
        assert_eq!(
            min.to_string(),
            "plateau: 0.2 ×0.5 after 3 epochs without a better test_loss, down to 0.03"
        );
    }

    #[test]
    fn bad_plateaus_say_what_is_wrong() {
        for (values, metric, want) in [
            ((0.1, 1.5, 2, 0.0), None, "`factor` = 1.5 must be between 0 and 1"),
            ((0.1, 0.5, -1, 0.0), None, "`patience` must be an integer ≥ 0"),
            ((0.1, 0.5, 2, 0.2), None, "need base > 0 and 0 ≤ min ≤ base"),
            (
                (0.1, 0.5, 2, 0.0),
                Some("val_acc"),
                "`metric` must be one of train_acc, train_loss, test_acc, test_loss, found \"val_acc\"",
            ),
        ] {
            let e = PlateauRule::new(values, metric).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }
}
