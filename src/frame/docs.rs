//! What the frame functions and `Frame`'s properties do, beside their bindings in
//! `rhai.rs`; `host::api` composes every domain's into docs/API.md and `:help`.

use super::rhai::PIVOT;
use crate::kit::docs::{doc, prop, Doc, Property};

pub const FUNCTIONS: &[Doc] = &[
    doc("read_results", "A Frame from a Parquet file, a run folder's summary (or the named table, e.g. \"history\") with its sweep parts, or every run folder under a folder.", r#"let f = read_results("runs/fig1", "history");"#, &[]),
    doc("filter", "Rows whose columns equal the map's values (an array value accepts any of its elements), or rows where `column OP value`.", r#"f.filter(#{ init: "adversarial" }).filter("test_acc", ">", 0.9)"#, &[]),
    doc("select", "The named column(s), in that order.", r#"f.select(["init", "test_acc"])"#, &[]),
    doc("sort", "Rows ordered by the column(s), ascending unless `descending` is true; ties keep their order.", r#"f.sort("test_acc", true)"#, &[]),
    doc("group_by", "Groups rows by the key column(s), in order of first appearance; follow with `agg`.", r#"f.group_by(["init", "setting"])"#, &[]),
    doc("agg", "One row per group: the keys, then COL_AGG for each requested aggregation (mean, std, min, max, count, sum, first).", r#"f.group_by("init").agg(#{ test_acc: ["mean", "std"] })"#, &[]),
    doc("pivot", "A wide table: a row per `index` value, a column per distinct `on` value, cells the `agg` of `values`.", r#"f.pivot(#{ index: "setting", on: "init", values: "test_acc" })"#, &[&PIVOT]),
    doc("column", "A column's values as an array (null as ()).", r#"let accs = f.column("test_acc");"#, &[]),
    doc("frame", "A frame from an array of maps, one row each; columns are the union of their keys (unit values are nulls).", r#"let f = frame([#{ claim: "gap", holds: true }]);"#, &[]),
    doc("row", "Row i as a map from column name to value.", "print(f.row(0));", &[]),
    doc("head", "The first n rows.", "f.head(5).show();", &[]),
    doc("show", "Prints the frame as an aligned table (rows beyond $POLARS_FMT_MAX_ROWS are elided).", "f.show();", &[]),
    doc("write_parquet", "Writes the frame to a Parquet file (atomically).", r#"f.write_parquet("table1.parquet");"#, &[]),
];

pub const PROPERTIES: &[Property] = &[
    prop("Frame", "height", "number of rows"),
    prop("Frame", "width", "number of columns"),
    prop("Frame", "columns", "column names"),
];
