//! Rows of named values to a Polars DataFrame, and Parquet in and out.
//!
//! Rows may differ in their keys (one run tags `setting`, another does not): the
//! frame has the union of columns in order of first appearance, with nulls where a
//! row lacks a key. A column whose rows mix ints and floats becomes Float64; any
//! other mix becomes String, so a typo in a tag never loses a row. A column with
//! no values is String in a whole table ([`to_frame`]) and Null in a part file
//! ([`to_part_frame`]), where a reader stacking parts takes the type of the parts
//! that hold values.

use super::atomic;
use super::value::Value;
use anyhow::{anyhow, Context, Result};
use polars::prelude::*;
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

pub type Row = Vec<(String, Value)>;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Empty,
    Bool,
    Int,
    Float,
    Str,
}

fn kind_of(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Empty,
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::Str(_) | Value::Ints(_) => Kind::Str,
    }
}

fn unify(a: Kind, b: Kind) -> Kind {
    match (a, b) {
        (Kind::Empty, k) | (k, Kind::Empty) => k,
        (x, y) if x == y => x,
        (Kind::Int, Kind::Float) | (Kind::Float, Kind::Int) => Kind::Float,
        _ => Kind::Str,
    }
}

pub fn to_frame(rows: &[Row]) -> Result<DataFrame> {
    build(rows, DataType::String)
}

/// As [`to_frame`], with columns that hold no value typed Null.
pub fn to_part_frame(rows: &[Row]) -> Result<DataFrame> {
    build(rows, DataType::Null)
}

fn build(rows: &[Row], empty: DataType) -> Result<DataFrame> {
    // One pass over the cells, each placed by its column's index: a 20,000-epoch
    // history looked every cell up by name per column, which cost Figure 1 about
    // a second per seed. A key repeated within a row keeps its first value.
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut names: Vec<&str> = Vec::new();
    let mut table: Vec<Vec<Option<&Value>>> = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        for (k, v) in row {
            let c = *index.entry(k.as_str()).or_insert_with(|| {
                names.push(k);
                table.push(vec![None; rows.len()]);
                names.len() - 1
            });
            table[c][r].get_or_insert(v);
        }
    }
    let mut columns = Vec::with_capacity(names.len());
    for (name, cells) in names.into_iter().zip(table) {
        let kind = cells
            .iter()
            .flatten()
            .copied()
            .map(kind_of)
            .fold(Kind::Empty, unify);
        let pname = PlSmallStr::from(name);
        let column = match kind {
            Kind::Bool => Column::new(
                pname,
                cells
                    .iter()
                    .map(|c| match c {
                        Some(Value::Bool(b)) => Some(*b),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
            ),
            Kind::Int => Column::new(
                pname,
                cells
                    .iter()
                    .map(|c| match c {
                        Some(Value::Int(i)) => Some(*i),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
            ),
            Kind::Float => Column::new(
                pname,
                cells
                    .iter()
                    .map(|c| c.and_then(Value::as_f64))
                    .collect::<Vec<_>>(),
            ),
            Kind::Empty if empty == DataType::Null => {
                Column::full_null(pname, rows.len(), &DataType::Null)
            }
            Kind::Str | Kind::Empty => Column::new(
                pname,
                cells
                    .iter()
                    .map(|c| match c {
                        None | Some(Value::Null) => None,
                        Some(v) => Some(v.to_string()),
                    })
                    .collect::<Vec<_>>(),
            ),
        };
        columns.push(column);
    }
    Ok(DataFrame::new(rows.len(), columns)?)
}

/// A frame back to rows (resuming a run folder). Nulls stay null cells, so every
/// column keeps its place even where no row has a value (column order is part
/// of the schema: a resumed folder's columns are those of an uninterrupted one).
pub fn from_frame(df: &DataFrame) -> Result<Vec<Row>> {
    let mut rows: Vec<Row> = vec![Vec::new(); df.height()];
    for column in df.columns() {
        let name = column.name().to_string();
        for (i, row) in rows.iter_mut().enumerate() {
            let value = match column.get(i)? {
                AnyValue::Null => Value::Null,
                AnyValue::Boolean(b) => Value::Bool(b),
                AnyValue::Int64(v) => Value::Int(v),
                AnyValue::Float64(v) => Value::Float(v),
                AnyValue::String(s) => Value::Str(s.to_string()),
                AnyValue::StringOwned(s) => Value::Str(s.to_string()),
                other => Value::Str(other.to_string()),
            };
            row.push((name.clone(), value));
        }
    }
    Ok(rows)
}

pub fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    atomic::write_with(path, |file| {
        ParquetWriter::new(file)
            .finish(df)
            .map_err(|e| anyhow!("encoding Parquet: {e}"))?;
        Ok(())
    })
}

pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    ParquetReader::new(file)
        .finish()
        .map_err(|e| anyhow!("cannot read Parquet file {}: {e}", path.display()))
}
