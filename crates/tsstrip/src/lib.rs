//! Strip TypeScript types from a codemode program, keeping the line and column of everything.
//!
//! A codemode program is the BODY of an async function: top-level `await` and top-level `return`
//! are allowed. [`strip`] turns it into JavaScript for the same body, and [`Stripped::original_position`]
//! maps a position in that JavaScript back to the model's TypeScript.
//!
//! # How
//!
//! * **Wrapper.** The body is parsed inside `async function __codemode() {` + body + `\n}`, the prefix on
//!   the SAME first line, so line N stays line N and only columns of line 1 shift (by
//!   the prefix's length, taken back out of every position reported). A declaration, not a
//!   parenthesized expression: swc's TypeScript parser would first try `( … )` as arrow function
//!   parameters, which made parsing ~1.5× slower. The wrapped text is parsed
//!   as a *script* (`module: Some(false)`): `await` and `return` are legal inside the async
//!   function, nothing is implicitly strict, and the transform never adds `export {}`. The
//!   wrapper is cut back out of the output, so [`Stripped::code`] is the body again.
//! * **Top-level `import`/`export`.** A function body cannot hold module declarations, so when
//!   the text mentions `import` or `export` as a word, the body is first parsed *as a module*
//!   (the only errors it then reports for a top-level `return` are recoverable and ignored) to
//!   find the top-level module declarations, which are rewritten with spaces (line terminators
//!   kept, one character for one character) before wrapping:
//!   - `import type …`, `import { type A, type B } …`, `export type { … }`, `export { … }`,
//!     `export * …`, `export as namespace X`: blanked whole; a `;` is left at the first column
//!     so that blanking can never glue the statements around it together (ASI).
//!   - `export <declaration>` (`export const`, `export interface`, `export enum`,
//!     `export namespace`, …): only the `export` keyword is blanked; the declaration stays and
//!     is stripped or run like any other. `export default function f` / `class C` /
//!     `interface I`: the `export default` keywords are blanked.
//!   - `import x = A.B` becomes `const x = A.B`; `import type x = …` is blanked.
//!   - Everything that would need a module system is a [`Diagnostic`] with a clear message:
//!     value imports (`import x from "y"`, `import "y"`, `import x = require("y")`),
//!     `export default <expression>`, anonymous `export default function/class`, `export =`.
//! * **Strip first.** `swc_fast_ts_strip` in `Mode::StripOnly` blanks type syntax with
//!   whitespace: positions are preserved exactly ([`Stripped::positions_preserved`] is true).
//!   Two gaps of swc 23 are filled on the way: a `;` ending a removed statement is put back
//!   when swc blanked it (it glued `type T = X` + newline + `;[a].map(f)` to the line before),
//!   and angle-bracket assertions `<T>expr`, which strip-only refuses, have their `<T>` blanked
//!   and the text stripped again (unless a line break follows the `<T>`).
//! * **Lower enums and parameter properties in place.** These are what models write most that
//!   strip-only refuses. Before stripping, `enum` / `const enum` declarations become a tsc-like
//!   IIFE on the same lines (`var E = (function (E) { E[E["A"] = 0] = "A"; … return E; })(E || {});`)
//!   and `constructor(private readonly x: T)` gets its modifiers blanked and `this.x = x;`
//!   inserted at the start of the body (after `super(…)` when there is one). This works on
//!   swc's tokens (much cheaper than a parse), keeps every line, and moves columns only on the
//!   enum's lines and after the inserted assignment; [`Stripped::positions_preserved`] is then
//!   false and [`Stripped::original_position`] maps exactly through anchors kept for each edit.
//!   Anything not recognised for certain is left to the next step.
//! * **Transform when needed.** When strip-only still fails with
//!   `ErrorCode::UnsupportedSyntax` (namespaces with values, `import x = …`, unusual enums or
//!   parameter properties), the text as written is transformed with `Mode::Transform` and a
//!   source map. The output is reformatted, so the source map's `mappings` are kept (decoded
//!   lazily, on the first [`Stripped::original_position`] call) to map positions back
//!   (nearest preceding mapping). Namespaces with values run: swc lowers them to an IIFE plus a
//!   hoisted `var`, which works inside the wrapper function too. `const enum` members are
//!   inlined there. Nothing else is downleveled (target: latest ECMAScript).
//! * **Errors.** A syntax error becomes a [`Diagnostic`] with swc's message (plain text, no ANSI
//!   codes, no file names), the 1-based line and column in the original TypeScript (correct on
//!   line 1 despite the wrapper) and a [`code_frame`]. When swc reports several, the earliest in
//!   the text is kept.
//!
//! # Units
//!
//! Lines are counted by `\n` and columns in **characters** (Unicode scalar values), 1-based, as
//! QuickJS counts them. When type syntax containing a character outside the BMP is blanked,
//! swc writes two characters (a space and U+FEFF, to keep the UTF-8 length); `strip` turns them
//! back into one space, so positions are preserved in characters.
//!
//! # Threads and speed
//!
//! Every call creates its own swc `Globals`, `SourceMap` and `Handler` (all small), so `strip`
//! can run on many threads at once and keeps no state between calls. Most programs are parsed
//! once (swc's parser is most of the cost: about 60 ns per byte of TypeScript in release, so
//! ~100 µs for a 70-line program); a program that mentions `import`/`export` is parsed once
//! more as a module; one with `<T>x` assertions or that needs the full transform, once more.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use swc_common::{
    errors::{DiagnosticBuilder, Emitter, Handler, HANDLER},
    sync::Lrc,
    BytePos, Globals, SourceMap, Spanned, GLOBALS,
};
use swc_ecma_ast::{DefaultDecl, EsVersion, ImportSpecifier, ModuleDecl, ModuleItem, TsModuleRef};
use swc_ecma_lexer::{lexer::Lexer, Parser, StringInput, Syntax, TsSyntax};
use swc_fast_ts_strip::{operate, ErrorCode, Mode, Options};

