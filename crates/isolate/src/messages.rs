//! The messages of the sandbox's own errors: one table (`messages.json`) for every engine.
//!
//! Rust words its errors with [`say`]; the sandbox prelude gets the table baked in as
//! functions ([`prelude_functions`]); Python reads it as `_core.MESSAGES` and hands it to the
//! V8 engine host. A message is a template: `{name}` stands for a value.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::OnceLock;

/// The table as JSON (an object: key -> template).
pub const TABLE_JSON: &str = include_str!("messages.json");

/// The table, parsed once.
pub fn table() -> &'static BTreeMap<String, String> {
    static TABLE: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    TABLE.get_or_init(|| {
        serde_json::from_str(TABLE_JSON).expect("messages.json is a JSON object of strings")
    })
}

/// The message `key` with each `{name}` replaced by its value in `vars`.
pub fn say(key: &str, vars: &[(&str, &dyn Display)]) -> String {
    let template = table().get(key).map(String::as_str).unwrap_or(key);
    let mut out = String::with_capacity(template.len() + 16);
    for (i, part) in template.split('{').enumerate() {
        if i == 0 {
            out.push_str(part);
            continue;
        }
        let value = part
            .split_once('}')
            .and_then(|(name, rest)| Some((vars.iter().find(|(k, _)| *k == name)?.1, rest)));
        match value {
            Some((value, rest)) => {
                out.push_str(&value.to_string());
                out.push_str(rest);
            }
            _ => {
                out.push('{');
                out.push_str(part);
            }
        }
    }
    out
}

/// The table as a JavaScript object literal of functions, `{ key: (v) => "..." + v.name + "..." }`,
/// for the sandbox prelude: formatting a message there takes no method the program could
/// have replaced (only `+` on strings).
pub fn prelude_functions() -> String {
    let quote = |s: &str| serde_json::to_string(s).expect("a string serialises");
    let mut out = String::from("{");
    for (key, template) in table() {
        out.push_str(&quote(key));
        out.push_str(": (v) => \"\"");
        for (i, part) in template.split('{').enumerate() {
            let literal = if i == 0 {
                part
            } else if let Some((name, rest)) = part.split_once('}') {
                out.push_str(" + v[");
                out.push_str(&quote(name));
                out.push(']');
                rest
            } else {
                out.push_str(" + \"{\"");
                part
            };
            if !literal.is_empty() {
                out.push_str(" + ");
                out.push_str(&quote(literal));
            }
        }
        out.push_str(",\n");
    }
    out.push('}');
    out
}

/// The memory limit as messages give it: MiB, as few digits as say it exactly.
pub fn mib(bytes: usize) -> String {
    let mib = bytes as f64 / (1024.0 * 1024.0);
    let rounded = (mib * 100.0).round() / 100.0;
    format!("{rounded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_take_their_values() {
        assert_eq!(
            say("call_limit", &[("tool", &"external_x"), ("max", &3)]),
            "external_x: tool call limit reached (at most 3 calls per execution)"
        );
        assert_eq!(
            say("memory", &[("mib", &mib(20 << 20 | 1 << 19))]),
            "the execution exceeded its memory limit (20.5 MiB)"
        );
        assert_eq!(mib(16 << 20), "16");
    }

    #[test]
    fn every_template_becomes_a_function() {
        let js = prelude_functions();
        assert!(js.contains("\"call_limit\": (v) => \"\" + v[\"tool\"] + \": tool call limit reached (at most \" + v[\"max\"]"));
        assert_eq!(js.matches("(v) =>").count(), table().len());
    }
}
