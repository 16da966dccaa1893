//! Metrics against values computed independently on tiny hand-built networks, and
//! their invariants: distances, norms and path norms, FGSM, margins,
//! interpolation, per-epoch tracking and metrics.parquet.

use crate::common;
use common::run_text;
use minima::data::{Augmentation, Dataset, Inputs, Part, Split};
use minima::metrics::{distance, fgsm, interpolate, margins, norms};
use minima::models::{Arch, Model, ModelSpec};
use std::collections::HashMap;
use tch::{Device, Kind, Tensor};

fn mlp(inputs: Vec<i64>, hidden: &[i64], classes: i64, seed: i64) -> Model {
    Model::new(
        ModelSpec {
            arch: Arch::Mlp,
            hidden: hidden.to_vec(),
            width: 1.0,
            input_shape: inputs,
            classes,
            seed,
        },
        Device::Cpu,
    )
    .unwrap()
}

fn tiny_resnet(seed: i64) -> Model {
    Model::new(
        ModelSpec {
            arch: Arch::Resnet18,
            hidden: vec![],
            width: 0.0625,
            input_shape: vec![1, 8, 8],
            classes: 3,
            seed,
        },
        Device::Cpu,
    )
    .unwrap()
}

fn state(m: &Model) -> HashMap<String, Tensor> {
    m.state().into_iter().collect()
}

fn set(t: &Tensor, value: &Tensor) {
    tch::no_grad(|| t.shallow_clone().copy_(value));
}

/// A data set of random images (uint8) with labels from `classes`.
fn images(n: i64, shape: [i64; 3], classes: i64, seed: i64) -> Dataset {
    let split = |s: i64| {
        minima::rng::seeded(s, || Split {
            x: Tensor::randint(
                256,
                [n, shape[0], shape[1], shape[2]],
                (Kind::Uint8, Device::Cpu),
            ),
            y: Tensor::randint(classes, [n], (Kind::Int64, Device::Cpu)),
        })
    };
    let c = shape[0] as usize;
    Dataset {
        name: "random-images".into(),
        train: split(seed),
        test: split(seed + 1),
        classes: (0..classes).map(|c| c.to_string()).collect(),
        inputs: Inputs::Images {
            mean: vec![0.4; c],
            std: vec![0.25; c],
        },
        augmentation: Augmentation::None,
        relabel: None,
        describe: vec![],
    }
}

