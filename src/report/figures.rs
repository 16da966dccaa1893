//! The report's figures, each drawn only when the results hold its columns:
//! accuracy vs epoch (Figures 2–3), test accuracy vs R (Figure 4), norms
//! (Figure 5), FGSM accuracy vs eps (Figure 6), and the pictures run folders
//! already hold (Figure 1's decision boundaries).

use super::settings::setting_columns;
use super::Part;
use crate::plot::chart::{self, Palette};
use crate::plot::series::{floats, labels, lines, texts};
use crate::plot::series::{Panel, Style};
use crate::results::atomic;
use anyhow::{Context, Result};
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// norms() columns with their titles (docs/METRICS.md).
pub const NORMS: &[(&str, &str)] = &[
    ("frobenius", "Frobenius norm"),
    ("prod_frobenius", "product of layer Frobenius norms"),
    ("prod_spectral", "product of layer spectral norms"),
    ("path_l1", "l1 path norm"),
    ("path_l2", "l2 path norm"),
];

pub struct Figures<'a> {
    out: &'a Path,
    /// Shared by every figure: a setting keeps its colour throughout the report.
    palette: Palette,
    pub written: Vec<PathBuf>,
}

fn has(df: &DataFrame, cols: &[&str]) -> bool {
    cols.iter().all(|c| df.column(c).is_ok())
}

fn keys(df: &DataFrame, skip: &[&str]) -> Vec<String> {
    setting_columns(df, skip)
}

fn row_labels(df: &DataFrame, keys: &[String]) -> Result<Vec<String>> {
    let k: Vec<&str> = keys.iter().map(String::as_str).collect();
    labels(df, &k)
}

fn by_text(keys: &[String]) -> String {
    if keys.is_empty() {
        "all runs together (no tag varies)".into()
    } else {
        keys.iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(" × ")
    }
}

