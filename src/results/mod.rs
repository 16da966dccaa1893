//! Results: typed cells, DataFrames, atomic Parquet files, and the run folder's
//! layout: its tables as part files, sweep configurations' part folders, and
//! the shards that share it.

pub mod atomic;
pub mod exact;
pub mod parquet;
pub mod part_files;
pub mod part_folder;
pub mod run_dir;
pub mod shard;
pub mod value;

pub use parquet::Row;
pub use run_dir::RunDir;
pub use value::Value;
