//! `minima repl`: inputs evaluated against a persistent scope. An input spans
//! lines while brackets or strings are open; functions it defines stay callable;
//! history persists between sessions; `:commands` help, list, load and save.

mod complete;
mod input;

use complete::{Completion, Vocab};
pub use input::is_complete;

use super::api::{self, Style};
use super::diagnostics::{self, Source};
use super::Host;
use crate::kit::{interrupt, modules, scan};
use anyhow::Result;
use rhai::{Dynamic, Scope, AST};
use rustyline::error::ReadlineError;
use rustyline::{CompletionType, Config, Editor};
use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

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

/// The name typed input goes by in error messages.
const REPL_INPUT: &str = "<repl>";

const BANNER: &str =
    "minima repl: Rhai with minima's functions. Tab completes, :help lists commands, \
     Ctrl-C stops a running command, Ctrl-D leaves.";

const COMMANDS_HELP: &str = "\
:help NAME   signature, description and example of a function (:help alone lists them)
:vars        the session's variables and their types
:load FILE   run a script file in this session
:save FILE   write this session's successful inputs as a script
:quit        leave (also Ctrl-D)";

struct Session<'h> {
    host: &'h Host,
    scope: Scope<'static>,
    functions: AST,
    /// Inputs that ran without error, for `:save`.
    inputs: Vec<String>,
    /// Modules imported so far, as `import "FILE" as ALIAS;` with the file found
    /// then: run before each input so the aliases stay usable.
    imports: Vec<String>,
    vocab: Rc<RefCell<Vocab>>,
    colour: bool,
}

/// Tab completes the candidates' common prefix; a second Tab lists them all.
fn editor_config() -> Config {
    Config::builder()
        .completion_type(CompletionType::List)
        .build()
}

