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

#![warn(clippy::too_many_lines, clippy::undocumented_unsafe_blocks)]

use std::borrow::Cow;
use std::fmt;

use swc_common::{Globals, GLOBALS};

/// Enums and parameter properties lowered in place, on swc's tokens.
mod lower;
/// How deep a text may nest, and so how much stack its parse needs.
mod nesting;
/// Lines and columns, and mapping positions back to the TypeScript.
mod positions;
/// Running swc on the wrapped body and reading its output or its errors.
mod swc;
/// Top-level `import` / `export` rewritten in place.
mod syntax;

use positions::{line_col, PositionMap};
use swc::{strip_only, transform};
use syntax::{blank_module_syntax, mentions_module_syntax};

/// Result of stripping a program.
#[derive(Debug, Clone)]
pub struct Stripped {
    /// JavaScript for the program BODY (top-level await/return kept as they are; NOT wrapped in a function).
    pub code: String,
    /// true when positions are identical to the input (type syntax blanked with spaces), false when
    /// the code had to be transformed (enums, namespaces, parameter properties ...) and positions must be mapped.
    pub positions_preserved: bool,
    pub(crate) map: Option<PositionMap>,
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
    pub(crate) fn at_offset(
        message: String,
        text: &str,
        offset: usize,
        original: &str,
    ) -> Diagnostic {
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
