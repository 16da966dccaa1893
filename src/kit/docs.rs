//! How a script function or property is described. Each domain keeps its
//! descriptions in its own `docs.rs`, beside the bindings they describe; the host
//! composes them into docs/API.md, the `.d.rhai` definitions and the REPL's `:help`.

use super::config::Spec;

pub struct Doc {
    pub name: &'static str,
    /// One line: what it does and returns.
    pub description: &'static str,
    pub example: &'static str,
    /// The config maps it accepts, for `:help` and completion of their keys.
    pub specs: &'static [&'static Spec],
}

/// A property (`value.name`) of a script type.
pub struct Property {
    pub of: &'static str,
    pub name: &'static str,
    pub description: &'static str,
}

pub const fn doc(
    name: &'static str,
    description: &'static str,
    example: &'static str,
    specs: &'static [&'static Spec],
) -> Doc {
    Doc {
        name,
        description,
        example,
        specs,
    }
}

pub const fn prop(of: &'static str, name: &'static str, description: &'static str) -> Property {
    Property {
        of,
        name,
        description,
    }
}
