//! Results: typed cells, DataFrames, atomic Parquet files, part files and the run
//! directory.

pub mod atomic;
pub mod exact;
pub mod frame;
pub mod parts;
pub mod rhai;
pub mod run_dir;
pub mod value;

pub use frame::Row;
pub use run_dir::RunDir;
pub use value::Value;
