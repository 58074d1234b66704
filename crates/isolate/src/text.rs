//! JavaScript text as Rust text: one rule at every crossing.
//!
//! A JavaScript string is UTF-16 and may hold lone surrogates, which UTF-8 cannot; it may
//! also hold NUL. Every string that leaves the engine (console lines, reports, JSON of tool
//! arguments and results, error messages, property keys) goes through here: a lone
//! surrogate becomes U+FFFD, NUL is kept, and nothing is ever assumed to be UTF-8 that
//! QuickJS did not make UTF-8.

use rquickjs::{qjs, Ctx, Value};

/// QuickJS writes a lone surrogate as its three-byte generalised UTF-8 (`ED A0..BF xx`); the
/// replacement character is three bytes too, so the text keeps its length.
const REPLACEMENT: [u8; 3] = [0xEF, 0xBF, 0xBD];

/// Bytes QuickJS wrote for a string, as valid UTF-8 (lone surrogates replaced).
fn owned_text(mut bytes: Vec<u8>) -> String {
    let mut i = 0;
    while i + 2 < bytes.len() {
        if bytes[i] == 0xED && (0xA0..=0xBF).contains(&bytes[i + 1]) {
            bytes[i..i + 3].copy_from_slice(&REPLACEMENT);
            i += 3;
        } else {
            i += 1;
        }
    }
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The text of a JavaScript string value (`None` if it is not a string or the engine could
/// not make its bytes). `max_bytes`: a longer text is not copied; `Err(len)` says how long
/// it is in UTF-8.
pub(crate) fn string_of(
    ctx: &Ctx<'_>,
    value: &Value<'_>,
    max_bytes: usize,
) -> Option<Result<String, usize>> {
    if !value.is_string() {
        return None;
    }
    let raw = ctx.as_raw().as_ptr();
    let mut len: qjs::size_t = 0;
    // SAFETY: `value` is a live string of this context; `len` is written; the bytes are
    // freed below, once.
    let ptr = unsafe { qjs::JS_ToCStringLen2(raw, &mut len, value.as_raw(), false) };
    if ptr.is_null() {
        return None;
    }
    let len = len as usize;
    let out = if len > max_bytes {
        Err(len)
    } else {
        // SAFETY: QuickJS wrote `len` bytes at `ptr` (not null), valid until they are freed
        // below; they are copied out before that.
        let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }.to_vec();
        Ok(owned_text(bytes))
    };
    // SAFETY: `ptr` came from JS_ToCStringLen2 on this context.
    unsafe { qjs::JS_FreeCString(raw, ptr) };
    Some(out)
}

/// The text of a JavaScript string value, whatever its length (`None` if not a string).
pub(crate) fn string(ctx: &Ctx<'_>, value: &Value<'_>) -> Option<String> {
    string_of(ctx, value, usize::MAX).and_then(Result::ok)
}

/// The text of a property key (NUL and all; a symbol's description).
pub(crate) fn atom(ctx: &Ctx<'_>, atom: qjs::JSAtom) -> Option<String> {
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: `atom` is live in this context; the result is a new reference (or the
    // exception marker, which holds none) that `value` takes over and frees on drop.
    let value = unsafe { Value::from_raw(ctx.clone(), qjs::JS_AtomToString(raw, atom)) };
    string(ctx, &value)
}

/// JSON text from the engine's `JSON.stringify`, which writes a lone surrogate as an escape
/// (`"\ud800"`): each such escape becomes `\ufffd`, so every JSON reader takes the text.
pub(crate) fn json_without_lone_surrogates(json: String) -> String {
    if !json.contains("\\ud") && !json.contains("\\uD") {
        return json;
    }
    let bytes = json.as_bytes();
    let mut out = String::with_capacity(json.len());
    let mut i = 0;
    let mut copied = 0;
    // The code unit of a `\uXXXX` escape at `at`, if there is one.
    let unit_at = |at: usize| -> Option<u16> {
        if bytes.get(at) != Some(&b'\\') || bytes.get(at + 1) != Some(&b'u') {
            return None;
        }
        let hex = json.get(at + 2..at + 6)?;
        u16::from_str_radix(hex, 16).ok()
    };
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        match unit_at(i) {
            Some(0xD800..=0xDBFF) if matches!(unit_at(i + 6), Some(0xDC00..=0xDFFF)) => {
                i += 12;
            }
            Some(0xD800..=0xDFFF) => {
                out.push_str(&json[copied..i]);
                out.push_str("\\ufffd");
                i += 6;
                copied = i;
            }
            // Any other escape, `\\` included: skip both characters.
            _ => i += 2,
        }
    }
    out.push_str(&json[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use rquickjs::{Context, Runtime};

    use super::*;

    #[test]
    fn lone_surrogates_become_replacement_characters_and_nul_stays() {
        let runtime = Runtime::new().unwrap();
        let context = Context::full(&runtime).unwrap();
        context.with(|ctx| {
            let value: Value = ctx
                .eval(r#""a\ud800b\udc00c\ud83d\ude00d\u0000e""#)
                .unwrap();
            assert_eq!(string(&ctx, &value).unwrap(), "a\u{fffd}b\u{fffd}c😀d\0e");
            assert_eq!(string_of(&ctx, &value, 3), Some(Err(16)));
        });
    }

    #[test]
    fn json_escapes_of_lone_surrogates_are_replaced() {
        let fixed = json_without_lone_surrogates(
            r#"["\ud800","\ud83d\ude00","\\ud800","\udc00x","a\"\ud800"]"#.to_owned(),
        );
        assert_eq!(
            fixed,
            r#"["\ufffd","\ud83d\ude00","\\ud800","\ufffdx","a\"\ufffd"]"#
        );
        let plain = r#"{"a":"b"}"#.to_owned();
        assert_eq!(json_without_lone_surrogates(plain.clone()), plain);
    }
}
