//! Sweeps: `grid` expands a map of choices into configurations, `sweep` runs a
//! body per configuration of this process's shard, each configuration's results
//! published as one part folder (docs/SCALING.md). `--jobs` runs shards as child
//! processes of one command.

pub mod docs;
pub mod grid;
pub mod jobs;
pub mod rhai;
