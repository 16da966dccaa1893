//! Property tests: random config maps, wrong types and truncated scripts always
//! end in a result or an error with a script position, never a panic.

use crate::common;
use common::host_in;
use proptest::prelude::*;

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        (-2i64..4).prop_map(|i| i.to_string()),
        prop::sample::select(vec!["0.0", "-0.5", "0.05", "1.0", "1.5", "1e308", "-1e-9"])
            .prop_map(String::from),
        Just("true".to_string()),
        Just("\"mlp\"".to_string()),
        Just("\"cnn\"".to_string()),
        Just("\"\"".to_string()),
        Just("()".to_string()),
        Just("[1, 2]".to_string()),
        Just("[]".to_string()),
        Just("[\"a\"]".to_string()),
        Just("[\"norms\", \"fgsm\"]".to_string()),
        Just("[0.0, 0.5]".to_string()),
        Just("#{ a: 1 }".to_string()),
    ]
}

const KEYS: &[&str] = &[
    "epochs",
    "batch_size",
    "lr",
    "momentum",
    "dampening",
    "weight_decay",
    "nesterov",
    "augment",
    "seed",
    "stop_at_train_acc",
    "check_every",
    "replicas",
    "zero_out",
    "n_train",
    "n_test",
    "arch",
    "hidden",
    "inputs",
    "classes",
    "width",
    "in_channels",
    "input_size",
    "augment_std",
    "augment_copies",
    "out",
    "titles",
    "x",
    "y",
    "by",
    "scale",
    "track",
    "track_every",
    "eps",
    "split",
    "examples",
    "buffers",
    "relative",
    "steps",
    "bn_batches",
    "root",
    "normalize",
    "format",
    "labels",
    "pad",
    "stratified",
    "momentun",
    "",
    "x y",
];

fn config_map() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::sample::select(KEYS), literal()), 0..5).prop_map(|pairs| {
        let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k:?}: {v}")).collect();
        format!("#{{ {} }}", body.join(", "))
    })
}

fn assert_positioned(script: &str) {
    let dir = tempfile::tempdir().unwrap();
    let host = host_in(&dir.path().join("out"), &[]);
    if let Err(e) = host.engine.run(script) {
        assert!(
            e.position().line().is_some(),
            "error without position: {e}\nscript:\n{script}"
        );
    }
}

const CALLS: &[&str] = &[
    "let d = toy({0});",
    "let d = toy(#{{ n_train: 3, n_test: 3 }}); let m = model({0}, d);",
    "let d = toy(#{{ n_train: 3, n_test: 3 }}); let r = random_labels(d, {0});",
    "let m = model({0} + #{{ width: 0.1 }}); m.layers();",
    "let m = model(#{{ arch: \"cnn\", classes: 2, width: 0.1 }}); load_model(m.save({0}));",
    "let d = dataset(\"cifar100\", {0} + #{{ root: \"/nonexistent\" }});",
    "let d = toy(#{{ n_train: 3, n_test: 3 }}); let s = d.subset(2, {0});",
    "let d = toy(#{{ n_train: 3, n_test: 3 }}); let m = model(#{{ arch: \"mlp\", hidden: [4] }}, d); train(m, d, {0});",
    "let d = toy(#{{ n_train: 3, n_test: 3 }}); let m = model(#{{ arch: \"mlp\", hidden: [4] }}, d); adversarial_init(m, d, {0} + #{{ epochs: 3 }});",
    "let d = toy(#{{ n_train: 3, n_test: 3 }}); let m = model(#{{ arch: \"mlp\", hidden: [4] }}, d); let r = train(m, d, #{{ epochs: 1 }}); record(r, {0});",
    "let d = toy(#{{ n_train: 3, n_test: 3 }}); let m = model(#{{ arch: \"mlp\", hidden: [4] }}, d); let r = train(m, d, #{{ epochs: 1 }}); plot_boundaries([r], {0});",
    "let d = toy(#{{ n_train: 3, n_test: 3 }}); let m = model(#{{ arch: \"mlp\", hidden: [4] }}, d); distance(m, m, {0});",
    "let d = toy(#{{ n_train: 3, n_test: 3 }}); let m = model(#{{ arch: \"mlp\", hidden: [4] }}, d); fgsm(m, d, {0});",
    "let d = toy(#{{ n_train: 3, n_test: 3 }}); let m = model(#{{ arch: \"mlp\", hidden: [4] }}, d); margins(m, d, {0});",
    "let d = toy(#{{ n_train: 3, n_test: 3 }}); let m = model(#{{ arch: \"mlp\", hidden: [4] }}, d); interpolate(m, m, d, {0});",
    "let d = toy(#{{ n_train: 3, n_test: 3 }}); let m = model(#{{ arch: \"mlp\", hidden: [4] }}, d); record_metrics(fgsm(m, d), {0});",
    "let d = toy(#{{ n_train: 3, n_test: 3 }}); let m = model(#{{ arch: \"mlp\", hidden: [4] }}, d); record(train(m, d, #{{ epochs: 1 }})); plot_curves(read_results(run_dir(), \"history\"), {0} + #{{ x: \"epoch\" }});",
    "let configs = grid({0}); sweep(configs, |cfg| cfg.index);",
];

