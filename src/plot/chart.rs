//! Line and dot charts of [`Line`](super::series::Line)s, drawn once per format (PNG and SVG) from one
//! description: panels in a grid, a shared legend on the right whose width is
//! measured from its labels so nothing is clipped.

use super::font::{self, FAMILY};
use super::series::{Panel, Style};
use crate::results::atomic;
use anyhow::{anyhow, bail, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    Png,
    Svg,
}

const PANEL: (u32, u32) = (480, 360);
const MAX_COLUMNS: usize = 3;
const LEGEND_ROW: u32 = 22;
const LEGEND_FONT: f64 = 14.0;
const MARKERS_UP_TO: usize = 15;

/// Matplotlib's tab10, then the darker half of tab20: distinct on white.
const COLORS: [RGBColor; 16] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(57, 59, 121),
    RGBColor(99, 121, 57),
    RGBColor(140, 109, 49),
    RGBColor(132, 60, 57),
    RGBColor(123, 65, 115),
    RGBColor(82, 84, 163),
];

/// Colours by label in order of first use, so a setting keeps its colour in
/// every figure of a report.
#[derive(Default)]
pub struct Palette {
    labels: Vec<String>,
}

impl Palette {
    pub fn color(&mut self, label: &str) -> RGBColor {
        let i = match self.labels.iter().position(|l| l == label) {
            Some(i) => i,
            None => {
                self.labels.push(label.to_string());
                self.labels.len() - 1
            }
        };
        COLORS[i % COLORS.len()]
    }
}

/// The files `out` names: `NAME.png` or `NAME.svg` alone, or both for a name
/// without an extension.
pub fn targets(out: &Path) -> Result<Vec<(PathBuf, Format)>> {
    match out.extension().and_then(|e| e.to_str()) {
        Some("png") => Ok(vec![(out.to_path_buf(), Format::Png)]),
        Some("svg") => Ok(vec![(out.to_path_buf(), Format::Svg)]),
        None => Ok(vec![
            (out.with_extension("png"), Format::Png),
            (out.with_extension("svg"), Format::Svg),
        ]),
        Some(other) => bail!(
            "{}: unknown picture format `.{other}`; use .png, .svg, or no extension for both",
            out.display()
        ),
    }
}

/// Draws the panels into every file `out` names (see [`targets`]); each file is
/// written atomically. Returns the paths written.
pub fn save(panels: &[Panel], palette: &mut Palette, out: &Path) -> Result<Vec<PathBuf>> {
    if panels
        .iter()
        .all(|p| p.lines.iter().all(|l| l.points.is_empty()))
    {
        bail!(
            "{}: nothing to plot (no rows with both x and y)",
            out.display()
        );
    }
    font::ensure_registered();
    let legend: Vec<(String, RGBColor)> = {
        let mut seen: Vec<String> = Vec::new();
        for l in panels.iter().flat_map(|p| &p.lines) {
            if !seen.contains(&l.label) {
                seen.push(l.label.clone());
            }
        }
        seen.into_iter()
            .map(|l| {
                let c = palette.color(&l);
                (l, c)
            })
            .collect()
    };
    // One unnamed line (no `by`) needs no legend.
    let legend = if legend.len() == 1 && legend[0].0.is_empty() {
        Vec::new()
    } else {
        legend
    };
    let layout = Layout::new(panels.len(), &legend)?;
    let mut written = Vec::new();
    for (path, format) in targets(out)? {
        let bytes = match format {
            Format::Png => png(panels, &legend, &layout)?,
            Format::Svg => svg(panels, &legend, &layout)?,
        };
        atomic::write_bytes(&path, &bytes)?;
        written.push(path);
    }
    Ok(written)
}

struct Layout {
    columns: usize,
    rows: usize,
    legend_width: u32,
    size: (u32, u32),
}

