//! What the host's own functions (`register_host` in `engine.rs`) do; `api.rs`
//! lists them before every domain's.

use crate::kit::docs::{doc, Doc};

pub const FUNCTIONS: &[Doc] = &[
    doc("param", "A script parameter: the `--set name=value` override, else the default (its type fixes the override's type).", r#"let epochs = param("epochs", 10);"#, &[]),
    doc("device", "The device training runs on: `cpu` or `cuda:N`.", "print(device());", &[]),
];
