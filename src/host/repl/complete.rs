//! Tab completion: functions, variables, the methods and properties of a
//! variable's type, the keys of a function's config map, and file paths in strings.

use super::input::scan;
use crate::host::api::{self, Signature};
use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

/// What the session holds now; the REPL refreshes it after every input.
#[derive(Default)]
pub struct Vocab {
    /// Variables with their script type names.
    pub vars: Vec<(String, String)>,
    /// Functions the session's inputs defined.
    pub script_fns: Vec<String>,
}

pub struct Completion {
    functions: Vec<String>,
    /// Functions and properties by the type they are called on.
    methods: Vec<Signature>,
    pub vocab: Rc<RefCell<Vocab>>,
}

pub const COMMANDS: &[&str] = &[":help", ":vars", ":load", ":save", ":quit"];

fn ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn matching<'a>(prefix: &str, names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = names
        .filter(|n| n.starts_with(prefix))
        .map(String::from)
        .collect();
    out.sort();
    out.dedup();
    out
}

impl Completion {
    pub fn new(engine: &rhai::Engine, vocab: Rc<RefCell<Vocab>>) -> Completion {
        let methods = api::signatures(engine);
        let functions = methods
            .iter()
            .filter(|s| !s.name.starts_with("get$"))
            .map(|s| s.name.clone())
            .collect();
        Completion {
            functions,
            methods,
            vocab,
        }
    }

    /// The start of the text to replace and the candidates for it.
    pub fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        if before.starts_with(':') && !before.contains(' ') {
            return (0, matching(before, COMMANDS.iter().copied()));
        }
        if let Some(rest) = before
            .strip_prefix(":load ")
            .or(before.strip_prefix(":save "))
        {
            return paths(pos - rest.len(), rest);
        }
        let s = scan(before);
        if let Some(quote) = s.string {
            return paths(quote + 1, &before[quote + 1..]);
        }
        let word_start = before
            .char_indices()
            .rev()
            .find(|&(_, c)| !ident(c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &before[word_start..];
        let head = before[..word_start].trim_end();
        if let Some(receiver) = head.strip_suffix('.') {
            return (word_start, self.members(receiver, word));
        }
        if let Some(&(_, at)) = s.open.last().filter(|(c, _)| *c == '#') {
            if head.ends_with('{') || head.ends_with(',') {
                return (word_start, self.config_keys(&before[..at], word));
            }
        }
        let vocab = self.vocab.borrow();
        let names = self
            .functions
            .iter()
            .map(String::as_str)
            .chain(vocab.vars.iter().map(|(n, _)| n.as_str()))
            .chain(vocab.script_fns.iter().map(String::as_str));
        (word_start, matching(word, names))
    }

    /// Methods and properties of the variable's type (all, when it is unknown).
    fn members(&self, receiver: &str, word: &str) -> Vec<String> {
        let var = receiver
            .rsplit(|c: char| !ident(c))
            .next()
            .unwrap_or_default();
        let vocab = self.vocab.borrow();
        let ty = vocab
            .vars
            .iter()
            .find(|(n, _)| n == var)
            .map(|(_, t)| t.as_str());
        let names = self
            .methods
            .iter()
            .filter(|s| !s.params.is_empty())
            .filter(|s| ty.is_none_or(|t| s.receiver() == Some(t)))
            .map(|s| s.name.strip_prefix("get$").unwrap_or(&s.name))
            .filter(|n| !["to_string", "to_debug"].contains(n));
        matching(word, names)
    }

    /// Keys of the config map being written as an argument of `name(`: those of
    /// every spec the function declares, or, when a spec names the call's first
    /// argument (`dataset("cifar100", #{`), of that spec only.
    fn config_keys(&self, before_map: &str, word: &str) -> Vec<String> {
        let s = scan(before_map);
        let Some(&(_, paren)) = s.open.last().filter(|(c, _)| *c == '(') else {
            return Vec::new();
        };
        let head = before_map[..paren].trim_end();
        let name = head.rsplit(|c: char| !ident(c)).next().unwrap_or_default();
        let Some(doc) = api::find(name) else {
            return Vec::new();
        };
        let first = before_map[paren + 1..]
            .split(',')
            .next()
            .unwrap_or_default();
        let named = format!("{name}({})", first.trim());
        let specs: Vec<_> = match doc
            .specs
            .iter()
            .filter(|s| s.what.starts_with(&named))
            .collect::<Vec<_>>()
        {
            only if !only.is_empty() => only,
            _ => doc.specs.iter().collect(),
        };
        let keys = specs.iter().flat_map(|s| s.keys.iter().map(|k| k.name));
        matching(word, keys)
            .into_iter()
            .map(|k| format!("{k}: "))
            .collect()
    }
}

/// Entries of the folder named so far in `typed`, completing its last component;
/// folders end in `/`.
fn paths(start: usize, typed: &str) -> (usize, Vec<String>) {
    let (dir, prefix) = match typed.rfind('/') {
        Some(i) => (&typed[..=i], &typed[i + 1..]),
        None => ("", typed),
    };
    let Ok(entries) = std::fs::read_dir(if dir.is_empty() {
        Path::new(".")
    } else {
        Path::new(dir)
    }) else {
        return (start, Vec::new());
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            (name.starts_with(prefix) && (!name.starts_with('.') || prefix.starts_with('.')))
                .then(|| if is_dir { format!("{name}/") } else { name })
        })
        .collect();
    names.sort();
    (start + dir.len(), names)
}

