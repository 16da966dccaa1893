//! What the model functions and `Model`'s properties do, beside their bindings in
//! `rhai.rs`; `host::api` composes every domain's into docs/API.md and `:help`.

use super::rhai::MODEL;
use crate::kit::docs::{doc, prop, Doc, Property};

pub const FUNCTIONS: &[Doc] = &[
    doc("model", "A freshly initialised network from a model spec; with data, input shape and classes come from the data.", r#"let m = model(#{ arch: "mlp", hidden: [64] }, d);"#, &[&MODEL]),
    doc("load_model", "A model read from a safetensors file written by `save`.", r#"let m = load_model("runs/fig1/init.safetensors");"#, &[]),
    doc("save", "Writes the model's weights (PyTorch names, spec in the metadata) into the run folder; returns the path.", r#"m.save("init.safetensors");"#, &[]),
    doc("copy", "An independent copy of the model's parameters and buffers.", "let m2 = m.copy();", &[]),
    doc("params", "The number of trainable parameters.", "print(m.params());", &[]),
    doc("layers", "One map per parameter or buffer: name, shape, count, trainable.", "for l in m.layers() { print(l); }", &[]),
];

pub const PROPERTIES: &[Property] = &[
    prop("Model", "arch", "architecture name"),
    prop("Model", "seed", "initialisation seed"),
    prop("Model", "classes", "output classes"),
    prop("Model", "width", "width multiplier"),
    prop("Model", "hidden", "hidden layer sizes (mlp)"),
    prop("Model", "input_shape", "shape of one input"),
];
