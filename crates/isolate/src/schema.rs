//! The one JSON Schema validator of tool input and output: the `jsonschema` crate, for the
//! engine's check of each call's input (`precheck`) and the host's checks alike.
//!
//! A schema is validated as the draft its `$schema` names (draft 4, 6, 7, 2019-09, 2020-12),
//! and as draft 2020-12 when it names none (MCP's default dialect) or one this validator does
//! not know. Compiling checks the schema against its meta-schema. `format` asserts only where
//! the draft says it does (drafts 4-7); from 2019-09 on it is an annotation.
//!
//! Errors are worded for the program: the path as it would write it (`input.items[1].name`),
//! then what is wrong (`must be integer`); see [`describe`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::{Location, LocationSegment};
use jsonschema::{Draft, ValidationError};
use serde_json::Value;

pub use jsonschema::Validator;

/// What is wrong with an instance (or a schema): where, as a suffix to the name of the
/// root (`""`, `.n`, `[0].name`, `["a b"]`), and a message (`must be integer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

/// The validator of `schema` (JSON text). Compiled once per process while any holder keeps it
/// (the cache holds it weakly): the host's validator of a tool and the engine's share one.
pub fn compile(schema: &str) -> Result<Arc<Validator>, Problem> {
    static CACHE: OnceLock<Mutex<HashMap<String, Weak<Validator>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(found) = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(schema)
        .and_then(Weak::upgrade)
    {
        return Ok(found);
    }
    let value = serde_json::from_str::<Value>(schema).map_err(|e| Problem {
        path: String::new(),
        message: format!("is not JSON: {e}"),
    })?;
    let compiled = Arc::new(build(&value)?);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= 256 {
        cache.retain(|_, v| v.strong_count() > 0);
    }
    cache.insert(schema.to_owned(), Arc::downgrade(&compiled));
    Ok(compiled)
}

/// The validators a host library checks values with (`check(i, value)` in the library, see
/// [`crate::Execution::set_library_checks`]), in order: made once (per set of schemas) and
/// handed to every execution. A schema that does not compile stays as its problem, which
/// every check against it reports.
#[derive(Clone, Default)]
pub struct LibraryChecks(Arc<Vec<Result<Arc<Validator>, Problem>>>);

impl LibraryChecks {
    /// One validator per JSON Schema (JSON text), compiled through the shared cache.
    pub fn new(schemas: &[String]) -> Self {
        Self(Arc::new(schemas.iter().map(|s| compile(s)).collect()))
    }

    /// What is wrong with `json` (a value as JSON text) by validator `index`, or `None` when
    /// it is valid. An index past the list, or JSON that does not parse, is a problem too.
    pub(crate) fn check(&self, index: usize, json: &str) -> Option<Problem> {
        let validator = match self.0.get(index) {
            Some(Ok(validator)) => validator,
            Some(Err(problem)) => {
                return Some(Problem {
                    path: String::new(),
                    message: format!(
                        "cannot be checked: the schema is not valid ({}{}{})",
                        problem.path.trim_start_matches('.'),
                        if problem.path.is_empty() { "" } else { ": " },
                        problem.message
                    ),
                });
            }
            None => {
                return Some(Problem {
                    path: String::new(),
                    message: format!("cannot be checked: there is no schema {index}"),
                });
            }
        };
        match serde_json::from_str::<Value>(json) {
            Ok(value) => check(validator, &value),
            Err(_) => Some(Problem {
                path: String::new(),
                message: "cannot be checked: it is not JSON".to_owned(),
            }),
        }
    }
}

fn build(schema: &Value) -> Result<Validator, Problem> {
    let mut options = jsonschema::options();
    let named = schema.get("$schema").and_then(Value::as_str);
    if named.is_none_or(|uri| Draft::from_schema_uri(uri) == Draft::Unknown) {
        options = options.with_draft(Draft::Draft202012);
    }
    options.build(schema).map_err(|e| describe(&e, schema))
}

/// The first problem of `instance`, or `None` when it is valid.
pub fn check(validator: &Validator, instance: &Value) -> Option<Problem> {
    validator
        .validate(instance)
        .err()
        .map(|e| describe(&e, instance))
}

/// `error` worded for the program; `root` is the instance validated (to tell an array index
/// from an object key that looks like one).
pub fn describe(error: &ValidationError<'_>, root: &Value) -> Problem {
    let mut path = String::new();
    let mut node = Some(root);
    write_path(&mut path, &mut node, error.instance_path());
    let message = message(error, &mut path);
    Problem { path, message }
}

fn write_path(path: &mut String, node: &mut Option<&Value>, location: &Location) {
    for segment in location.segments() {
        let key = match segment {
            LocationSegment::Index(i) if node.is_some_and(Value::is_array) => {
                let _ = write!(path, "[{i}]");
                *node = node.and_then(|n| n.get(i));
                continue;
            }
            LocationSegment::Index(i) => i.to_string(),
            LocationSegment::Property(key) => key.into_owned(),
        };
        push_key(path, &key);
        *node = node.and_then(|n| n.get(&key));
    }
}

