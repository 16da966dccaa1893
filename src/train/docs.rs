//! What the training and recording functions and `Run`'s properties do, beside
//! their bindings in `rhai.rs` and `record.rs`; `host::api` composes every domain's
//! into docs/API.md and `:help`.

use super::config::TRAIN;
use crate::data::rhai::RANDOM_LABELS;
use crate::kit::docs::{doc, prop, Doc, Property};

pub const FUNCTIONS: &[Doc] = &[
    doc("train", "Trains a copy of the model with SGD; returns the Run (the model passed in is unchanged).", "let r = train(m, d, #{ epochs: 20, lr: 0.1 });", &[&TRAIN]),
    doc("lr_at", "The learning rate of an `lr` value (a number or a schedule map) at a 1-based epoch of a run of `epochs` epochs, as `train` uses it; a \"plateau\" schedule, whose lr depends on the run's measurements, is refused (its lr per epoch is the history's `epoch_lr`).", r#"let lr = lr_at(#{ schedule: "cosine", base: 0.1, min: 0.0 }, 1, 75);"#, &[]),
    doc("adversarial_init", "Algorithm 1: trains on random labels until 100% train accuracy; the run's model is the adversarial initialisation.", "let adv = adversarial_init(m, d, #{ replicas: 5, zero_out: 0.1 });", &[&TRAIN, &RANDOM_LABELS]),
];

/// `record.rs`'s functions, apart so that docs/API.md can list them after the metrics
/// they record.
pub const RECORD_FUNCTIONS: &[Doc] = &[
    doc("record_metrics", "Appends metric rows (maps) to the run folder's metrics table (a part file metrics/NNNNNN.parquet; metrics.parquet when the script ends), with optional tag columns.", r#"record_metrics(fgsm(r.model, d), #{ init: "random" });"#, &[]),
    doc("record", "Appends the run to the run folder's history and summary tables (part files history/NNNNNN.parquet, summary/NNNNNN.parquet; history.parquet and summary.parquet when the script ends), with optional tag columns.", r#"record(r, #{ init: "adversarial" });"#, &[]),
    doc("run_dir", "The run folder (created on first use).", "print(run_dir());", &[]),
];

pub const PROPERTIES: &[Property] = &[
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
];
