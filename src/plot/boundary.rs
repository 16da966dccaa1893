//! Decision-boundary pictures for 2-D data (the paper's Figure 1): panels side by
//! side, each shading the plane by the model's predicted class, outlining the
//! boundary, and drawing the training points with the labels the model saw.

use super::font::{self, FAMILY};
use crate::data::Split;
use crate::metrics::evaluate::predict;
use crate::models::Model;
use anyhow::{anyhow, bail, Result};
use plotters::prelude::*;
use std::path::Path;
use tch::{Kind, Tensor};

pub struct Panel<'a> {
    pub model: &'a Model,
    pub points: &'a Split,
    pub title: String,
}

const GRID: i64 = 160;
const PANEL: (u32, u32) = (420, 450);
const CLASS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

fn class_color(c: i64) -> RGBColor {
    CLASS[c.rem_euclid(CLASS.len() as i64) as usize]
}

fn tint(c: RGBColor) -> RGBColor {
    let mix = |v: u8| (v as u32 * 30 / 100 + 255 * 70 / 100) as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

/// One shared view for all panels: the points' bounding box plus 15% each side.
fn bounds(panels: &[Panel]) -> Result<((f64, f64), (f64, f64))> {
    let all = Tensor::cat(
        &panels
            .iter()
            .map(|p| p.points.x.to_kind(Kind::Double))
            .collect::<Vec<_>>(),
        0,
    );
    let lo: Vec<f64> = Vec::try_from(all.amin([0], false).to_device(tch::Device::Cpu))?;
    let hi: Vec<f64> = Vec::try_from(all.amax([0], false).to_device(tch::Device::Cpu))?;
    let pad = |a: f64, b: f64| {
        let m = ((b - a) * 0.15).max(0.05);
        (a - m, b + m)
    };
    Ok((pad(lo[0], hi[0]), pad(lo[1], hi[1])))
}

pub fn plot(panels: &[Panel], path: &Path) -> Result<()> {
    if panels.is_empty() {
        bail!("nothing to plot: no runs given");
    }
    for p in panels {
        if p.points.x.size().get(1) != Some(&2) || p.points.x.dim() != 2 {
            bail!(
                "decision boundaries need 2-D inputs; \"{}\" has inputs of shape {:?}",
                p.title,
                &p.points.x.size()[1..]
            );
        }
    }
    font::ensure_registered();
    let ((x0, x1), (y0, y1)) = bounds(panels)?;
    let device = panels[0].points.x.device();
    let opts = (Kind::Float, device);
    let gx = Tensor::linspace(x0, x1, GRID, opts);
    let gy = Tensor::linspace(y0, y1, GRID, opts);
    let mesh = Tensor::meshgrid_indexing(&[&gy, &gx], "ij");
    let grid = Tensor::stack(&[mesh[1].flatten(0, -1), mesh[0].flatten(0, -1)], 1);

    // Drawn to a hidden file and renamed, so a reader never sees half a picture.
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("plot.png");
    let tmp = path.with_file_name(format!(".{name}.tmp.png"));
    let drawn = draw(panels, &tmp, &grid, (x0, x1, y0, y1));
    if drawn.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    drawn?;
    std::fs::rename(&tmp, path).map_err(|e| anyhow!("cannot write {}: {e}", path.display()))
}

fn draw(panels: &[Panel], path: &Path, grid: &Tensor, view: (f64, f64, f64, f64)) -> Result<()> {
    let (x0, x1, y0, y1) = view;
    let (cw, ch) = ((x1 - x0) / (GRID - 1) as f64, (y1 - y0) / (GRID - 1) as f64);
    let width = PANEL.0 * panels.len() as u32;
    let root = BitMapBackend::new(path, (width, PANEL.1)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    for (panel, area) in panels.iter().zip(root.split_evenly((1, panels.len()))) {
        let pred: Vec<i64> = Vec::try_from(predict(panel.model, grid).to_device(tch::Device::Cpu))?;
        let mut chart = ChartBuilder::on(&area)
            .caption(&panel.title, (FAMILY, 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("x1")
            .y_desc("x2")
            .label_style((FAMILY, 13))
            .x_labels(5)
            .y_labels(5)
            .draw()
            .map_err(|e| err(&e))?;
        let at = |i: i64, j: i64| pred[(i * GRID + j) as usize];
        let cells = (0..GRID).flat_map(|i| (0..GRID).map(move |j| (i, j)));
        chart
            .draw_series(cells.clone().map(|(i, j)| {
                let (x, y) = (x0 + j as f64 * cw, y0 + i as f64 * ch);
                let c = tint(class_color(at(i, j)));
                Rectangle::new(
                    [(x - cw / 2.0, y - ch / 2.0), (x + cw / 2.0, y + ch / 2.0)],
                    c.filled(),
                )
            }))
            .map_err(|e| err(&e))?;
        // The boundary: cells whose right or upper neighbour is predicted differently.
        let edge = cells.filter(|&(i, j)| {
            (j + 1 < GRID && at(i, j) != at(i, j + 1)) || (i + 1 < GRID && at(i, j) != at(i + 1, j))
        });
        chart
            .draw_series(edge.map(|(i, j)| {
                let (x, y) = (x0 + j as f64 * cw, y0 + i as f64 * ch);
                Circle::new((x + cw / 2.0, y + ch / 2.0), 1, BLACK.filled())
            }))
            .map_err(|e| err(&e))?;
        let xs: Vec<f64> = Vec::try_from(
            panel
                .points
                .x
                .to_kind(Kind::Double)
                .to_device(tch::Device::Cpu)
                .flatten(0, -1),
        )?;
        let ys: Vec<i64> = Vec::try_from(panel.points.y.to_device(tch::Device::Cpu))?;
        chart
            .draw_series(ys.iter().enumerate().map(|(k, &label)| {
                EmptyElement::at((xs[2 * k], xs[2 * k + 1]))
                    + Circle::new((0, 0), 5, class_color(label).filled())
                    + Circle::new((0, 0), 5, BLACK.stroke_width(1))
            }))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}
