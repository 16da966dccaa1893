//! The composer: the engine with every domain's bindings, the API docs, the
//! REPL and how errors are shown. It stands above the domains; what they share
//! (session, config specs, errors, params, interrupt) is the kit below them.

pub mod alloc;
pub mod api;
pub mod cuda;
pub mod diagnostics;
pub mod docs;
pub mod engine;
pub mod repl;

pub use crate::kit::{Session, SessionOptions};

use crate::kit::{modules, scan};
use anyhow::{Context, Result};
use diagnostics::Source;
use rhai::{Engine, AST};
use std::path::Path;
use std::rc::Rc;

/// How a script run ended, for the exit code.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    /// The script raised an error (already printed).
    Failed,
    Interrupted,
}

pub struct Host {
    pub engine: Engine,
    pub session: Rc<Session>,
}

pub fn read_script(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read script {}", path.display()))
}

impl Host {
    pub fn new(session: Session) -> Host {
        let engine = if crate::train::dense::enabled() {
            "dense"
        } else {
            "libtorch"
        };
        session.note("mlp_engine", engine.into());
        let layout = match crate::models::channels_last_allowed() {
            true => "channels_last",
            false => "nchw",
        };
        session.note("conv_layout", layout.into());
        let session = Rc::new(session);
        Host {
            engine: engine::build(&session),
            session,
        }
    }

    /// Compiles without running; a syntax error is returned as printable text.
    pub fn compile(&self, name: &str, text: &str) -> Result<AST, String> {
        self.engine
            .compile(text)
            .map_err(|e| diagnostics::format_parse_error(&e, &Source { name, text }))
    }

    /// `minima check`: compiles the script and every module it imports (found as
    /// `import` finds them); the syntax errors and missing modules as printable text.
    pub fn check_file(&self, path: &Path, text: &str) -> Result<(), String> {
        let mut errors = String::new();
        if let Err(msg) = self.compile(&path.display().to_string(), text) {
            errors.push_str(&msg);
        }
        let found = scan::scan(Some(path), text);
        for (file, text) in &found.modules {
            if let Err(msg) = self.compile(&file.display().to_string(), text) {
                errors.push_str(&msg);
            }
        }
        for (name, tried) in &found.missing {
            errors.push_str(&format!("error: {}\n", modules::not_found(name, tried)));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Runs a script file to the end, printing errors and where results went.
    pub fn run_file(&self, path: &Path) -> Result<Outcome> {
        let text = read_script(path)?;
        let deferred = self
            .session
            .params
            .borrow()
            .check_known(&scan::scan(Some(path), &text))?;
        let name = path.display().to_string();
        let mut ast = match self.compile(&name, &text) {
            Ok(ast) => ast,
            Err(msg) => {
                eprint!("{msg}");
                return Ok(Outcome::Failed);
            }
        };
        // The source names the file, so its imports resolve from its folder.
        ast.set_source(name.clone());
        let result = self.engine.run_ast(&ast);
        let mut outcome = match &result {
            Ok(()) => Outcome::Completed,
            Err(e) if diagnostics::is_interrupt(e) => Outcome::Interrupted,
            Err(_) => Outcome::Failed,
        };
        if outcome == Outcome::Completed {
            let unread = self.session.params.borrow().unread(&deferred);
            for message in &unread {
                eprintln!("error: {message}");
            }
            if !unread.is_empty() {
                outcome = Outcome::Failed;
            }
        }
        let status = match outcome {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        };
        if let Err(e) = &result {
            eprint!(
                "{}",
                diagnostics::format_error(
                    e,
                    &Source {
                        name: &name,
                        text: &text
                    }
                )
            );
        }
        self.session.finish(status)?;
        if let Some(dir) = self.session.run_dir_path() {
            let what = if outcome == Outcome::Completed {
                "results"
            } else {
                "results so far"
            };
            eprintln!("{what}: {}", dir.display());
        }
        Ok(outcome)
    }
}