impl Completer for Completion {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(self.candidates(line, pos))
    }
}

impl Hinter for Completion {
    type Hint = String;
}
impl Highlighter for Completion {}
impl Validator for Completion {}
impl Helper for Completion {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{Host, Session, SessionOptions};
    use crate::kit::params::Params;

    fn host() -> Host {
        Host::new(Session::new(SessionOptions {
            script: None,
            out: None,
            runs_base: std::env::temp_dir(),
            device: tch::Device::Cpu,
            quiet: true,
            params: Params::parse(&[]).unwrap(),
            resume: false,
        }))
    }

    fn completion() -> Completion {
        let host = host();
        let vocab = Rc::new(RefCell::new(Vocab {
            vars: vec![("f".into(), "Frame".into()), ("run".into(), "Run".into())],
            script_fns: vec!["my_helper".into()],
        }));
        Completion::new(&host.engine, vocab)
    }

    #[test]
    fn candidates_follow_the_cursor_context() {
        let c = completion();
        assert_eq!(
            c.candidates("read_re", 7),
            (0, vec!["read_results".to_string()])
        );
        assert_eq!(
            c.candidates("1 + my_h", 8),
            (4, vec!["my_helper".to_string()])
        );
        // Methods and properties of the variable's type only.
        let (at, found) = c.candidates("f.s", 3);
        assert_eq!(
            (at, found),
            (2, vec!["select".into(), "show".into(), "sort".into()])
        );
        let (_, found) = c.candidates("run.te", 6);
        assert_eq!(found, ["test_acc", "test_loss"]);
        // adversarial_init takes train and random_labels keys.
        let line = "adversarial_init(m, d, #{ epochs: 3, re";
        let (_, found) = c.candidates(line, line.len());
        assert_eq!(found, ["replicas: "]);
        // A value position inside the map completes names, not keys.
        let line = "train(m, d, #{ seed: to";
        let (_, found) = c.candidates(line, line.len());
        assert!(found.contains(&"toy".to_string()) && !found.iter().any(|k| k.ends_with(": ")));
        assert_eq!(c.candidates(":sa", 3), (0, vec![":save".to_string()]));
    }

    #[test]
    fn every_function_taking_a_config_map_completes_its_keys() {
        let c = completion();
        let line = "let d = dataset(\"cifar10\", #{ ro";
        assert_eq!(c.candidates(line, line.len()).1, ["root: "]);
        // The data set named first picks its own keys.
        let line = "dataset(\"cifar100\", #{ root: \"x\", la";
        assert_eq!(c.candidates(line, line.len()).1, ["labels: "]);
        let line = "dataset(\"fashion_mnist\", #{ ";
        assert_eq!(
            c.candidates(line, line.len()).1,
            ["normalize: ", "pad: ", "root: "]
        );
        // Maps whose keys are the script's own names (tags, columns, grid axes), and
        // `sweep`'s, which is what `grid` returned.
        let free = ["record", "record_metrics", "grid", "filter", "agg", "sweep"];
        for sig in api::signatures(&host().engine) {
            if !sig.params.iter().any(|p| p.ends_with(": map")) || free.contains(&sig.name.as_str())
            {
                continue;
            }
            let doc = api::find(&sig.name).unwrap_or_else(|| panic!("{} undocumented", sig.name));
            let key = doc
                .specs
                .first()
                .and_then(|s| s.keys.first())
                .map(|k| k.name);
            let key =
                key.unwrap_or_else(|| panic!("{} takes a map but declares no keys", sig.render()));
            let line = format!("{}(#{{ {}", sig.name, &key[..1]);
            let (_, found) = c.candidates(&line, line.len());
            assert!(found.contains(&format!("{key}: ")), "{line}: {found:?}");
        }
    }
}