impl Layout {
    fn new(panels: usize, legend: &[(String, RGBColor)]) -> Result<Layout> {
        let columns = panels.clamp(1, MAX_COLUMNS);
        let rows = panels.div_ceil(columns).max(1);
        let font = FontDesc::new(FontFamily::Name(FAMILY), LEGEND_FONT, FontStyle::Normal);
        let mut text = 0;
        for (label, _) in legend {
            let (w, _) = font
                .box_size(label)
                .map_err(|e| anyhow!("measuring legend text: {e}"))?;
            text = text.max(w);
        }
        // Measured text plus the colour key and a right margin; generous because
        // SVG viewers substitute their own sans-serif, which may be wider.
        let legend_width = if legend.is_empty() {
            0
        } else {
            text * 11 / 10 + 80
        };
        let height = (PANEL.1 * rows as u32).max(LEGEND_ROW * legend.len() as u32 + 60);
        Ok(Layout {
            columns,
            rows,
            legend_width,
            size: (PANEL.0 * columns as u32 + legend_width, height),
        })
    }
}

fn png(panels: &[Panel], legend: &[(String, RGBColor)], layout: &Layout) -> Result<Vec<u8>> {
    let (w, h) = layout.size;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        draw(&root, panels, legend, layout)?;
        root.present().map_err(|e| anyhow!("drawing PNG: {e}"))?;
    }
    let mut bytes = Vec::new();
    use image::ImageEncoder;
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(&rgb, w, h, image::ColorType::Rgb8)
        .map_err(|e| anyhow!("encoding PNG: {e}"))?;
    Ok(bytes)
}

fn svg(panels: &[Panel], legend: &[(String, RGBColor)], layout: &Layout) -> Result<Vec<u8>> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, layout.size).into_drawing_area();
        draw(&root, panels, legend, layout)?;
        root.present().map_err(|e| anyhow!("drawing SVG: {e}"))?;
    }
    Ok(text.into_bytes())
}

