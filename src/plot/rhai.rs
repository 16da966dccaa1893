//! Script bindings for pictures: `plot_boundaries(runs, #{ out, titles })`.

use super::boundary::{plot, Panel};
use crate::data::{Part, Split};
use crate::host::config::{Default as D, Key, Rule, Spec};
use crate::host::error::{script_error, OrScript, ScriptResult};
use crate::host::Session;
use crate::train::rhai::RunRef;
use rhai::{Array, Engine, Map};
use std::rc::Rc;

pub const PLOT: Spec = Spec {
    what: "plot_boundaries options",
    keys: &[Key {
        name: "out",
        rule: Rule::Str { choices: &[] },
        default: D::Str("boundaries.png"),
        help: "PNG file name, relative to the run folder",
    }],
};

fn plot_boundaries(session: &Session, runs: Array, opts: Map) -> ScriptResult<String> {
    let titles: Option<Array> = match opts.get("titles") {
        None => None,
        Some(t) => Some(
            t.as_array_ref()
                .map_err(|_| {
                    script_error("plot_boundaries options: `titles` must be an array of strings")
                })?
                .clone(),
        ),
    };
    let c = PLOT.read_except(&opts, &["titles"]).or_script()?;
    let mut list: Vec<RunRef> = Vec::new();
    for (i, r) in runs.into_iter().enumerate() {
        let kind = r.type_name();
        list.push(r.try_cast::<RunRef>().ok_or_else(|| {
            script_error(format!("plot_boundaries: entry {i} is a {kind}, not a Run"))
        })?);
    }
    if let Some(t) = &titles {
        if t.len() != list.len() {
            return Err(script_error(format!(
                "plot_boundaries: {} titles for {} runs",
                t.len(),
                list.len()
            )));
        }
    }
    let points: Vec<Split> = list
        .iter()
        .map(|r| r.data.materialize(Part::Train))
        .collect();
    let panels: Vec<Panel> = list
        .iter()
        .enumerate()
        .map(|(i, r)| Panel {
            model: &r.model,
            points: &points[i],
            title: titles.as_ref().map_or_else(
                || format!("run {} ({})", r.index, r.data.labels()),
                |t| t[i].to_string(),
            ),
        })
        .collect();
    let out = c.str("out").to_string();
    let path = session.with_run_dir(|d| Ok(d.resolve(&out))).or_script()?;
    plot(&panels, &path).or_script()?;
    Ok(path.display().to_string())
}

pub fn register(engine: &mut Engine, session: &Rc<Session>) {
    let s = session.clone();
    engine.register_fn("plot_boundaries", move |runs: Array, opts: Map| {
        plot_boundaries(&s, runs, opts)
    });
    let s = session.clone();
    engine.register_fn("plot_boundaries", move |runs: Array| {
        plot_boundaries(&s, runs, Map::new())
    });
}
