//! Errors raised by bindings. They carry no position: the engine fills in the
//! position of the call that failed, so every message points at a script line.

use rhai::{EvalAltResult, Position};

pub type ScriptResult<T> = Result<T, Box<EvalAltResult>>;

pub fn script_error(message: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        message.into().into(),
        Position::NONE,
    ))
}

/// An anyhow error with its whole context chain on one line.
pub fn from_anyhow(err: anyhow::Error) -> Box<EvalAltResult> {
    script_error(format!("{err:#}"))
}

pub trait OrScript<T> {
    fn or_script(self) -> ScriptResult<T>;
}

impl<T> OrScript<T> for anyhow::Result<T> {
    fn or_script(self) -> ScriptResult<T> {
        self.map_err(from_anyhow)
    }
}

impl<T> OrScript<T> for Result<T, String> {
    fn or_script(self) -> ScriptResult<T> {
        self.map_err(script_error)
    }
}
