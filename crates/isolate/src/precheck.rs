//! Tool input checked in the engine, before it crosses to the host.
//!
//! The host validates every call's input; for simple schemas the engine can tell at once
//! that an input is valid, so the host need not check it again. This is only ever a "yes":
//! an input it cannot vouch for (invalid, or not certainly valid) is left to the host, which
//! also writes every error message. The host only hands over schemas on which both
//! validators agree (see `precheck_schema` in the Python package); inputs with integral
//! numbers written as floats (`1e21`) are left to the host too, as JSON Schema counts them
//! as integers and the host's validator does not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::Validator;
use serde_json::Value;

/// Per tool, the validator that may vouch for its input: made once (per set of tools) and
/// handed to every execution with [`crate::Execution::set_input_checks`].
#[derive(Clone, Default)]
pub struct InputChecks(pub(crate) Arc<Vec<Option<Arc<Validator>>>>);

impl InputChecks {
    /// One entry per tool, in the order of the tool names: a JSON Schema (JSON text) to
    /// check its inputs against, or `None` to leave them all to the host.
    pub fn new(schemas: &[Option<String>]) -> Self {
        Self(Arc::new(
            schemas
                .iter()
                .map(|s| s.as_deref().and_then(validator))
                .collect(),
        ))
    }

    pub(crate) fn get(&self, tool: usize) -> Option<&Validator> {
        self.0.get(tool).and_then(|v| v.as_deref())
    }
}

/// The draft-07 validator of `schema` (JSON text), compiled once per process (the cache is
/// cleared past 256 schemas); `None` when it is not a schema this validator compiles.
pub(crate) fn validator(schema: &str) -> Option<Arc<Validator>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Arc<Validator>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(found) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(schema) {
        return found.clone();
    }
    let compiled = serde_json::from_str::<Value>(schema)
        .ok()
        .and_then(|value| jsonschema::draft7::new(&value).ok())
        .map(Arc::new);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= 256 {
        cache.clear();
    }
    cache.insert(schema.to_owned(), compiled.clone());
    compiled
}

/// Whether `json`, a call's input as JSON text, is certainly valid.
pub(crate) fn passes(validator: &Validator, json: &str) -> bool {
    match serde_json::from_str::<Value>(json) {
        Ok(value) => !has_integral_float(&value) && validator.is_valid(&value),
        Err(_) => false,
    }
}

fn has_integral_float(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64() && n.as_f64().is_some_and(|f| f.fract() == 0.0),
        Value::Array(items) => items.iter().any(has_integral_float),
        Value::Object(map) => map.values().any(has_integral_float),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vouches_only_for_certainly_valid_input() {
        let schema = r#"{"type":"object","properties":{"n":{"type":"integer","maximum":9}},"required":["n"]}"#;
        let v = validator(schema).expect("compiles");
        assert!(passes(&v, r#"{"n":3}"#));
        assert!(!passes(&v, r#"{"n":10}"#));
        assert!(!passes(&v, r#"{}"#));
        assert!(
            !passes(&v, r#"{"n":1e0}"#),
            "an integral float is left to the host"
        );
        assert!(!passes(&v, "not json"));
        assert!(validator(r#"{"type": 12}"#).is_none());
    }
}
