//! The architectures: parameter counts, output shapes, seeding, batch-norm modes,
//! save/load, state names, the script API and every bad-input message.

use crate::common;
use common::{host_in, run_text};
use minima::data::{Augmentation, Dataset, Inputs, Split};
use minima::models::{Arch, Model, ModelSpec};
use minima::results::parquet::read_parquet;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use tch::{Device, Kind, Tensor};

fn spec(arch: Arch, width: f64, shape: &[i64], classes: i64) -> ModelSpec {
    ModelSpec {
        arch,
        hidden: if arch == Arch::Mlp {
            vec![100, 100]
        } else {
            Vec::new()
        },
        width,
        input_shape: shape.to_vec(),
        classes,
        seed: 0,
    }
}

fn build(arch: Arch, width: f64, shape: &[i64], classes: i64) -> Model {
    Model::new(spec(arch, width, shape, classes), Device::Cpu).unwrap()
}

const CONV: [Arch; 5] = [
    Arch::Cnn,
    Arch::Vgg16,
    Arch::Resnet18,
    Arch::Resnet50,
    Arch::Densenet40,
];

/// A small width per arch that keeps tests fast.
fn small(arch: Arch) -> f64 {
    match arch {
        Arch::Resnet50 => 0.0625,
        Arch::Densenet40 => 0.25,
        _ => 0.125,
    }
}

#[test]
fn parameter_counts_are_the_papers_and_follow_the_formula() {
    // (arch, count for 3 channels and 10 classes, stem output channels, features
    // entering the last linear layer), as docs/MODELS.md lists them.
    let table = [
        (Arch::Resnet18, 11_173_962, 64, 512),
        (Arch::Resnet50, 23_520_842, 64, 2048),
        (Arch::Vgg16, 14_728_266, 64, 512),
        (Arch::Densenet40, 176_122, 24, 132),
        (Arch::Cnn, 545_098, 32, 128),
    ];
    for (arch, count, stem, features) in table {
        assert_eq!(
            build(arch, 1.0, &[3, 32, 32], 10).num_parameters(),
            count,
            "{arch}"
        );
        // One input channel and 100 classes: the stem's 3x3 kernels lose two
        // channels, the last layer gains 90 rows of features + 1.
        let other = count - 2 * stem * 9 + 90 * (features + 1);
        assert_eq!(
            build(arch, 1.0, &[1, 32, 32], 100).num_parameters(),
            other,
            "{arch} with 1 channel, 100 classes"
        );
        // The estimate that refuses impossible models before building them.
        assert_eq!(
            spec(arch, 1.0, &[3, 32, 32], 10).estimated_parameters(),
            count as f64
        );
        assert_eq!(
            spec(arch, 1.0, &[1, 32, 32], 100).estimated_parameters(),
            other as f64
        );
        let w = small(arch);
        let real = build(arch, w, &[1, 32, 32], 100).num_parameters() as f64;
        let estimate = spec(arch, w, &[1, 32, 32], 100).estimated_parameters();
        assert!(
            (estimate / real - 1.0).abs() < 0.1,
            "{arch} width {w}: {estimate} vs {real}"
        );
    }
    // 2 → 100 → 100 → 2: (2+1)·100 + (100+1)·100 + (100+1)·2.
    assert_eq!(build(Arch::Mlp, 1.0, &[2], 2).num_parameters(), 10_602);
}

#[test]
fn a_model_larger_than_memory_is_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    // 2 → 1e6 → 1e6 → 2: about 1e12 parameters, 4 TB of f32.
    let e = run_text(
        dir.path(),
        "let d = toy();\nlet m = model(#{ arch: \"mlp\", hidden: [1000000, 1000000] }, d);",
    )
    .unwrap_err();
    assert!(
        e.contains("error: the mlp 2 → [1000000, 1000000] → 2 needs about 4.0 TB (4.000e12 bytes), more than the"),
        "{e}"
    );
    assert!(
        e.contains("of memory available (MemAvailable in /proc/meminfo)"),
        "{e}"
    );
    assert!(e.contains("test.rhai:2:"), "{e}");
    // A conv net 64 times the paper's width: ~4096 × 11M parameters.
    let e = run_text(
        dir.path(),
        "let m = model(#{ arch: \"resnet18\", width: 64.0, classes: 10 });",
    )
    .unwrap_err();
    assert!(
        e.contains("error: the resnet18 width 64 on 3x32x32 inputs"),
        "{e}"
    );
}

