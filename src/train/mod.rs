//! Training: SGD with explicit state, the epoch loop, progress, and the
//! adversarial initialisation (Algorithm 1) built from them.

pub mod checkpoint;
pub mod config;
pub mod dense;
pub mod docs;
pub mod fingerprint;
pub mod fit;
pub mod history;
pub mod plateau;
pub mod precision;
pub mod progress;
pub mod record;
pub mod rhai;
pub mod schedule;
pub mod sgd;
pub mod step;

pub use fit::{train, TrainRequest};
pub use history::{Epoch, Run, Status};
