//! Training behaviour on small real computations, driven through scripts.

use crate::common;
use common::host_in;
use rhai::Map;
use tch::Tensor;

fn eval_map(script: &str) -> Map {
    let dir = tempfile::tempdir().unwrap();
    let host = host_in(dir.path(), &[]);
    host.engine
        .eval::<Map>(script)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn f(m: &Map, k: &str) -> f64 {
    m[k].as_float()
        .unwrap_or_else(|_| m[k].as_int().unwrap() as f64)
}

#[test]
fn vanilla_sgd_fits_separable_data_to_full_train_accuracy() {
    let m = eval_map(
        r#"
        let d = toy(#{ n_train: 20, n_test: 20, seed: 3 });
        let r = train(model(#{ arch: "mlp", hidden: [32] }, d), d,
                      #{ lr: 0.1, batch_size: 10, epochs: 300, stop_at_train_acc: 1.0 });
        #{ status: r.status, acc: r.train_acc, epochs: r.epochs, test: r.test_acc,
           hist: r.history.len(), last: r.history[-1].epoch }
        "#,
    );
    assert_eq!(m["status"].to_string(), "reached_target");
    assert_eq!(f(&m, "acc"), 1.0);
    assert!(f(&m, "test") > 0.9, "{m:?}");
    assert_eq!(f(&m, "hist"), f(&m, "epochs"));
    assert_eq!(f(&m, "last"), f(&m, "epochs"));
}

#[test]
fn adversarial_init_memorises_random_labels() {
    let m = eval_map(
        r#"
        let d = toy(#{ n_train: 10, n_test: 50, seed: 1 });
        let init = model(#{ arch: "mlp", hidden: [64, 64], seed: 2 }, d);
        let adv = adversarial_init(init, d, #{ lr: 0.1, batch_size: 10, epochs: 20000, seed: 5 });
        let true_fit = evaluate(adv.model, d);
        #{ status: adv.status, acc: adv.train_acc, n: adv.data.n_train, labels: adv.data.labels,
           true_acc: true_fit.train_acc, kind: adv.kind }
        "#,
    );
    assert_eq!(m["status"].to_string(), "reached_target", "{m:?}");
    assert_eq!(f(&m, "acc"), 1.0);
    assert_eq!(f(&m, "n"), 20.0);
    assert_eq!(m["labels"].to_string(), "random");
    assert_eq!(m["kind"].to_string(), "adversarial_init");
    // Fitting random labels must not also fit the true ones.
    assert!(f(&m, "true_acc") < 0.9, "{m:?}");
}

#[test]
fn training_copies_the_model_and_is_deterministic() {
    let m = eval_map(
        r#"
        let d = toy(#{ n_train: 10, n_test: 10 });
        let init = model(#{ arch: "mlp", hidden: [16], seed: 4 }, d);
        let again = model(#{ arch: "mlp", hidden: [16], seed: 4 }, d);
        let other = model(#{ arch: "mlp", hidden: [16], seed: 5 }, d);
        let cfg = #{ lr: 0.05, batch_size: 4, epochs: 3, seed: 9 };
        let r1 = train(init, d, cfg);
        let r2 = train(init, d, cfg);
        let r3 = train(init, d, cfg + #{ seed: 10 });
        #{ same_init: distance(init, again), other_init: distance(init, other),
           moved: distance(init, r1.model), repeat: distance(r1.model, r2.model),
           reseeded: distance(r1.model, r3.model), recorded: r1.distance_from_init }
        "#,
    );
    assert_eq!(f(&m, "same_init"), 0.0, "same seed, same weights");
    assert!(f(&m, "other_init") > 0.1);
    assert!(
        f(&m, "moved") > 0.0,
        "the run's model moved away from the init"
    );
    assert_eq!(f(&m, "repeat"), 0.0, "same config, same result bit for bit");
    assert!(
        f(&m, "reseeded") > 0.0,
        "the train seed changes batch order"
    );
    // distance_from_init is d(W0, Wt) = |Wt - W0| / |Wt|; distance(a, b) divides by |b|.
    assert!((f(&m, "recorded") - f(&m, "moved")).abs() < 1e-9, "{m:?}");
}

#[test]
fn toy_data_follows_the_papers_recipe() {
    let m = eval_map(
        r#"
        let d = toy(#{ n_train: 2000, n_test: 1, seed: 7 });
        #{ n: d.n_train, classes: d.num_classes, shape: d.input_shape }
        "#,
    );
    assert_eq!(f(&m, "n"), 4000.0);
    assert_eq!(f(&m, "classes"), 2.0);
    let dev = tch::Device::Cpu;
    let d = minima::data::toy::toy(
        &minima::data::toy::ToyOptions {
            n_train: 20000,
            n_test: 1,
            seed: 1,
            ..minima::data::toy::ToyOptions::defaults().unwrap()
        },
        dev,
    );
    // Class 0 is centred at 0.1·2 − 0.65 in x1, class 1 at 0.1·2 + 0.65; std 0.15.
    let x = &d.train.x;
    let y = &d.train.y;
    for (class, cx) in [(0i64, 0.2 - 0.65), (1, 0.2 + 0.65)] {
        let rows = x.index_select(0, &y.eq(class).nonzero().squeeze_dim(1));
        let mean: Vec<f64> = Vec::try_from(rows.mean_dim(0, false, tch::Kind::Double)).unwrap();
        let std: Vec<f64> =
            Vec::try_from(rows.std_dim(0, true, false).to_kind(tch::Kind::Double)).unwrap();
        assert!(
            (mean[0] - cx).abs() < 0.01 && (mean[1] - 0.2).abs() < 0.01,
            "{mean:?}"
        );
        assert!(
            (std[0] - 0.15).abs() < 0.01 && (std[1] - 0.15).abs() < 0.01,
            "{std:?}"
        );
    }
}

#[test]
fn random_label_copies_are_replicated_masked_and_relabelled() {
    use minima::data::random_labels::{random_labels, RandomLabelOptions};
    use minima::data::toy::{toy, ToyOptions};
    use minima::data::Part;
    use tch::Kind;
    let d = toy(
        &ToyOptions {
            n_train: 5000,
            ..ToyOptions::defaults().unwrap()
        },
        tch::Device::Cpu,
    );
    let o = RandomLabelOptions {
        replicas: 3,
        zero_out: 0.5,
        seed: 11,
    };
    let r = random_labels(&d, &o);
    assert_eq!(r.len(Part::Train), 3 * d.len(Part::Train));
    assert_eq!(r.len(Part::Test), d.len(Part::Test));
    let all = r.materialize(Part::Train);
    // Exactly ⌊0.5 · 2⌋ = 1 of each copy's 2 values is zeroed, the other kept.
    let zeros = all.x.eq(0.0).sum_dim_intlist(1, false, Kind::Int64);
    assert!(zeros.eq(1).all().int64_value(&[]) == 1);
    let copies = d.train.x.repeat_interleave_self_int(3, 0, None);
    let kept = all.x.ne(0.0);
    assert!(all
        .x
        .masked_select(&kept)
        .equal(&copies.masked_select(&kept)));
    // Which coordinate is zeroed is a fair coin per copy.
    let first = all
        .x
        .select(1, 0)
        .eq(0.0)
        .to_kind(Kind::Double)
        .mean(Kind::Double)
        .double_value(&[]);
    assert!((first - 0.5).abs() < 0.02, "{first}");
    // Labels are uniform and independent of the true ones.
    let true_y = d.train.y.repeat_interleave_self_int(3, 0, None);
    let agree = all
        .y
        .eq_tensor(&true_y)
        .to_kind(Kind::Double)
        .mean(Kind::Double)
        .double_value(&[]);
    assert!(
        (agree - 0.5).abs() < 0.02,
        "agreement with true labels {agree}"
    );
    // A view: the same copies in any batch order, and from the same seed.
    let idx = Tensor::from_slice(&[14_999i64, 3, 7]);
    let some = r.train_batch(&idx, None);
    assert!(
        some.x.equal(&all.x.index_select(0, &idx)) && some.y.equal(&all.y.index_select(0, &idx))
    );
    assert!(random_labels(&d, &o)
        .materialize(Part::Train)
        .x
        .equal(&all.x));
    let other = random_labels(&d, &RandomLabelOptions { seed: 12, ..o }).materialize(Part::Train);
    assert!(!other.y.equal(&all.y));
}

#[test]
fn zero_out_zeroes_exactly_the_authors_count_per_copy() {
    let o = minima::data::RandomLabelOptions {
        replicas: 20,
        zero_out: 0.1,
        seed: 3,
    };
    let x = Tensor::ones([64, 3, 8, 8], (tch::Kind::Uint8, tch::Device::Cpu));
    let index = Tensor::arange(64, (tch::Kind::Int64, tch::Device::Cpu));
    let z = o.zero_out(&x, &index);
    // int(192 · 0.1) = 19 values per copy, as confusion_data_generation.py.
    let per_copy = z
        .eq(0)
        .view([64, -1])
        .sum_dim_intlist(1, false, tch::Kind::Int64);
    assert!(per_copy.eq(19).all().int64_value(&[]) == 1);
    let masks = z.view([64, -1]);
    assert!(
        !masks.get(0).equal(&masks.get(1)),
        "copies get different masks"
    );
}

#[test]
fn identical_copies_with_random_labels_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = common::run_text(
        dir.path(),
        "let d = toy();\nlet r = random_labels(d, #{ replicas: 3 });",
    )
    .unwrap_err();
    assert!(e.contains("replicas = 3 with zero_out = 0"), "{e}");
    assert!(e.contains("test.rhai:2:9"), "{e}");
}

/// The authors' toy augmentation: each point as it is plus two noisy copies
/// (N(0, 0.1²) per coordinate) per augmented epoch.
#[test]
fn toy_augmentation_can_keep_each_original_point() {
    use minima::data::toy::{toy, ToyOptions};
    use minima::data::Part;
    use tch::{Kind, Tensor};
    let d = toy(
        &ToyOptions {
            n_train: 2000,
            augment_original: true,
            ..ToyOptions::defaults().unwrap()
        },
        tch::Device::Cpu,
    );
    let n = d.len(Part::Train);
    assert_eq!(d.epoch_len(true), 3 * n);
    assert_eq!(d.epoch_len(false), n);
    let index = Tensor::arange(3 * n, (Kind::Int64, tch::Device::Cpu));
    let b = d.train_batch(&index, Some(5));
    assert!(
        b.x.narrow(0, 0, n).equal(&d.train.x),
        "the originals are kept"
    );
    for copy in 1..3 {
        let noise = b.x.narrow(0, copy * n, n) - &d.train.x;
        let std = noise.std(true).double_value(&[]);
        assert!((std - 0.1).abs() < 0.005, "copy {copy}: noise std {std}");
        assert!(b.y.narrow(0, copy * n, n).equal(&d.train.y));
    }
}

#[test]
fn augmented_train_scoring_sees_augmented_copies_and_leaves_training_alone() {
    // The authors' code scores train accuracy on its augmenting training loader;
    // `train_eval: "augmented"` does so, and must change nothing else.
    let m = eval_map(
        r#"
        let d = toy(#{ n_train: 20, n_test: 20, seed: 3 });
        let m = model(#{ arch: "mlp", hidden: [16] }, d);
        let cfg = #{ lr: 0.1, batch_size: 10, epochs: 3, augment: true, seed: 5 };
        let clean = train(m, d, cfg);
        let aug = train(m, d, cfg + #{ train_eval: "augmented" });
        let again = train(m, d, cfg + #{ train_eval: "augmented" });
        let plain = #{ lr: 0.1, batch_size: 10, epochs: 3, seed: 5 };
        #{ clean: clean.train_loss, clean_scored: evaluate(clean.model, d).train_loss,
           aug: aug.train_loss, again: again.train_loss,
           clean_test: clean.test_loss, aug_test: aug.test_loss,
           clean_batches: clean.history[-1].batch_loss, aug_batches: aug.history[-1].batch_loss,
           plain: train(m, d, plain).train_loss,
           plain_aug: train(m, d, plain + #{ train_eval: "augmented" }).train_loss }
        "#,
    );
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
    assert!(rel(f(&m, "clean"), f(&m, "clean_scored")) < 1e-6, "{m:?}");
    assert_eq!(f(&m, "aug_test"), f(&m, "clean_test"), "{m:?}");
    assert_eq!(f(&m, "aug_batches"), f(&m, "clean_batches"), "{m:?}");
    assert!(rel(f(&m, "aug"), f(&m, "clean")) > 1e-4, "{m:?}");
    assert_eq!(f(&m, "again"), f(&m, "aug"), "{m:?}");
    // Without augmentation there is nothing to augment: the clean score.
    assert_eq!(f(&m, "plain_aug"), f(&m, "plain"), "{m:?}");
}