/// Gaussian features with labels from a random linear rule.
fn features(n: i64, dims: i64, seed: i64) -> Dataset {
    let split = |s: i64| {
        minima::rng::seeded(s, || {
            let x = Tensor::randn([n, dims], (Kind::Float, Device::Cpu));
            let y = x
                .sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
                .gt(0.0)
                .to_kind(Kind::Int64);
            Split { x, y }
        })
    };
    Dataset {
        name: "features".into(),
        train: split(seed),
        test: split(seed + 1),
        classes: vec!["a".into(), "b".into()],
        inputs: Inputs::Features,
        augmentation: Augmentation::None,
        relabel: None,
        describe: vec![],
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

fn norm_of(m: &Model, name: &str) -> f64 {
    norms::norms(m)
        .unwrap()
        .into_iter()
        .find(|(k, _)| *k == name)
        .unwrap()
        .1
}

#[test]
fn two_layer_path_norms_match_their_closed_form() {
    let m = mlp(vec![5], &[4], 3, 1);
    let s = state(&m);
    let (w1, w2) = (
        s["layers.0.weight"].to_kind(Kind::Double),
        s["layers.2.weight"].to_kind(Kind::Double),
    );
    for p in [1.0, 2.0] {
        // Σ_{k,j,i} |W2_kj|^p |W1_ji|^p = 1ᵀ |W2|^p |W1|^p 1.
        let expected = w2
            .abs()
            .pow_tensor_scalar(p)
            .matmul(&w1.abs().pow_tensor_scalar(p))
            .sum(Kind::Double)
            .double_value(&[])
            .powf(1.0 / p);
        let found = norms::path_norm(&m, p).unwrap();
        assert!(
            close(found, expected, 1e-12),
            "p={p}: {found} vs {expected}"
        );
    }
}

#[test]
fn path_norms_are_invariant_under_rescaling_between_relu_layers() {
    let m = mlp(vec![4], &[6, 5], 2, 2);
    let before = (norm_of(&m, "path_l1"), norm_of(&m, "path_l2"));
    let frob_before = norm_of(&m, "frobenius");
    let x = minima::rng::seeded(9, || Tensor::randn([7, 4], (Kind::Float, Device::Cpu)));
    let out = tch::no_grad(|| m.forward_t(&x, false));
    let s = state(&m);
    // ReLU(c·z) = c·ReLU(z) for c > 0: the network computes the same function.
    for (name, c) in [
        ("layers.2.weight", 3.0),
        ("layers.2.bias", 3.0),
        ("layers.4.weight", 1.0 / 3.0),
    ] {
        set(&s[name], &(&s[name] * c));
    }
    let after_out = tch::no_grad(|| m.forward_t(&x, false));
    assert!(out.allclose(&after_out, 1e-5, 1e-5, false));
    let after = (norm_of(&m, "path_l1"), norm_of(&m, "path_l2"));
    assert!(
        close(after.0, before.0, 1e-6) && close(after.1, before.1, 1e-6),
        "{before:?} {after:?}"
    );
    // The norm of all weights is not invariant; rescaled weights are float32,
    // hence the tolerance above.
    assert!(!close(norm_of(&m, "frobenius"), frob_before, 1e-3));
}

#[test]
fn batch_norm_folds_into_path_norms_so_a_scaled_conv_changes_nothing() {
    let m = tiny_resnet(4);
    let data = images(16, [1, 8, 8], 3, 5);
    // Give the batch norms non-trivial statistics first.
    interpolate::recompute_batch_norms(
        &m,
        &data,
        &interpolate::Options {
            steps: 2,
            bn_batches: 2,
            batch_size: 8,
            seed: 0,
        },
    )
    .unwrap();
    let before = (norm_of(&m, "path_l1"), norm_of(&m, "path_l2"));
    let frob_before = norm_of(&m, "prod_frobenius");
    let s = state(&m);
    // Scaling conv1 by c scales bn1's input, its mean by c and variance by c²: the
    // folded scale |γ|/√(σ²+ε) then shrinks by c (ε aside, hence the tolerance).
    let c = 4.0;
    set(&s["conv1.weight"], &(&s["conv1.weight"] * c));
    set(&s["bn1.running_mean"], &(&s["bn1.running_mean"] * c));
    set(&s["bn1.running_var"], &(&s["bn1.running_var"] * (c * c)));
    let after = (norm_of(&m, "path_l1"), norm_of(&m, "path_l2"));
    assert!(
        close(after.0, before.0, 1e-3) && close(after.1, before.1, 1e-3),
        "{before:?} {after:?}"
    );
    assert!(close(norm_of(&m, "prod_frobenius"), frob_before * c, 1e-6));
}

#[test]
fn norms_of_an_mlp_match_direct_computations() {
    let m = mlp(vec![3], &[4], 2, 3);
    let s = state(&m);
    let layers = ["layers.0.weight", "layers.2.weight"];
    let fro = |t: &Tensor| {
        t.to_kind(Kind::Double)
            .square()
            .sum(Kind::Double)
            .sqrt()
            .double_value(&[])
    };
    let spectral = |t: &Tensor| {
        t.to_kind(Kind::Double)
            .svd(true, false)
            .1
            .double_value(&[0])
    };
    let all: f64 = s.values().map(|t| fro(t).powi(2)).sum::<f64>().sqrt();
    assert!(close(norm_of(&m, "frobenius"), all, 1e-12));
    let prod_f: f64 = layers.iter().map(|n| fro(&s[*n])).product();
    let prod_s: f64 = layers.iter().map(|n| spectral(&s[*n])).product();
    assert!(close(norm_of(&m, "prod_frobenius"), prod_f, 1e-12));
    assert!(close(norm_of(&m, "prod_spectral"), prod_s, 1e-6));
}

#[test]
fn distances_are_zero_to_self_and_match_hand_sums() {
    let (a, b) = (tiny_resnet(1), tiny_resnet(2));
    let data = images(16, [1, 8, 8], 3, 5);
    let opts = interpolate::Options {
        steps: 2,
        bn_batches: 1,
        batch_size: 16,
        seed: 0,
    };
    interpolate::recompute_batch_norms(&b, &data, &opts).unwrap();
    for buffers in [false, true] {
        for relative in [false, true] {
            let o = distance::Options { buffers, relative };
            assert_eq!(distance::between(&a, &a, o).unwrap(), 0.0);
        }
    }
    let sq = |names: &dyn Fn(&str, &Tensor) -> bool| -> (f64, f64) {
        let (sa, sb) = (state(&a), state(&b));
        let (mut diff, mut base) = (0.0, 0.0);
        for (name, t) in &sa {
            if names(name, t) {
                let (x, y) = (t.to_kind(Kind::Double), sb[name].to_kind(Kind::Double));
                diff += (&x - &y).square().sum(Kind::Double).double_value(&[]);
                base += y.square().sum(Kind::Double).double_value(&[]);
            }
        }
        (diff.sqrt(), base.sqrt())
    };
    let (d_params, n_params) = sq(&|_, t| t.requires_grad());
    let (d_all, n_all) = sq(&|n, _| !n.ends_with("num_batches_tracked"));
    let get = |buffers, relative| {
        distance::between(&a, &b, distance::Options { buffers, relative }).unwrap()
    };
    assert!(close(get(false, false), d_params, 1e-9));
    assert!(close(get(false, true), d_params / n_params, 1e-9));
    assert!(close(get(true, false), d_all, 1e-9));
    assert!(close(get(true, true), d_all / n_all, 1e-9));
    assert!(
        get(true, false) > get(false, false),
        "b's statistics were recomputed"
    );
}

#[test]
fn fgsm_on_a_linear_classifier_of_features_matches_the_closed_form() {
    // Two classes, z = Wx + b: the loss gradient's sign is −sign(w_y − w_other), so
    // FGSM lowers the margin by exactly eps·‖w_y − w_other‖₁.
    let data = features(200, 3, 7);
    let m = mlp(vec![3], &[], 2, 8);
    let s = state(&m);
    let (w, b) = (
        s["layers.0.weight"].to_kind(Kind::Double),
        s["layers.0.bias"].to_kind(Kind::Double),
    );
    let dw = w.get(1) - w.get(0);
    let l1 = dw.abs().sum(Kind::Double).double_value(&[]);
    let z = data.test.x.to_kind(Kind::Double).matmul(&w.tr()) + &b;
    let signed =
        (z.select(1, 1) - z.select(1, 0)) * (data.test.y.to_kind(Kind::Double) * 2.0 - 1.0);
    let eps = [0.0, 0.05, 0.2, 0.5];
    let got = fgsm::fgsm(&m, &data, Part::Test, &eps, None).unwrap();
    for (r, e) in got.iter().zip(eps) {
        let expected = (&signed - e * l1)
            .gt(0.0)
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[]);
        assert!(
            close(r.acc, expected, 1e-12),
            "eps {e}: {} vs {expected}",
            r.acc
        );
    }
}

#[test]
fn fgsm_perturbs_pixels_clamps_then_normalises() {
    let data = images(64, [1, 4, 4], 2, 11);
    let m = mlp(vec![1, 4, 4], &[], 2, 12);
    let s = state(&m);
    let dw = (s["layers.0.weight"].get(1) - s["layers.0.weight"].get(0)).to_kind(Kind::Double);
    let db = (s["layers.0.bias"].get(1) - s["layers.0.bias"].get(0)).to_kind(Kind::Double);
    let x = data.test.x.to_kind(Kind::Double).view([64, 16]) / 255.0;
    let sign_y = data.test.y.to_kind(Kind::Double) * 2.0 - 1.0; // +1 for class 1
    let eps = [0.0, 2.0 / 255.0, 0.1, 1.0];
    let got = fgsm::fgsm(&m, &data, Part::Test, &eps, Some(50)).unwrap();
    for (r, e) in got.iter().zip(eps) {
        let step = sign_y.view([64, 1]) * dw.sign().view([1, 16]) * (-e);
        let adv = (&x + step).clamp(0.0, 1.0);
        let z = ((adv - 0.4) / 0.25).matmul(&dw) + &db;
        let ok = (z * &sign_y).gt(0.0).narrow(0, 0, 50);
        let expected = ok
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[]);
        assert!(
            close(r.acc, expected, 1e-12),
            "eps {e}: {} vs {expected}",
            r.acc
        );
    }
}