mod lower;
mod nesting;

/// What is put before the body, on its first line, to parse it as a function body.
const PREFIX: &str = "async function __codemode() {";
/// What is put after the body to close the wrapper.
const SUFFIX: &str = "\n}";

/// Result of stripping a program.
#[derive(Debug, Clone)]
pub struct Stripped {
    /// JavaScript for the program BODY (top-level await/return kept as they are; NOT wrapped in a function).
    pub code: String,
    /// true when positions are identical to the input (type syntax blanked with spaces), false when
    /// the code had to be transformed (enums, namespaces, parameter properties ...) and positions must be mapped.
    pub positions_preserved: bool,
    map: Option<PositionMap>,
}

impl Stripped {
    /// Map a 1-based (line, column) in `code` back to the 1-based (line, column) in the original TypeScript.
    /// Identity when positions_preserved. Best effort (nearest preceding mapping) when transformed.
    pub fn original_position(&self, line: u32, column: u32) -> (u32, u32) {
        match &self.map {
            Some(map) => map.lookup(&self.code, line, column),
            None => (line, column),
        }
    }
}

/// A TypeScript syntax error, positioned in the original source.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub message: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// [`code_frame`] of the source at `line`/`column`.
    pub frame: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (line {}, column {})",
            self.message, self.line, self.column
        )?;
        if !self.frame.is_empty() {
            write!(f, "\n{}", self.frame)?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

impl Diagnostic {
    /// A diagnostic at byte `offset` of `text`, whose lines and columns are those of `original`.
    fn at_offset(message: String, text: &str, offset: usize, original: &str) -> Diagnostic {
        let (line, column) = line_col(text, offset);
        Diagnostic {
            message,
            line,
            column,
            frame: code_frame(original, line, column),
        }
    }
}

/// The most native stack one strip may use. A program that could need more is refused
/// before it is parsed, as nested too deeply (see `nesting`).
const STACK_MAX: usize = 256 << 20;
/// Stack kept on top of the bound `nesting` computes, for the frames around the parse.
const STACK_BASE: usize = 256 << 10;
/// How many times the bound `nesting` computes is reserved: its costs are measured in
/// release builds; unoptimised builds (the crate's own tests) take several times more.
const STACK_FACTOR: usize = if cfg!(debug_assertions) { 8 } else { 2 };

/// Strip the types of a TypeScript program body. See the crate documentation.
///
/// Runs on the caller's stack when it has room for the deepest parse the text allows, else
/// on a stack of its own (allocated for the call); a text that could need more than
/// 256 MiB of stack is a [`Diagnostic`] saying it is nested too deeply.
pub fn strip(typescript: &str) -> Result<Stripped, Diagnostic> {
    // The engine reads its source up to the first NUL: a raw one would cut the program short.
    if let Some(at) = typescript.find('\0') {
        return Err(Diagnostic::at_offset(
            "the program contains a NUL character (U+0000); inside a string, write it as \\0"
                .to_owned(),
            typescript,
            at,
            typescript,
        ));
    }
    let (bound, at) = nesting::stack_bytes(typescript);
    let needed = bound
        .saturating_mul(STACK_FACTOR)
        .saturating_add(STACK_BASE);
    if needed > STACK_MAX {
        return Err(Diagnostic::at_offset(
            "the program is nested too deeply to parse (brackets, operators or types nested \
             thousands of levels deep); flatten it"
                .to_owned(),
            typescript,
            at,
            typescript,
        ));
    }
    stacker::maybe_grow(needed, needed, || strip_guarded(typescript))
}

fn strip_guarded(typescript: &str) -> Result<Stripped, Diagnostic> {
    // Everything swc uses is made for this call, so nothing is left half-updated by a panic:
    // turn one (never seen, even on mangled input; see the tests) into a diagnostic.
    let run = std::panic::AssertUnwindSafe(|| {
        GLOBALS.set(&Globals::new(), || strip_in_globals(typescript))
    });
    std::panic::catch_unwind(run).unwrap_or_else(|panic| {
        let reason = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Diagnostic {
            message: format!("internal error while stripping TypeScript: {reason}"),
            line: 1,
            column: 1,
            frame: code_frame(typescript, 1, 1),
        })
    })
}

