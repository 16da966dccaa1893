//! What can be known about a script before it runs, from its text and the texts
//! of the modules it imports: the `param("name", default)` calls (with the default's
//! value when it is a literal) and the imported files. `--set` is checked against
//! it, and `minima check` compiles every module it finds.

use super::modules;
use rhai::{Dynamic, Engine};
use std::path::{Path, PathBuf};

/// One `param("name", default)` call.
#[derive(Debug)]
pub struct ParamCall {
    pub name: String,
    /// The default when it is a literal (`3`, `0.1`, `"cpu"`, `[1, 2]`).
    pub default: Option<Dynamic>,
}

#[derive(Debug, Default)]
pub struct ScriptScan {
    pub params: Vec<ParamCall>,
    /// False when a param name or an import is computed at run time (or an
    /// import is missing): then the params above may not be all the script reads.
    pub complete: bool,
    /// Each imported module's file (in order of discovery), with its text.
    pub modules: Vec<(PathBuf, String)>,
    /// Imports found nowhere: the module name and every path tried.
    pub missing: Vec<(String, Vec<PathBuf>)>,
}

/// Scans the script `path` (text `text`) and, transitively, the modules it imports.
pub fn scan(path: Option<&Path>, text: &str) -> ScriptScan {
    let mut out = ScriptScan {
        complete: true,
        ..ScriptScan::default()
    };
    let mut queue: Vec<(Option<PathBuf>, String)> =
        vec![(path.map(Path::to_path_buf), text.into())];
    let mut next = 0;
    while next < queue.len() {
        let (file, text) = queue[next].clone();
        next += 1;
        let code = Code {
            text: blank(&text, false),
            calls: blank(&text, true),
        };
        out.complete &= param_calls(&code, &mut out.params);
        let (names, literal) = imports(&code);
        out.complete &= literal;
        for name in names {
            match modules::locate(&name, file.as_deref()) {
                Ok(found) => {
                    if out.modules.iter().any(|(p, _)| *p == found) {
                        continue;
                    }
                    let text = std::fs::read_to_string(&found).unwrap_or_default();
                    out.modules.push((found.clone(), text.clone()));
                    queue.push((Some(found), text));
                }
                Err(tried) => {
                    out.complete = false;
                    out.missing.push((name, tried));
                }
            }
        }
    }
    out
}

/// The text with comments (and, with `strings`, the insides of strings) replaced
/// by spaces, so a `param(` or `import` there is not taken for code; byte offsets
/// stay the same.
fn blank(text: &str, strings: bool) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    let mut depth = 0;
    while i < b.len() {
        let c = b[i];
        if depth > 0 {
            if b[i..].starts_with(b"*/") {
                depth -= 1;
                out[i] = b' ';
                out[i + 1] = b' ';
                i += 2;
                continue;
            }
            if b[i..].starts_with(b"/*") {
                depth += 1;
            }
            if c != b'\n' {
                out[i] = b' ';
            }
        } else if let Some(q) = quote {
            if c == q {
                quote = None;
            } else {
                // Backtick strings stay: their `${...}` parts are code.
                let hide = strings && q != b'`';
                if hide {
                    out[i] = b' ';
                }
                if c == b'\\' && q != b'`' && i + 1 < b.len() {
                    i += 1;
                    if hide {
                        out[i] = b' ';
                    }
                }
            }
        } else if c == b'"' || c == b'`' || c == b'\'' {
            quote = Some(c);
        } else if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                out[i] = b' ';
                i += 1;
            }
            continue;
        } else if b[i..].starts_with(b"/*") {
            depth = 1;
            out[i] = b' ';
            out[i + 1] = b' ';
            i += 2;
            continue;
        }
        i += 1;
    }
    // Only ASCII bytes were replaced, by ASCII spaces.
    String::from_utf8(out).unwrap_or_default()
}

fn ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// A source text without comments, and the same without the insides of strings
/// (where words are looked for).
struct Code {
    text: String,
    calls: String,
}

impl Code {
    /// The text after each occurrence of the word `word` outside strings (not
    /// inside a longer name).
    fn after<'a>(&'a self, word: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let code = &self.calls;
        code.match_indices(word).filter_map(move |(at, _)| {
            let before = code[..at].chars().next_back();
            let after = code[at + word.len()..].chars().next();
            (!before.is_some_and(ident) && !after.is_some_and(ident))
                .then(|| &self.text[at + word.len()..])
        })
    }
}

/// The string literal at the start of `text` (after blanks) and the rest after it.
fn string_literal(text: &str) -> Option<(String, &str)> {
    let body = text.trim_start().strip_prefix('"')?;
    let end = body.find(['"', '\\'])?;
    (body.as_bytes()[end] == b'"').then(|| (body[..end].to_string(), &body[end + 1..]))
}

