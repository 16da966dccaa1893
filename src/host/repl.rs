//! `minima repl`: one line at a time against a persistent scope. Functions a line
//! defines stay callable in later lines; history persists between sessions.

use super::report::{self, Source};
use super::{interrupt, Host};
use anyhow::Result;
use rhai::{Dynamic, Scope, AST};
use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;
use std::path::PathBuf;

/// $MINIMA_HISTORY, else $XDG_DATA_HOME/minima/history, else
/// ~/.local/share/minima/history.
pub fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MINIMA_HISTORY") {
        return Some(PathBuf::from(p));
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("minima").join("history"))
}

const BANNER: &str =
    "minima repl: Rhai with minima's functions. Ctrl-C stops a running command, Ctrl-D leaves.";

pub fn run(host: &Host) -> Result<()> {
    let mut editor = DefaultEditor::new()?;
    let history = history_path();
    if let Some(p) = &history {
        let _ = editor.load_history(p);
    }
    eprintln!("{BANNER}");
    let mut scope = Scope::new();
    let mut functions = AST::empty();
    loop {
        let line = match editor.readline("minima> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        if line.trim().is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(line.as_str());
        interrupt::clear();
        let src = Source {
            name: "<repl>",
            text: &line,
        };
        let ast = match host.engine.compile_with_scope(&scope, &line) {
            Ok(ast) => ast,
            Err(e) => {
                eprint!("{}", report::format_parse_error(&e, &src));
                continue;
            }
        };
        let program = functions.merge(&ast);
        match host
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut scope, &program)
        {
            Ok(value) => {
                functions = functions.merge(&ast.clone_functions_only());
                if !value.is_unit() {
                    println!("{}", show(host, &mut scope, value));
                }
            }
            Err(e) => eprint!("{}", report::format_error(&e, &src)),
        }
    }
    if let Some(p) = &history {
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(p);
    }
    host.session.finish("completed")?;
    if let Some(dir) = host.session.run_dir_path() {
        eprintln!("results: {}", dir.display());
    }
    Ok(())
}

/// The value as `print` would show it, using the types' registered `to_debug`.
fn show(host: &Host, scope: &mut Scope, value: Dynamic) -> String {
    let mark = scope.len();
    scope.push("__value", value.clone());
    let text = host
        .engine
        .eval_with_scope::<String>(scope, "to_debug(__value)");
    scope.rewind(mark);
    text.unwrap_or_else(|_| value.to_string())
}