fn strip_in_globals(typescript: &str) -> Result<Stripped, Diagnostic> {
    let body: Cow<'_, str> = if mentions_module_syntax(typescript) {
        blank_module_syntax(typescript)?
    } else {
        Cow::Borrowed(typescript)
    };

    if let Some(lowered) = lower::lower(&body) {
        match strip_only(&lowered.text) {
            Ok(code) => {
                return Ok(Stripped {
                    code,
                    positions_preserved: false,
                    map: Some(PositionMap::Lowered {
                        lowered,
                        body: body.into_owned(),
                    }),
                })
            }
            Err(failure) if failure.unsupported => return transform(&body, typescript),
            // Report the error as the program was written: go on without the lowering.
            Err(_) => {}
        }
    }

    match strip_only(&body) {
        Ok(code) => Ok(Stripped {
            code,
            positions_preserved: true,
            map: None,
        }),
        Err(failure) if failure.unsupported => transform(&body, typescript),
        Err(failure) => Err(failure.into_diagnostic(&body, typescript)),
    }
}

/// Strip-only: blank the types of `text`, or say why not.
///
/// swc rejects an angle-bracket assertion `<T>expr` in strip-only mode (because blanking it
/// could let ASI split `return <T>` + newline + `expr`). When those are all it rejects, blank
/// the `<T>` of each where no line break follows it, and strip again.
fn strip_only(text: &str) -> Result<String, Failure> {
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
fn transform(body: &str, typescript: &str) -> Result<Stripped, Diagnostic> {
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
struct Failure {
    unsupported: bool,
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
    fn into_diagnostic(self, body: &str, original: &str) -> Diagnostic {
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
fn clean_message(message: &str) -> String {
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
        map: Some(PositionMap::Transformed(SourceMapped {
            mappings: out.mappings.unwrap_or_default(),
            decoded: OnceLock::new(),
            source: body.to_string(),
            line_offset,
            head_utf16,
        })),
    }
}

// ---------------------------------------------------------------------------------------------
// Top-level import / export

/// Whether `import` or `export` appears as a word (cheap test before parsing as a module).
fn mentions_module_syntax(text: &str) -> bool {
    let bytes = text.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
    for word in ["import", "export"] {
        let mut from = 0;
        while let Some(found) = text[from..].find(word) {
            let at = from + found;
            let after = at + word.len();
            let before_ok = at == 0 || !is_ident(bytes[at - 1]);
            let after_ok = after >= bytes.len() || !is_ident(bytes[after]);
            if before_ok && after_ok {
                return true;
            }
            from = after;
        }
    }
    false
}

/// Parse `text` as a module and rewrite its top-level module declarations (see crate docs).
fn blank_module_syntax(text: &str) -> Result<Cow<'_, str>, Diagnostic> {
    // Positions start at 1 (0 is swc's dummy position).
    let input = StringInput::new(text, BytePos(1), BytePos(1 + text.len() as u32));
    let lexer = Lexer::new(
        Syntax::Typescript(TsSyntax::default()),
        EsVersion::latest(),
        input,
        None,
    );
    let mut parser = Parser::new_from(lexer);
    let module = match parser.parse_module() {
        Ok(module) => module,
        Err(err) => {
            let offset = (err.span().lo.0 as usize).saturating_sub(1).min(text.len());
            return Err(Diagnostic::at_offset(
                clean_message(&err.kind().msg()),
                text,
                offset,
                text,
            ));
        }
    };
    // Recoverable errors (a top-level `return`, strict-mode complaints) are left to the real
    // parse inside the wrapper, which is what decides.
    drop(parser.take_errors());

    let off = |pos: BytePos| (pos.0 as usize).saturating_sub(1).min(text.len());
    let mut edits: Vec<Edit> = Vec::new();
    for item in &module.body {
        let ModuleItem::ModuleDecl(decl) = item else {
            continue;
        };
        let span = decl.span();
        let (lo, hi) = (off(span.lo), off(span.hi));
        let unsupported = |message: String| Err(Diagnostic::at_offset(message, text, lo, text));
        match decl {
            ModuleDecl::Import(import) => {
                let type_only = import.type_only
                    || (!import.specifiers.is_empty()
                        && import
                            .specifiers
                            .iter()
                            .all(|s| matches!(s, ImportSpecifier::Named(n) if n.is_type_only)));
                if !type_only {
                    return unsupported(format!(
                        "Cannot import {:?}: a codemode program cannot load modules (only `import type` is allowed)",
                        &*import.src.value
                    ));
                }
                edits.push(Edit::Statement(lo, hi));
            }
            ModuleDecl::ExportDecl(export) => {
                edits.push(Edit::Blank(lo, off(export.decl.span().lo)));
            }
            ModuleDecl::ExportDefaultDecl(export) => {
                let named = match &export.decl {
                    DefaultDecl::Class(c) => c.ident.is_some(),
                    DefaultDecl::Fn(f) => f.ident.is_some(),
                    DefaultDecl::TsInterfaceDecl(_) => true,
                };
                if !named {
                    return unsupported(
                        "`export default` is not supported in a codemode program: give the function or class a name, or `return` the value"
                            .to_string(),
                    );
                }
                edits.push(Edit::Blank(lo, off(export.decl.span().lo)));
            }
            ModuleDecl::ExportDefaultExpr(_) => {
                return unsupported(
                    "`export default` is not supported in a codemode program: use `return` to give the result"
                        .to_string(),
                );
            }
            ModuleDecl::ExportNamed(_)
            | ModuleDecl::ExportAll(_)
            | ModuleDecl::TsNamespaceExport(_) => {
                edits.push(Edit::Statement(lo, hi));
            }
            ModuleDecl::TsImportEquals(import) => {
                if import.is_type_only {
                    edits.push(Edit::Statement(lo, hi));
                } else if let TsModuleRef::TsEntityName(_) = import.module_ref {
                    // `[export] import x = A.B` → `const x = A.B` (at least "import " is blanked).
                    edits.push(Edit::Const(lo, off(import.id.span.lo)));
                } else {
                    return unsupported(
                        "`import … = require(…)` is not supported: a codemode program cannot load modules"
                            .to_string(),
                    );
                }
            }
            ModuleDecl::TsExportAssignment(_) => {
                return unsupported(
                    "`export =` is not supported in a codemode program: use `return` to give the result"
                        .to_string(),
                );
            }
        }
    }
    if edits.is_empty() {
        return Ok(Cow::Borrowed(text));
    }
    Ok(Cow::Owned(apply_edits(text, &edits)))
}

/// A rewrite of `text[lo..hi]` that keeps every line and column.
enum Edit {
    /// Blank with spaces.
    Blank(usize, usize),
    /// Blank a whole statement, leaving `;` at its first column.
    Statement(usize, usize),
    /// Write `const` at the start and blank the rest.
    Const(usize, usize),
}

fn apply_edits(text: &str, edits: &[Edit]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for edit in edits {
        let (lo, hi, head) = match *edit {
            Edit::Blank(lo, hi) => (lo, hi, ""),
            Edit::Statement(lo, hi) => (lo, hi, ";"),
            Edit::Const(lo, hi) => (lo, hi, "const"),
        };
        if lo < copied || hi < lo || !text.is_char_boundary(lo) || !text.is_char_boundary(hi) {
            continue;
        }
        out.push_str(&text[copied..lo]);
        let mut head = head.chars();
        for c in text[lo..hi].chars() {
            if matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}') {
                out.push(c);
            } else if let Some(h) = head.next() {
                out.push(h);
            } else {
                out.push(' ');
            }
        }
        copied = hi;
    }
    out.push_str(&text[copied..]);
    out
}

