//! Training: SGD with explicit state, the epoch loop, progress, and the
//! adversarial initialisation (Algorithm 1) built from them.

pub mod checkpoint;
pub mod config;
pub mod dense;
pub mod fingerprint;
pub mod precision;
pub mod progress;
pub mod rhai;
pub mod run;
pub mod schedule;
pub mod sgd;

pub use run::{train, Run, Status, TrainRequest};
