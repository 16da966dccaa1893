//! What the metric functions do, beside their bindings in `rhai.rs`; `host::api`
//! composes every domain's into docs/API.md and `:help`.

use super::rhai::{DISTANCE, FGSM, INTERPOLATE, MARGINS};
use crate::kit::docs::{doc, Doc};

pub const FUNCTIONS: &[Doc] = &[
    doc("evaluate", "Loss and accuracy on the train and test parts: #{ train_loss, train_acc, test_loss, test_acc }.", "print(evaluate(m, d));", &[]),
    doc("boundary_distance", "Distance of each 2-D training point to the decision boundary, summarised: #{ min, mean, median }.", "print(boundary_distance(r.model, d));", &[]),
    doc("distance", "The paper's d(a, b) = ||a - b|| / ||b|| over trainable parameters; options add BN buffers or give the raw norm.", "print(distance(r.model, m, #{ buffers: true, relative: false }));", &[&DISTANCE]),
    doc("norms", "Frobenius, product of layer Frobenius and spectral norms, l1/l2 path norms of a model (docs/METRICS.md).", "print(norms(r.model).path_l2);", &[]),
    doc("fgsm", "FGSM accuracy at each eps (pixel space), one map per eps.", "record_metrics(fgsm(r.model, d, #{ eps: [0.0, 1.0/255, 8.0/255] }));", &[&FGSM]),
    doc("margins", "Quantiles of the output margin (true-class logit minus the best other); boundary distances too for 2-D data.", "print(margins(r.model, d));", &[&MARGINS]),
    doc("interpolate", "Loss and accuracy along the line between two models, BN statistics recomputed at each point.", "record_metrics(interpolate(a.model, b.model, d, #{ steps: 11 }));", &[&INTERPOLATE]),
];