#[test]
fn fgsm_at_eps_zero_is_clean_accuracy_and_eps_out_of_range_is_refused() {
    let data = images(40, [1, 8, 8], 3, 13);
    let m = tiny_resnet(14);
    let clean = minima::metrics::evaluate::evaluate(&m, &data, Part::Test);
    let r = fgsm::fgsm(&m, &data, Part::Test, &[0.0], None).unwrap();
    assert_eq!(r[0].acc, clean.acc);
    assert!(close(r[0].loss, clean.loss, 1e-6));
    let e = fgsm::fgsm(&m, &data, Part::Test, &[1.5], None).unwrap_err();
    assert!(e.to_string().contains("[0, 1]"), "{e}");
}

#[test]
fn margins_are_true_logit_minus_best_other_and_positive_exactly_when_correct() {
    let data = images(30, [1, 4, 4], 4, 15);
    let m = mlp(vec![1, 4, 4], &[5], 4, 16);
    let got = margins::margins(&m, &data, Part::Train).unwrap();
    let logits =
        tch::no_grad(|| m.forward_t(&data.materialize(Part::Train).x, false)).to_kind(Kind::Double);
    let logits = Vec::<Vec<f64>>::try_from(logits).unwrap();
    let labels = Vec::<i64>::try_from(&data.train.y).unwrap();
    for ((row, &y), found) in logits.iter().zip(&labels).zip(&got) {
        let other = row
            .iter()
            .enumerate()
            .filter(|(j, _)| *j as i64 != y)
            .map(|(_, v)| *v)
            .fold(f64::NEG_INFINITY, f64::max);
        assert!(close(*found, row[y as usize] - other, 1e-6));
    }
    let acc = minima::metrics::evaluate::evaluate(&m, &data, Part::Train).acc;
    let positive = got.iter().filter(|v| **v > 0.0).count() as f64 / got.len() as f64;
    assert!(close(positive, acc, 1e-12));
}

