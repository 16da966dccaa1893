//! minima: deep-learning generalization experiments as Rhai scripts, trained on
//! libtorch through `tch`, with every result a Polars DataFrame written to Parquet.
//!
//! One folder per domain; each domain's script bindings live beside it in `rhai.rs`,
//! and `host` wires them into one engine (see docs/ARCHITECTURE.md).

pub mod data;
pub mod frame;
pub mod host;
pub mod kit;
pub mod memory;
pub mod metrics;
pub mod models;
pub mod plot;
pub mod report;
pub mod results;
pub mod rng;
pub mod slices;
pub mod sweep;
pub mod train;