const SCRIPT: &str = r#"import "paper" as paper;
let seed = param("seed", 0);
let data = toy(#{ seed: seed, n_train: 4, n_test: 4 });
let init = model(#{ arch: "mlp", hidden: [6], seed: seed }, data);
let a = train(init, data, paper::vanilla() + #{ epochs: 2, batch_size: 3 });
let b = adversarial_init(init, data, #{ epochs: 3, batch_size: 3 });
let c = train(b.model, data, paper::sota() + #{ epochs: 2, batch_size: 3 });
for run in [a, b, c] {
    let margin = boundary_distance(run.model, run.data);
    record(run, #{ boundary_min: margin.min, fresh: evaluate(run.model, data).test_acc });
    record_metrics(fgsm(run.model, data, #{ eps: [0, 0.1] }) + [norms(run.model)]);
}
print(plot_boundaries([a, b, c], #{ out: "p.png", titles: ["a", "b", "c"] }));
"#;

/// Cases per property: 96, short enough for CI; `PROPTEST_CASES=N` for a long run
/// (docs/ARCHITECTURE.md, "Fuzzing").
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(96)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn random_config_maps_never_panic(call in prop::sample::select(CALLS), map in config_map()) {
        assert_positioned(&call.replace("{0}", &map).replace("{{", "{").replace("}}", "}"));
    }

    #[test]
    fn wrong_argument_types_never_panic(
        f in prop::sample::select(vec!["toy", "dataset", "subset", "model", "train", "adversarial_init", "random_labels",
                                       "record", "evaluate", "boundary_distance", "distance",
                                       "plot_boundaries", "param", "run_dir", "load_model",
                                       "save", "layers", "copy", "params", "norms", "fgsm",
                                       "margins", "interpolate", "record_metrics", "read_results",
                                       "filter", "select", "sort", "group_by", "agg", "pivot",
                                       "column", "row", "head", "show", "write_parquet",
                                       "plot_curves", "grid", "sweep"]),
        args in prop::collection::vec(literal(), 0..4),
    ) {
        assert_positioned(&format!("{f}({});", args.join(", ")));
    }

    #[test]
    fn truncated_scripts_never_panic(cut in 0usize..SCRIPT.len()) {
        let mut end = cut;
        while !SCRIPT.is_char_boundary(end) { end -= 1; }
        assert_positioned(&SCRIPT[..end]);
    }
}

#[test]
fn the_untruncated_script_runs() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_in(&dir.path().join("out"), &[]);
    host.engine.run(SCRIPT).unwrap();
    assert!(dir.path().join("out/p.png").is_file());
}