/// Append `key` to `path` as the program would write it: `.name`, or `["a b"]`.
pub fn push_key(path: &mut String, key: &str) {
    let mut chars = key.chars();
    let identifier = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if identifier {
        path.push('.');
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&Value::from(key).to_string());
        path.push(']');
    }
}

fn plural(n: u64, word: &str, words: &str) -> String {
    format!("{n} {}", if n == 1 { word } else { words })
}

/// What is wrong at the error's path; an error about a member (an unexpected property) moves
/// `path` to that member.
fn message(error: &ValidationError<'_>, path: &mut String) -> String {
    match error.kind() {
        ValidationErrorKind::Type { kind } => type_message(kind),
        ValidationErrorKind::Required { property } => format!("must have property {property}"),
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            if let Some(first) = unexpected.first() {
                push_key(path, first);
            }
            "is not allowed".to_owned()
        }
        ValidationErrorKind::FalseSchema => "is not allowed".to_owned(),
        ValidationErrorKind::AdditionalItems { limit } => items("at most", *limit as u64),
        ValidationErrorKind::UnevaluatedItems { unexpected } => match unexpected.first() {
            Some(first) => format!("must not have the item {first}"),
            None => "must not have more items".to_owned(),
        },
        ValidationErrorKind::Enum { options } => format!("must be one of {options}"),
        ValidationErrorKind::Constant { expected_value } => format!("must be {expected_value}"),
        ValidationErrorKind::Minimum { limit } => format!("must be >= {limit}"),
        ValidationErrorKind::Maximum { limit } => format!("must be <= {limit}"),
        ValidationErrorKind::ExclusiveMinimum { limit } => format!("must be > {limit}"),
        ValidationErrorKind::ExclusiveMaximum { limit } => format!("must be < {limit}"),
        ValidationErrorKind::MultipleOf { multiple_of } => {
            format!("must be a multiple of {multiple_of}")
        }
        ValidationErrorKind::MinLength { limit } => length("at least", *limit),
        ValidationErrorKind::MaxLength { limit } => length("at most", *limit),
        ValidationErrorKind::Pattern { pattern } => {
            format!("must match {}", Value::from(pattern.as_str()))
        }
        ValidationErrorKind::BacktrackLimitExceeded { .. }
        | ValidationErrorKind::RegexEngineFailure { .. } => {
            "cannot be checked against its pattern (too complex)".to_owned()
        }
        ValidationErrorKind::Format { format } => format!("must be a valid {format}"),
        ValidationErrorKind::MinItems { limit } => items("at least", *limit),
        ValidationErrorKind::MaxItems { limit } => items("at most", *limit),
        ValidationErrorKind::UniqueItems => "must not have duplicate items".to_owned(),
        ValidationErrorKind::Contains => contains_message(error),
        ValidationErrorKind::MinProperties { limit } => properties("at least", *limit),
        ValidationErrorKind::MaxProperties { limit } => properties("at most", *limit),
        ValidationErrorKind::PropertyNames { error } => property_name_message(error),
        ValidationErrorKind::AnyOf { context } => alternatives(error, context)
            .unwrap_or_else(|| "must match one of the allowed shapes".to_owned()),
        ValidationErrorKind::OneOfNotValid { context } => alternatives(error, context)
            .unwrap_or_else(|| "must match exactly one of the allowed shapes".to_owned()),
        ValidationErrorKind::OneOfMultipleValid { .. } => {
            "must match exactly one of the allowed shapes (it matches several)".to_owned()
        }
        ValidationErrorKind::Not { .. } => "must not match the excluded shape".to_owned(),
        ValidationErrorKind::ContentEncoding { content_encoding } => {
            format!("must be {content_encoding}-encoded")
        }
        ValidationErrorKind::FromUtf8 { .. } => "must decode to UTF-8 text".to_owned(),
        ValidationErrorKind::ContentMediaType { content_media_type } => {
            format!("must be a valid {content_media_type} document")
        }
        ValidationErrorKind::Custom { message, .. } => message.clone(),
        ValidationErrorKind::Referencing(e) => format!("cannot be checked: {e}"),
    }
}

/// `must be string`, or `must be string or null` (`null` last) for several types.
fn type_message(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => format!("must be {t}"),
        TypeKind::Multiple(set) => {
            // `null` last: "must be string or null"
            let mut names: Vec<&str> = set.iter().map(|t| t.as_str()).collect();
            names.sort_by_key(|name| *name == "null");
            format!("must be {}", names.join(" or "))
        }
    }
}

/// `must be at least 3 characters`, with `bound` "at least" or "at most".
fn length(bound: &str, limit: u64) -> String {
    format!(
        "must be {bound} {}",
        plural(limit, "character", "characters")
    )
}

/// `must have at most 1 item`, with `bound` "at least" or "at most".
fn items(bound: &str, limit: u64) -> String {
    format!("must have {bound} {}", plural(limit, "item", "items"))
}

/// `must have at least 2 properties`, with `bound` "at least" or "at most".
fn properties(bound: &str, limit: u64) -> String {
    format!(
        "must have {bound} {}",
        plural(limit, "property", "properties")
    )
}

