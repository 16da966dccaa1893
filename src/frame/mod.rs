//! Results inside scripts: a thin layer over eager Polars `DataFrame` operations
//! (read, filter, select, group-by aggregation, sort, pivot) whose errors name the
//! columns a frame has. Bindings are in `rhai.rs`.

pub mod docs;
pub mod rhai;

use crate::results::parquet::read_parquet;
use crate::results::part_folder::PARTS;
use anyhow::{anyhow, bail, Context, Result};
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// Aggregations `group_by(...).agg(...)` and `pivot` accept.
/// The sweep configuration's position in its grid, a column of every part.
const SWEEP_INDEX: &str = "sweep_index";

pub const AGGS: &[&str] = &["mean", "std", "min", "max", "count", "sum", "first"];

/// Which Parquet files `read_results(path, table)` reads, each with the run
/// folder it belongs to: the file itself; a run folder's table and the tables of
/// its sweep configurations `parts/<id>/` (docs/SCALING.md); or, for a folder of
/// run folders, those of each run folder (sorted by run name).
pub fn result_files(path: &Path, table: &str) -> Result<Vec<(PathBuf, PathBuf)>> {
    if path.is_file() {
        let folder = path.parent().unwrap_or(Path::new("")).to_path_buf();
        return Ok(vec![(path.to_path_buf(), folder)]);
    }
    if !path.is_dir() {
        bail!("read_results: {} does not exist", path.display());
    }
    let own = run_folder_files(path, table)?;
    if !own.is_empty() {
        return Ok(own);
    }
    let mut runs: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("read_results: cannot list {}", path.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    runs.sort();
    let mut files = Vec::new();
    for run in &runs {
        files.extend(run_folder_files(run, table)?);
    }
    if files.is_empty() {
        bail!(
            "read_results: {} has no {table} table ({table}.parquet or {table}/*.parquet), \
             nor sweep parts or run folders holding one",
            path.display()
        );
    }
    Ok(files)
}

/// A run folder's own table, then its sweep configurations' (sorted by id).
fn run_folder_files(run: &Path, table: &str) -> Result<Vec<(PathBuf, PathBuf)>> {
    let mut configurations: Vec<PathBuf> = std::fs::read_dir(run.join(PARTS))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    configurations.sort();
    let mut files = Vec::new();
    for folder in std::iter::once(run).chain(configurations.iter().map(PathBuf::as_path)) {
        files.extend(
            table_files(folder, table)?
                .into_iter()
                .map(|f| (f, run.to_path_buf())),
        );
    }
    Ok(files)
}

/// One folder's table: its part files (docs/RESULTS.md), else the whole
/// `TABLE.parquet`. The parts are read even when the whole file is there: they
/// are never replaced, so a folder that a script is writing reads safely.
fn table_files(folder: &Path, table: &str) -> Result<Vec<PathBuf>> {
    let parts = crate::results::part_files::list(folder, table)?;
    if !parts.is_empty() {
        return Ok(parts.into_iter().map(|(_, file)| file).collect());
    }
    let whole = folder.join(format!("{table}.parquet"));
    Ok(match whole.is_file() {
        true => vec![whole],
        false => Vec::new(),
    })
}

/// The files of [`result_files`] as one frame, columns unioned (missing values
/// null). A sweep's parts are one table, ordered by `sweep_index`; files from
/// several run folders get a leading `folder` column naming their run folder
/// (`run` is already the run's index within it).
///
/// A resumed script that retrains a run removes that run's part files, and
/// removes the whole tables when it starts; a file listed here and removed
/// before it is read sends the read back to a fresh listing.
pub fn read_results(path: &Path, table: &str) -> Result<DataFrame> {
    let mut retries = 0;
    loop {
        let files = result_files(path, table)?;
        match read_files(&files) {
            Err(_) if retries < 5 && files.iter().any(|(f, _)| !f.exists()) => retries += 1,
            read => return read,
        }
    }
}

fn read_files(files: &[(PathBuf, PathBuf)]) -> Result<DataFrame> {
    let several = files.iter().any(|(_, run)| *run != files[0].1);
    let mut frames = Vec::with_capacity(files.len());
    for (file, run) in files {
        let mut df = read_parquet(file)?;
        if several {
            let folder = run
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            df.insert_column(0, Column::new("folder".into(), vec![folder; df.height()]))?;
        }
        frames.push(nulls_as_text(df)?);
    }
    unify_types(&mut frames)?;
    let df = match frames.as_slice() {
        [one] => one.clone(),
        _ => polars::functions::concat_df_diagonal(&frames)?,
    };
    if df.column(SWEEP_INDEX).is_ok() {
        let by: &[&str] = if several {
            &["folder", SWEEP_INDEX]
        } else {
            &[SWEEP_INDEX]
        };
        return Ok(df.sort(
            by,
            SortMultipleOptions::default()
                .with_maintain_order(true)
                .with_nulls_last(false),
        )?);
    }
    Ok(df)
}

/// Part files type a column without values Null; a whole table has it as text,
/// and so does every file read here, so files of both kinds stack.
fn nulls_as_text(mut df: DataFrame) -> Result<DataFrame> {
    let untyped: Vec<String> = df
        .columns()
        .iter()
        .filter(|c| c.dtype() == &DataType::Null)
        .map(|c| c.name().to_string())
        .collect();
    for name in untyped {
        let text = df.column(&name)?.cast(&DataType::String)?;
        df.with_column(text)?;
    }
    Ok(df)
}

/// Gives each column one type in every file so the files stack, by the rules of
/// a whole table (`results::parquet`): a column's files without values take the
/// type of those with values; ints and floats make float; any other mix text.
fn unify_types(frames: &mut [DataFrame]) -> Result<()> {
    let mut types: std::collections::HashMap<String, DataType> = Default::default();
    for df in frames.iter() {
        for c in df.columns() {
            if c.null_count() == c.len() {
                continue;
            }
            let to = match types.get(c.name().as_str()) {
                None => c.dtype().clone(),
                Some(t) if t == c.dtype() => continue,
                Some(t) if t.is_integer() && c.dtype().is_float() => c.dtype().clone(),
                Some(t) if t.is_float() && c.dtype().is_integer() => continue,
                Some(_) => DataType::String,
            };
            types.insert(c.name().to_string(), to);
        }
    }
    for df in frames.iter_mut() {
        let differ: Vec<(String, DataType)> = df
            .columns()
            .iter()
            .filter_map(|c| {
                let to = types.get(c.name().as_str())?;
                (to != c.dtype()).then(|| (c.name().to_string(), to.clone()))
            })
            .collect();
        for (name, to) in differ {
            let cast = df.column(&name)?.cast(&to)?;
            df.with_column(cast)?;
        }
    }
    Ok(())
}

/// Fails unless `df` has every column in `names`, listing the ones it has.
pub fn check_columns(df: &DataFrame, names: &[&str]) -> Result<()> {
    for name in names {
        if df.column(name).is_err() {
            bail!(
                "frame has no column `{name}`; columns: {}",
                columns(df).join(", ")
            );
        }
    }
    Ok(())
}

pub fn columns(df: &DataFrame) -> Vec<String> {
    df.get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect()
}

/// A comparison `filter` applies between a column and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    pub const SPELLINGS: &'static str = "==, !=, <, <=, >, >=";

    pub fn parse(op: &str) -> Result<Cmp> {
        Ok(match op {
            "==" => Cmp::Eq,
            "!=" => Cmp::Ne,
            "<" => Cmp::Lt,
            "<=" => Cmp::Le,
            ">" => Cmp::Gt,
            ">=" => Cmp::Ge,
            other => bail!(
                "filter: unknown comparison `{other}`; use one of {}",
                Self::SPELLINGS
            ),
        })
    }
}