/// The text up to the `)` closing the call whose arguments start `text`.
fn until_close(text: &str) -> Option<&str> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '`' | '\'' => quote = Some(c),
            '(' | '[' | '{' => depth += 1,
            ')' if depth == 0 => return Some(&text[..i]),
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Adds the `param(...)` calls of `code`; false when one's name is not a literal.
fn param_calls(code: &Code, out: &mut Vec<ParamCall>) -> bool {
    let literal = Engine::new_raw();
    let mut complete = true;
    for after in code.after("param") {
        let Some(args) = after.trim_start().strip_prefix('(') else {
            continue; // the word, not a call
        };
        let Some((name, rest)) = string_literal(args) else {
            complete = false;
            continue;
        };
        let rest = rest.trim_start();
        let default = match rest.strip_prefix(',') {
            Some(default) => until_close(default)
                .and_then(|expr| literal.eval_expression::<Dynamic>(expr.trim()).ok()),
            // `param("a" + b, ...)`: the name is built at run time.
            None if !rest.starts_with(')') => {
                complete = false;
                continue;
            }
            None => None,
        };
        out.push(ParamCall { name, default });
    }
    complete
}

/// The names of `import "NAME"` statements, and false when an import's name is
/// computed at run time.
fn imports(code: &Code) -> (Vec<String>, bool) {
    let mut names = Vec::new();
    let mut literal = true;
    for after in code.after("import") {
        match string_literal(after) {
            Some((name, _)) => names.push(name),
            None => literal = false,
        }
    }
    (names, literal)
}

/// The top-level `import "NAME" as ALIAS` statements of a text, as (NAME, ALIAS).
/// The REPL runs them again before each later input: a module lives only as long
/// as the input that imported it.
pub fn top_level_imports(text: &str) -> Vec<(String, String)> {
    let code = blank(text, false);
    let calls = blank(text, true);
    let b = calls.as_bytes();
    let mut depth = 0i32;
    let mut found = Vec::new();
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b'i' if depth == 0
                && b[i..].starts_with(b"import")
                && !(i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                let Some((name, rest)) = string_literal(&code[i + "import".len()..]) else {
                    continue;
                };
                let Some(alias) = rest.trim_start().strip_prefix("as") else {
                    continue;
                };
                let alias: String = alias
                    .trim_start()
                    .chars()
                    .take_while(|&c| ident(c))
                    .collect();
                if !alias.is_empty() {
                    found.push((name, alias));
                }
            }
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_params_and_defaults_are_found_outside_comments() {
        let s = scan(
            None,
            r#"let e = param("epochs", 3); // param("old", 1)
               /* param("gone", 2) */ let l = param( "lr" , 0.5 );
               let h = param("hidden", [4, 8]); let d = param("data", cfg.data);
               let important = my_param("x", 1); print("param(\"s\", 1)");"#,
        );
        let found: Vec<(&str, String)> = s
            .params
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.default
                        .as_ref()
                        .map_or("?".into(), |d| d.type_name().to_string()),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("epochs", "i64".to_string()),
                ("lr", "f64".into()),
                ("hidden", "array".into()),
                ("data", "?".into())
            ]
        );
        assert!(s.complete);
    }

    #[test]
    fn a_computed_name_or_import_makes_the_scan_incomplete() {
        assert!(!scan(None, r#"let e = param("ep" + "ochs", 3);"#).complete);
        assert!(!scan(None, "let n = \"epochs\"; let e = param(n, 3);").complete);
        assert!(!scan(None, "let m = \"paper\"; import m as p;").complete);
        assert!(!scan(None, "import \"no_such_module_here\" as p;").complete);
        assert!(scan(None, "// we import data\nlet x = 1;").complete);
    }

    #[test]
    fn top_level_imports_with_their_aliases() {
        let text = "import \"a\" as x; fn f() { import \"b\" as y; }\n// import \"c\" as z;\nlet s = \"import \\\"d\\\" as w\"; import \"e\";\nimport \"f\"  as  g ;";
        assert_eq!(
            top_level_imports(text),
            [("a".to_string(), "x".to_string()), ("f".into(), "g".into())]
        );
    }

    #[test]
    fn imported_modules_are_scanned_from_the_importers_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.rhai"),
            "import \"b\" as b; fn f() { param(\"from_a\", 1) }",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.rhai"),
            "fn g() { param(\"from_b\", true) }",
        )
        .unwrap();
        let s = scan(Some(&dir.path().join("main.rhai")), "import \"a\" as a;");
        let names: Vec<&str> = s.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["from_a", "from_b"]);
        assert_eq!(s.modules.len(), 2);
        assert!(s.complete);
    }
}
