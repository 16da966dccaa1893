//! The composer of the script API's descriptions: each domain describes its own
//! functions in its `docs.rs`, beside their bindings, and this chains them in the
//! order docs/API.md lists them. `minima doc` renders docs/API.md and the `.d.rhai`
//! definitions from them plus the engine's own signatures; the REPL's `:help` and
//! config-key completion read them too. A function registered without a
//! description makes `tests/api_doc.rs` fail.

use crate::kit::docs::{Doc, Property};
use crate::{data, frame, metrics, models, plot, sweep, train};
use rhai::Engine;
use std::collections::BTreeMap;

/// docs/API.md's order: roughly a script's, so `record.rs`'s functions come after
/// the metrics they record rather than with training.
const FUNCTIONS: &[&[Doc]] = &[
    super::docs::FUNCTIONS,
    data::docs::FUNCTIONS,
    models::docs::FUNCTIONS,
    train::docs::FUNCTIONS,
    metrics::docs::FUNCTIONS,
    train::docs::RECORD_FUNCTIONS,
    plot::docs::FUNCTIONS,
    sweep::docs::FUNCTIONS,
    frame::docs::FUNCTIONS,
];

const PROPERTIES: &[&[Property]] = &[
    data::docs::PROPERTIES,
    models::docs::PROPERTIES,
    train::docs::PROPERTIES,
    frame::docs::PROPERTIES,
];

/// Every function's description, in the order docs/API.md lists them.
pub fn functions() -> impl Iterator<Item = &'static Doc> {
    FUNCTIONS.iter().copied().flatten()
}

/// Every property's description, grouped by type.
pub fn properties() -> impl Iterator<Item = &'static Property> {
    PROPERTIES.iter().copied().flatten()
}

pub fn find(name: &str) -> Option<&'static Doc> {
    functions().find(|d| d.name == name)
}

/// Conversions every type provides; documented once, not per type.
const CONVENTIONS: &[&str] = &["to_string", "to_debug"];

/// A registered function's signature, from the engine's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    pub name: String,
    /// Parameters as `name: Type` (or just the type).
    pub params: Vec<String>,
    pub returns: String,
}

impl Signature {
    /// The type of the first parameter, i.e. the value a method is called on.
    pub fn receiver(&self) -> Option<&str> {
        self.params.first().map(|p| {
            p.rsplit(": ")
                .next()
                .unwrap_or(p)
                .trim_start_matches("&mut ")
        })
    }

    pub fn render(&self) -> String {
        let ret = if self.returns.is_empty() || self.returns == "()" {
            String::new()
        } else {
            format!(" -> {}", self.returns)
        };
        format!("{}({}){ret}", self.name, self.params.join(", "))
    }
}