/// Rows where `column OP value`; `value` is a one-element series, broadcast.
pub fn compare(df: &DataFrame, column: &str, op: Cmp, value: &Series) -> Result<BooleanChunked> {
    check_columns(df, &[column])?;
    let s = df.column(column)?.as_materialized_series();
    let mask = match op {
        Cmp::Eq => s.equal(value),
        Cmp::Ne => s.not_equal(value),
        Cmp::Lt => s.lt(value),
        Cmp::Le => s.lt_eq(value),
        Cmp::Gt => s.gt(value),
        Cmp::Ge => s.gt_eq(value),
    }
    .map_err(|e| anyhow!("filter on `{column}` ({}): {e}", s.dtype()))?;
    // Comparisons with null are null; a filter keeps only rows known to match.
    Ok(mask.fill_null_with_values(false)?)
}

pub fn filter(df: &DataFrame, mask: &BooleanChunked) -> Result<DataFrame> {
    Ok(df.filter(mask)?)
}

pub fn select(df: &DataFrame, names: &[&str]) -> Result<DataFrame> {
    check_columns(df, names)?;
    Ok(df.select(names.iter().copied())?)
}

pub fn sort(df: &DataFrame, by: &[&str], descending: bool) -> Result<DataFrame> {
    check_columns(df, by)?;
    Ok(df.sort(
        by,
        SortMultipleOptions::default()
            .with_order_descending(descending)
            .with_maintain_order(true),
    )?)
}

