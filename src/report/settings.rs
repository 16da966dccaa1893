//! What tells one setting from another in a results table: the tag columns whose
//! values vary (`init`, `heuristic`, `setting`, ...), the data set and
//! architecture when several are present, and, when runs carry no tags, the
//! train-config columns that vary. Seeds never make a setting: rows differing
//! only by seed are the repeats a figure's band and a table's ± summarise.

use crate::frame::check_columns;
use crate::plot::series::texts;
use anyhow::Result;
use polars::prelude::*;

/// Columns minima writes itself (result columns, not tags); the train, model and
/// data config keys are added from their specs.
const RESULT_COLUMNS: &[&str] = &[
    "folder",
    "run",
    "kind",
    "status",
    "weights",
    "labels",
    "n_test",
    "data_format",
    "label_kind",
    "pad",
    "normalize",
    "normalize_stats",
    "normalize_mean",
    "normalize_std",
    "subset_stratified",
    "in_channels",
    "input_size",
    "epoch",
    "epochs_run",
    "metric",
    "split",
    "pair",
];

/// Columns that define different experiments: lines are kept apart when they vary.
const EXPERIMENT: &[&str] = &["dataset", "arch", "width", "hidden"];

/// The paper scripts' tags (scripts/paper), in the order labels read.
const PAPER_TAGS: &[&str] = &["setting", "init", "heuristic", "init_replicas"];

/// Train and data settings that tell runs apart when they carry no tags.
const CONFIG: &[&str] = &[
    "labels",
    "n_train",
    "replicas",
    "zero_out",
    "lr",
    "momentum",
    "weight_decay",
    "augment",
    "nesterov",
    "batch_size",
    "epochs",
];

pub fn is_result_column(name: &str) -> bool {
    use crate::data::rhai::{RANDOM_LABELS, SUBSET, TOY};
    use crate::models::rhai::MODEL;
    use crate::train::config::TRAIN;
    RESULT_COLUMNS.contains(&name)
        || [&TRAIN, &MODEL, &TOY, &SUBSET, &RANDOM_LABELS]
            .iter()
            .any(|spec| spec.key(name).is_some())
}

fn varies(df: &DataFrame, name: &str) -> bool {
    df.column(name)
        .ok()
        .and_then(|c| c.as_materialized_series().n_unique().ok())
        .is_some_and(|n| n > 1)
}

/// Tag-like: text, boolean or integer (measurements such as `boundary_min` are
/// floats), and neither a seed nor a sweep configuration's own index or id (a
/// sweep over seeds gives each seed its own; `sweep_<key>` columns do count).
fn tag_like(df: &DataFrame, name: &str) -> bool {
    let Ok(c) = df.column(name) else { return false };
    let t = c.dtype();
    !name.ends_with("seed")
        && !["sweep_index", "sweep_id"].contains(&name)
        && !name.starts_with("param_")
        && (t == &DataType::String || t == &DataType::Boolean || t.is_integer())
}

/// The columns whose values name a row's setting, leaving out `skip`.
pub fn setting_columns(df: &DataFrame, skip: &[&str]) -> Vec<String> {
    let wanted = |n: &str| !skip.contains(&n) && varies(df, n);
    let mut out: Vec<String> = EXPERIMENT
        .iter()
        .filter(|n| df.column(n).is_ok() && wanted(n))
        .map(|n| n.to_string())
        .collect();
    let mut tags: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.as_str())
        .filter(|n| !is_result_column(n) && !EXPERIMENT.contains(n) && tag_like(df, n) && wanted(n))
        .map(str::to_string)
        .collect();
    // One order for every table, whatever order runs added their tags in, so a
    // setting has one label (and one colour) throughout a report.
    let rank = |t: &String| {
        PAPER_TAGS
            .iter()
            .position(|p| p == t)
            .unwrap_or(PAPER_TAGS.len())
    };
    tags.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    drop_implied_sweep_keys(df, &out, &mut tags);
    if tags.is_empty() {
        out.extend(
            CONFIG
                .iter()
                .filter(|n| df.column(n).is_ok() && wanted(n))
                .map(|n| n.to_string()),
        );
    } else {
        out.extend(tags);
    }
    out
}