// ---------------------------------------------------------------------------------------------
// Positions

/// 1-based (line, column in characters) of byte `offset` in `text`; lines end at `\n`.
fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line as u32, column as u32)
}

/// Line `index` (0-based) of `text`, without its `\n`.
fn nth_line(text: &str, index: usize) -> Option<&str> {
    text.split('\n').nth(index)
}

/// UTF-16 length of the first `chars` characters of `line` (characters past its end count 1).
fn chars_to_utf16(line: &str, chars: u32) -> u32 {
    let mut units = 0;
    let mut count = 0;
    for c in line.chars() {
        if count == chars {
            return units;
        }
        units += c.len_utf16() as u32;
        count += 1;
    }
    units + (chars - count)
}

/// Number of characters of `line` that fill `units` UTF-16 code units.
fn utf16_to_chars(line: &str, units: u32) -> u32 {
    let mut seen = 0;
    let mut count = 0;
    for c in line.chars() {
        if seen >= units {
            return count;
        }
        seen += c.len_utf16() as u32;
        count += 1;
    }
    count + units.saturating_sub(seen)
}

/// How positions of `code` map back to the original.
#[derive(Debug, Clone)]
enum PositionMap {
    /// Transformed by swc: its source map.
    Transformed(SourceMapped),
    /// Enums / parameter properties lowered in place: anchors into `body`.
    Lowered {
        lowered: lower::Lowered,
        body: String,
    },
}