/// One row per distinct combination of `keys` (in order of first appearance), then
/// a column `COL_AGG` per requested aggregation, named as Polars names them.
pub fn aggregate(df: &DataFrame, keys: &[&str], aggs: &[(String, String)]) -> Result<DataFrame> {
    check_columns(df, keys)?;
    let mut out: Option<DataFrame> = None;
    for (col, agg) in aggs {
        check_columns(df, &[col.as_str()])?;
        if keys.contains(&col.as_str()) {
            bail!("agg: `{col}` is a group key; aggregate other columns");
        }
        let grouped = df
            .group_by_stable(keys.iter().copied())?
            .select([col.as_str()]);
        // The eager aggregations are deprecated in favour of polars-lazy, which would
        // add polars-plan/expr/stream to the build for the same numbers.
        #[allow(deprecated)]
        let mut part = match agg.as_str() {
            "mean" => grouped.mean(),
            // Sample std (ddof = 1), as pandas and torch.std.
            "std" => grouped.std(1),
            "min" => grouped.min(),
            "max" => grouped.max(),
            "count" => grouped.count(),
            "sum" => grouped.sum(),
            "first" => grouped.first(),
            other => bail!(
                "agg: unknown aggregation `{other}` for `{col}`; use one of {}",
                AGGS.join(", ")
            ),
        }?;
        // Polars names std `COL_agg_std`; every aggregation is `COL_AGG` here.
        let last = part.width() - 1;
        part.rename(
            part.columns()[last].name().clone().as_str(),
            format!("{col}_{agg}").into(),
        )?;
        out = Some(match out {
            None => part,
            Some(acc) => acc.hstack(&part.columns()[keys.len()..])?,
        });
    }
    out.ok_or_else(|| anyhow!("agg: no aggregations given"))
}

/// Wide table: one row per `index` value, one column per distinct `on` value
/// (sorted), holding `agg` of `values`. Built from a group-by and left joins.
pub fn pivot(df: &DataFrame, index: &str, on: &str, values: &str, agg: &str) -> Result<DataFrame> {
    check_columns(df, &[index, on, values])?;
    if index == on {
        bail!("pivot: index and on are both `{index}`");
    }
    let long = aggregate(df, &[index, on], &[(values.to_string(), agg.to_string())])?;
    let value_col = long.columns()[2].name().clone();
    let mut out = df
        .select([index])?
        .unique_stable(None, UniqueKeepStrategy::First, None)?;
    let on_values = long
        .column(on)?
        .as_materialized_series()
        .unique()?
        .sort(SortOptions::default())?;
    for i in 0..on_values.len() {
        let v = on_values.get(i)?;
        let name = match &v {
            AnyValue::String(s) => s.to_string(),
            AnyValue::Null => "null".to_string(),
            other => other.to_string(),
        };
        let one = on_values.slice(i as i64, 1);
        let mask = long
            .column(on)?
            .as_materialized_series()
            .equal_missing(&one)?;
        let mut part = long
            .filter(&mask)?
            .select([index.into(), value_col.clone()])?;
        part.rename(value_col.as_str(), name.as_str().into())?;
        out = out.left_join(&part, [index], [index])?;
    }
    Ok(out)
}