pub fn run(host: &Host) -> Result<()> {
    let vocab = Rc::new(RefCell::new(Vocab::default()));
    let mut editor: Editor<Completion, _> = Editor::with_config(editor_config())?;
    editor.set_helper(Some(Completion::new(&host.engine, vocab.clone())));
    let history = history_path();
    if let Some(p) = &history {
        let _ = editor.load_history(p);
    }
    // One write: stderr is unbuffered, and a banner split in two can interleave
    // with the first result printed on stdout.
    let _ = std::io::stderr().write_all(format!("{BANNER}\n").as_bytes());
    let mut s = Session {
        host,
        scope: Scope::new(),
        functions: AST::empty(),
        inputs: Vec::new(),
        imports: Vec::new(),
        vocab,
        colour: std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let mut pending = String::new();
    loop {
        let prompt = if pending.is_empty() {
            "minima> "
        } else {
            "   ...> "
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            // Ctrl-C at the prompt drops a half-typed input.
            Err(ReadlineError::Interrupted) => {
                pending.clear();
                continue;
            }
            // An input still open at the end is run, so its syntax error shows.
            Err(ReadlineError::Eof) if !pending.is_empty() => {
                s.eval(pending.trim_end(), REPL_INPUT);
                break;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        if pending.is_empty() {
            let command = line.trim();
            if command.is_empty() {
                continue;
            }
            if command.starts_with(':') {
                let _ = editor.add_history_entry(command);
                if !s.command(command) {
                    break;
                }
                continue;
            }
        }
        pending.push_str(&line);
        pending.push('\n');
        if !is_complete(&pending) || s.parser_wants_more(&pending) {
            continue;
        }
        let text = std::mem::take(&mut pending);
        let text = text.trim_end();
        let _ = editor.add_history_entry(text);
        if s.eval(text, REPL_INPUT) {
            s.inputs.push(text.to_string());
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

impl Session<'_> {
    /// True when the parser stops at the end of the text (`let x = 40 +`): the
    /// statement goes on in the next line, in a terminal or from a pipe alike.
    fn parser_wants_more(&self, text: &str) -> bool {
        match self.host.engine.compile_with_scope(&self.scope, text) {
            Err(e) => *e.err_type() == rhai::ParseErrorType::UnexpectedEOF,
            Ok(_) => false,
        }
    }

    /// Runs one input; prints its value or its error. True when it succeeded.
    fn eval(&mut self, text: &str, name: &str) -> bool {
        interrupt::clear();
        let src = Source { name, text };
        let engine = &self.host.engine;
        let mut ast = match engine.compile_with_scope(&self.scope, text) {
            Ok(ast) => ast,
            Err(e) => {
                self.error(&diagnostics::format_parse_error(&e, &src));
                return false;
            }
        };
        // A `:load`ed file imports from its own folder; typed input from the
        // current one.
        if name != REPL_INPUT {
            ast.set_source(name);
        }
        let imports = match engine.compile(self.imports.join("\n")) {
            Ok(imports) => imports,
            Err(e) => {
                self.error(&format!("error: {e}\n"));
                return false;
            }
        };
        let program = imports.merge(&self.functions).merge(&ast);
        let ok = match engine.eval_ast_with_scope::<Dynamic>(&mut self.scope, &program) {
            Ok(value) => {
                self.functions = self.functions.merge(&ast.clone_functions_only());
                self.keep_imports(text, name);
                if !value.is_unit() {
                    println!("{}", self.show(value));
                }
                true
            }
            Err(e) => {
                self.error(&diagnostics::format_error(&e, &src));
                false
            }
        };
        self.refresh_vocab();
        ok
    }

    /// Remembers the input's top-level imports by the file each resolved to, so a
    /// later input (typed, or `:load`ed from elsewhere) finds the same module.
    fn keep_imports(&mut self, text: &str, name: &str) {
        let importer = (name != REPL_INPUT).then(|| Path::new(name));
        for (module, alias) in scan::top_level_imports(text) {
            let Ok(file) = modules::locate(&module, importer) else {
                continue;
            };
            let file = file.with_extension("");
            let absolute = std::path::absolute(&file).unwrap_or(file);
            let statement = format!("import {:?} as {alias};", absolute.display().to_string());
            self.imports.retain(|s| *s != statement);
            self.imports.push(statement);
        }
    }

    fn error(&self, text: &str) {
        if self.colour {
            eprint!("{}", colourise(text));
        } else {
            eprint!("{text}");
        }
    }

    fn refresh_vocab(&self) {
        let engine = &self.host.engine;
        let mut vocab = self.vocab.borrow_mut();
        vocab.vars = self
            .scope
            .iter()
            .map(|(n, _, v)| {
                (
                    n.to_string(),
                    engine.map_type_name(v.type_name()).to_string(),
                )
            })
            .collect();
        vocab.script_fns = self
            .functions
            .iter_functions()
            .map(|f| f.name.to_string())
            .collect();
    }

    /// The value as `print` would show it, using the types' registered `to_debug`
    /// (frames as tables, models, data and runs as one-line summaries).
    fn show(&mut self, value: Dynamic) -> String {
        let mark = self.scope.len();
        self.scope.push("__value", value.clone());
        let text = self
            .host
            .engine
            .eval_with_scope::<String>(&mut self.scope, "to_debug(__value)");
        self.scope.rewind(mark);
        text.unwrap_or_else(|_| value.to_string())
    }

    /// Runs a `:command`; false when the session should end.
    fn command(&mut self, line: &str) -> bool {
        let (cmd, arg) = line.split_once(' ').unwrap_or((line, ""));
        let arg = arg.trim();
        match cmd {
            ":help" | ":h" => println!("{}", self.help(arg)),
            ":vars" => {
                for (name, ty) in &self.vocab.borrow().vars {
                    println!("{name}: {ty}");
                }
            }
            ":load" if !arg.is_empty() => match std::fs::read_to_string(arg) {
                Ok(text) => {
                    if self.eval(&text, arg) {
                        self.inputs.push(text.trim_end().to_string());
                    }
                }
                Err(e) => self.error(&format!("error: cannot read {arg}: {e}\n")),
            },
            ":save" if !arg.is_empty() => {
                // A REPL line may be a bare expression; in a script it needs its `;`.
                let text: String = self
                    .inputs
                    .iter()
                    .map(|i| {
                        if i.ends_with(';') {
                            format!("{i}\n")
                        } else {
                            format!("{i};\n")
                        }
                    })
                    .collect();
                match std::fs::write(Path::new(arg), text) {
                    Ok(()) => eprintln!("saved {} inputs to {arg}", self.inputs.len()),
                    Err(e) => self.error(&format!("error: cannot write {arg}: {e}\n")),
                }
            }
            ":quit" | ":q" => return false,
            _ => self.error(&format!(
                "error: unknown command `{line}`\n{COMMANDS_HELP}\n"
            )),
        }
        true
    }

    fn help(&self, name: &str) -> String {
        if name.is_empty() {
            let names: Vec<&str> = api::functions().map(|d| d.name).collect();
            return format!("{COMMANDS_HELP}\n\nfunctions: {}", names.join(", "));
        }
        if let Some(doc) = api::find(name) {
            let sigs: Vec<_> = api::signatures(&self.host.engine)
                .into_iter()
                .filter(|s| s.name == name)
                .collect();
            // `command` prints it with println, which ends the line.
            let text = api::entry(doc, &sigs, Style::Plain);
            return text.trim_end_matches('\n').to_string();
        }
        let props: Vec<String> = api::properties()
            .filter(|p| p.name == name)
            .map(|p| format!("{}.{}: {}", p.of, p.name, p.description))
            .collect();
        if !props.is_empty() {
            return props.join("\n");
        }
        if let Some(f) = self.functions.iter_functions().find(|f| f.name == name) {
            return format!(
                "fn {}({}), defined in this session",
                f.name,
                f.params.join(", ")
            );
        }
        format!("no function `{name}`; :help lists them")
    }
}

/// Red `error:` and caret, for a terminal.
fn colourise(text: &str) -> String {
    const RED: &str = "\x1b[1;31m";
    const RESET: &str = "\x1b[0m";
    text.lines()
        .map(|l| {
            if let Some(rest) = l.strip_prefix("error:") {
                format!("{RED}error:{RESET}\x1b[1m{rest}{RESET}\n")
            } else if l.trim_end().ends_with('^') && l.contains(" | ") {
                let (bar, caret) = l.split_at(l.find(" | ").map_or(0, |i| i + 3));
                format!("{bar}{RED}{caret}{RESET}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_ambiguous_tab_lists_the_candidates() {
        assert_eq!(
            super::editor_config().completion_type(),
            rustyline::CompletionType::List
        );
    }
}
