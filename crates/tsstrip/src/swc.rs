//! Running swc on the wrapped body and reading what it gives back: strip-only with its two
//! gaps filled, the full transform with its source map, and what swc reports on failure.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use swc_common::{
    errors::{DiagnosticBuilder, Emitter, Handler, HANDLER},
    sync::Lrc,
    BytePos, SourceMap,
};
use swc_ecma_lexer::TsSyntax;
use swc_fast_ts_strip::{operate, ErrorCode, Mode, Options};

use crate::lower;
use crate::positions::{extract_mappings, PositionMap, SourceMapped};
use crate::{Diagnostic, Stripped};

/// What is put before the body, on its first line, to parse it as a function body.
pub(crate) const PREFIX: &str = "async function __codemode() {";
/// What is put after the body to close the wrapper.
pub(crate) const SUFFIX: &str = "\n}";

/// Strip-only: blank the types of `text`, or say why not.
///
/// swc rejects an angle-bracket assertion `<T>expr` in strip-only mode (because blanking it
/// could let ASI split `return <T>` + newline + `expr`). When those are all it rejects, blank
/// the `<T>` of each where no line break follows it, and strip again.
pub(crate) fn strip_only(text: &str) -> Result<String, Failure> {
    match run_swc(wrap(text), false) {
        Ok(out) => Ok(unwrap_stripped(text, out)),
        Err(failure) => {
            let assertions: Option<Vec<(usize, usize)>> = failure
                .messages
                .iter()
                .map(|r| match r.span {
                    Some((lo, hi)) if r.message.starts_with(ANGLE_BRACKET_MESSAGE) => {
                        Some((lo.checked_sub(PREFIX.len())?, hi.checked_sub(PREFIX.len())?))
                    }
                    _ => None,
                })
                .collect();
            let blanked = match assertions {
                Some(spans) if failure.unsupported && !spans.is_empty() => {
                    lower::blank_angle_bracket_assertions(text, &spans)
                }
                _ => None,
            };
            match blanked {
                // Same byte layout as `text`: unwrap against the text as written.
                Some(blanked) => match run_swc(wrap(&blanked), false) {
                    Ok(out) => Ok(unwrap_stripped(text, out)),
                    Err(_) => Err(failure),
                },
                None => Err(failure),
            }
        }
    }
}

/// Strip with swc's full transform (enums, namespaces, … anywhere), mapping positions with its
/// source map.
pub(crate) fn transform(body: &str, typescript: &str) -> Result<Stripped, Diagnostic> {
    match run_swc(wrap(body), true) {
        Ok(out) => Ok(transformed(body, out)),
        Err(failure) => Err(failure.into_diagnostic(body, typescript)),
    }
}

fn wrap(body: &str) -> String {
    let mut wrapped = String::with_capacity(PREFIX.len() + body.len() + SUFFIX.len());
    wrapped.push_str(PREFIX);
    wrapped.push_str(body);
    wrapped.push_str(SUFFIX);
    wrapped
}

/// Output of one swc run: the code and, when transformed, the source map's `mappings`.
struct SwcOutput {
    code: String,
    mappings: Option<String>,
}

/// Why a swc run failed: what it reported.
pub(crate) struct Failure {
    pub(crate) unsupported: bool,
    messages: Vec<Reported>,
}

/// One message of swc, with its span as byte offsets in the wrapped text.
struct Reported {
    message: String,
    span: Option<(usize, usize)>,
}

/// How swc's strip-only mode rejects `<T>expr`.
const ANGLE_BRACKET_MESSAGE: &str = "The angle-bracket syntax for type assertions";

impl Failure {
    pub(crate) fn into_diagnostic(self, body: &str, original: &str) -> Diagnostic {
        // The earliest positioned message is most likely the cause; unpositioned ones come last.
        let best = self
            .messages
            .into_iter()
            .min_by_key(|r| r.span.map_or(usize::MAX, |s| s.0));
        let (message, offset) = best.map_or(("Syntax error".to_string(), None), |r| {
            (r.message, r.span.map(|s| s.0))
        });
        let offset = offset
            .map(|o| o.saturating_sub(PREFIX.len()).min(body.len()))
            .unwrap_or(body.len());
        Diagnostic::at_offset(clean_message(&message), body, offset, original)
    }
}

/// Collects what swc reports instead of printing it.
type Collected = Arc<Mutex<Vec<(String, Option<(BytePos, BytePos)>)>>>;
struct Collector(Collected);

impl Emitter for Collector {
    fn emit(&mut self, db: &mut DiagnosticBuilder<'_>) {
        let span = db.span.primary_span().filter(|s| !s.is_dummy());
        if let Ok(mut messages) = self.0.lock() {
            messages.push((db.message(), span.map(|s| (s.lo, s.hi))));
        }
    }
}

