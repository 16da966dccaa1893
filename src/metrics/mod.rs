//! Measurements of models: loss and accuracy, weight distances, and the toy's
//! decision-boundary distances.

pub mod boundary;
pub mod distance;
pub mod evaluate;
pub mod rhai;