#[test]
fn interpolation_ends_at_both_models_and_recomputes_batch_norm_averages() {
    let data = features(50, 3, 17);
    let (a, b) = (mlp(vec![3], &[4], 2, 18), mlp(vec![3], &[4], 2, 19));
    let opts = interpolate::Options {
        steps: 5,
        bn_batches: 2,
        batch_size: 16,
        seed: 0,
    };
    let points = interpolate::interpolate(&a, &b, &data, opts).unwrap();
    assert_eq!(
        points.iter().map(|p| p.alpha).collect::<Vec<_>>(),
        [0.0, 0.25, 0.5, 0.75, 1.0]
    );
    let ev = minima::metrics::evaluate::evaluate;
    assert_eq!(points[0].test, ev(&a, &data, Part::Test));
    assert_eq!(points[4].train, ev(&b, &data, Part::Train));

    // Batch norms: the plain average of per-batch statistics (update_bn).
    let data = images(32, [1, 8, 8], 3, 20);
    let m = tiny_resnet(21);
    let opts = interpolate::Options {
        steps: 2,
        bn_batches: 2,
        batch_size: 16,
        seed: 3,
    };
    interpolate::recompute_batch_norms(&m, &data, &opts).unwrap();
    let s = state(&m);
    let order = minima::rng::seeded(3, || Tensor::randperm(32, (Kind::Int64, Device::Cpu)));
    let (mut means, mut vars) = (Vec::new(), Vec::new());
    for k in 0..2 {
        let x = data.train_batch(&order.narrow(0, 16 * k, 16), None).x;
        let h = x.conv2d(
            &s["conv1.weight"],
            None::<Tensor>,
            [1, 1],
            [1, 1],
            [1, 1],
            1,
        );
        means.push(h.mean_dim([0i64, 2, 3].as_slice(), false, Kind::Float));
        vars.push(h.var_correction([0i64, 2, 3].as_slice(), 1, false));
    }
    let mean = (&means[0] + &means[1]) / 2.0;
    let var = (&vars[0] + &vars[1]) / 2.0;
    assert!(s["bn1.running_mean"].allclose(&mean, 1e-4, 1e-5, false));
    assert!(s["bn1.running_var"].allclose(&var, 1e-4, 1e-5, false));
}

const PRELUDE: &str = "let d = toy(#{ n_train: 10, n_test: 10 });\nlet m = model(#{ arch: \"mlp\", hidden: [8] }, d);\n";

