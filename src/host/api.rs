//! The one place script functions are described. `minima doc` renders docs/API.md
//! and the `.d.rhai` definitions from this table plus the engine's own signatures;
//! the REPL's `:help` and config-key completion read it too. A function registered
//! without an entry here makes `tests/api_doc.rs` fail.

use crate::data::rhai::{
    CIFAR10, CIFAR100, CINIC10, FASHION_MNIST, RANDOM_LABELS, RESTRICTED_IMAGENET, SUBSET, TOY,
};
use crate::frame::rhai::PIVOT;
use crate::kit::docs::{doc, prop, Doc, Property};
use crate::metrics::rhai as metrics;
use crate::models::rhai::MODEL;
use crate::plot::rhai::{CURVES, PLOT};
use crate::train::config::TRAIN;
use rhai::Engine;
use std::collections::BTreeMap;

pub const FUNCTIONS: &[Doc] = &[
    // host
    doc("param", "A script parameter: the `--set name=value` override, else the default (its type fixes the override's type).", r#"let epochs = param("epochs", 10);"#, &[]),
    doc("device", "The device training runs on: `cpu` or `cuda:N`.", "print(device());", &[]),
    // data
    doc("toy", "The two-Gaussian toy data set of Figure 1.", "let d = toy(#{ n_train: 50, seed: 1 });", &[&TOY]),
    doc("dataset", "A data set by name (cifar10, cifar100, cinic10, restricted_imagenet, fashion_mnist), read from its root (docs/DATA.md).", r#"let d = dataset("fashion_mnist", #{ pad: 2 });"#, &[&CIFAR10, &CIFAR100, &CINIC10, &RESTRICTED_IMAGENET, &FASHION_MNIST]),
    doc("subset", "A seeded, class-balanced subset of the training split.", "let small = d.subset(2000, #{ seed: 0 });", &[&SUBSET]),
    doc("random_labels", "Algorithm 1's random-label copy of a data set: R replicas, zero-out, uniformly random labels.", "let r = random_labels(d, #{ replicas: 5, zero_out: 0.1 });", &[&RANDOM_LABELS]),
    // models
    doc("model", "A freshly initialised network from a model spec; with data, input shape and classes come from the data.", r#"let m = model(#{ arch: "mlp", hidden: [64] }, d);"#, &[&MODEL]),
    doc("load_model", "A model read from a safetensors file written by `save`.", r#"let m = load_model("runs/fig1/init.safetensors");"#, &[]),
    doc("save", "Writes the model's weights (PyTorch names, spec in the metadata) into the run folder; returns the path.", r#"m.save("init.safetensors");"#, &[]),
    doc("copy", "An independent copy of the model's parameters and buffers.", "let m2 = m.copy();", &[]),
    doc("params", "The number of trainable parameters.", "print(m.params());", &[]),
    doc("layers", "One map per parameter or buffer: name, shape, count, trainable.", "for l in m.layers() { print(l); }", &[]),
    // training
    doc("train", "Trains a copy of the model with SGD; returns the Run (the model passed in is unchanged).", "let r = train(m, d, #{ epochs: 20, lr: 0.1 });", &[&TRAIN]),
    doc("adversarial_init", "Algorithm 1: trains on random labels until 100% train accuracy; the run's model is the adversarial initialisation.", "let adv = adversarial_init(m, d, #{ replicas: 5, zero_out: 0.1 });", &[&TRAIN, &RANDOM_LABELS]),
    // metrics
    doc("evaluate", "Loss and accuracy on the train and test parts: #{ train_loss, train_acc, test_loss, test_acc }.", "print(evaluate(m, d));", &[]),
    doc("boundary_distance", "Distance of each 2-D training point to the decision boundary, summarised: #{ min, mean, median }.", "print(boundary_distance(r.model, d));", &[]),
    doc("distance", "The paper's d(a, b) = ||a - b|| / ||b|| over trainable parameters; options add BN buffers or give the raw norm.", "print(distance(r.model, m, #{ buffers: true, relative: false }));", &[&metrics::DISTANCE]),
    doc("norms", "Frobenius, product of layer Frobenius and spectral norms, l1/l2 path norms of a model (docs/METRICS.md).", "print(norms(r.model).path_l2);", &[]),
    doc("fgsm", "FGSM accuracy at each eps (pixel space), one map per eps.", "record_metrics(fgsm(r.model, d, #{ eps: [0.0, 1.0/255, 8.0/255] }));", &[&metrics::FGSM]),
    doc("margins", "Quantiles of the output margin (true-class logit minus the best other); boundary distances too for 2-D data.", "print(margins(r.model, d));", &[&metrics::MARGINS]),
    doc("interpolate", "Loss and accuracy along the line between two models, BN statistics recomputed at each point.", "record_metrics(interpolate(a.model, b.model, d, #{ steps: 11 }));", &[&metrics::INTERPOLATE]),
    doc("record_metrics", "Appends metric rows (maps) to the run folder's metrics table (a part file metrics/NNNNNN.parquet; metrics.parquet when the script ends), with optional tag columns.", r#"record_metrics(fgsm(r.model, d), #{ init: "random" });"#, &[]),
    // results
    doc("record", "Appends the run to the run folder's history and summary tables (part files history/NNNNNN.parquet, summary/NNNNNN.parquet; history.parquet and summary.parquet when the script ends), with optional tag columns.", r#"record(r, #{ init: "adversarial" });"#, &[]),
    doc("run_dir", "The run folder (created on first use).", "print(run_dir());", &[]),
    doc("plot_boundaries", "Draws the decision boundaries of 2-D runs into a PNG in the run folder; returns its path.", r#"plot_boundaries([r1, r2], #{ out: "boundaries.png" });"#, &[&PLOT]),
    doc("plot_curves", "Line charts of a frame: a panel per `y` column against `x`, a line per `by` value (mean, min–max band over rows sharing x); PNG and/or SVG in the run folder; returns the paths.", r#"plot_curves(read_results(run_dir(), "history"), #{ x: "epoch", y: ["train_acc", "test_acc"], by: "init", out: "acc" });"#, &[&CURVES]),
    // sweeps
    doc("grid", "Every combination of the map's values (arrays, ranges or single values) as configuration maps, each with a stable `index` and `id` (docs/SCALING.md).", r#"let configs = grid(#{ init: ["random", "adversarial"], seed: 0..5 });"#, &[]),
    doc("sweep", "Runs the body once per configuration of this process's shard, skipping complete ones; each configuration's records become one part folder with `sweep_*` columns. Returns #{ total, in_shard, ran, skipped }.", r#"sweep(grid(#{ seed: 0..5 }), |cfg| { record(train(m, d, #{ seed: cfg.seed })); });"#, &[]),
    // frames
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
    prop("Data", "name", "the data set's name"),
    prop(
        "Data",
        "mean",
        "per-channel mean of the training pixels in [0, 1]",
    ),
    prop(
        "Data",
        "std",
        "per-channel standard deviation of the training pixels",
    ),
    prop("Data", "class_counts", "training examples per class"),
    prop("Data", "labels", "`true` or `random`"),
    prop("Data", "n_train", "training examples"),
    prop("Data", "n_test", "test examples"),
    prop("Data", "num_classes", "number of classes"),
    prop("Data", "classes", "class names"),
    prop("Data", "input_shape", "shape of one example"),
    prop("Model", "arch", "architecture name"),
    prop("Model", "seed", "initialisation seed"),
    prop("Model", "classes", "output classes"),
    prop("Model", "width", "width multiplier"),
    prop("Model", "hidden", "hidden layer sizes (mlp)"),
    prop("Model", "input_shape", "shape of one input"),
    prop("Run", "model", "the trained model"),
    prop("Run", "data", "the data it trained on"),
    prop("Run", "kind", "`train` or `adversarial_init`"),
    prop("Run", "index", "the run's number in the session"),
    prop("Run", "status", "how training ended"),
    prop("Run", "epochs", "epochs trained"),
    prop("Run", "train_acc", "last epoch's train accuracy"),
    prop("Run", "test_acc", "last epoch's test accuracy"),
    prop("Run", "train_loss", "last epoch's train loss"),
    prop("Run", "test_loss", "last epoch's test loss"),
    prop(
        "Run",
        "distance_from_init",
        "last epoch's relative distance from the initial weights",
    ),
    prop("Run", "history", "one map per epoch"),
    prop("Frame", "height", "number of rows"),
    prop("Frame", "width", "number of columns"),
    prop("Frame", "columns", "column names"),
];

pub fn find(name: &str) -> Option<&'static Doc> {
    FUNCTIONS.iter().find(|d| d.name == name)
}

/// Conversions every type provides; documented once, not per type.
const CONVENTIONS: &[&str] = &["to_string", "to_debug"];

/// A registered function's signature, from the engine's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    pub name: String,
    /// Parameters as `name: Type` (or just the type).
    pub params: Vec<String>,
    pub returns: String,
}

impl Signature {
    /// The type of the first parameter, i.e. the value a method is called on.
    pub fn receiver(&self) -> Option<&str> {
        self.params.first().map(|p| {
            p.rsplit(": ")
                .next()
                .unwrap_or(p)
                .trim_start_matches("&mut ")
        })
    }

    pub fn render(&self) -> String {
        let ret = if self.returns.is_empty() || self.returns == "()" {
            String::new()
        } else {
            format!(" -> {}", self.returns)
        };
        format!("{}({}){ret}", self.name, self.params.join(", "))
    }
}

/// Splits `text` at top-level commas (not those inside `<...>` or `(...)`).
fn split_top(text: &str) -> Vec<&str> {
    let (mut depth, mut from, mut parts) = (0i32, 0, Vec::new());
    for (i, c) in text.char_indices() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(text[from..i].trim());
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text[from..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// A Rust type name as scripts know it: `ScriptResult<T>` is `T`, registered
/// types by their script name (`Rc<Dataset>` is `Data`), Rhai's own by theirs.
fn tidy_type(engine: &Engine, ty: &str) -> String {
    let ty = ty.trim().trim_start_matches("&mut ");
    let ty = match ty.strip_prefix("core::result::Result<") {
        Some(rest) => split_top(rest.strip_suffix('>').unwrap_or(rest))
            .first()
            .copied()
            .unwrap_or("()"),
        None => ty,
    };
    match ty {
        "?" | "types::dynamic::Dynamic" | "rhai::types::dynamic::Dynamic" => "Dynamic".into(),
        "f64" => "float".into(),
        "i64" => "int".into(),
        "&str" | "String" | "alloc::string::String" => "string".into(),
        other => {
            let mapped = engine.map_type_name(other);
            let base = mapped.split('<').next().unwrap_or(mapped);
            match base.rsplit("::").next().unwrap_or(base) {
                "BTreeMap" => "map".into(),
                "Vec" => "array".into(),
                _ if mapped.contains('<') => mapped.to_string(),
                short => short.to_string(),
            }
        }
    }
}

/// Parses `name(_: A, _: B) -> R` as written by `Engine::gen_fn_signatures`.
fn parse(engine: &Engine, sig: &str) -> Option<Signature> {
    let open = sig.find('(')?;
    let mut depth = 0;
    let close = sig[open..].char_indices().find_map(|(i, c)| {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        (depth == 0).then_some(open + i)
    })?;
    let params = split_top(&sig[open + 1..close])
        .into_iter()
        .map(|p| {
            let (name, ty) = p.split_once(": ").unwrap_or(("_", p));
            format!("{name}: {}", tidy_type(engine, ty))
        })
        .collect();
    let returns = match sig[close + 1..].trim().strip_prefix("->") {
        Some(r) => tidy_type(engine, r),
        None => String::new(),
    };
    Some(Signature {
        name: sig[..open].to_string(),
        params,
        returns,
    })
}

/// Every minima function (not Rhai's standard library), getters as `get$name`.
pub fn signatures(engine: &Engine) -> Vec<Signature> {
    let mut sigs: Vec<Signature> = engine
        .gen_fn_signatures(false)
        .iter()
        .filter_map(|s| parse(engine, s))
        .collect();
    // The engine lists functions in hash order; sort so the docs are reproducible.
    sigs.sort_by_cached_key(|s| (s.name.clone(), s.params.len(), s.render()));
    sigs.dedup();
    sigs
}

/// Names of registered functions and properties this table does not describe.
pub fn undocumented(engine: &Engine) -> Vec<String> {
    let mut missing: Vec<String> = signatures(engine)
        .into_iter()
        .filter_map(|s| match s.name.strip_prefix("get$") {
            Some(p) => {
                let of = s.receiver().unwrap_or_default().to_string();
                let known = PROPERTIES.iter().any(|q| q.name == p && q.of == of);
                (!known).then(|| format!("{of}.{p}"))
            }
            None => (!CONVENTIONS.contains(&s.name.as_str()) && find(&s.name).is_none())
                .then_some(s.name),
        })
        .collect();
    missing.dedup();
    missing
}

/// docs/API.md: every function with its signatures, description, example and
/// config keys, then every type's properties.
pub fn markdown(engine: &Engine) -> String {
    let mut by_name: BTreeMap<String, Vec<Signature>> = BTreeMap::new();
    for s in signatures(engine) {
        if !s.name.starts_with("get$") && !CONVENTIONS.contains(&s.name.as_str()) {
            by_name.entry(s.name.clone()).or_default().push(s);
        }
    }
    let mut out = String::from(
        "# minima script API\n\n\
         Generated by `minima doc` from the registered functions and the descriptions in\n\
         `src/host/api.rs`; do not edit by hand. Guides: docs/SCRIPTING.md, docs/REPL.md.\n\n\
         ## Functions\n",
    );
    for doc in FUNCTIONS {
        out.push_str(&format!("\n### `{}`\n\n```rhai\n", doc.name));
        for s in by_name.get(doc.name).into_iter().flatten() {
            out.push_str(&format!("{}\n", s.render()));
        }
        out.push_str(&format!(
            "```\n\n{}\n\nExample: `{}`\n",
            doc.description, doc.example
        ));
        for spec in doc.specs {
            out.push_str(&format!("\n{} keys:\n\n", spec.what));
            for k in spec.keys {
                out.push_str(&format!("- `{}`: {}\n", k.name, k.help));
            }
        }
    }
    out.push_str("\n## Properties\n");
    let mut of = "";
    for p in PROPERTIES {
        if p.of != of {
            of = p.of;
            out.push_str(&format!("\n### `{of}`\n\n"));
        }
        out.push_str(&format!("- `.{}`: {}\n", p.name, p.description));
    }
    out
}

/// `minima.d.rhai`: Rhai's definition-file format (`fn name(_: T) -> R;`, getters
/// as `fn get name(...)`) with the descriptions as doc comments, for editors.
pub fn definitions(engine: &Engine) -> String {
    let mut out = String::from("module static;\n");
    for s in signatures(engine) {
        if CONVENTIONS.contains(&s.name.as_str()) {
            continue;
        }
        let ret = if s.returns.is_empty() {
            String::new()
        } else {
            format!(" -> {}", s.returns)
        };
        let params = s.params.join(", ");
        match s.name.strip_prefix("get$") {
            Some(p) => {
                let of = s.receiver().unwrap_or_default();
                if let Some(q) = PROPERTIES.iter().find(|q| q.name == p && q.of == of) {
                    out.push_str(&format!("\n/// {}\n", q.description));
                }
                out.push_str(&format!("fn get {p}({params}){ret};\n"));
            }
            None => {
                if let Some(d) = find(&s.name) {
                    out.push_str(&format!(
                        "\n/// {}\n/// ```\n/// {}\n/// ```\n",
                        d.description, d.example
                    ));
                }
                out.push_str(&format!("fn {}({params}){ret};\n", s.name));
            }
        }
    }
    out
}
