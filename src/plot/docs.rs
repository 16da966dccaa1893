//! What the plot functions do, beside their bindings in `rhai.rs`; `host::api`
//! composes every domain's into docs/API.md and `:help`.

use super::rhai::{CURVES, PLOT};
use crate::kit::docs::{doc, Doc};

pub const FUNCTIONS: &[Doc] = &[
    doc("plot_boundaries", "Draws the decision boundaries of 2-D runs into a PNG in the run folder; returns its path.", r#"plot_boundaries([r1, r2], #{ out: "boundaries.png" });"#, &[&PLOT]),
    doc("plot_curves", "Line charts of a frame: a panel per `y` column against `x`, a line per `by` value (mean, min–max band over rows sharing x); PNG and/or SVG in the run folder; returns the paths.", r#"plot_curves(read_results(run_dir(), "history"), #{ x: "epoch", y: ["train_acc", "test_acc"], by: "init", out: "acc" });"#, &[&CURVES]),
];
