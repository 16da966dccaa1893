//! Measurements of models: loss and accuracy, weight distances, norms and path
//! norms, FGSM accuracy, margins, loss along a line between two models, the toy's
//! decision-boundary distances, and per-epoch tracking (docs/METRICS.md).

pub mod boundary;
pub mod distance;
pub mod docs;
pub mod evaluate;
pub mod fgsm;
pub mod interpolate;
pub mod margins;
pub mod norms;
pub mod rhai;
pub mod state;
pub mod track;