#[test]
fn tracked_metrics_become_history_columns_at_their_cadence_and_match_the_functions() {
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "{PRELUDE}let r = train(m, d, #{{ epochs: 4, track: [\"norms\", \"distance_to_init\", \"fgsm\"], track_every: 2 }});
let h = r.history;
if h[0].contains(\"path_l2\") || !h[1].contains(\"fgsm_acc_8\") {{ throw \"cadence\"; }}
let n = norms(r.model);
if h[3].path_l2 != n.path_l2 || h[3].prod_spectral != n.prod_spectral {{ throw \"norms differ\"; }}
if h[3].distance_to_init_abs != distance(r.model, m, #{{ relative: false }}) {{ throw \"distance\"; }}
if h[3].fgsm_acc_0 != r.test_acc {{ throw \"fgsm at eps 0\"; }}
record(r);"
    );
    run_text(dir.path(), &script).unwrap();
    let h = minima::results::parquet::read_parquet(&dir.path().join("history.parquet")).unwrap();
    let col = h.column("path_l1").unwrap();
    assert_eq!(col.null_count(), 2);
    assert_eq!(
        h.column("track").unwrap().str().unwrap().get(0),
        Some("norms, distance_to_init, fgsm")
    );
}

#[test]
fn metric_rows_land_in_metrics_parquet_with_tags() {
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "{PRELUDE}let m2 = model(#{{ arch: \"mlp\", hidden: [8], seed: 1 }}, d);
record_metrics(fgsm(m, d, #{{ eps: [0, 0.1, 0.2] }}), #{{ init: \"random\" }});
record_metrics(interpolate(m, m2, d, #{{ steps: 4 }}));
record_metrics(norms(m), #{{ init: \"random\" }});
record_metrics(margins(m, d));"
    );
    run_text(dir.path(), &script).unwrap();
    let df = minima::results::parquet::read_parquet(&dir.path().join("metrics.parquet")).unwrap();
    assert_eq!(df.height(), 3 + 4 + 1 + 1);
    let ca = df.column("metric").unwrap().str().unwrap().clone();
    let metric: Vec<Option<&str>> = (0..df.height()).map(|i| ca.get(i)).collect();
    assert_eq!(metric.iter().filter(|m| **m == Some("fgsm")).count(), 3);
    assert_eq!(
        metric.iter().filter(|m| **m == Some("interpolate")).count(),
        4
    );
    assert_eq!(df.column("init").unwrap().null_count(), 5);
    for c in [
        "eps",
        "acc",
        "alpha",
        "test_loss",
        "path_l2",
        "median",
        "boundary_min",
    ] {
        assert!(df.column(c).is_ok(), "{c} missing");
    }
}

fn error_of(script: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    run_text(dir.path(), script).expect_err("the script should fail")
}

#[test]
fn bad_input_names_the_key_the_models_and_the_line() {
    let e = error_of(&format!(
        "{PRELUDE}train(m, d, #{{ epochs: 1, track: [\"norms\", \"sharpness\"] }});"
    ));
    assert!(
        e.contains(
            "`track` names \"sharpness\", which is not one of: norms, distance_to_init, fgsm"
        ),
        "{e}"
    );
    assert!(e.contains("test.rhai:3:1"), "{e}");
    let e = error_of(&format!("{PRELUDE}fgsm(m, d, #{{ eps: [0.1, 2] }});"));
    assert!(
        e.contains("`eps` must be an array of numbers in [0, 1]"),
        "{e}"
    );
    assert!(e.contains("found 2") && e.contains("test.rhai:3:1"), "{e}");
    let e = error_of(&format!("{PRELUDE}fgsm(m, d, #{{ epz: [0.1] }});"));
    assert!(e.contains("unknown key `epz` (did you mean `eps`?)"), "{e}");
    let other = "let c = model(#{ arch: \"mlp\", hidden: [4] }, d);\n";
    for call in ["distance(m, c)", "interpolate(m, c, d)"] {
        let e = error_of(&format!("{PRELUDE}{other}{call};"));
        assert!(e.contains("of one architecture"), "{e}");
        assert!(e.contains("mlp [8]") || e.contains("[8]"), "{e}");
        assert!(e.contains("[4]") && e.contains("test.rhai:4:1"), "{e}");
    }
    let e = error_of(&format!("{PRELUDE}interpolate(m, m, d, #{{ steps: 1 }});"));
    assert!(e.contains("`steps` = 1 is out of range"), "{e}");
}
