//! Script bindings for pictures: `plot_boundaries(runs, #{ out, titles })` and
//! `plot_curves(frame, #{ x, y, by, out })`.

use super::boundary::{plot, Panel};
use super::chart::{self, Palette};
use super::series;
use crate::data::{Part, Split};
use crate::frame::rhai::Frame;
use crate::kit::config::{Default as D, Rule};
use crate::kit::error::{script_error, OrScript, ScriptResult};
use crate::kit::typed::key;
use crate::kit::Session;
use crate::results::Value;
use crate::train::rhai::RunRef;
use crate::typed_config;
use rhai::{Array, Engine, Map};
use std::rc::Rc;

/// Any string: a file or column name.
const TEXT: Rule = Rule::Str { choices: &[] };

typed_config! {
    /// `plot_boundaries(runs, #{..})`, besides `titles` (a list, read by hand).
    pub struct PlotKeys as PLOT("plot_boundaries options") {
        out: String = key(TEXT, D::Str("boundaries.png"), "PNG file name, relative to the run folder");
    }
}

/// One column name or an array of them, kept one per line.
fn column_names(v: &rhai::Dynamic) -> Result<Value, String> {
    let list: Vec<rhai::Dynamic> = match v.clone().try_cast::<Array>() {
        Some(a) => a,
        None => vec![v.clone()],
    };
    let mut names = Vec::with_capacity(list.len());
    for item in list {
        let kind = item.type_name();
        names.push(item.into_string().map_err(|_| {
            format!("plot_curves options: column names must be strings, found {kind}")
        })?);
    }
    if names.is_empty() {
        return Err("plot_curves options: an empty list of columns".into());
    }
    Ok(Value::Str(names.join("\n")))
}

typed_config! {
    /// `plot_curves(frame, #{..})`; `y` and `by` hold their columns one per line.
    pub struct CurveKeys as CURVES("plot_curves options") {
        x: String = key(TEXT, D::Required, "column on the x axis, e.g. \"epoch\"");
        y: String = key(Rule::Custom(column_names), D::Required, "column, or array of columns, on the y axis: one panel each");
        by: Option<String> = key(Rule::Custom(column_names), D::Absent, "column(s) whose values make separate lines; rows sharing them and x make one point (mean, min-max band)");
        out: String = key(TEXT, D::Str("curves"), "file relative to the run folder: NAME.png, NAME.svg, or NAME for both");
        scale: f64 = key(Rule::Float { min: 0.0, max: f64::INFINITY, min_open: true }, D::Float(1.0), "multiplies y (100 shows accuracies in percent)");
    }
}

fn lines_of(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.is_empty()).collect()
}

fn plot_curves(session: &Session, frame: &Frame, opts: Map) -> ScriptResult<Array> {
    let (c, _) = CurveKeys::read(&opts).or_script()?;
    let by = lines_of(c.by.as_deref().unwrap_or(""));
    let panels = series::curves(frame, &c.x, &lines_of(&c.y), &by, c.scale)
        .map_err(|e| script_error(format!("plot_curves: {e}")))?;
    let out = c.out;
    let path = session.with_run_dir(|d| Ok(d.resolve(&out))).or_script()?;
    let written = chart::save(&panels, &mut Palette::default(), &path)
        .map_err(|e| script_error(format!("plot_curves: {e:#}")))?;
    Ok(written
        .into_iter()
        .map(|p| p.display().to_string().into())
        .collect())
}

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
    let (c, _) = PlotKeys::read_except(&opts, &["titles"]).or_script()?;
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
    let path = session
        .with_run_dir(|d| Ok(d.resolve(&c.out)))
        .or_script()?;
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
    let s = session.clone();
    engine.register_fn("plot_curves", move |frame: &mut Frame, opts: Map| {
        plot_curves(&s, frame, opts)
    });
}