/// Tick labels: integers plainly, very large or small numbers in scientific
/// notation, others with at most three decimals.
fn tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.abs() >= 1e5 || v.abs() < 1e-3 {
        return format!("{v:.1e}");
    }
    if v == v.round() {
        return format!("{v:.0}");
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `lo..hi` widened by 5% each side (by a unit, or 5% of the value, when flat).
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        let m = (hi - lo) * 0.05;
        (lo - m, hi + m)
    } else {
        let m = if lo == 0.0 { 1.0 } else { lo.abs() * 0.05 };
        (lo - m, hi + m)
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panels: &[Panel],
    legend: &[(String, RGBColor)],
    layout: &Layout,
) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing chart: {e}");
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (plots, key) = root.split_horizontally(layout.size.0 - layout.legend_width);
    let (plots, _) = plots.split_vertically(PANEL.1 * layout.rows as u32);
    let areas = plots.split_evenly((layout.rows, layout.columns));
    let color = |label: &str| {
        legend
            .iter()
            .find(|(l, _)| l == label)
            .map_or(COLORS[0], |(_, c)| *c)
    };
    for (panel, area) in panels.iter().zip(areas.iter()) {
        draw_panel(area, panel, &color).map_err(|e| err(&e))?;
    }
    let style = TextStyle::from((FAMILY, LEGEND_FONT))
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (label, c)) in legend.iter().enumerate() {
        let y = 40 + (i as u32 * LEGEND_ROW) as i32;
        key.draw(&PathElement::new(vec![(14, y), (44, y)], c.stroke_width(3)))
            .map_err(|e| err(&e))?;
        key.draw(&Text::new(label.clone(), (52, y), style.clone()))
            .map_err(|e| err(&e))?;
    }
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    color: &dyn Fn(&str) -> RGBColor,
) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow!("{}: {e}", panel.title);
    let points = || panel.lines.iter().flat_map(|l| &l.points);
    let (ylo, yhi) = points().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
        (lo.min(p.min), hi.max(p.max))
    });
    let (xlo, xhi) = match panel.style {
        Style::Lines => points().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.x), hi.max(p.x))
        }),
        Style::Dots => (0.0, panel.lines.len().saturating_sub(1) as f64),
    };
    if !ylo.is_finite() {
        // A panel whose columns held no values: its title says so.
        area.titled(&format!("{} (no data)", panel.title), (FAMILY, 18))
            .map_err(|e| err(&e))?;
        return Ok(());
    }
    let (x0, x1) = match panel.style {
        Style::Lines => padded(xlo, xhi),
        Style::Dots => (xlo - 0.6, xhi + 0.6),
    };
    let (y0, y1) = padded(ylo, yhi);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FAMILY, 18))
        .margin(14)
        .x_label_area_size(46)
        .y_label_area_size(66)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| err(&e))?;
    let dots = panel.style == Style::Dots;
    // Whole-number x (epochs, R) gets whole-number ticks when there are few.
    let whole = points().all(|p| p.x == p.x.round()) && xhi - xlo <= 8.0;
    let x_ticks = match () {
        _ if dots => 0,
        _ if whole => (xhi - xlo) as usize + 1,
        _ => 6,
    };
    let blank = |_: &f64| String::new();
    let number = |v: &f64| tick(*v);
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 14))
        .x_labels(x_ticks)
        .y_labels(6)
        .x_label_formatter(if dots { &blank } else { &number })
        .y_label_formatter(&number)
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, line) in panel.lines.iter().enumerate() {
        let c = color(&line.label);
        if dots {
            if let Some(p) = line.points.first() {
                whisker(&mut chart, i as f64, p.min, p.max, p.mean, c).map_err(|e| err(&e))?;
            }
            continue;
        }
        if line.points.len() > 1 {
            let band: Vec<(f64, f64)> = line
                .points
                .iter()
                .map(|p| (p.x, p.max))
                .chain(line.points.iter().rev().map(|p| (p.x, p.min)))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(band, c.mix(0.18).filled())))
                .map_err(|e| err(&e))?;
            chart
                .draw_series(LineSeries::new(
                    line.points.iter().map(|p| (p.x, p.mean)),
                    c.stroke_width(2),
                ))
                .map_err(|e| err(&e))?;
        }
        if let [p] = line.points.as_slice() {
            // No band to shade: the spread is a bar.
            whisker(&mut chart, p.x, p.min, p.max, p.mean, c).map_err(|e| err(&e))?;
        } else if line.points.len() <= MARKERS_UP_TO {
            chart
                .draw_series(
                    line.points
                        .iter()
                        .map(|p| Circle::new((p.x, p.mean), 3, c.filled())),
                )
                .map_err(|e| err(&e))?;
        }
    }
    Ok(())
}

type Chart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A dot at the mean and a vertical bar from min to max.
fn whisker<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    x: f64,
    min: f64,
    max: f64,
    mean: f64,
    c: RGBColor,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    if max > min {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x, min), (x, max)],
            c.stroke_width(2),
        )))?;
    }
    chart.draw_series(std::iter::once(Circle::new((x, mean), 4, c.filled())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(20.0), "20");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(0.1 + 0.2), "0.3");
        assert_eq!(tick(1.5e6), "1.5e6");
        assert_eq!(tick(0.0), "0");
    }

    #[test]
    fn out_names_pick_formats() {
        let t = targets(Path::new("a/curves")).unwrap();
        assert_eq!(t[0], (PathBuf::from("a/curves.png"), Format::Png));
        assert_eq!(t[1], (PathBuf::from("a/curves.svg"), Format::Svg));
        assert_eq!(targets(Path::new("c.svg")).unwrap().len(), 1);
        let e = targets(Path::new("c.jpg")).unwrap_err().to_string();
        assert!(e.contains(".jpg") && e.contains(".png"), "{e}");
    }
}
