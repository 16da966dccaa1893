//! Script bindings: `grid(map)` and `sweep(configs, |cfg| { ... })`.

use super::grid::{self, Configuration};
use crate::kit::error::{script_error, OrScript, ScriptResult};
use crate::kit::Session;
use crate::results::part_folder;
use rhai::{Array, Dynamic, Engine, FnPtr, Map, NativeCallContext};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

fn grid_array(spec: &Map) -> ScriptResult<Array> {
    Ok(grid::expand(spec)
        .or_script()?
        .iter()
        .map(|c| Dynamic::from_map(c.to_map()))
        .collect())
}

/// A configuration map back from the script: its `index` and its values; the
/// id is recomputed, so a map changed after `grid` cannot pass for another.
fn configuration(n: usize, v: &Dynamic) -> ScriptResult<Configuration> {
    let map = v.read_lock::<Map>().ok_or_else(|| {
        script_error(format!(
            "sweep: configuration {n} is {}, not a map from grid(...)",
            v.type_name()
        ))
    })?;
    let index = map
        .get(grid::INDEX)
        .and_then(|i| i.as_int().ok())
        .ok_or_else(|| {
            script_error(format!(
                "sweep: configuration {n} has no integer `index`; build configurations with grid(...)"
            ))
        })?;
    let values: Map = map
        .iter()
        .filter(|(k, _)| k.as_str() != grid::INDEX && k.as_str() != grid::ID)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let config = Configuration::new(index, values).or_script()?;
    if let Some(id) = map.get(grid::ID) {
        if id.to_string() != config.id {
            return Err(script_error(format!(
                "sweep: configuration {index} was changed after grid(...) (its id {id} no longer matches its values {})",
                config.canonical
            )));
        }
    }
    Ok(config)
}

/// Ids of every configuration this process's sweeps have seen, with the
/// configuration: two sweeps may not share one (their parts would be one folder).
type Seen = Rc<RefCell<HashMap<String, String>>>;

fn sweep(
    session: &Session,
    seen: &Seen,
    ctx: &NativeCallContext,
    configs: &Array,
    body: &FnPtr,
) -> ScriptResult<Map> {
    if session.in_part() {
        return Err(script_error(
            "sweep: called inside a sweep body; put every key in one grid",
        ));
    }
    let configs: Vec<Configuration> = configs
        .iter()
        .enumerate()
        .map(|(n, v)| configuration(n, v))
        .collect::<ScriptResult<_>>()?;
    let mut indices = std::collections::HashSet::new();
    {
        let mut seen = seen.borrow_mut();
        for c in &configs {
            if !indices.insert(c.index) {
                return Err(script_error(format!(
                    "sweep: two configurations have index {}",
                    c.index
                )));
            }
            if let Some(earlier) = seen.insert(c.id.clone(), c.canonical.clone()) {
                return Err(script_error(format!(
                    "sweep: configuration {earlier} appears twice (in two sweeps of this script?); \
                     add a key that tells them apart, e.g. stage: \"fig2\""
                )));
            }
        }
    }
    let out = session
        .with_run_dir(|d| Ok(d.path().to_path_buf()))
        .or_script()?;
    let shard = session.shard();
    let mine: Vec<&Configuration> = configs
        .iter()
        .filter(|c| shard.is_none_or(|s| s.owns(c.index)))
        .collect();
    let count_complete = || {
        configs
            .iter()
            .filter(|c| part_folder::is_complete(&out, &c.id))
            .count()
    };
    // Exactly one process summarises the grid: the one whose commit completed it
    // (seen under the parts lock), or, when the grid was complete before any ran,
    // shard 0. Counting after the sweep instead lets two shards finishing at the
    // same moment both see it complete and both print a verdict.
    let mut summarise = shard.is_none_or(|s| s.index == 0) && count_complete() == configs.len();
    let (mut ran, mut skipped) = (0i64, 0i64);
    let say = |line: String| {
        if !session.quiet() {
            eprintln!("sweep: {line}");
        }
    };
    for config in &mine {
        if part_folder::is_complete(&out, &config.id) {
            skipped += 1;
            continue;
        }
        let resuming = if part_folder::has_checkpoint(&out, &config.id) {
            ", resuming from its checkpoints"
        } else {
            ""
        };
        say(format!(
            "configuration {} of {} (id {}{resuming}): {}",
            config.index,
            configs.len(),
            config.id,
            config.canonical
        ));
        let started = (chrono::Utc::now(), Instant::now());
        session.enter_part(part_folder::begin(&out, &config.id, config.columns()).or_script()?);
        let result =
            body.call_within_context::<Dynamic>(ctx, (Dynamic::from_map(config.to_map()),));
        let Some(done) = session.leave_part() else {
            return Err(script_error("sweep: the configuration's folder was lost"));
        };
        if let Err(e) = result {
            say(format!(
                "configuration {} (id {}) stopped",
                config.index, config.id
            ));
            return Err(e);
        }
        let record = serde_json::json!({
            "index": config.index,
            "id": config.id,
            "config": serde_json::from_str::<serde_json::Value>(&config.canonical)
                .map_err(|e| script_error(format!("sweep: configuration {}: {e}", config.index)))?,
            "shard": shard.map(|s| s.label()),
            "pid": std::process::id(),
            "started_at": started.0.to_rfc3339(),
            "finished_at": chrono::Utc::now().to_rfc3339(),
            "elapsed_s": started.1.elapsed().as_secs_f64(),
        });
        let lock = part_folder::lock(&out).or_script()?;
        part_folder::commit(&out, (config.index, &config.id), done, record).or_script()?;
        summarise |= count_complete() == configs.len();
        drop(lock);
        ran += 1;
    }
    if skipped > 0 {
        say(format!(
            "{skipped} configuration(s) of this shard were already complete"
        ));
    }
    let complete = count_complete();
    let mut summary = Map::new();
    summary.insert("total".into(), Dynamic::from_int(configs.len() as i64));
    summary.insert("complete".into(), Dynamic::from_int(complete as i64));
    summary.insert("in_shard".into(), Dynamic::from_int(mine.len() as i64));
    summary.insert("ran".into(), Dynamic::from_int(ran));
    summary.insert("skipped".into(), Dynamic::from_int(skipped));
    summary.insert("summarise".into(), Dynamic::from_bool(summarise));
    Ok(summary)
}

pub fn register(engine: &mut Engine, session: &Rc<Session>) {
    engine.register_fn("grid", |spec: Map| grid_array(&spec));
    let seen: Seen = Rc::default();
    let (s, k) = (session.clone(), seen.clone());
    engine.register_fn(
        "sweep",
        move |ctx: NativeCallContext, configs: Array, body: FnPtr| {
            sweep(&s, &k, &ctx, &configs, &body)
        },
    );
    let (s, k) = (session.clone(), seen);
    engine.register_fn(
        "sweep",
        move |ctx: NativeCallContext, spec: Map, body: FnPtr| {
            sweep(&s, &k, &ctx, &grid_array(&spec)?, &body)
        },
    );
}
