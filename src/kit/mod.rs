//! The ground floor every script binding stands on: the session a script run
//! shares, config specs and their checks, script errors, `--set` params, the
//! pre-run scan of a script, where imports are found, and Ctrl-C. It imports no
//! domain; the domains and the composer (`host`) import it.

pub mod cell;
pub mod config;
pub mod docs;
pub mod error;
pub mod interrupt;
pub mod modules;
pub mod params;
pub mod rules;
pub mod scan;
pub mod session;
pub mod typed;

pub use session::{Session, SessionOptions};
