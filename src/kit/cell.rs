//! A script value becoming one result cell: numbers, strings and booleans only,
//! so every recorded column has one Parquet type.

use super::error::{script_error, ScriptResult};
use crate::results::Value;
use rhai::Dynamic;

pub fn cell_value(what: &str, role: &str, key: &str, v: &Dynamic) -> ScriptResult<Value> {
    if let Ok(i) = v.as_int() {
        Ok(Value::Int(i))
    } else if let Ok(f) = v.as_float() {
        Ok(Value::Float(f))
    } else if let Ok(b) = v.as_bool() {
        Ok(Value::Bool(b))
    } else if v.is_string() {
        Ok(Value::Str(v.to_string()))
    } else {
        Err(script_error(format!(
            "{what}: {role} `{key}` must be a number, string or boolean, found {}",
            v.type_name()
        )))
    }
}
