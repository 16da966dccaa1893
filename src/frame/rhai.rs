//! Script bindings for result frames: `read_results`, the `Frame` and `GroupBy`
//! types and their methods.

use super::{aggregate, check_columns, columns, compare, Cmp, AGGS};
use crate::kit::cell::cell_value;
use crate::kit::config::{Default as D, Rule};
use crate::kit::error::{script_error, OrScript, ScriptResult};
use crate::kit::typed::key;
use crate::results::parquet::to_frame;
use crate::results::value::Value;
use crate::typed_config;
use polars::prelude::*;
use rhai::{Array, Dynamic, Engine, Map};
use std::path::Path;

pub type Frame = DataFrame;

/// `frame.group_by(keys)`, waiting for its `agg`.
#[derive(Clone)]
pub struct Grouped {
    frame: DataFrame,
    keys: Vec<String>,
}

/// Any column name.
const COLUMN: Rule = Rule::Str { choices: &[] };

typed_config! {
    /// `frame.pivot(#{..})`.
    pub struct PivotKeys as PIVOT("pivot options") {
        index: String = key(COLUMN, D::Required, "column whose values become the rows");
        on: String = key(COLUMN, D::Required, "column whose values become the columns");
        values: String = key(COLUMN, D::Required, "column aggregated into the cells");
        agg: String = key(Rule::Str { choices: AGGS }, D::Str("mean"), "aggregation of the values in one cell");
    }
}

/// A script value as a one-element series, for comparisons.
fn scalar(column: &str, v: &Dynamic) -> ScriptResult<Series> {
    let name = PlSmallStr::from_str(column);
    if let Ok(i) = v.as_int() {
        Ok(Series::new(name, [i]))
    } else if let Ok(f) = v.as_float() {
        Ok(Series::new(name, [f]))
    } else if let Ok(b) = v.as_bool() {
        Ok(Series::new(name, [b]))
    } else if v.is_string() {
        Ok(Series::new(name, [v.to_string()]))
    } else {
        Err(script_error(format!(
            "filter: value for `{column}` must be a number, string or boolean, found {}",
            v.type_name()
        )))
    }
}

fn any_to_dynamic(v: AnyValue) -> Dynamic {
    match v {
        AnyValue::Null => Dynamic::UNIT,
        AnyValue::Boolean(b) => Dynamic::from_bool(b),
        AnyValue::String(s) => Dynamic::from(s.to_string()),
        AnyValue::StringOwned(s) => Dynamic::from(s.to_string()),
        AnyValue::Float32(f) => Dynamic::from_float(f as f64),
        AnyValue::Float64(f) => Dynamic::from_float(f),
        other => match other.extract::<i64>() {
            Some(i) if other.is_integer() => Dynamic::from_int(i),
            _ => Dynamic::from(other.to_string()),
        },
    }
}

fn strings(what: &str, list: &Array) -> ScriptResult<Vec<String>> {
    list.iter()
        .map(|v| {
            v.clone().into_string().map_err(|t| {
                script_error(format!("{what}: column names must be strings, found {t}"))
            })
        })
        .collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `#{ col: value }` (or an array of accepted values), every key required to match.
fn filter_map(df: &Frame, map: &Map) -> ScriptResult<Frame> {
    let mut mask = BooleanChunked::full("mask".into(), true, df.height());
    for (column, value) in map {
        let choices: Vec<Dynamic> = match value.clone().try_cast::<Array>() {
            Some(a) => a,
            None => vec![value.clone()],
        };
        let mut any = BooleanChunked::full("any".into(), false, df.height());
        for choice in &choices {
            any = &any | &compare(df, column, Cmp::Eq, &scalar(column, choice)?).or_script()?;
        }
        mask = &mask & &any;
    }
    super::filter(df, &mask).or_script()
}

fn filter_cmp(df: &Frame, column: &str, op: &str, value: &Dynamic) -> ScriptResult<Frame> {
    let op = Cmp::parse(op).or_script()?;
    let mask = compare(df, column, op, &scalar(column, value)?).or_script()?;
    super::filter(df, &mask).or_script()
}

/// `#{ col: "mean" }` or `#{ col: ["mean", "std"] }` as (column, aggregation) pairs.
fn agg_list(map: &Map) -> ScriptResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (col, v) in map {
        let names: Vec<Dynamic> = match v.clone().try_cast::<Array>() {
            Some(a) => a,
            None => vec![v.clone()],
        };
        for name in names {
            let name = name.into_string().map_err(|t| {
                script_error(format!(
                    "agg: `{col}` must name an aggregation ({}), found {t}",
                    AGGS.join(", ")
                ))
            })?;
            out.push((col.to_string(), name));
        }
    }
    Ok(out)
}

/// A frame from an array of maps, one row each: the union of their keys as
/// columns (the rules of `record`: ints and floats mix to floats, nulls where a
/// row lacks a key).
fn from_rows(rows: &Array) -> ScriptResult<Frame> {
    let mut out = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let map = r.read_lock::<Map>().ok_or_else(|| {
            script_error(format!(
                "frame: row {i} must be a map of column to value, found {}",
                r.type_name()
            ))
        })?;
        let mut row = Vec::with_capacity(map.len());
        for (key, v) in map.iter() {
            let cell = if v.is_unit() {
                Value::Null
            } else {
                cell_value("frame", "column", key, v)?
            };
            row.push((key.to_string(), cell));
        }
        out.push(row);
    }
    to_frame(&out).or_script()
}

