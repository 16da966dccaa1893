//! The rules config keys share, in one place so a seed or a fraction is checked
//! the same way in every map.

use super::config::Rule;

/// Seeds: any non-negative integer.
pub const SEED: Rule = Rule::Int {
    min: 0,
    max: i64::MAX,
};

/// Epochs, batch sizes, intervals: 1 or more.
pub const POSITIVE_INT: Rule = Rule::Int {
    min: 1,
    max: i64::MAX,
};

/// A count of examples, steps or units from 1 to `max`, where a larger value
/// would be a typo that allocates more than a machine holds.
pub const fn count(max: i64) -> Rule {
    Rule::Int { min: 1, max }
}

/// Rates and strengths with no upper limit (weight decay, noise std).
pub const NONNEG: Rule = Rule::Float {
    min: 0.0,
    max: f64::INFINITY,
    min_open: false,
};

/// Fractions in [0, 1] (momentum, zero-out).
pub const UNIT: Rule = Rule::Float {
    min: 0.0,
    max: 1.0,
    min_open: false,
};

/// Fractions in (0, 1] (a train-accuracy target).
pub const UNIT_OPEN: Rule = Rule::Float {
    min: 0.0,
    max: 1.0,
    min_open: true,
};

/// A data split by name.
pub const SPLIT: Rule = Rule::Str {
    choices: &["train", "test"],
};