/// What a failed `contains` (or its `minContains`/`maxContains`) asks for.
fn contains_message(error: &ValidationError<'_>) -> String {
    match last_keyword(error) {
        Some("minContains") => "must have more items matching \"contains\"".to_owned(),
        Some("maxContains") => "must have fewer items matching \"contains\"".to_owned(),
        _ => "must have an item matching \"contains\"".to_owned(),
    }
}

/// The property name that fails `propertyNames`, and what is wrong with it.
fn property_name_message(error: &ValidationError<'_>) -> String {
    let name = error.instance();
    let mut inner = String::new();
    format!(
        "has a property name {name} that {}",
        message(error, &mut inner)
    )
}

fn last_keyword<'a>(error: &'a ValidationError<'_>) -> Option<&'a str> {
    error.schema_path().as_str().rsplit('/').next()
}

/// `must be string or null` for an `anyOf`/`oneOf` whose every branch failed on one
/// `must be ...` at the same place; `None` otherwise (the generic wording is used).
fn alternatives(
    error: &ValidationError<'_>,
    branches: &[Vec<ValidationError<'static>>],
) -> Option<String> {
    let mut wanted: Vec<String> = Vec::new();
    for branch in branches {
        let [only] = branch.as_slice() else {
            return None;
        };
        if only.instance_path() != error.instance_path() {
            return None;
        }
        let mut ignored = String::new();
        let text = message(only, &mut ignored);
        let rest = text.strip_prefix("must be ")?.to_owned();
        if !wanted.contains(&rest) {
            wanted.push(rest);
        }
    }
    (!wanted.is_empty()).then(|| format!("must be {}", wanted.join(" or ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problem(schema: Value, instance: Value) -> Option<String> {
        let v = compile(&schema.to_string()).expect("compiles");
        check(&v, &instance).map(|p| format!("input{} {}", p.path, p.message))
    }

    #[test]
    fn defaults_to_2020_12_and_honours_schema() {
        let tuple = json!({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": false});
        assert_eq!(problem(tuple.clone(), json!([1, "x"])), None);
        assert_eq!(
            problem(tuple.clone(), json!(["x", 1])).as_deref(),
            Some("input[0] must be integer")
        );
        assert_eq!(
            problem(tuple, json!([1, "x", 2])).as_deref(),
            Some("input[2] is not allowed")
        );
        let draft7 = json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "array",
                            "items": [{"type": "integer"}], "additionalItems": false});
        assert_eq!(problem(draft7.clone(), json!([1])), None);
        assert_eq!(
            problem(draft7.clone(), json!(["x"])).as_deref(),
            Some("input[0] must be integer")
        );
        assert_eq!(
            problem(draft7, json!([1, 2])).as_deref(),
            Some("input must have at most 1 item")
        );
    }

    #[test]
    fn words_errors_for_the_program() {
        let schema = json!({"type": "object", "properties": {"n": {"type": "integer", "maximum": 9},
            "o": {"anyOf": [{"type": "string"}, {"type": "null"}]}, "0": {"type": "string"}},
            "required": ["n"], "additionalProperties": false});
        assert_eq!(
            problem(schema.clone(), json!({})).as_deref(),
            Some("input must have property \"n\"")
        );
        assert_eq!(
            problem(schema.clone(), json!({"n": 10})).as_deref(),
            Some("input.n must be <= 9")
        );
        assert_eq!(
            problem(schema.clone(), json!({"n": 1, "o": 2})).as_deref(),
            Some("input.o must be string or null")
        );
        assert_eq!(
            problem(schema.clone(), json!({"n": 1, "0": 2})).as_deref(),
            Some("input[\"0\"] must be string")
        );
        assert_eq!(
            problem(schema, json!({"n": 1, "a b": 2})).as_deref(),
            Some("input[\"a b\"] is not allowed")
        );
    }

    #[test]
    fn refuses_invalid_schemas_and_shares_compiled_ones() {
        let bad = compile(r#"{"type": "strin"}"#).expect_err("refused");
        assert_eq!(bad.path, ".type");
        assert!(compile("{").is_err());
        let text = r#"{"type": "integer"}"#;
        let (a, b) = (compile(text).unwrap(), compile(text).unwrap());
        assert!(Arc::ptr_eq(&a, &b));
    }
    #[test]
    fn library_checks_word_problems() {
        let checks = LibraryChecks::new(&[
            r#"{"type":"object","properties":{"n":{"type":"integer"}}}"#.to_owned(),
            r#"{"type": 12}"#.to_owned(),
        ]);
        assert_eq!(checks.check(0, r#"{"n":1}"#), None);
        let wrong = checks.check(0, r#"{"n":"x"}"#).expect("a problem");
        assert_eq!(
            (wrong.path.as_str(), wrong.message.as_str()),
            (".n", "must be integer")
        );
        let bad = checks.check(1, "1").expect("a problem");
        assert!(bad
            .message
            .starts_with("cannot be checked: the schema is not valid"));
        assert!(checks.check(2, "1").is_some());
    }
}
