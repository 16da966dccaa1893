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
        EvalAltResult::ErrorRuntime(v, _) => v.to_string() == super::interrupt::MESSAGE,
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
        EvalAltResult::ErrorTerminated(..) => super::interrupt::MESSAGE.to_string(),
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

pub fn format_error(err: &EvalAltResult, src: &Source) -> String {
    let inner = innermost(err);
    let mut out = format!("error: {}\n", message(inner));
    locate(&mut out, src, inner.position());
    // The calls that led there, innermost first.
    let mut calls = Vec::new();
    let mut e = err;
    while let EvalAltResult::ErrorInFunctionCall(name, _, next, pos) = e {
        calls.push((name.clone(), *pos));
        e = next;
    }
    for (name, pos) in calls.iter().rev() {
        if let Some(line) = pos.line() {
            out.push_str(&format!("  in call to `{name}` at {}:{line}\n", src.name));
        }
    }
    out
}

pub fn format_parse_error(err: &ParseError, src: &Source) -> String {
    let mut out = format!("error: syntax: {}\n", err.err_type());
    locate(&mut out, src, err.position());
    out
}
