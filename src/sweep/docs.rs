//! What the sweep functions do, beside their bindings in `rhai.rs`; `host::api`
//! composes every domain's into docs/API.md and `:help`.

use crate::kit::docs::{doc, Doc};

pub const FUNCTIONS: &[Doc] = &[
    doc("grid", "Every combination of the map's values (arrays, ranges or single values) as configuration maps, each with a stable `index` and `id` (docs/SCALING.md).", r#"let configs = grid(#{ init: ["random", "adversarial"], seed: 0..5 });"#, &[]),
    doc("sweep", "Runs the body once per configuration of this process's shard, skipping complete ones; each configuration's records become one part folder with `sweep_*` columns. Returns #{ total, in_shard, ran, skipped, complete, summarise }: complete counts the whole grid's complete configurations, every shard's; summarise is true in exactly one process (the one whose configuration completed the grid, or shard 0 when it was complete before the run), so a script summarises only then.", r#"sweep(grid(#{ seed: 0..5 }), |cfg| { record(train(m, d, #{ seed: cfg.seed })); });"#, &[]),
];