#[test]
fn width_scales_every_channel_count() {
    let m = build(Arch::Resnet18, 0.25, &[3, 32, 32], 10);
    let shapes: HashMap<String, Vec<i64>> =
        m.state().into_iter().map(|(n, t)| (n, t.size())).collect();
    assert_eq!(shapes["conv1.weight"], [16, 3, 3, 3]);
    assert_eq!(shapes["layer4.1.conv2.weight"], [128, 128, 3, 3]);
    assert_eq!(shapes["linear.weight"], [10, 128]);
    let d = build(Arch::Densenet40, 0.5, &[3, 32, 32], 10);
    let shapes: HashMap<String, Vec<i64>> =
        d.state().into_iter().map(|(n, t)| (n, t.size())).collect();
    // growth 6: stem 12, bottleneck 24, each layer adds 6.
    assert_eq!(shapes["conv1.weight"], [12, 3, 3, 3]);
    assert_eq!(shapes["block1.layer.0.conv1.weight"], [24, 12, 1, 1]);
    assert_eq!(shapes["block1.layer.5.conv2.weight"], [6, 24, 3, 3]);
    assert_eq!(shapes["trans1.conv1.weight"], [24, 48, 1, 1]);
}

fn random(shape: &[i64], seed: i64) -> Tensor {
    minima::rng::seeded(seed, || Tensor::randn(shape, (Kind::Float, Device::Cpu)))
}

#[test]
fn outputs_for_28_and_32_pixel_inputs_with_1_and_3_channels() {
    for arch in CONV {
        for channels in [1, 3] {
            // 28x28 images zero-padded to 32x32, and 32x32 images.
            let padded = random(&[2, channels, 28, 28], 1).constant_pad_nd([2, 2, 2, 2]);
            let m = build(arch, small(arch), &[channels, 32, 32], 10);
            for x in [padded, random(&[2, channels, 32, 32], 2)] {
                for train in [true, false] {
                    let y = tch::no_grad(|| m.forward_t(&x, train));
                    assert_eq!(y.size(), [2, 10], "{arch}, {channels} channels");
                    assert!(y.isfinite().all().int64_value(&[]) == 1, "{arch}");
                }
            }
            // Unpadded 28x28 works wherever the architecture allows it.
            if arch != Arch::Vgg16 {
                let m = build(arch, small(arch), &[channels, 28, 28], 7);
                let y = tch::no_grad(|| m.forward_t(&random(&[3, channels, 28, 28], 3), false));
                assert_eq!(y.size(), [3, 7], "{arch} on 28x28");
            }
        }
    }
}

fn same_state(a: &Model, b: &Model) -> bool {
    let (a, b) = (a.state(), b.state());
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|((na, ta), (nb, tb))| na == nb && ta.equal(tb))
}

#[test]
fn the_same_seed_gives_the_same_weights_bit_for_bit() {
    for arch in CONV.into_iter().chain([Arch::Mlp]) {
        let shape: &[i64] = if arch == Arch::Mlp {
            &[2]
        } else {
            &[3, 32, 32]
        };
        let mut s = spec(arch, small(arch), shape, 10);
        s.seed = 5;
        let a = Model::new(s.clone(), Device::Cpu).unwrap();
        let b = Model::new(s.clone(), Device::Cpu).unwrap();
        assert!(same_state(&a, &b), "{arch}: same seed");
        s.seed = 6;
        let c = Model::new(s, Device::Cpu).unwrap();
        assert!(!same_state(&a, &c), "{arch}: another seed");
        assert!(same_state(&a, &a.copy().unwrap()), "{arch}: copy");
    }
}

