//! A table as part files: `<run folder>/<table>/<seq>.parquet`, one per `record`
//! (history, summary) or `record_metrics` (metrics), numbered by a sequence the
//! three tables share and zero-padded to six digits so names sort in order.
//!
//! A part is written once (temporary file, then rename) and never rewritten: a
//! reader that lists `<table>/*.parquet` and opens the files later, once or twice
//! each, only ever reads whole files of one content. Python polars and DuckDB
//! open a file more than once per read, so a path that is replaced while they read
//! can fail; a path that is never replaced cannot.

use super::parquet::{self, Row};
use anyhow::{Context, Result};
use polars::prelude::DataFrame;
use std::path::{Path, PathBuf};

pub fn file(run: &Path, table: &str, seq: u64) -> PathBuf {
    run.join(table).join(format!("{seq:06}.parquet"))
}

/// The parts of `table` in `run`, by sequence number; none when the folder is
/// absent. Temporary files (hidden) and other names are not parts.
pub fn list(run: &Path, table: &str) -> Result<Vec<(u64, PathBuf)>> {
    let dir = run.join(table);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut parts = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .path();
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".parquet"))
            .filter(|stem| stem.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|stem| stem.parse().ok());
        if let Some(seq) = seq {
            parts.push((seq, path));
        }
    }
    parts.sort();
    Ok(parts)
}

/// Writes `rows` as part `seq` of `table` (columns without a value typed Null).
pub fn write(run: &Path, table: &str, seq: u64, rows: &[Row]) -> Result<PathBuf> {
    let path = file(run, table, seq);
    let mut df = parquet::to_part_frame(rows)?;
    parquet::write_parquet(&mut df, &path)?;
    Ok(path)
}

pub fn read(path: &Path) -> Result<DataFrame> {
    parquet::read_parquet(path)
}

/// Removes a part; one already gone is fine (removal is what was asked).
pub fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Value;
    use polars::prelude::DataType;

    fn row(run: i64, width: Value) -> Row {
        vec![("run".into(), Value::Int(run)), ("width".into(), width)]
    }

    #[test]
    fn parts_are_listed_in_order_and_hold_nulls_untyped() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        write(run, "summary", 10, &[row(1, Value::Float(0.5))]).unwrap();
        write(run, "summary", 2, &[row(0, Value::Null)]).unwrap();
        std::fs::write(run.join("summary/.000011.parquet.tmp-1"), b"half").unwrap();
        std::fs::write(run.join("summary/notes.txt"), b"x").unwrap();
        let listed = list(run, "summary").unwrap();
        let seqs: Vec<u64> = listed.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, [2, 10], "temporary and foreign files are not parts");
        assert!(listed[0].1.ends_with("summary/000002.parquet"));
        let first = read(&listed[0].1).unwrap();
        assert_eq!(first.column("width").unwrap().dtype(), &DataType::Null);
        let second = read(&listed[1].1).unwrap();
        assert_eq!(second.column("width").unwrap().dtype(), &DataType::Float64);
        assert!(
            list(run, "history").unwrap().is_empty(),
            "no folder, no parts"
        );
        remove(&listed[0].1).unwrap();
        remove(&listed[0].1).unwrap();
        assert_eq!(list(run, "summary").unwrap().len(), 1);
    }
}
