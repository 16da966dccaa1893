//! Pictures: PNG files drawn with plotters, text in an embedded font.

pub mod boundary;
pub mod font;
pub mod rhai;