fn buffers(m: &Model) -> Vec<(String, Tensor)> {
    m.state()
        .into_iter()
        .filter(|(_, t)| !t.requires_grad())
        .map(|(n, t)| (n, t.copy()))
        .collect()
}

#[test]
fn batch_norm_statistics_change_only_in_training_mode() {
    for arch in [Arch::Vgg16, Arch::Resnet18, Arch::Densenet40] {
        let m = build(arch, small(arch), &[3, 32, 32], 10);
        let x = random(&[4, 3, 32, 32], 4);
        let before = buffers(&m);
        assert!(!before.is_empty(), "{arch} has batch-norm buffers");
        let y1 = tch::no_grad(|| m.forward_t(&x, false));
        let y2 = tch::no_grad(|| m.forward_t(&x, false));
        assert!(y1.equal(&y2), "{arch}: eval mode is deterministic");
        for ((name, a), (_, b)) in before.iter().zip(buffers(&m)) {
            assert!(a.equal(&b), "{arch}: eval changed {name}");
        }
        let _ = tch::no_grad(|| m.forward_t(&x, true));
        for ((name, a), (_, b)) in before.iter().zip(buffers(&m)) {
            if name.ends_with("num_batches_tracked") {
                assert_eq!(b.int64_value(&[]), 1, "{arch}: {name}");
            } else {
                assert!(!a.equal(&b), "{arch}: training left {name} unchanged");
            }
        }
        let y3 = tch::no_grad(|| m.forward_t(&x, false));
        assert!(!y3.equal(&y1), "{arch}: eval uses the running statistics");
    }
}

#[test]
fn save_then_load_gives_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    for arch in CONV.into_iter().chain([Arch::Mlp]) {
        let shape: &[i64] = if arch == Arch::Mlp {
            &[2]
        } else {
            &[1, 32, 32]
        };
        let mut s = spec(arch, small(arch), shape, 3);
        s.seed = 9;
        let m = Model::new(s, Device::Cpu).unwrap();
        let mut batch = vec![5];
        batch.extend(shape);
        let x = random(&batch, 8);
        let _ = tch::no_grad(|| m.forward_t(&x, true));
        let path = dir.path().join(format!("{arch}.safetensors"));
        m.save(&path).unwrap();
        let loaded = Model::load(&path, Device::Cpu).unwrap();
        assert_eq!(loaded.spec, m.spec);
        assert!(same_state(&m, &loaded), "{arch}");
        let (a, b) = tch::no_grad(|| (m.forward_t(&x, false), loaded.forward_t(&x, false)));
        assert!(a.equal(&b), "{arch}: outputs");
    }
}

