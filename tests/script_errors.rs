//! Bad scripts and bad configs give errors that name the problem and its position.

use crate::common;
use common::run_text;

fn error_of(script: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    run_text(dir.path(), script).expect_err("the script should fail")
}

const PRELUDE: &str = "let d = toy(#{ n_train: 5, n_test: 5 });\nlet m = model(#{ arch: \"mlp\", hidden: [8] }, d);\n";

#[test]
fn unknown_train_key_names_key_suggestion_allowed_keys_and_position() {
    let e = error_of(&format!(
        "{PRELUDE}let r = train(m, d, #{{ momentun: 0.9, epochs: 1 }});"
    ));
    assert!(
        e.contains("train config: unknown key `momentun` (did you mean `momentum`?)"),
        "{e}"
    );
    assert!(
        e.contains("allowed keys: epochs, batch_size, lr, momentum"),
        "{e}"
    );
    assert!(e.contains("--> test.rhai:3:9"), "{e}");
    assert!(e.contains("3 | let r = train(m, d, #{ momentun"), "{e}");
}

#[test]
fn wrong_type_and_out_of_range_values_are_named() {
    let e = error_of(&format!(
        "{PRELUDE}train(m, d, #{{ batch_size: \"big\" }});"
    ));
    assert!(
        e.contains("`batch_size` must be an integer, found a string"),
        "{e}"
    );
    assert!(e.contains("test.rhai:3:1"), "{e}");
    let e = error_of(&format!("{PRELUDE}train(m, d, #{{ lr: -0.1 }});"));
    assert!(
        e.contains("`lr` = -0.1 is out of range: must be greater than 0"),
        "{e}"
    );
    let e = error_of(&format!(
        "{PRELUDE}train(m, d, #{{ stop_at_train_acc: 1.5 }});"
    ));
    assert!(
        e.contains("`stop_at_train_acc` = 1.5 is out of range"),
        "{e}"
    );
    let e = error_of("let d = toy(#{ n_train: 0 });");
    assert!(
        e.contains("toy options: `n_train` = 0 is out of range: must be at least 1"),
        "{e}"
    );
}

#[test]
fn model_and_data_mismatch_is_explained() {
    let e = error_of("let d = toy();\nlet m = model(#{ arch: \"mlp\", inputs: 3 }, d);");
    assert!(e.contains("`inputs` = 3 but the data set has 2"), "{e}");
    let e = error_of("let d = toy();\nlet m = model(#{ arch: \"mlp\", inputs: 3, classes: 2 });\ntrain(m, d, #{ epochs: 1 });");
    assert!(
        e.contains("the model takes 3 inputs but toy examples have 2 values"),
        "{e}"
    );
    assert!(e.contains("test.rhai:3:1"), "{e}");
    let e = error_of("let m = model(#{ arch: \"resnet9\", inputs: 2, classes: 2 });");
    assert!(e.contains("`arch` = \"resnet9\" is not one of: mlp"), "{e}");
}

#[test]
fn errors_inside_script_functions_show_the_call_chain() {
    let e = error_of("fn make(d) {\n    toy(#{ seed: -1 })\n}\nlet d = make(1);");
    assert!(e.contains("`seed` = -1 is out of range"), "{e}");
    assert!(e.contains("--> test.rhai:2:5"), "{e}");
    assert!(e.contains("in call to `make` at test.rhai:4"), "{e}");
}

#[test]
fn misspelt_properties_and_unknown_functions_are_errors() {
    let e = error_of(&format!(
        "{PRELUDE}let r = train(m, d, #{{ epochs: 1 }});\nprint(r.tset_acc);"
    ));
    assert!(e.contains("tset_acc"), "{e}");
    assert!(e.contains("test.rhai:4:"), "{e}");
    let e = error_of("let x = #{ a: 1 };\nprint(x.b);");
    assert!(e.contains("b"), "{e}");
    assert!(e.contains("test.rhai:2:"), "{e}");
    let e = error_of("trian(1, 2);");
    assert!(e.contains("Function not found: trian"), "{e}");
}

#[test]
fn record_rejects_tags_that_would_overwrite_columns() {
    let e = error_of(&format!(
        "{PRELUDE}let r = train(m, d, #{{ epochs: 1 }});\nrecord(r, #{{ epoch: 3 }});"
    ));
    assert!(
        e.contains("tag `epoch` would overwrite the result column"),
        "{e}"
    );
    let e = error_of(&format!(
        "{PRELUDE}let r = train(m, d, #{{ epochs: 1 }});\nrecord(r, #{{ x: [1] }});"
    ));
    assert!(
        e.contains("tag `x` must be a number, string or boolean, found array"),
        "{e}"
    );
}
