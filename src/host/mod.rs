//! The script host: engine, session, config validation, errors and the REPL.

pub mod alloc;
pub mod api;
pub mod config;
pub mod engine;
pub mod error;
pub mod interrupt;
pub mod params;
pub mod repl;
pub mod report;
pub mod session;

pub use session::{Session, SessionOptions};

use anyhow::{Context, Result};
use report::Source;
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

/// Script texts whose `param("...")` names an override may refer to: the script
/// and the stdlib modules it imports (`import "paper"`), and theirs in turn.
fn param_sources(script: &str) -> Vec<String> {
    let mut sources = vec![script.to_string()];
    let mut seen: Vec<String> = Vec::new();
    let mut next = 0;
    while next < sources.len() {
        for name in imports(&sources[next]) {
            if seen.contains(&name) {
                continue;
            }
            let path = engine::stdlib_dir().join(format!("{name}.rhai"));
            sources.extend(std::fs::read_to_string(path).ok());
            seen.push(name);
        }
        next += 1;
    }
    sources
}

/// The module names of a text's `import "NAME"` statements.
fn imports(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("import") {
        rest = &rest[at + "import".len()..];
        if let Some(body) = rest.trim_start().strip_prefix('"') {
            if let Some(end) = body.find('"') {
                names.push(body[..end].to_string());
            }
        }
    }
    names
}

impl Host {
    pub fn new(session: Session) -> Host {
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
            .map_err(|e| report::format_parse_error(&e, &Source { name, text }))
    }

    /// Runs a script file to the end, printing errors and where results went.
    pub fn run_file(&self, path: &Path) -> Result<Outcome> {
        let text = read_script(path)?;
        self.session
            .params
            .borrow()
            .check_known(&param_sources(&text))?;
        let name = path.display().to_string();
        let ast = match self.compile(&name, &text) {
            Ok(ast) => ast,
            Err(msg) => {
                eprint!("{msg}");
                return Ok(Outcome::Failed);
            }
        };
        let result = self.engine.run_ast(&ast);
        let outcome = match &result {
            Ok(()) => Outcome::Completed,
            Err(e) if report::is_interrupt(e) => Outcome::Interrupted,
            Err(_) => Outcome::Failed,
        };
        let status = match outcome {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        };
        if let Err(e) = &result {
            eprint!(
                "{}",
                report::format_error(
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