impl PositionMap {
    fn lookup(&self, code: &str, line: u32, column: u32) -> (u32, u32) {
        match self {
            PositionMap::Transformed(map) => map.lookup(code, line, column),
            PositionMap::Lowered { lowered, body } => {
                // `code` has the lowered text's lines and columns.
                let offset = offset_of(&lowered.text, line, column);
                line_col(body, lowered.original_offset(offset))
            }
        }
    }
}

/// Byte offset of 1-based (line, column in characters) in `text`, clamped to the line's end.
fn offset_of(text: &str, line: u32, column: u32) -> usize {
    let mut start = 0;
    for _ in 1..line.max(1) {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let line_text = &text[start..];
    let line_text = &line_text[..line_text.find('\n').unwrap_or(line_text.len())];
    let skip = column.max(1) as usize - 1;
    start
        + line_text
            .char_indices()
            .nth(skip)
            .map_or(line_text.len(), |(i, _)| i)
}

/// Positions of transformed code, from the transform's source map.
#[derive(Debug, Clone)]
struct SourceMapped {
    /// The source map's `mappings` (VLQ), decoded on first use.
    mappings: String,
    decoded: OnceLock<Vec<Vec<Segment>>>,
    /// The body that was wrapped: its lines and characters are those of the original TypeScript.
    source: String,
    /// Generated lines before `code`'s first line (1 when the wrapper's head had its own line).
    line_offset: u32,
    /// UTF-16 length of the wrapper's head when `code`'s first line shares its generated line.
    head_utf16: u32,
}

/// One mapping: generated column → source line and column (0-based, UTF-16 columns).
#[derive(Debug, Clone, Copy)]
struct Segment {
    generated_column: u32,
    source_line: u32,
    source_column: u32,
}

impl SourceMapped {
    fn lookup(&self, code: &str, line: u32, column: u32) -> (u32, u32) {
        let lines = self.decoded.get_or_init(|| decode_mappings(&self.mappings));
        let line = line.max(1);
        let column = column.max(1);
        let code_line = nth_line(code, (line - 1) as usize).unwrap_or("");
        let mut generated_column = chars_to_utf16(code_line, column - 1);
        if line == 1 {
            generated_column += self.head_utf16;
        }
        let generated_line = (line - 1 + self.line_offset) as usize;

        let segment = lines.get(generated_line).and_then(|segments| {
            segments
                .iter()
                .rev()
                .find(|s| s.generated_column <= generated_column)
                .or_else(|| segments.first())
        });
        let segment = segment.or_else(|| {
            lines[..generated_line.min(lines.len())]
                .iter()
                .rev()
                .find_map(|segments| segments.last())
        });
        let Some(segment) = segment else {
            return self.clamp(line, column);
        };
        let mut source_column = segment.source_column;
        if segment.source_line == 0 {
            source_column = source_column.saturating_sub(PREFIX.len() as u32);
        }
        let Some(source_line) = nth_line(&self.source, segment.source_line as usize) else {
            // The wrapper's closing line: the end of the body.
            return self.clamp(u32::MAX, u32::MAX);
        };
        let column = utf16_to_chars(source_line, source_column) + 1;
        (segment.source_line + 1, column)
    }

    /// (line, column) moved inside the body: past its end means its last position.
    fn clamp(&self, line: u32, column: u32) -> (u32, u32) {
        let lines = self.source.split('\n').count() as u32;
        if line > lines {
            let last = self.source.rsplit('\n').next().unwrap_or("");
            return (lines, last.chars().count() as u32 + 1);
        }
        (line.max(1), column.max(1))
    }
}

/// The `mappings` string of a JSON source map written by swc.
fn extract_mappings(map: &str) -> Option<String> {
    const KEY: &str = "\"mappings\":\"";
    let start = map.rfind(KEY)? + KEY.len();
    let len = map[start..].find('"')?;
    Some(map[start..start + len].to_string())
}

/// Decode source map `mappings` into segments per generated line (only segments with a source).
fn decode_mappings(mappings: &str) -> Vec<Vec<Segment>> {
    let mut lines = Vec::new();
    let (mut source_line, mut source_column) = (0i64, 0i64);
    for line in mappings.split(';') {
        let mut segments = Vec::new();
        let mut generated_column = 0i64;
        for segment in line.split(',').filter(|s| !s.is_empty()) {
            let mut fields = [0i64; 5];
            let n = decode_vlq(segment, &mut fields);
            if n == 0 {
                continue;
            }
            generated_column += fields[0];
            if n >= 4 {
                source_line += fields[2];
                source_column += fields[3];
                segments.push(Segment {
                    generated_column: generated_column.max(0) as u32,
                    source_line: source_line.max(0) as u32,
                    source_column: source_column.max(0) as u32,
                });
            }
        }
        lines.push(segments);
    }
    lines
}

/// Decode the base64 VLQ fields of one segment into `fields`; returns how many were read.
fn decode_vlq(segment: &str, fields: &mut [i64; 5]) -> usize {
    let mut count = 0;
    let mut value: i64 = 0;
    let mut shift = 0;
    for b in segment.bytes() {
        let digit = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return count,
        } as i64;
        value |= (digit & 31) << shift;
        if digit & 32 != 0 {
            shift += 5;
            if shift > 60 {
                return count;
            }
            continue;
        }
        let magnitude = value >> 1;
        let decoded = if value & 1 == 1 {
            -magnitude
        } else {
            magnitude
        };
        if count < fields.len() {
            fields[count] = decoded;
            count += 1;
        }
        value = 0;
        shift = 0;
    }
    count
}

