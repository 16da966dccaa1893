//! Tests of the run folder: part files written once, resumes, old layouts.

use super::*;

fn summary(run: i64, lr: f64) -> Row {
    vec![
        ("run".into(), Value::Int(run)),
        ("lr".into(), Value::Float(lr)),
    ]
}

fn history(run: i64) -> Vec<Row> {
    (1..=2)
        .map(|e| {
            vec![
                ("run".into(), Value::Int(run)),
                ("epoch".into(), Value::Int(e)),
            ]
        })
        .collect()
}

fn weights(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path.parent().unwrap())?;
    Ok(std::fs::write(path, b"w")?)
}

fn names(dir: &Path, table: &str) -> Vec<String> {
    part_files::list(dir, table)
        .unwrap()
        .iter()
        .map(|(_, p)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn runs(path: &Path) -> Vec<i64> {
    read_rows(path).unwrap().iter().filter_map(run_of).collect()
}

/// A folder holding runs 0 and 1 and one metrics row, as a process left it
/// that ended (whole tables written) after recording them.
fn recorded(path: &Path) -> RunDir {
    let mut dir = RunDir::create_at(path).unwrap();
    dir.write_config(CONFIG, &serde_json::json!({})).unwrap();
    dir.record(0, history(0), summary(0, 0.1), weights).unwrap();
    dir.record_metrics(vec![vec![("d".into(), Value::Float(1.0))]])
        .unwrap();
    dir.record(1, history(1), summary(1, 0.1), weights).unwrap();
    dir.write_tables().unwrap();
    dir
}

#[test]
fn each_record_adds_parts_and_never_rewrites_one() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("run");
    let mut dir = RunDir::create_at(&path).unwrap();
    dir.record(0, history(0), summary(0, 0.1), weights).unwrap();
    assert!(!path.join(SUMMARY).exists() && !path.join(HISTORY).exists());
    let first = std::fs::metadata(path.join("summary/000000.parquet")).unwrap();
    dir.record_metrics(vec![vec![("d".into(), Value::Float(1.0))]])
        .unwrap();
    dir.record(1, history(1), summary(1, 0.1), weights).unwrap();
    assert_eq!(
        names(&path, "history"),
        ["000000.parquet", "000002.parquet"]
    );
    assert_eq!(
        names(&path, "summary"),
        ["000000.parquet", "000002.parquet"]
    );
    assert_eq!(names(&path, "metrics"), ["000001.parquet"]);
    let again = std::fs::metadata(path.join("summary/000000.parquet")).unwrap();
    assert_eq!(first.modified().unwrap(), again.modified().unwrap());
    assert_eq!(runs(&path.join("history/000002.parquet")), [1, 1]);
    // The same run recorded again with the same rows writes nothing.
    dir.record(1, history(1), summary(1, 0.1), weights).unwrap();
    assert_eq!(names(&path, "summary").len(), 2);
    dir.write_tables().unwrap();
    assert_eq!(runs(&path.join(SUMMARY)), [0, 1]);
    assert_eq!(runs(&path.join(HISTORY)), [0, 0, 1, 1]);
    let refused = RunDir::create_at(&path).err().unwrap().to_string();
    assert!(
        refused.contains("already holds history.parquet"),
        "{refused}"
    );
    std::fs::remove_file(path.join(HISTORY)).unwrap();
    std::fs::remove_file(path.join(SUMMARY)).unwrap();
    std::fs::remove_file(path.join(METRICS)).unwrap();
    let refused = RunDir::create_at(&path).err().unwrap().to_string();
    assert!(
        refused.contains("already holds history/"),
        "a killed run's parts: {refused}"
    );
}

#[test]
fn a_resume_reads_the_parts_and_a_retrained_run_removes_the_superseded_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("run");
    drop(recorded(&path));
    let mut dir = RunDir::open_existing(&path).unwrap();
    for name in [HISTORY, SUMMARY, METRICS] {
        assert!(
            !path.join(name).exists(),
            "{name} is written again at the end"
        );
    }
    // Run 0 unchanged: nothing written.
    dir.record(0, history(0), summary(0, 0.1), weights).unwrap();
    assert_eq!(
        names(&path, "summary"),
        ["000000.parquet", "000002.parquet"]
    );
    // Run 1 retrained: its parts go, the new ones take a number never used.
    dir.record(1, history(1), summary(1, 0.2), weights).unwrap();
    assert_eq!(
        names(&path, "summary"),
        ["000000.parquet", "000003.parquet"]
    );
    assert_eq!(
        names(&path, "history"),
        ["000000.parquet", "000003.parquet"]
    );
    assert!(
        names(&path, "metrics").is_empty(),
        "metrics of replaced runs go"
    );
    dir.write_tables().unwrap();
    let lr = read_rows(&path.join(SUMMARY)).unwrap()[1][1].1.clone();
    assert_eq!(lr, Value::Float(0.2));
    assert!(!path.join(METRICS).exists(), "no metrics left to write");
}

#[test]
fn a_resumed_run_retrained_first_drops_the_later_runs_parts() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("run");
    drop(recorded(&path));
    let mut dir = RunDir::open_existing(&path).unwrap();
    dir.record(0, history(0), summary(0, 0.3), weights).unwrap();
    assert_eq!(names(&path, "summary"), ["000003.parquet"]);
    assert_eq!(runs(&path.join("summary/000003.parquet")), [0]);
    assert!(!path.join("weights/run-1.safetensors").exists());
}

#[test]
fn a_folder_from_before_parts_is_split_into_parts_when_resumed() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("run");
    drop(recorded(&path));
    for table in TABLES {
        std::fs::remove_dir_all(path.join(table)).unwrap();
    }
    let mut dir = RunDir::open_existing(&path).unwrap();
    assert_eq!(
        names(&path, "summary"),
        ["000000.parquet", "000001.parquet"]
    );
    assert_eq!(runs(&path.join("history/000001.parquet")), [1, 1]);
    assert_eq!(names(&path, "metrics"), ["000002.parquet"]);
    dir.record(2, history(2), summary(2, 0.1), weights).unwrap();
    assert_eq!(names(&path, "summary").last().unwrap(), "000003.parquet");
    dir.record_metrics(vec![vec![("d".into(), Value::Float(2.0))]])
        .unwrap();
    assert_eq!(
        names(&path, "metrics"),
        ["000004.parquet"],
        "metrics are recorded again"
    );
    dir.write_tables().unwrap();
    assert_eq!(runs(&path.join(SUMMARY)), [0, 1, 2]);
}

#[test]
fn a_history_part_without_its_summary_part_is_no_recorded_run() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("run");
    drop(recorded(&path));
    // Killed between run 2's history part and its summary part.
    part_files::write(&path, "history", 3, &history(2)).unwrap();
    let dir = RunDir::open_existing(&path).unwrap();
    assert_eq!(
        names(&path, "history"),
        ["000000.parquet", "000002.parquet"]
    );
    dir.write_tables().unwrap();
    assert_eq!(runs(&path.join(HISTORY)), [0, 0, 1, 1]);
}