fn names(arch: Arch) -> Vec<String> {
    let shape: &[i64] = if arch == Arch::Mlp {
        &[2]
    } else {
        &[3, 32, 32]
    };
    let mut s = spec(arch, small(arch), shape, 10);
    s.hidden = vec![8];
    Model::new(s, Device::Cpu)
        .unwrap()
        .state()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

const BN: [&str; 5] = [
    "weight",
    "bias",
    "running_mean",
    "running_var",
    "num_batches_tracked",
];

fn bn(prefix: &str) -> Vec<String> {
    BN.iter().map(|b| format!("{prefix}.{b}")).collect()
}

#[test]
fn state_names_are_the_documented_pytorch_names() {
    assert_eq!(
        names(Arch::Mlp),
        [
            "layers.0.weight",
            "layers.0.bias",
            "layers.2.weight",
            "layers.2.bias"
        ]
    );
    assert_eq!(
        names(Arch::Cnn),
        [
            "features.0.weight",
            "features.0.bias",
            "features.3.weight",
            "features.3.bias",
            "classifier.0.weight",
            "classifier.0.bias",
            "classifier.2.weight",
            "classifier.2.bias"
        ]
    );

    let vgg = names(Arch::Vgg16);
    let mut start = vec!["features.0.weight".to_string(), "features.0.bias".into()];
    start.extend(bn("features.1"));
    start.push("features.3.weight".into());
    assert_eq!(vgg[..start.len()], start[..]);
    assert_eq!(vgg.len(), 13 * 2 + 13 * 5 + 2);
    assert!(vgg.contains(&"features.40.weight".into()));
    assert!(vgg.contains(&"features.41.running_var".into()));
    assert_eq!(
        vgg[vgg.len() - 2..],
        ["classifier.weight", "classifier.bias"]
    );

    let r18 = names(Arch::Resnet18);
    let mut start = vec!["conv1.weight".to_string()];
    start.extend(bn("bn1"));
    start.push("layer1.0.conv1.weight".into());
    start.extend(bn("layer1.0.bn1"));
    assert_eq!(r18[..start.len()], start[..]);
    for name in [
        "layer2.0.shortcut.0.weight",
        "layer2.0.shortcut.1.num_batches_tracked",
        "layer4.1.bn2.running_mean",
    ] {
        assert!(r18.contains(&name.to_string()), "{name}");
    }
    assert!(!r18.iter().any(|n| n.starts_with("layer1.0.shortcut")));
    assert_eq!(r18[r18.len() - 2..], ["linear.weight", "linear.bias"]);

    let r50 = names(Arch::Resnet50);
    for name in [
        "layer1.0.conv3.weight",
        "layer1.0.shortcut.0.weight",
        "layer3.5.bn3.running_var",
        "layer4.2.conv3.weight",
    ] {
        assert!(r50.contains(&name.to_string()), "{name}");
    }
    assert!(!r50.iter().any(|n| n.starts_with("layer1.1.shortcut")));

    let dn = names(Arch::Densenet40);
    let mut start = vec!["conv1.weight".to_string()];
    start.extend(bn("block1.layer.0.bn1"));
    start.push("block1.layer.0.conv1.weight".into());
    start.extend(bn("block1.layer.0.bn2"));
    start.push("block1.layer.0.conv2.weight".into());
    assert_eq!(dn[..start.len()], start[..]);
    for name in [
        "trans1.conv1.weight",
        "trans2.bn1.running_mean",
        "block3.layer.5.conv2.weight",
        "bn1.num_batches_tracked",
    ] {
        assert!(dn.contains(&name.to_string()), "{name}");
    }
    assert!(!dn
        .iter()
        .any(|n| n.starts_with("trans3") || n.starts_with("block4")));
    assert_eq!(dn[dn.len() - 2..], ["fc.weight", "fc.bias"]);
}

/// A small image data set (`shape` per example) as the image loaders make them.
fn images(name: &str, shape: &[i64], n: i64, classes: i64) -> Rc<Dataset> {
    let split = |seed: i64| {
        let mut dims = vec![n];
        dims.extend(shape);
        let (x, y) = minima::rng::seeded(seed, || {
            (
                Tensor::randint(256, &dims, (Kind::Uint8, Device::Cpu)),
                Tensor::randint(classes, [n], (Kind::Int64, Device::Cpu)),
            )
        });
        Split { x, y }
    };
    Rc::new(Dataset {
        name: name.into(),
        train: split(1),
        test: split(2),
        classes: (0..classes).map(|c| c.to_string()).collect(),
        inputs: Inputs::Images {
            mean: vec![0.5; shape[0] as usize],
            std: vec![0.29; shape[0] as usize],
        },
        augmentation: Augmentation::CropFlip { pad: 4 },
        relabel: None,
        describe: Vec::new(),
    })
}

/// Runs `script` with `mnist` (1x28x28, 10 classes) and `cifar` (3x32x32, 10
/// classes) in scope; the error as users see it.
fn run_with_images(out: &Path, script: &str) -> Result<(), String> {
    let host = host_in(out, &[]);
    let mut scope = rhai::Scope::new();
    scope.push("mnist", images("mnist", &[1, 28, 28], 16, 10));
    scope.push("cifar", images("cifar", &[3, 32, 32], 16, 10));
    let result = host.engine.run_with_scope(&mut scope, script);
    host.session.finish("completed").unwrap();
    result.map_err(|e| {
        minima::host::diagnostics::format_error(
            &e,
            &minima::host::diagnostics::Source {
                name: "test.rhai",
                text: script,
            },
        )
    })
}

#[test]
fn scripts_build_inspect_save_load_and_train_models() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let script = r#"
        let m = model(#{ arch: "resnet18", width: 0.125, seed: 3 }, mnist);
        if m.input_shape != [1, 28, 28] || m.classes != 10 || m.width != 0.125 { throw "spec from data"; }
        let layers = m.layers();
        if layers[0].name != "conv1.weight" || layers[0].shape != [8, 1, 3, 3] || !layers[0].trainable {
            throw `first layer ${layers[0]}`;
        }
        if layers[3].name != "bn1.running_mean" || layers[3].trainable { throw `buffer ${layers[3]}`; }
        let path = m.save("init.safetensors");
        if !path.ends_with("run/init.safetensors") { throw path; }
        let back = load_model(path);
        if distance(back, m) != 0.0 || back.params() != m.params() { throw "load"; }
        if distance(m.copy(), m) != 0.0 { throw "copy"; }
        let r = train(m, mnist, #{ epochs: 1, batch_size: 8 });
        record(r);
        if distance(load_model(path), m) != 0.0 { throw "train changed its initial model"; }
        if distance(r.model, m) == 0.0 { throw "training moved nothing"; }
        let c = model(#{ arch: "vgg16", width: 0.125 }, cifar);
        record(train(c, cifar, #{ epochs: 1, batch_size: 8 }));
    "#;
    run_with_images(&out, script).unwrap();
    assert!(out.join("init.safetensors").exists());
    let summary = read_parquet(&out.join("summary.parquet")).unwrap();
    let column = |name: &str| format!("{:?}", summary.column(name).unwrap());
    assert!(column("arch").contains("resnet18") && column("arch").contains("vgg16"));
    assert!(column("width").contains("0.125"));
    assert!(column("in_channels").contains('1') && column("in_channels").contains('3'));
    assert!(column("input_size").contains("[28, 28]"));
    assert!(column("input_size").contains("[32, 32]"));
}

#[test]
fn model_and_spec_defaults_without_data() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_in(dir.path(), &[]);
    let shape: rhai::Array = host
        .engine
        .eval(r#"model(#{ arch: "densenet40", classes: 10 }).input_shape"#)
        .unwrap();
    let shape: Vec<i64> = shape.into_iter().map(|d| d.as_int().unwrap()).collect();
    assert_eq!(shape, [3, 32, 32]);
    let params: i64 = host
        .engine
        .eval(r#"model(#{ arch: "densenet40", classes: 10 }).params()"#)
        .unwrap();
    assert_eq!(params, 176_122);
}

fn error_of(script: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    run_with_images(dir.path(), script).expect_err("the script should fail")
}

fn assert_error(script: &str, expected: &str) {
    let e = error_of(script);
    assert!(e.contains(expected), "expected «{expected}» in:\n{e}");
    assert!(e.contains("test.rhai:1:"), "{e}");
}

#[test]
fn bad_specs_say_what_is_wrong() {
    assert_error(
        r#"model(#{ arch: "resnet9", classes: 10 });"#,
        r#"`arch` = "resnet9" is not one of: mlp, cnn, vgg16, resnet18, resnet50, densenet40"#,
    );
    assert_error(
        r#"model(#{ arch: "vgg16", classes: 10, input_size: 28 });"#,
        "vgg16 needs inputs from 32x32 to 63x63: its five 2x2 max-pools must leave a 1x1 map \
         for the linear layer on its 512 channels; found 28x28 (pad the images to 32x32)",
    );
    assert_error(
        r#"model(#{ arch: "vgg16" }, mnist);"#,
        "found 28x28 (pad the images to 32x32)",
    );
    assert_error(
        r#"model(#{ arch: "vgg16", classes: 10, input_size: 64 });"#,
        "found 64x64",
    );
    assert_error(
        r#"model(#{ arch: "densenet40", classes: 10, input_size: 3 });"#,
        "densenet40 needs inputs of at least 4x4 (it halves them twice); found 3x3",
    );
    assert_error(
        r#"model(#{ arch: "resnet18", hidden: [10] }, cifar);"#,
        "model spec: `hidden` applies to the mlp, not resnet18; conv archs are sized by `width`",
    );
    assert_error(
        r#"model(#{ arch: "cnn", inputs: 784 }, mnist);"#,
        "`inputs` applies to the mlp, not cnn; conv archs take `in_channels` and `input_size`",
    );
    assert_error(
        r#"model(#{ arch: "mlp", width: 0.5 }, mnist);"#,
        "`width` applies to the conv archs, not mlp; the mlp is sized by `hidden`",
    );
    assert_error(
        r#"model(#{ arch: "mlp", in_channels: 1 }, mnist);"#,
        "`in_channels` applies to the conv archs, not mlp; the mlp takes `inputs`",
    );
    assert_error(
        r#"model(#{ arch: "resnet18", width: 0 }, cifar);"#,
        "`width` = 0 is out of range: must be greater than 0",
    );
    assert_error(
        r#"model(#{ arch: "cnn" }, toy());"#,
        "cnn takes images [channels, height, width]; found inputs of shape [2]",
    );
    assert_error(
        r#"model(#{ arch: "resnet18", in_channels: 3 }, mnist);"#,
        "model spec: `in_channels` = 3 but the data set has 1",
    );
    assert_error(
        r#"model(#{ arch: "resnet18", input_size: 32 }, mnist);"#,
        "model spec: `input_size` = 32 but the data set's images are 28x28",
    );
    // 10^14 weights (400 TB): refused from the estimate, before libtorch allocates.
    assert_error(
        r#"model(#{ arch: "mlp", inputs: 10000000, hidden: [10000000], classes: 2 });"#,
        "the mlp 10000000 → [10000000] → 2 needs about 400.0 TB (4.000e14 bytes), more than",
    );
    assert_error(
        r#"model(#{ arch: "resnet18" });"#,
        "model spec: `classes` is needed when no data set is given",
    );
}

#[test]
fn models_refuse_data_of_another_shape() {
    assert_error(
        r#"train(model(#{ arch: "cnn", width: 0.125 }, cifar), mnist, #{ epochs: 1 });"#,
        "the cnn model takes 3x32x32 inputs (channels x height x width) but mnist examples are 1x28x28",
    );
    assert_error(
        r#"evaluate(model(#{ arch: "cnn", classes: 3, width: 0.125 }), cifar);"#,
        "the model has 3 output classes but the data set cifar has 10",
    );
    assert_error(
        r#"train(model(#{ arch: "mlp", hidden: [4] }, mnist), cifar, #{ epochs: 1 });"#,
        "the model takes 784 inputs but cifar examples have 3072 values",
    );
}

/// Writes a safetensors file holding `model`'s tensors and `metadata`.
fn write_file(path: &Path, model: &Model, metadata: Option<String>) {
    let state = model.state();
    let tensors: Vec<(&str, &Tensor)> = state.iter().map(|(n, t)| (n.as_str(), t)).collect();
    Tensor::write_safetensors(&tensors, path).unwrap();
    if let Some(json) = metadata {
        // Re-serialise with the metadata (tch writes none).
        let bytes = std::fs::read(path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let views = st.tensors();
        let meta = HashMap::from([("minima_model".to_string(), json)]);
        let data = safetensors::tensor::serialize(views, &Some(meta)).unwrap();
        std::fs::write(path, data).unwrap();
    }
}

fn load_error(path: &Path) -> String {
    let script = format!("load_model({:?});", path.display().to_string());
    error_of(&script)
}

#[test]
fn bad_model_files_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let e = load_error(&d.join("absent.safetensors"));
    assert!(
        e.contains("cannot read") && e.contains("absent.safetensors"),
        "{e}"
    );

    std::fs::write(d.join("text.safetensors"), "not a model").unwrap();
    let e = load_error(&d.join("text.safetensors"));
    assert!(
        e.contains("text.safetensors is not a safetensors file"),
        "{e}"
    );

    let cnn = build(Arch::Cnn, 0.125, &[3, 32, 32], 10);
    write_file(&d.join("bare.safetensors"), &cnn, None);
    let e = load_error(&d.join("bare.safetensors"));
    assert!(
        e.contains("bare.safetensors has no `minima_model` metadata saying which architecture"),
        "{e}"
    );

    write_file(&d.join("json.safetensors"), &cnn, Some("{arch".into()));
    let e = load_error(&d.join("json.safetensors"));
    assert!(e.contains("bad `minima_model` metadata {arch"), "{e}");

    // Metadata saying resnet18 on a cnn's tensors.
    let r18 = spec(Arch::Resnet18, 0.125, &[3, 32, 32], 10);
    let json = serde_json::to_string(&r18).unwrap();
    write_file(&d.join("other.safetensors"), &cnn, Some(json));
    let e = load_error(&d.join("other.safetensors"));
    assert!(
        e.contains("does not hold a resnet18 width 0.125 on 3x32x32 inputs → 10 classes"),
        "{e}"
    );
    assert!(
        e.contains("missing conv1.weight, bn1.weight, bn1.bias, bn1.running_mean"),
        "{e}"
    );
    assert!(
        e.contains("more; unexpected classifier.0.bias, classifier.0.weight"),
        "{e}"
    );

    // Right names, wrong sizes: a width-0.25 cnn under width-0.125 metadata.
    let wide = build(Arch::Cnn, 0.25, &[3, 32, 32], 10);
    let json = serde_json::to_string(&spec(Arch::Cnn, 0.125, &[3, 32, 32], 10)).unwrap();
    write_file(&d.join("shape.safetensors"), &wide, Some(json));
    let e = load_error(&d.join("shape.safetensors"));
    assert!(
        e.contains("tensor features.0.weight has shape [8, 3, 3, 3], the cnn needs [4, 3, 3, 3]"),
        "{e}"
    );

    // Metadata that no model can be built from.
    let json = serde_json::to_string(&spec(Arch::Vgg16, 0.125, &[3, 16, 16], 10)).unwrap();
    write_file(&d.join("impossible.safetensors"), &cnn, Some(json));
    let e = load_error(&d.join("impossible.safetensors"));
    assert!(
        e.contains("impossible.safetensors: vgg16 needs inputs from 32x32"),
        "{e}"
    );
}

#[test]
fn a_single_class_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = run_text(dir.path(), "let m = model(#{ arch: \"cnn\", classes: 1 });").unwrap_err();
    assert!(e.contains("`classes` = 1 is out of range"), "{e}");
}

/// The cnn on the CPU runs channels-last unless `MINIMA_CONV_LAYOUT=nchw`; both
/// follow one trajectory to rounding, and config.json names the layout.
#[test]
fn the_cnn_trains_alike_channels_last_and_nchw() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("fmnist");
    common::formats::fashion_mnist(&root, 64, 32, false, 11);
    let script = dir.path().join("s.rhai");
    let text = format!(
        r#"let d = dataset("fashion_mnist", #{{ root: "{}", pad: 2 }});
        let m = model(#{{ arch: "cnn", width: 0.25, seed: 1 }}, d);
        record(train(m, d, #{{ lr: 0.01, batch_size: 16, epochs: 3, seed: 2 }}));"#,
        root.display()
    );
    std::fs::write(&script, text).unwrap();
    let mut losses = Vec::new();
    for layout in ["channels_last", "nchw"] {
        let value = (layout == "nchw").then_some("nchw");
        let out = dir.path().join(layout);
        let (config, history) = common::run_recorded(&script, &out, ("MINIMA_CONV_LAYOUT", value));
        assert_eq!(
            config["conv_layout"], layout,
            "config.json names the layout"
        );
        losses.push(common::floats(&history, "train_loss"));
    }
    assert_eq!(losses[0].len(), 3);
    for (a, b) in losses[0].iter().zip(&losses[1]) {
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(
            (a - b).abs() <= 1e-5 * a.abs(),
            "train loss {a} against {b}"
        );
    }
}
