//! Frames to plotted lines: rows grouped by the `by` columns, then by x; each
//! point is the mean of y with its min and max over the group's rows at that x,
//! which is the spread over seeds when those rows are the seeds' runs.

use crate::frame::check_columns;
use anyhow::{bail, Result};
use polars::prelude::*;

#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub x: f64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// Rows averaged into this point.
    pub n: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub label: String,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Style {
    /// Mean line over x with a min–max band; markers when there are few points.
    Lines,
    /// One dot per line (its first point) with a min–max whisker, lines side by side.
    Dots,
}

pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub lines: Vec<Line>,
    pub style: Style,
}

/// A numeric column as floats (booleans as 0/1); nulls and NaNs as `None`.
pub fn floats(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>> {
    check_columns(df, &[name])?;
    let s = df.column(name)?.as_materialized_series();
    if !(s.dtype().is_primitive_numeric() || s.dtype() == &DataType::Boolean || s.dtype().is_null())
    {
        bail!("column `{name}` holds {}, not numbers", s.dtype());
    }
    let f = s.cast(&DataType::Float64)?;
    Ok(f.f64()?.iter().map(|v| v.filter(|v| !v.is_nan())).collect())
}

/// Any column as text (numbers and booleans as Polars prints them); nulls as `None`.
pub fn texts(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    check_columns(df, &[name])?;
    let s = df.column(name)?.as_materialized_series();
    let t = s.cast(&DataType::String)?;
    Ok(t.str()?.iter().map(|v| v.map(str::to_string)).collect())
}

/// How a setting reads in legends and tables. The paper's tags read as the paper
/// writes them ("adversarial init", "R=5", "setting c"); other keys as `key=value`. Keys a
/// row has no value for are left out ("random init" has no R).
pub fn label(parts: &[(&str, Option<&str>)]) -> String {
    let shown: Vec<String> = parts
        .iter()
        .filter_map(|(key, value)| {
            let v = (*value)?;
            Some(match *key {
                "init" => format!("{v} init"),
                "heuristic" => v.to_string(),
                "setting" => format!("setting {v}"),
                "init_replicas" => format!("R={v}"),
                _ => format!("{key}={v}"),
            })
        })
        .collect();
    if shown.is_empty() && !parts.is_empty() {
        "none".into()
    } else {
        shown.join(", ")
    }
}

/// Each row's setting label from the `by` columns (all "" when `by` is empty).
pub fn labels(df: &DataFrame, by: &[&str]) -> Result<Vec<String>> {
    check_columns(df, by)?;
    let cols = by
        .iter()
        .map(|c| texts(df, c))
        .collect::<Result<Vec<_>>>()?;
    Ok((0..df.height())
        .map(|i| {
            let parts: Vec<(&str, Option<&str>)> = by
                .iter()
                .zip(&cols)
                .map(|(k, col)| (*k, col[i].as_deref()))
                .collect();
            label(&parts)
        })
        .collect())
}

/// Lines in order of each label's first row; points sorted by x. Rows with no x
/// or no y are left out; `scale` multiplies y (100 for accuracies in percent).
pub fn lines(labels: &[String], x: &[Option<f64>], y: &[Option<f64>], scale: f64) -> Vec<Line> {
    let mut groups: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for ((label, x), y) in labels.iter().zip(x).zip(y) {
        let (Some(x), Some(y)) = (x, y) else { continue };
        let at = match groups.iter().position(|(l, _)| l == label) {
            Some(i) => i,
            None => {
                groups.push((label.clone(), Vec::new()));
                groups.len() - 1
            }
        };
        groups[at].1.push((*x, y * scale));
    }
    groups
        .into_iter()
        .map(|(label, mut xy)| {
            xy.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut points: Vec<Point> = Vec::new();
            for (x, y) in xy {
                match points.last_mut() {
                    Some(p) if p.x == x => {
                        p.mean += y;
                        p.min = p.min.min(y);
                        p.max = p.max.max(y);
                        p.n += 1;
                    }
                    _ => points.push(Point {
                        x,
                        mean: y,
                        min: y,
                        max: y,
                        n: 1,
                    }),
                }
            }
            for p in &mut points {
                p.mean /= p.n as f64;
            }
            Line { label, points }
        })
        .collect()
}

/// One panel per `ys` column against `x`, a line per distinct `by` value.
pub fn curves(df: &DataFrame, x: &str, ys: &[&str], by: &[&str], scale: f64) -> Result<Vec<Panel>> {
    if ys.is_empty() {
        bail!("no y columns given");
    }
    let keys = labels(df, by)?;
    let xs = floats(df, x)?;
    ys.iter()
        .map(|y| {
            Ok(Panel {
                title: format!("{y} vs {x}"),
                x_label: x.to_string(),
                y_label: y.to_string(),
                lines: lines(&keys, &xs, &floats(df, y)?, scale),
                style: Style::Lines,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_mean_min_max_over_rows_at_each_x() {
        let labels: Vec<String> = ["a", "b", "a", "a", "b", "a"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let x = [Some(2.0), Some(1.0), Some(1.0), Some(2.0), None, Some(1.0)];
        let y = [
            Some(0.5),
            Some(0.2),
            Some(0.1),
            Some(0.7),
            Some(0.9),
            Some(0.3),
        ];
        let out = lines(&labels, &x, &y, 100.0);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].label, "a");
        let p: Vec<(f64, f64, f64, f64, usize)> = out[0]
            .points
            .iter()
            .map(|p| (p.x, p.mean, p.min, p.max, p.n))
            .collect();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert_eq!(p.len(), 2);
        assert!(close(p[0].0, 1.0) && close(p[0].1, 20.0) && close(p[0].2, 10.0));
        assert!(close(p[0].3, 30.0) && p[0].4 == 2);
        assert!(close(p[1].0, 2.0) && close(p[1].1, 60.0) && p[1].4 == 2);
        // b's second row has no x: only one point remains.
        assert_eq!(out[1].points.len(), 1);
    }

    #[test]
    fn paper_tags_read_as_the_paper_writes_them() {
        let l = label(&[
            ("init", Some("adversarial")),
            ("heuristic", Some("DA")),
            ("init_replicas", Some("5")),
            ("arch", None),
            ("width", Some("0.5")),
        ]);
        assert_eq!(l, "adversarial init, DA, R=5, width=0.5");
        assert_eq!(label(&[("init", None)]), "none");
    }
}