impl<'a> Figures<'a> {
    pub fn new(out: &'a Path) -> Figures<'a> {
        Figures {
            out,
            palette: Palette::default(),
            written: Vec::new(),
        }
    }

    fn save(&mut self, name: &str, title: &str, caption: &str, panels: &[Panel]) -> Result<Part> {
        let paths = chart::save(panels, &mut self.palette, &self.out.join(name))?;
        self.written.extend(paths);
        Ok(Part::Shown(format!(
            "## {title}\n\n{caption}\n\n![{title}]({name}.png)\n\n[SVG]({name}.svg)\n"
        )))
    }

    /// Figures 2–3: train and test accuracy per epoch, a line per setting.
    pub fn curves(&mut self, history: Option<&DataFrame>) -> Result<Part> {
        let why = "Figures 2–3 (accuracy vs epoch): needs training runs (`kind == \"train\"`) in the history, with columns `epoch` and `train_acc` or `test_acc`";
        let Some(h) = history
            .filter(|h| has(h, &["epoch"]) && (has(h, &["train_acc"]) || has(h, &["test_acc"])))
        else {
            return Ok(Part::Missing(why.into()));
        };
        let k = keys(h, &[]);
        let l = row_labels(h, &k)?;
        let epoch = floats(h, "epoch")?;
        let mut panels = Vec::new();
        for (col, title) in [
            ("train_acc", "train accuracy"),
            ("test_acc", "test accuracy"),
        ] {
            if has(h, &[col]) {
                panels.push(Panel {
                    title: format!("{title} vs epoch"),
                    x_label: "epoch".into(),
                    y_label: format!("{title} (%)"),
                    lines: lines(&l, &epoch, &floats(h, col)?, 100.0),
                    style: Style::Lines,
                });
            }
        }
        let caption = format!(
            "Training runs (`kind == \"train\"`), a line per setting ({}): the mean over seeds, shaded from the lowest to the highest seed.",
            by_text(&k)
        );
        self.save(
            "accuracy_vs_epoch",
            "Figures 2–3: accuracy vs epoch",
            &caption,
            &panels,
        )
    }

    /// Figure 4: final test accuracy against the adversarial init's R.
    pub fn replicas(&mut self, summary: Option<&DataFrame>) -> Result<Part> {
        let why = "Figure 4 (test accuracy vs R): needs training runs in the summary with columns `init_replicas` (at least two values) and `test_acc`";
        let Some(s) = summary.filter(|s| has(s, &["init_replicas", "test_acc"])) else {
            return Ok(Part::Missing(why.into()));
        };
        let r = floats(s, "init_replicas")?;
        let mut distinct: Vec<f64> = r.iter().flatten().copied().collect();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        if distinct.len() < 2 {
            return Ok(Part::Missing(why.into()));
        }
        let k = keys(s, &["init_replicas", "init"]);
        let panels = [Panel {
            title: "test accuracy vs R".into(),
            x_label: "R (random-label replicas of the adversarial init)".into(),
            y_label: "test accuracy (%)".into(),
            lines: lines(&row_labels(s, &k)?, &r, &floats(s, "test_acc")?, 100.0),
            style: Style::Lines,
        }];
        let caption = format!(
            "Training runs from an adversarial init, a line per {}: mean over seeds with the min–max range.",
            by_text(&k)
        );
        self.save(
            "test_acc_vs_replicas",
            "Figure 4: test accuracy vs R",
            &caption,
            &panels,
        )
    }

    /// Figure 5: each norm per setting, from `norms` metric rows, else from the
    /// last tracked epoch of each run's history.
    pub fn norms(&mut self, rows: Option<&DataFrame>, history: Option<&DataFrame>) -> Result<Part> {
        let why = "Figure 5 (norms): needs metrics rows with `metric == \"norms\"`, or history tracked with `track: [\"norms\"]`";
        let present = |df: &DataFrame| NORMS.iter().any(|(c, _)| has(df, &[c]));
        let (df, source) = match (rows.filter(|r| present(r)), history) {
            (Some(r), _) => (r.clone(), "`norms` metric rows"),
            (None, Some(h)) if present(h) => match last_tracked(h)? {
                Some(df) => (df, "each run's last tracked epoch"),
                None => return Ok(Part::Missing(why.into())),
            },
            _ => return Ok(Part::Missing(why.into())),
        };
        let k = keys(&df, &[]);
        let l = row_labels(&df, &k)?;
        let zero = vec![Some(0.0); df.height()];
        let mut panels = Vec::new();
        for (col, title) in NORMS {
            if has(&df, &[col]) {
                panels.push(Panel {
                    title: title.to_string(),
                    x_label: "setting (see legend)".into(),
                    y_label: col.to_string(),
                    lines: lines(&l, &zero, &floats(&df, col)?, 1.0),
                    style: Style::Dots,
                });
            }
        }
        let caption = format!(
            "From {source}; a dot per setting ({}) at the mean over seeds, the bar from min to max.",
            by_text(&k)
        );
        self.save("norms", "Figure 5: norms", &caption, &panels)
    }

    /// Figure 6: test accuracy under FGSM against eps.
    pub fn fgsm(&mut self, rows: Option<&DataFrame>) -> Result<Part> {
        let why = "Figure 6 (FGSM): needs metrics rows with `metric == \"fgsm\"` and columns `eps`, `acc`";
        let Some(df) = rows.filter(|r| has(r, &["eps", "acc"]) && r.height() > 0) else {
            return Ok(Part::Missing(why.into()));
        };
        // fgsm() can attack either split; the paper's figure is the test split.
        let df = if has(df, &["split"])
            && texts(df, "split")?
                .iter()
                .any(|s| s.as_deref() == Some("test"))
        {
            super::only(df, "split", "test")?
        } else {
            df.clone()
        };
        let k = keys(&df, &["split"]);
        let panels = [Panel {
            title: "accuracy under FGSM vs eps".into(),
            x_label: "eps".into(),
            y_label: "test accuracy under FGSM (%)".into(),
            lines: lines(
                &row_labels(&df, &k)?,
                &floats(&df, "eps")?,
                &floats(&df, "acc")?,
                100.0,
            ),
            style: Style::Lines,
        }];
        let caption = format!(
            "A line per setting ({}): mean over seeds with the min–max range.",
            by_text(&k)
        );
        self.save("fgsm", "Figure 6: FGSM accuracy vs eps", &caption, &panels)
    }
}

/// Each run's last history row with a tracked norm (runs told apart by
/// `folder` and `run`).
fn last_tracked(h: &DataFrame) -> Result<Option<DataFrame>> {
    let frob = floats(
        h,
        NORMS
            .iter()
            .find(|(c, _)| has(h, &[c]))
            .map_or("frobenius", |c| c.0),
    )?;
    let folder = if has(h, &["folder"]) {
        texts(h, "folder")?
    } else {
        vec![None; h.height()]
    };
    let run = if has(h, &["run"]) {
        texts(h, "run")?
    } else {
        vec![None; h.height()]
    };
    // (folder, run) of each run, with its last tracked row.
    type RunId = (Option<String>, Option<String>);
    let mut last: Vec<(RunId, IdxSize)> = Vec::new();
    for i in 0..h.height() {
        if frob[i].is_none() {
            continue;
        }
        let id = (folder[i].clone(), run[i].clone());
        match last.iter_mut().find(|(k, _)| *k == id) {
            Some(slot) => slot.1 = i as IdxSize,
            None => last.push((id, i as IdxSize)),
        }
    }
    if last.is_empty() {
        return Ok(None);
    }
    let idx = IdxCa::from_vec("idx".into(), last.into_iter().map(|(_, i)| i).collect());
    Ok(Some(h.take(&idx)?))
}

/// Pictures the run folders hold (e.g. fig1.png): copied into the report's
/// `pictures/` (named by their folder, so the report folder stands alone) and shown.
/// Looked for in the run folder, its sweep configurations' folders (`parts/<id>/`,
/// where a sweep's scripts write them) and the same in each run folder of a folder
/// of runs; `out` itself is left out.
pub fn pictures(results: &Path, out: &Path, written: &mut Vec<PathBuf>) -> Result<Part> {
    let out_abs = out.canonicalize().unwrap_or_else(|_| out.to_path_buf());
    let mut found = Vec::new();
    png_files(results, "", PICTURE_DEPTH, &out_abs, &mut found)
        .with_context(|| format!("cannot list {}", results.display()))?;
    if found.is_empty() {
        return Ok(Part::Missing(
            "Figure 1 (decision boundaries): no PNG pictures in the run folders (fig1_toy.rhai writes fig1.png)".into(),
        ));
    }
    let mut text = String::from(
        "## Pictures from the run folders\n\nDecision boundaries (Figure 1) and any other picture a script drew, copied here.\n",
    );
    for Found {
        folder,
        path: src,
        config,
    } in found
    {
        let file = src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = if folder.is_empty() {
            file.clone()
        } else {
            format!("{}-{file}", folder.replace('/', "-"))
        };
        let bytes =
            std::fs::read(&src).with_context(|| format!("cannot read {}", src.display()))?;
        let dest = out.join("pictures").join(&name);
        atomic::write_bytes(&dest, &bytes)?;
        written.push(dest);
        let shown = if folder.is_empty() {
            file
        } else {
            format!("{folder}/{file}")
        };
        let heading = match config {
            Some(settings) => format!("{shown} ({settings})"),
            None => shown.clone(),
        };
        text += &format!("\n### {heading}\n\n![{shown}](pictures/{name})\n");
    }
    Ok(Part::Shown(text))
}

/// Folder levels below the results `pictures` looks in: a folder of run folders
/// holding sweeps (`<run>/parts/<id>/`).
const PICTURE_DEPTH: usize = 3;

/// A picture found in the results: the folder it is in (its path below the
/// results), the file, and what produced that folder when it is a sweep
/// configuration's (`seed = 1`).
struct Found {
    folder: String,
    path: PathBuf,
    config: Option<String>,
}

/// A sweep configuration folder's place in its grid and its settings, from its
/// `configuration.json`.
fn configuration(dir: &Path) -> Option<(i64, String)> {
    let text =
        std::fs::read_to_string(dir.join(crate::results::part_folder::CONFIGURATION)).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let settings = json["config"]
        .as_object()?
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    Some((json["index"].as_i64()?, settings))
}

/// The PNG files in `dir` (labelled `folder`, its path below the results) and in
/// its subfolders down to `depth` more levels, each folder's files by name and
/// its subfolders in grid order (sweep configurations) or by name; report
/// folders are skipped.
fn png_files(
    dir: &Path,
    folder: &str,
    depth: usize,
    out_abs: &Path,
    found: &mut Vec<Found>,
) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) = entries.into_iter().partition(|p| p.is_dir());
    let config = configuration(dir).map(|(_, settings)| settings);
    found.extend(
        files
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "png"))
            .map(|path| Found {
                folder: folder.to_string(),
                path,
                config: config.clone(),
            }),
    );
    if depth == 0 {
        return Ok(());
    }
    let mut dirs: Vec<(Option<i64>, PathBuf)> = dirs
        .into_iter()
        .map(|d| (configuration(&d).map(|(index, _)| index), d))
        .collect();
    // Configurations first, in grid order; other folders after them, by name.
    dirs.sort_by(|(a, da), (b, db)| match (a, b) {
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => da.cmp(db),
    });
    for (_, d) in dirs {
        // Reports (this one, or earlier ones inside the runs) hold copies.
        if d.canonicalize().is_ok_and(|c| c == out_abs) || d.join("report.md").is_file() {
            continue;
        }
        let name = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let label = if folder.is_empty() {
            name
        } else {
            format!("{folder}/{name}")
        };
        // A folder that cannot be listed holds no pictures we can show.
        let _ = png_files(&d, &label, depth - 1, out_abs, found);
    }
    Ok(())
}
