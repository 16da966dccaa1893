//! Pictures drawn with plotters, text in an embedded font: decision boundaries
//! (PNG) and line/dot charts of frames (PNG and SVG), shared by `plot_curves`
//! and `minima report`.

pub mod boundary;
pub mod chart;
pub mod docs;
pub mod font;
pub mod rhai;
pub mod series;
