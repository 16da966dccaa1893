//! What the data functions and `Data`'s properties do, beside their bindings in
//! `rhai.rs`; `host::api` composes every domain's into docs/API.md and `:help`.

use super::rhai::{
    CIFAR10, CIFAR100, CINIC10, FASHION_MNIST, RANDOM_LABELS, RESTRICTED_IMAGENET, SUBSET, TOY,
};
use crate::kit::docs::{doc, prop, Doc, Property};

pub const FUNCTIONS: &[Doc] = &[
    doc("toy", "The two-Gaussian toy data set of Figure 1.", "let d = toy(#{ n_train: 50, seed: 1 });", &[&TOY]),
    doc("dataset", "A data set by name (cifar10, cifar100, cinic10, restricted_imagenet, fashion_mnist), read from its root (docs/DATA.md).", r#"let d = dataset("fashion_mnist", #{ pad: 2 });"#, &[&CIFAR10, &CIFAR100, &CINIC10, &RESTRICTED_IMAGENET, &FASHION_MNIST]),
    doc("subset", "A seeded, class-balanced subset of the training split.", "let small = d.subset(2000, #{ seed: 0 });", &[&SUBSET]),
    doc("points", "A data set of features (the toy) as a frame: `split` (train/test), `index`, `x0`, `x1`, ..., `label`; training examples as the model sees them (a random-label view's labels), without augmentation. Refused for images.", r#"points(random_labels(toy(#{ seed: 1 }), #{ seed: 1 })).write_parquet("toy1.parquet");"#, &[]),
    doc("random_labels", "Algorithm 1's random-label copy of a data set: R replicas, zero-out, uniformly random labels.", "let r = random_labels(d, #{ replicas: 5, zero_out: 0.1 });", &[&RANDOM_LABELS]),
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
];
