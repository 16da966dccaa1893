//! The integration tests, built as one binary: each file below is a module, so the
//! suite links (and stores) libtorch, polars and rhai once instead of once per file.
//! `cargo test --test suite <file>::` runs one file's tests. tests/data_cache.rs is
//! its own binary because it sets an environment variable for the whole process.

mod common;

mod api_doc;
mod architecture;
mod bench_reference;
mod claims;
mod cli;
mod data_fetch;
mod data_folders;
mod data_formats;
mod dense;
mod frames;
mod fuzz_host;
mod live_read;
mod metrics;
mod models;
mod paper_scripts;
mod pytorch_interop;
mod repl;
mod report;
mod results;
mod resume;
mod script_errors;
mod sweep;
mod training;
mod training_config;
