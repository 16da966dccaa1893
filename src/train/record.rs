//! Script bindings that write results: `record(run[, tags])`, `record_metrics(rows[,
//! tags])` and `run_dir()`. They live with training because a recorded run is a
//! trained `Run`; the run folder they write is `results::RunDir`.

use super::rhai::RunRef;
use crate::kit::cell::cell_value;
use crate::kit::error::{script_error, OrScript, ScriptResult};
use crate::kit::Session;
use crate::results::{Row, Value};
use rhai::{Array, Dynamic, Engine, Map};
use std::rc::Rc;

fn tag_value(key: &str, v: &Dynamic) -> ScriptResult<Value> {
    cell_value("record", "tag", key, v)
}

/// Appends the run to the history (one row per epoch) and summary (one row)
/// tables, each row carrying the tags, the params and the run's setting.
pub fn record(session: &Session, run: &RunRef, tags: &Map) -> ScriptResult<()> {
    let setting = run.setting_columns();
    let summary = run.summary_columns();
    let epoch_names: Vec<String> = run
        .history_rows()
        .first()
        .map(|r| r.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    session.check_can_record("record").or_script()?;
    let sweep = session.part_columns();
    let mut tag_row: Row = Vec::new();
    for (key, v) in tags {
        let clash = setting
            .iter()
            .chain(summary.iter())
            .chain(sweep.iter())
            .any(|(k, _)| k == key.as_str())
            || epoch_names.iter().any(|k| k == key.as_str());
        if clash {
            return Err(script_error(format!(
                "record: tag `{key}` would overwrite the result column of that name; rename the tag"
            )));
        }
        tag_row.push((key.to_string(), tag_value(key, v)?));
    }
    let mut head: Row = setting[..2].to_vec();
    head.extend(sweep);
    head.extend(tag_row);
    head.extend(session.param_columns());
    head.extend(setting[2..].iter().cloned());
    let history = run
        .history_rows()
        .into_iter()
        .map(|epoch| head.iter().cloned().chain(epoch).collect())
        .collect();
    let weights = format!("weights/run-{}.safetensors", run.index);
    let summary_row = head
        .into_iter()
        .chain(summary)
        .chain([("weights".to_string(), Value::Str(weights))])
        .collect();
    session
        .with_run_dir(|dir| {
            dir.record(run.index, history, summary_row, |path| run.model.save(path))
        })
        .or_script()
}

/// Appends metric rows (maps, e.g. from `fgsm` or `norms`) to the metrics table, each
/// row led by the tags and the params.
pub fn record_metrics(session: &Session, rows: &[Dynamic], tags: &Map) -> ScriptResult<()> {
    session.check_can_record("record_metrics").or_script()?;
    let mut head: Row = session.part_columns();
    for (key, v) in tags {
        if head.iter().any(|(k, _)| k == key.as_str()) {
            return Err(script_error(format!(
                "record_metrics: tag `{key}` clashes with the sweep column of that name; rename the tag"
            )));
        }
        head.push((
            key.to_string(),
            cell_value("record_metrics", "tag", key, v)?,
        ));
    }
    head.extend(session.param_columns());
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let map = r.read_lock::<Map>().ok_or_else(|| {
            script_error(format!(
                "record_metrics: rows must be maps (as `norms` or `fgsm` return), found {}",
                r.type_name()
            ))
        })?;
        let mut row = head.clone();
        for (key, v) in map.iter() {
            if head.iter().any(|(k, _)| k == key.as_str()) {
                return Err(script_error(format!(
                    "record_metrics: the row's column `{key}` clashes with a tag or param of that name; rename the tag"
                )));
            }
            row.push((
                key.to_string(),
                cell_value("record_metrics", "column", key, v)?,
            ));
        }
        out.push(row);
    }
    session
        .with_run_dir(|dir| dir.record_metrics(out))
        .or_script()
}

pub fn register(engine: &mut Engine, session: &Rc<Session>) {
    let s = session.clone();
    engine.register_fn("record", move |run: RunRef| record(&s, &run, &Map::new()));
    let s = session.clone();
    engine.register_fn("record", move |run: RunRef, tags: Map| {
        record(&s, &run, &tags)
    });
    let s = session.clone();
    engine.register_fn("record_metrics", move |rows: Array| {
        record_metrics(&s, &rows, &Map::new())
    });
    let s = session.clone();
    engine.register_fn("record_metrics", move |rows: Array, tags: Map| {
        record_metrics(&s, &rows, &tags)
    });
    let s = session.clone();
    engine.register_fn("record_metrics", move |row: Map| {
        record_metrics(&s, &[Dynamic::from_map(row)], &Map::new())
    });
    let s = session.clone();
    engine.register_fn("record_metrics", move |row: Map, tags: Map| {
        record_metrics(&s, &[Dynamic::from_map(row)], &tags)
    });
    let s = session.clone();
    engine.register_fn("run_dir", move || -> ScriptResult<String> {
        s.with_run_dir(|d| Ok(d.path().display().to_string()))
            .or_script()
    });
}
