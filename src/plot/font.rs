//! The font plots use, compiled into the binary so text renders on machines
//! without fonts or fontconfig.

use std::sync::Once;

static REGISTER: Once = Once::new();

pub const FAMILY: &str = "sans-serif";

pub fn ensure_registered() {
    REGISTER.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("DejaVuSans.ttf");
        // The font is a fixed, valid TTF; registration cannot fail for it.
        let _ = plotters::style::register_font(FAMILY, plotters::style::FontStyle::Normal, bytes);
    });
}
