//! When a REPL input is whole: brackets, strings and block comments closed. The
//! scan also tells completion where the cursor is (in a string, in a map literal).

/// The state at the end of a scanned text.
#[derive(Debug, Default, PartialEq)]
pub struct Scan {
    /// Unclosed `(`, `[`, `{` (a `#{` map literal is `#`), with byte offsets.
    pub open: Vec<(char, usize)>,
    /// Byte offset of the opening quote of an unterminated string.
    pub string: Option<usize>,
    /// Nesting depth of unterminated `/* */` comments (Rhai nests them).
    pub comment: usize,
}

pub fn scan(text: &str) -> Scan {
    let mut s = Scan::default();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if s.comment > 0 {
            if b[i..].starts_with(b"*/") {
                s.comment -= 1;
                i += 1;
            } else if b[i..].starts_with(b"/*") {
                s.comment += 1;
                i += 1;
            }
        } else if let Some(start) = s.string {
            let quote = b[start];
            if c == b'\\' && quote != b'`' {
                i += 1;
            } else if c == quote {
                s.string = None;
            } else if c == b'\n' && quote != b'`' {
                // Only backtick strings span lines (and others whose line ends in
                // `\`, skipped above): this one is unterminated, a syntax error for
                // the parser to report rather than a reason to read more.
                return Scan::default();
            }
        } else {
            match c {
                b'"' | b'`' | b'\'' => s.string = Some(i),
                b'/' if b.get(i + 1) == Some(&b'/') => {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
                b'/' if b.get(i + 1) == Some(&b'*') => {
                    s.comment += 1;
                    i += 1;
                }
                b'#' if b.get(i + 1) == Some(&b'{') => {
                    s.open.push(('#', i));
                    i += 1;
                }
                b'(' | b'[' | b'{' => s.open.push((c as char, i)),
                b')' | b']' | b'}' => {
                    let want = match c {
                        b')' => '(',
                        b']' => '[',
                        _ => '{',
                    };
                    match s.open.last() {
                        Some(&(o, _)) if o == want || (want == '{' && o == '#') => {
                            s.open.pop();
                        }
                        // A stray closer is a syntax error: let the parser report it.
                        _ => return Scan::default(),
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    s
}

/// True when the text can be evaluated; otherwise the REPL reads another line.
pub fn is_complete(text: &str) -> bool {
    let s = scan(text);
    s.open.is_empty() && s.comment == 0 && s.string.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_brackets_strings_and_comments_continue_the_input() {
        for text in [
            "fn f(x) {",
            "let a = [1,",
            "toy(#{ n_train: 4,",
            "print(\"abc",
            "let s = `multi\nline",
            "/* a /* nested */ comment",
            "f(1, (2",
            "print(\"one \\\n two",
        ] {
            assert!(!is_complete(text), "{text:?}");
        }
        for text in [
            "fn f(x) { x * 2 }",
            "print(\"(\")",
            "let c = '{';",
            "let a = 1; // (",
            "print(\"esc \\\" (\")",
            "/* ( */ 1",
            "let m = #{ a: [1, 2] };",
            "1 + )",
            // Unterminated on its line: the parser reports it.
            "print(\"abc\n",
            "let s = 'x\nmore(",
        ] {
            assert!(is_complete(text), "{text:?}");
        }
    }

    #[test]
    fn the_scan_locates_the_innermost_map_and_an_open_string() {
        let s = scan("train(m, d, #{ epochs: 3, ");
        assert_eq!(s.open, vec![('(', 5), ('#', 12)]);
        let s = scan("read_results(\"runs/fi");
        assert_eq!(s.string, Some(13));
    }
}
