//! Ctrl-C as a flag: long work polls it at safe points (between batches, between
//! script statements) and stops cleanly, so results already written stay whole.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

pub const MESSAGE: &str = "interrupted (Ctrl-C)";

/// Installs the handler once per process; later calls are no-ops.
pub fn install() {
    let _ = ctrlc::set_handler(|| REQUESTED.store(true, Ordering::SeqCst));
}

/// For work that is safe to stop at any instant: Ctrl-C exits with 130 at once.
/// A handler (not the default action) so it also works where the process started
/// with SIGINT ignored, as background jobs of a non-interactive shell do.
pub fn install_exit() {
    let _ = ctrlc::set_handler(|| std::process::exit(130));
}

pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Clears the flag, e.g. when the REPL returns to its prompt.
pub fn clear() {
    REQUESTED.store(false, Ordering::SeqCst);
}

pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

pub fn check() -> anyhow::Result<()> {
    if requested() {
        anyhow::bail!(MESSAGE)
    }
    Ok(())
}