fn run_swc(wrapped: String, transform: bool) -> Result<SwcOutput, Failure> {
    let cm: Lrc<SourceMap> = Default::default();
    let reported = Arc::new(Mutex::new(Vec::new()));
    let handler = Handler::with_emitter(false, false, Box::new(Collector(reported.clone())));
    let options = Options {
        module: Some(false),
        filename: None,
        parser: TsSyntax::default(),
        mode: if transform {
            Mode::Transform
        } else {
            Mode::StripOnly
        },
        transform: None,
        deprecated_ts_module_as_error: Some(false),
        source_map: transform,
    };
    let result = HANDLER.set(&handler, || operate(&cm, &handler, wrapped, options));
    match result {
        Ok(out) => Ok(SwcOutput {
            code: out.code,
            mappings: out.map.as_deref().and_then(extract_mappings),
        }),
        Err(err) => {
            let unsupported = matches!(err.code, ErrorCode::UnsupportedSyntax);
            let start = cm.files().first().map(|f| f.start_pos);
            let mut messages: Vec<Reported> = reported
                .lock()
                .map(|mut m| std::mem::take(&mut *m))
                .unwrap_or_default()
                .into_iter()
                .map(|(message, span)| {
                    let span = match (span, start) {
                        (Some((lo, hi)), Some(start)) if lo >= start && hi >= lo => {
                            Some(((lo - start).0 as usize, (hi - start).0 as usize))
                        }
                        _ => None,
                    };
                    Reported { message, span }
                })
                .collect();
            if messages.is_empty() {
                messages.push(Reported {
                    message: err.message,
                    span: None,
                });
            }
            Err(Failure {
                unsupported,
                messages,
            })
        }
    }
}

/// swc's messages are plain text already; keep them on one line without escape codes.
pub(crate) fn clean_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI sequence: ESC [ params final-byte
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(if c == '\n' || c == '\r' { ' ' } else { c });
    }
    out.trim().to_string()
}

/// Cut the wrapper out of strip-only output (which has the wrapped text's exact byte layout).
fn unwrap_stripped(body: &str, out: SwcOutput) -> String {
    let code = out.code;
    let end = code.len().saturating_sub(SUFFIX.len());
    let cut = if code.len() == PREFIX.len() + body.len() + SUFFIX.len()
        && code.is_char_boundary(PREFIX.len())
        && code.is_char_boundary(end)
    {
        &code[PREFIX.len()..end]
    } else {
        // Never seen: strip-only keeps byte lengths. Keep what is inside the wrapper anyway.
        let inner = code.strip_prefix(PREFIX).unwrap_or(&code);
        inner.strip_suffix(SUFFIX).unwrap_or(inner)
    };
    let code = restore_statement_semicolons(body, cut);
    fix_astral_blanks(body, &code)
}

/// swc 23 blanks a `;` that ends a stripped statement even when it sits on the next line, as
/// in `type T = number` + newline + `;[1, 2].forEach(f)`, gluing the statements around it
/// together. Put back every blanked `;` that ends a blanked run: after a removed statement or
/// class member an empty statement or `;` member is always harmless.
fn restore_statement_semicolons<'a>(body: &str, code: &'a str) -> Cow<'a, str> {
    let (input, output) = (body.as_bytes(), code.as_bytes());
    if input.len() != output.len() {
        return Cow::Borrowed(code);
    }
    let mut restored: Option<Vec<u8>> = None;
    let mut from = 0;
    while let Some(found) = input[from..].iter().position(|&b| b == b';') {
        let i = from + found;
        from = i + 1;
        if output[i] != b' ' {
            continue;
        }
        let next = (i + 1..input.len()).find(|&j| !input[j].is_ascii_whitespace());
        if next.is_none_or(|j| output[j] == input[j]) {
            restored.get_or_insert_with(|| output.to_vec())[i] = b';';
        }
    }
    match restored {
        // Only an ASCII space became `;`: still UTF-8.
        Some(bytes) => Cow::Owned(String::from_utf8(bytes).unwrap_or_else(|_| code.to_string())),
        None => Cow::Borrowed(code),
    }
}

/// swc blanks a 4-byte character as a space plus U+FEFF (two characters); make it one space so
/// columns counted in characters stay the same.
fn fix_astral_blanks(body: &str, code: &str) -> String {
    if code.len() != body.len() || !body.bytes().any(|b| b >= 0xF0) {
        return code.to_string();
    }
    let bytes = code.as_bytes();
    let mut out = String::with_capacity(code.len());
    let mut copied = 0;
    for (i, c) in body.char_indices() {
        if c.len_utf8() == 4 && &bytes[i..i + 4] == " \u{FEFF}".as_bytes() {
            out.push_str(&code[copied..i]);
            out.push(' ');
            copied = i + 4;
        }
    }
    out.push_str(&code[copied..]);
    out
}

/// Build the result of a transform: cut the wrapper out and keep the map.
fn transformed(body: &str, out: SwcOutput) -> Stripped {
    let generated = out.code;
    // The body starts after the wrapper's `{` (normally `async function __codemode() {`, but
    // do not rely on the name: hygiene could rename it).
    let (mut start, mut line_offset, mut head_utf16) = (0, 0, 0);
    if let Some(brace) = generated.find('{') {
        start = brace + 1;
        if generated[start..].starts_with('\n') {
            start += 1;
            line_offset = 1;
        } else {
            head_utf16 = generated[..start].encode_utf16().count() as u32;
        }
    }
    let end = generated
        .rfind('}')
        .filter(|&end| end >= start)
        .unwrap_or(generated.len());
    let code = generated[start..end].to_string();
    Stripped {
        code,
        positions_preserved: false,
        map: Some(PositionMap::Transformed(SourceMapped::new(
            out.mappings.unwrap_or_default(),
            body.to_string(),
            line_offset,
            head_utf16,
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cleaned() {
        assert_eq!(clean_message("\u{1b}[31mbad\u{1b}[0m\nthing "), "bad thing");
    }
}