/// Splits `text` at top-level commas (not those inside `<...>` or `(...)`).
fn split_top(text: &str) -> Vec<&str> {
    let (mut depth, mut from, mut parts) = (0i32, 0, Vec::new());
    for (i, c) in text.char_indices() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(text[from..i].trim());
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text[from..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// A Rust type name as scripts know it: `ScriptResult<T>` is `T`, registered
/// types by their script name (`Rc<Dataset>` is `Data`), Rhai's own by theirs.
fn tidy_type(engine: &Engine, ty: &str) -> String {
    let ty = ty.trim().trim_start_matches("&mut ");
    let ty = match ty.strip_prefix("core::result::Result<") {
        Some(rest) => split_top(rest.strip_suffix('>').unwrap_or(rest))
            .first()
            .copied()
            .unwrap_or("()"),
        None => ty,
    };
    match ty {
        "?" | "types::dynamic::Dynamic" | "rhai::types::dynamic::Dynamic" => "Dynamic".into(),
        "f64" => "float".into(),
        "i64" => "int".into(),
        "&str" | "String" | "alloc::string::String" => "string".into(),
        other => {
            let mapped = engine.map_type_name(other);
            let base = mapped.split('<').next().unwrap_or(mapped);
            match base.rsplit("::").next().unwrap_or(base) {
                "BTreeMap" => "map".into(),
                "Vec" => "array".into(),
                _ if mapped.contains('<') => mapped.to_string(),
                short => short.to_string(),
            }
        }
    }
}

/// Parses `name(_: A, _: B) -> R` as written by `Engine::gen_fn_signatures`.
fn parse(engine: &Engine, sig: &str) -> Option<Signature> {
    let open = sig.find('(')?;
    let mut depth = 0;
    let close = sig[open..].char_indices().find_map(|(i, c)| {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        (depth == 0).then_some(open + i)
    })?;
    let params = split_top(&sig[open + 1..close])
        .into_iter()
        .map(|p| {
            let (name, ty) = p.split_once(": ").unwrap_or(("_", p));
            format!("{name}: {}", tidy_type(engine, ty))
        })
        .collect();
    let returns = match sig[close + 1..].trim().strip_prefix("->") {
        Some(r) => tidy_type(engine, r),
        None => String::new(),
    };
    Some(Signature {
        name: sig[..open].to_string(),
        params,
        returns,
    })
}

/// Every minima function (not Rhai's standard library), getters as `get$name`.
pub fn signatures(engine: &Engine) -> Vec<Signature> {
    let mut sigs: Vec<Signature> = engine
        .gen_fn_signatures(false)
        .iter()
        .filter_map(|s| parse(engine, s))
        .collect();
    // The engine lists functions in hash order; sort so the docs are reproducible.
    sigs.sort_by_cached_key(|s| (s.name.clone(), s.params.len(), s.render()));
    sigs.dedup();
    sigs
}

/// Names of registered functions and properties no domain describes.
pub fn undocumented(engine: &Engine) -> Vec<String> {
    let mut missing: Vec<String> = signatures(engine)
        .into_iter()
        .filter_map(|s| match s.name.strip_prefix("get$") {
            Some(p) => {
                let of = s.receiver().unwrap_or_default().to_string();
                let known = properties().any(|q| q.name == p && q.of == of);
                (!known).then(|| format!("{of}.{p}"))
            }
            None => (!CONVENTIONS.contains(&s.name.as_str()) && find(&s.name).is_none())
                .then_some(s.name),
        })
        .collect();
    missing.dedup();
    missing
}

/// How [`entry`] marks a function's entry up.
#[derive(Clone, Copy)]
pub enum Style {
    /// A section of docs/API.md.
    Markdown,
    /// Indented text for the REPL's `:help`.
    Plain,
}

/// One function's entry: its signatures, description, example and config keys.
/// docs/API.md and `:help` both show this, so they say the same in their own markup.
pub fn entry(doc: &Doc, sigs: &[Signature], style: Style) -> String {
    let sigs: String = sigs.iter().map(|s| format!("{}\n", s.render())).collect();
    let (name, description, example) = (doc.name, doc.description, doc.example);
    let mut out = match style {
        Style::Markdown => format!(
            "\n### `{name}`\n\n```rhai\n{sigs}```\n\n{description}\n\nExample: `{example}`\n"
        ),
        Style::Plain => format!("{sigs}  {description}\n  example: {example}\n"),
    };
    for spec in doc.specs {
        out.push_str(&match style {
            Style::Markdown => format!("\n{} keys:\n\n", spec.what),
            Style::Plain => format!("  {} keys:\n", spec.what),
        });
        for k in spec.keys {
            out.push_str(&match style {
                Style::Markdown => format!("- `{}`: {}\n", k.name, k.help),
                Style::Plain => format!("    {}: {}\n", k.name, k.help),
            });
        }
    }
    out
}

/// docs/API.md: every function with its signatures, description, example and
/// config keys, then every type's properties.
pub fn markdown(engine: &Engine) -> String {
    let mut by_name: BTreeMap<String, Vec<Signature>> = BTreeMap::new();
    for s in signatures(engine) {
        if !s.name.starts_with("get$") && !CONVENTIONS.contains(&s.name.as_str()) {
            by_name.entry(s.name.clone()).or_default().push(s);
        }
    }
    let mut out = String::from(
        "# minima script API\n\n\
         Generated by `minima doc` from the registered functions and the descriptions in\n\
         `src/*/docs.rs`; do not edit by hand. Guides: docs/SCRIPTING.md, docs/REPL.md.\n\n\
         ## Functions\n",
    );
    for doc in functions() {
        let sigs = by_name.get(doc.name).map_or(&[][..], Vec::as_slice);
        out.push_str(&entry(doc, sigs, Style::Markdown));
    }
    out.push_str("\n## Properties\n");
    let mut of = "";
    for p in properties() {
        if p.of != of {
            of = p.of;
            out.push_str(&format!("\n### `{of}`\n\n"));
        }
        out.push_str(&format!("- `.{}`: {}\n", p.name, p.description));
    }
    out
}

/// `minima.d.rhai`: Rhai's definition-file format (`fn name(_: T) -> R;`, getters
/// as `fn get name(...)`) with the descriptions as doc comments, for editors.
pub fn definitions(engine: &Engine) -> String {
    let mut out = String::from("module static;\n");
    for s in signatures(engine) {
        if CONVENTIONS.contains(&s.name.as_str()) {
            continue;
        }
        let ret = if s.returns.is_empty() {
            String::new()
        } else {
            format!(" -> {}", s.returns)
        };
        let params = s.params.join(", ");
        match s.name.strip_prefix("get$") {
            Some(p) => {
                let of = s.receiver().unwrap_or_default();
                if let Some(q) = properties().find(|q| q.name == p && q.of == of) {
                    out.push_str(&format!("\n/// {}\n", q.description));
                }
                out.push_str(&format!("fn get {p}({params}){ret};\n"));
            }
            None => {
                if let Some(d) = find(&s.name) {
                    out.push_str(&format!(
                        "\n/// {}\n/// ```\n/// {}\n/// ```\n",
                        d.description, d.example
                    ));
                }
                out.push_str(&format!("fn {}({params}){ret};\n", s.name));
            }
        }
    }
    out
}