/// Leaves out of `tags` each `sweep_<key>` column that splits no setting the
/// other columns do not already split: a grid over `init` whose runs carry their
/// own `init` tag (scripts/paper/headline.rhai) would otherwise label every line
/// twice. One at a time, so of two columns that say the same, one stays.
fn drop_implied_sweep_keys(df: &DataFrame, experiment: &[String], tags: &mut Vec<String>) {
    let count = |keys: &[String]| groups(df, keys).map(|g| g.len()).ok();
    let mut i = 0;
    while i < tags.len() {
        let mut others: Vec<String> = experiment.to_vec();
        others.extend(
            tags.iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, t)| t.clone()),
        );
        let mut with = others.clone();
        with.push(tags[i].clone());
        let implied = tags[i].starts_with("sweep_")
            && count(&others).is_some_and(|n| Some(n) == count(&with));
        if implied {
            tags.remove(i);
        } else {
            i += 1;
        }
    }
}

/// Row indices per distinct value of `keys`, in order of first appearance, with
/// the values (as text; `None` for null).
pub type Groups = Vec<(Vec<Option<String>>, Vec<usize>)>;

pub fn groups(df: &DataFrame, keys: &[String]) -> Result<Groups> {
    let names: Vec<&str> = keys.iter().map(String::as_str).collect();
    check_columns(df, &names)?;
    let cols = names
        .iter()
        .map(|k| texts(df, k))
        .collect::<Result<Vec<_>>>()?;
    let mut out: Groups = Vec::new();
    for i in 0..df.height() {
        let key: Vec<Option<String>> = cols.iter().map(|c| c[i].clone()).collect();
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, rows)) => rows.push(i),
            None => out.push((key, vec![i])),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> DataFrame {
        df!(
            "run" => [0i64, 1, 2, 3],
            "kind" => ["train", "train", "train", "train"],
            "init" => ["random", "random", "adversarial", "adversarial"],
            "heuristic" => ["vanilla", "vanilla", "vanilla", "vanilla"],
            "boundary_min" => [0.1, 0.2, 0.3, 0.4],
            "seed" => [0i64, 1, 0, 1],
            "sweep_seed" => [0i64, 1, 0, 1],
            "sweep_index" => [0i64, 1, 0, 1],
            "sweep_id" => ["a", "b", "a", "b"],
            "param_epochs" => [3i64, 4, 3, 4],
            "momentum" => [0.0, 0.0, 0.9, 0.9],
            "arch" => ["mlp", "mlp", "mlp", "mlp"],
        )
        .unwrap()
    }

    #[test]
    fn varying_tags_make_the_setting() {
        // heuristic and arch are constant; seeds, sweep ids, floats, params and result
        // columns never count.
        assert_eq!(setting_columns(&frame(), &[]), vec!["init"]);
        // Without tags, varying config columns tell runs apart.
        assert_eq!(setting_columns(&frame(), &["init"]), vec!["momentum"]);
    }

    #[test]
    fn a_sweep_key_that_repeats_a_tag_is_left_out() {
        // The headline's grid over init: Algorithm 1's run (tagged init "random")
        // belongs to the adversarial half, so the two columns differ in values but
        // not in the settings they make.
        let df = df!(
            "kind" => ["adversarial_init", "train", "train", "train", "train"],
            "init" => ["random", "adversarial", "adversarial", "random", "random"],
            "heuristic" => ["algorithm1", "vanilla", "sota", "vanilla", "sota"],
            "sweep_init" => ["adversarial", "adversarial", "adversarial", "random", "random"],
        )
        .unwrap();
        assert_eq!(setting_columns(&df, &[]), vec!["init", "heuristic"]);
        // A sweep key that does split settings stays.
        let df2 = df!(
            "init" => ["random", "random", "adversarial", "adversarial"],
            "sweep_lr" => ["0.1", "0.01", "0.1", "0.01"],
        )
        .unwrap();
        assert_eq!(setting_columns(&df2, &[]), vec!["init", "sweep_lr"]);
        // Of two sweep keys that say the same thing, one stays.
        let df3 = df!(
            "sweep_a" => ["x", "x", "y"],
            "sweep_b" => ["p", "p", "q"],
        )
        .unwrap();
        assert_eq!(setting_columns(&df3, &[]), vec!["sweep_b"]);
    }

    #[test]
    fn groups_keep_first_appearance_order() {
        let g = groups(&frame(), &["init".to_string()]).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].0, vec![Some("random".to_string())]);
        assert_eq!(g[1].1, vec![2, 3]);
    }
}
