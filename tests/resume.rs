//! Runs survive being killed: re-running the folder continues from the checkpoint
//! and ends with the same weights, bit for bit, as a run never stopped (CPU).

mod common;
use common::{minima, text};
use minima::models::weights;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCRIPT: &str = r#"
let d = toy(#{ n_train: 20, n_test: 20 });
let m = model(#{ arch: "mlp", hidden: [32] }, d);
let cfg = #{ epochs: param("epochs", 1200), batch_size: 10, lr: 0.05, momentum: 0.9,
             weight_decay: 5e-4, augment: true, checkpoint_every: 50 };
record(train(m, d, cfg), #{ part: "first" });
record(train(m, random_labels(d), cfg + #{ epochs: 50 }), #{ part: "second" });
"#;

fn same_weights(a: &Path, b: &Path) {
    let a = weights::load(a, tch::Device::Cpu).unwrap();
    let b = weights::load(b, tch::Device::Cpu).unwrap();
    for ((na, ta), (nb, tb)) in a.state().iter().zip(b.state().iter()) {
        assert_eq!(na, nb);
        assert!(ta.equal(tb), "{na} differs");
    }
}

fn interrupted_then_resumed(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.rhai"), SCRIPT).unwrap();
    let full = minima(&["run", "s.rhai", "--out", "full", "-q"], dir.path());
    assert_eq!(full.status.code(), Some(0), "{}", text(&full.stderr));

    let mut child = common::minima_command()
        .args(["run", "s.rhai", "--out", "cut", "-q"])
        .current_dir(dir.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint = dir.path().join("cut/checkpoints/run-0.safetensors");
    let start = Instant::now();
    while !checkpoint.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(150));
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run was stopped part-way");
    assert!(
        !dir.path().join("cut/summary.parquet").exists(),
        "killed before the first record"
    );

    let resumed = minima(&["run", "cut", "-q"], dir.path());
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    for run in [0, 1] {
        let file = format!("weights/run-{run}.safetensors");
        same_weights(
            &dir.path().join("full").join(&file),
            &dir.path().join("cut").join(&file),
        );
    }
    let history =
        minima::results::frame::read_parquet(&dir.path().join("cut/history.parquet")).unwrap();
    let epochs: Vec<i64> = history
        .column("epoch")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .map(|e| e.unwrap())
        .collect();
    let expected: Vec<i64> = (1..=1200).chain(1..=50).collect();
    assert_eq!(epochs, expected, "every epoch exactly once");
    let summary =
        minima::results::frame::read_parquet(&dir.path().join("cut/summary.parquet")).unwrap();
    assert_eq!(summary.height(), 2);
    let config = std::fs::read_to_string(dir.path().join("cut/config.json")).unwrap();
    assert!(config.contains("\"status\": \"completed\""), "{config}");

    // A finished folder runs again without training; a changed setting is refused.
    let again = minima(&["run", "cut", "-q"], dir.path());
    assert_eq!(again.status.code(), Some(0));
    let summary =
        minima::results::frame::read_parquet(&dir.path().join("cut/summary.parquet")).unwrap();
    assert_eq!(summary.height(), 2, "no run recorded twice");
    std::fs::write(
        dir.path().join("s.rhai"),
        SCRIPT.replace("lr: 0.05", "lr: 0.07"),
    )
    .unwrap();
    let changed = minima(&["run", "cut", "-q"], dir.path());
    assert_eq!(changed.status.code(), Some(1));
    assert!(
        text(&changed.stderr).contains("was made by a different setting"),
        "{}",
        text(&changed.stderr)
    );
}

#[test]
fn sigkill_mid_run_then_resume_is_bit_identical() {
    interrupted_then_resumed("-KILL");
}

#[test]
fn ctrl_c_mid_run_then_resume_is_bit_identical() {
    interrupted_then_resumed("-INT");
}

#[test]
fn resuming_needs_a_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let out = minima(&["run", "empty"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("empty is not a run folder"),
        "{}",
        text(&out.stderr)
    );
}
