//! Tool input checked in the engine, before it crosses to the host.
//!
//! The host validates every call's input with the same validator (`schema`, compiled once per
//! schema and shared): an input the engine finds valid need not be checked again. This is
//! only ever a "yes": an input it finds invalid is left to the host, which writes the error.

use std::sync::Arc;

use jsonschema::Validator;
use serde_json::Value;

/// Per tool, the validator that may vouch for its input: made once (per set of tools) and
/// handed to every execution with [`crate::Execution::set_input_checks`].
#[derive(Clone, Default)]
pub struct InputChecks(pub(crate) Arc<Vec<Option<Arc<Validator>>>>);

impl InputChecks {
    /// One entry per tool, in the order of the tool names: a JSON Schema (JSON text) to
    /// check its inputs against, or `None` to leave them all to the host (as for a schema
    /// that does not compile).
    pub fn new(schemas: &[Option<String>]) -> Self {
        Self(Arc::new(
            schemas
                .iter()
                .map(|s| s.as_deref().and_then(|s| crate::schema::compile(s).ok()))
                .collect(),
        ))
    }

    pub(crate) fn get(&self, tool: usize) -> Option<&Validator> {
        self.0.get(tool).and_then(|v| v.as_deref())
    }
}

/// Whether `json`, a call's input as JSON text, is valid.
pub(crate) fn passes(validator: &Validator, json: &str) -> bool {
    match serde_json::from_str::<Value>(json) {
        Ok(value) => validator.is_valid(&value),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vouches_only_for_certainly_valid_input() {
        let schema = r#"{"type":"object","properties":{"n":{"type":"integer","maximum":9}},"required":["n"]}"#;
        let v = crate::schema::compile(schema).expect("compiles");
        assert!(passes(&v, r#"{"n":3}"#));
        assert!(!passes(&v, r#"{"n":10}"#));
        assert!(!passes(&v, r#"{}"#));
        assert!(
            passes(&v, r#"{"n":1e0}"#),
            "an integral float is an integer"
        );
        assert!(!passes(&v, "not json"));
        let checks = InputChecks::new(&[Some(r#"{"type": 12}"#.to_owned()), None]);
        assert!(checks.get(0).is_none() && checks.get(1).is_none());
    }
}
