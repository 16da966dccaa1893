//! Script errors as a researcher wants to read them: the message, the file, line
//! and column, the source line with a caret, and the chain of function calls.

use rhai::{EvalAltResult, ParseError, Position};

pub struct Source<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

/// True when the error came from Ctrl-C rather than from the script.
pub fn is_interrupt(err: &EvalAltResult) -> bool {
    match innermost(err) {
        EvalAltResult::ErrorTerminated(..) => true,
        EvalAltResult::ErrorRuntime(v, _) => v.to_string() == crate::kit::interrupt::MESSAGE,
        _ => false,
    }
}

fn innermost(err: &EvalAltResult) -> &EvalAltResult {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => innermost(inner),
        other => other,
    }
}

fn message(err: &EvalAltResult) -> String {
    match err {
        EvalAltResult::ErrorRuntime(v, _) => v.to_string(),
        EvalAltResult::ErrorTerminated(..) => crate::kit::interrupt::MESSAGE.to_string(),
        other => {
            // Display appends " (line L, position C)"; the position is shown apart.
            let text = other.to_string();
            match text.rfind(" (line ") {
                Some(at) if !other.position().is_none() => text[..at].to_string(),
                _ => text,
            }
        }
    }
}

fn locate(out: &mut String, src: &Source, pos: Position) {
    let (Some(line), col) = (pos.line(), pos.position()) else {
        return;
    };
    let col = col.unwrap_or(1);
    out.push_str(&format!("  --> {}:{line}:{col}\n", src.name));
    if let Some(text) = src.text.lines().nth(line - 1) {
        let num = line.to_string();
        let pad = " ".repeat(num.len());
        out.push_str(&format!(
            "{pad} |\n{num} | {text}\n{pad} | {}^\n",
            " ".repeat(col - 1)
        ));
    }
}

/// The error with the file, line and caret of where it happened, then the calls
/// that led there. A function defined in an imported module (e.g. the stdlib) runs
/// in that module's file, so positions inside it are shown against that file.
pub fn format_error(err: &EvalAltResult, src: &Source) -> String {
    let inner = innermost(err);
    let mut out = format!("error: {}\n", message(inner));
    // (function, file it is defined in, position of the call in the caller's file)
    let mut calls: Vec<(String, String, Position)> = Vec::new();
    let mut e = err;
    loop {
        match e {
            EvalAltResult::ErrorInFunctionCall(name, source, next, pos) => {
                calls.push((name.clone(), source.clone(), *pos));
                e = next;
            }
            // An import: what follows runs in the module's file (its source).
            EvalAltResult::ErrorInModule(file, next, pos) => {
                calls.push((String::new(), file.clone(), *pos));
                e = next;
            }
            _ => break,
        }
    }
    // File of each level: the script, then each callee's own file when it has one.
    let mut files = vec![src.name.to_string()];
    for (_, source, _) in &calls {
        let caller = files.last().cloned().unwrap_or_default();
        files.push(if source.is_empty() {
            caller
        } else {
            source.clone()
        });
    }
    let inner_file = files.last().cloned().unwrap_or_default();
    if inner_file == src.name {
        locate(&mut out, src, inner.position());
    } else {
        let (name, text) = module_file(&inner_file);
        locate(
            &mut out,
            &Source {
                name: &name,
                text: &text,
            },
            inner.position(),
        );
    }
    for (level, (name, source, pos)) in calls.iter().enumerate().rev() {
        let Some(line) = pos.line() else { continue };
        let what = if name.is_empty() {
            format!("in import of {source}")
        } else {
            format!("in call to `{name}`")
        };
        out.push_str(&format!("  {what} at {}:{line}\n", files[level]));
    }
    out
}

/// A module's file and text from the source name it runs under: its file's path
/// (see `modules::SearchPath`).
fn module_file(source: &str) -> (String, String) {
    let text = std::fs::read_to_string(source).unwrap_or_default();
    (source.to_string(), text)
}

pub fn format_parse_error(err: &ParseError, src: &Source) -> String {
    let mut out = format!("error: syntax: {}\n", err.err_type());
    locate(&mut out, src, err.position());
    out
}