fn read(path: &str, table: &str) -> ScriptResult<Frame> {
    super::read_results(Path::new(path), table).or_script()
}

fn column(df: &Frame, name: &str) -> ScriptResult<Array> {
    check_columns(df, &[name]).or_script()?;
    let s = df.column(name).or_script_polars()?.as_materialized_series();
    Ok(s.iter().map(any_to_dynamic).collect())
}

fn row(df: &Frame, i: i64) -> ScriptResult<Map> {
    let index = usize::try_from(i)
        .ok()
        .filter(|&i| i < df.height())
        .ok_or_else(|| {
            script_error(format!(
                "row: index {i} out of range for a frame of {} rows",
                df.height()
            ))
        })?;
    let mut map = Map::new();
    for c in df.columns() {
        let v = c.get(index).or_script_polars()?;
        map.insert(c.name().as_str().into(), any_to_dynamic(v));
    }
    Ok(map)
}

trait OrScriptPolars<T> {
    fn or_script_polars(self) -> ScriptResult<T>;
}

impl<T> OrScriptPolars<T> for PolarsResult<T> {
    fn or_script_polars(self) -> ScriptResult<T> {
        self.map_err(|e| script_error(e.to_string()))
    }
}

pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Frame>("Frame");
    engine.register_type_with_name::<Grouped>("GroupBy");
    engine.register_fn("frame", |rows: Array| from_rows(&rows));
    engine.register_fn("read_results", |path: &str| read(path, "summary"));
    engine.register_fn("read_results", |path: &str, table: &str| read(path, table));

    engine.register_get("height", |f: &mut Frame| f.height() as i64);
    engine.register_get("width", |f: &mut Frame| f.width() as i64);
    engine.register_get("columns", |f: &mut Frame| -> Array {
        columns(f).into_iter().map(Dynamic::from).collect()
    });
    engine.register_fn("column", |f: &mut Frame, name: &str| column(f, name));
    engine.register_fn("row", |f: &mut Frame, i: i64| row(f, i));
    engine.register_fn("head", |f: &mut Frame, n: i64| {
        f.head(Some(n.max(0) as usize))
    });

    engine.register_fn("filter", |f: &mut Frame, m: Map| filter_map(f, &m));
    engine.register_fn("filter", |f: &mut Frame, c: &str, op: &str, v: Dynamic| {
        filter_cmp(f, c, op, &v)
    });
    engine.register_fn("select", |f: &mut Frame, c: &str| {
        super::select(f, &[c]).or_script()
    });
    engine.register_fn("select", |f: &mut Frame, cols: Array| {
        let cols = strings("select", &cols)?;
        super::select(f, &strs(&cols)).or_script()
    });
    engine.register_fn("sort", |f: &mut Frame, c: &str| {
        super::sort(f, &[c], false).or_script()
    });
    engine.register_fn("sort", |f: &mut Frame, c: &str, descending: bool| {
        super::sort(f, &[c], descending).or_script()
    });
    engine.register_fn("sort", |f: &mut Frame, cols: Array, descending: bool| {
        let cols = strings("sort", &cols)?;
        super::sort(f, &strs(&cols), descending).or_script()
    });
    engine.register_fn(
        "group_by",
        |f: &mut Frame, c: &str| -> ScriptResult<Grouped> {
            check_columns(f, &[c]).or_script()?;
            Ok(Grouped {
                frame: f.clone(),
                keys: vec![c.to_string()],
            })
        },
    );
    engine.register_fn(
        "group_by",
        |f: &mut Frame, cols: Array| -> ScriptResult<Grouped> {
            let keys = strings("group_by", &cols)?;
            check_columns(f, &strs(&keys)).or_script()?;
            Ok(Grouped {
                frame: f.clone(),
                keys,
            })
        },
    );
    engine.register_fn("agg", |g: &mut Grouped, m: Map| {
        aggregate(&g.frame, &strs(&g.keys), &agg_list(&m)?).or_script()
    });
    engine.register_fn("pivot", |f: &mut Frame, m: Map| {
        let (c, _) = PivotKeys::read(&m).or_script()?;
        super::pivot(f, &c.index, &c.on, &c.values, &c.agg).or_script()
    });
    engine.register_fn("write_parquet", |f: &mut Frame, path: &str| {
        crate::results::parquet::write_parquet(f, Path::new(path)).or_script()
    });
    engine.register_fn("show", |f: &mut Frame| println!("{f}"));
    engine.register_fn("to_string", |f: &mut Frame| f.to_string());
    engine.register_fn("to_debug", |f: &mut Frame| f.to_string());
    engine.register_fn("to_string", |g: &mut Grouped| {
        format!(
            "GroupBy({}) of a {}-row frame",
            g.keys.join(", "),
            g.frame.height()
        )
    });
    engine.register_fn("to_debug", |g: &mut Grouped| {
        format!(
            "GroupBy({}) of a {}-row frame",
            g.keys.join(", "),
            g.frame.height()
        )
    });
}