// ---------------------------------------------------------------------------------------------
// Code frame

/// A short code frame like:
/// "  6 | const a = 1\n  7 | const x = y.z\n    |           ^"
/// (the line itself and up to 2 lines before it; a caret under `column`; 1-based line/column; line numbers right-aligned)
pub fn code_frame(source: &str, line: u32, column: u32) -> String {
    let lines: Vec<&str> = source.split('\n').collect();
    let last = lines.len().max(1) as u32;
    let line = line.clamp(1, last);
    let column = column.max(1);
    let first = line.saturating_sub(2).max(1);
    let width = line.to_string().len();

    let mut frame = String::new();
    for n in first..=line {
        let text = lines
            .get((n - 1) as usize)
            .copied()
            .unwrap_or("")
            .trim_end_matches('\r');
        frame.push_str(format!("  {n:>width$} | {text}").trim_end());
        frame.push('\n');
    }
    // Caret: keep the tabs of the line so it lines up under the character.
    let text = lines.get((line - 1) as usize).copied().unwrap_or("");
    frame.push_str(&format!("  {:>width$} | ", ""));
    let mut chars = text.chars();
    for _ in 1..column {
        frame.push(if chars.next() == Some('\t') {
            '\t'
        } else {
            ' '
        });
    }
    frame.push('^');
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlq_decodes_a_swc_map() {
        // From swc for `(async function () {const x: number = await Promise.resolve(1)…`.
        let lines = decode_mappings("AAAA,CAAC;IAAmB,MAAM,IAAY;IAC5D,MAAM");
        assert_eq!(lines.len(), 3);
        let s = lines[1][0];
        assert_eq!(
            (s.generated_column, s.source_line, s.source_column),
            (4, 0, 20)
        );
        let s = lines[1][1];
        assert_eq!(
            (s.generated_column, s.source_line, s.source_column),
            (10, 0, 26)
        );
        let s = lines[2][0];
        assert_eq!(
            (s.generated_column, s.source_line, s.source_column),
            (4, 1, 0)
        );
        let mut fields = [0i64; 5];
        assert_eq!(decode_vlq("D", &mut fields), 1);
        assert_eq!(fields[0], -1);
        assert_eq!(decode_vlq("gB", &mut fields), 1);
        assert_eq!(fields[0], 16);
    }

    #[test]
    fn mappings_are_found_in_the_json() {
        let json = r#"{"version":3,"sourcesContent":["\"mappings\":\"x"],"mappings":"AAAA;CAAC","ignoreList":[0]}"#;
        assert_eq!(extract_mappings(json).as_deref(), Some("AAAA;CAAC"));
    }

    #[test]
    fn module_words_are_words() {
        assert!(mentions_module_syntax("import type { A } from 'a'"));
        assert!(mentions_module_syntax("x\nexport const a = 1"));
        assert!(!mentions_module_syntax(
            "const importance = exports_ + reexport"
        ));
        assert!(!mentions_module_syntax("return 1"));
    }

    #[test]
    fn positions_in_characters() {
        let text = "ab\n😀é x\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 1));
        assert_eq!(line_col(text, 3 + 4 + 2 + 1), (2, 4));
        assert_eq!(line_col(text, 999), (3, 1));
        assert_eq!(offset_of(text, 2, 4), 3 + 4 + 2 + 1);
        assert_eq!(offset_of(text, 2, 99), text.len() - 1);
        assert_eq!(chars_to_utf16("😀é x", 2), 3);
        assert_eq!(utf16_to_chars("😀é x", 3), 2);
        assert_eq!(utf16_to_chars("ab", 5), 5);
    }

    #[test]
    fn messages_are_cleaned() {
        assert_eq!(clean_message("\u{1b}[31mbad\u{1b}[0m\nthing "), "bad thing");
    }
}
