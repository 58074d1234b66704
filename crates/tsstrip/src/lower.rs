//! Position-keeping lowering of the two TypeScript constructs models write most that
//! `Mode::StripOnly` rejects: `enum` (and `const enum`) declarations and constructor parameter
//! properties (`constructor(private readonly x: T)`).
//!
//! Works on tokens (swc's lexer alone, a fraction of a parse), rewrites text in place and keeps
//! the number of lines: only the columns on a rewritten enum line, and after the point where
//! `this.x = x;` is inserted, move. Every piece of the new text is anchored to the original
//! text, so positions map back exactly. Anything not recognised with certainty is left alone;
//! strip-only then rejects it and the caller falls back to swc's full transform. The caller also
//! falls back when strip-only rejects the rewritten text for any reason, so a mistake here
//! costs time, not correctness.
//!
//! Enums become an IIFE like tsc's output, one member per original member position:
//! ```text
//! enum Color {           var Color = (function (Color) {
//!   Red,                   Color[Color["Red"] = 0] = "Red";
//!   Up = 'UP',             Color["Up"] = 'UP';
//! }                      return Color; })(Color || {});
//! ```
//! Numeric members get the reverse mapping, string members not, computed members when their
//! value is a number (checked at run time). A member referenced by its bare name in a later
//! initializer (`AB = A | B`) is also bound as a local `var`.

use swc_common::BytePos;
use swc_ecma_ast::{AssignOp, EsVersion};
use swc_ecma_lexer::{
    lexer::Lexer,
    token::{BinOpToken, Token},
    StringInput, Syntax, TsSyntax,
};

/// Text rewritten by [`lower`], with anchors back to the original.
#[derive(Debug, Clone)]
pub(crate) struct Lowered {
    pub text: String,
    pub anchors: Vec<Anchor>,
}

/// From byte `out` of the new text on, the text is either a copy of the original from byte
/// `orig` (`copied`), or inserted text standing for the original at `orig`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Anchor {
    pub out: usize,
    pub orig: usize,
    pub copied: bool,
}

impl Lowered {
    /// Byte offset in the original text for byte `offset` of the new text.
    pub fn original_offset(&self, offset: usize) -> usize {
        let i = self.anchors.partition_point(|a| a.out <= offset);
        if i == 0 {
            return offset;
        }
        let anchor = self.anchors[i - 1];
        if anchor.copied {
            let orig = anchor.orig + (offset - anchor.out);
            match self.anchors.get(i) {
                Some(next) => orig.min(next.orig),
                None => orig,
            }
        } else {
            anchor.orig
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Semi,
    Assign,
    Dot,
    Minus,
    /// `<`
    Lt,
    /// `>`, `>>` or `>>>`: how many angle brackets it closes.
    Gt(u8),
    Str,
    Num,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Tok {
    kind: Kind,
    lo: usize,
    hi: usize,
    line_break_before: bool,
}

/// One rewrite of `text[lo..hi]`.
#[derive(Debug)]
enum Edit {
    /// Put `with` in place of the range; newlines of the range are kept after it, and the last
    /// line is padded so that what follows the range keeps its column.
    Replace(usize, usize, String),
    /// Replace every character of the range but line terminators with a space.
    Blank(usize, usize),
    /// Insert text at a position.
    Insert(usize, String),
}

impl Edit {
    fn lo(&self) -> usize {
        match *self {
            Edit::Replace(lo, ..) | Edit::Blank(lo, _) | Edit::Insert(lo, _) => lo,
        }
    }
}

/// Lower enums and parameter properties in `text`; `None` when there is nothing to lower.
pub(crate) fn lower(text: &str) -> Option<Lowered> {
    if !text.contains("enum") && !text.contains("constructor") {
        return None;
    }
    let toks = tokenize(text)?;
    let mut edits = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        if t.kind == Kind::Word {
            let word = &text[t.lo..t.hi];
            if word == "enum" {
                if let Some(next) = lower_enum(text, &toks, i, &mut edits) {
                    i = next;
                    continue;
                }
            } else if word == "constructor" {
                lower_param_props(text, &toks, i, &mut edits);
            }
        }
        i += 1;
    }
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(Edit::lo);
    Some(apply(text, &edits))
}

fn tokenize(text: &str) -> Option<Vec<Tok>> {
    let input = StringInput::new(text, BytePos(1), BytePos(1 + text.len() as u32));
    let lexer = Lexer::new(
        Syntax::Typescript(TsSyntax::default()),
        EsVersion::latest(),
        input,
        None,
    );
    let mut toks = Vec::with_capacity(text.len() / 4);
    for t in lexer {
        let kind = match t.token {
            Token::Word(_) => Kind::Word,
            Token::LParen => Kind::LParen,
            Token::RParen => Kind::RParen,
            Token::LBrace | Token::DollarLBrace => Kind::LBrace,
            Token::RBrace => Kind::RBrace,
            Token::LBracket => Kind::LBracket,
            Token::RBracket => Kind::RBracket,
            Token::Comma => Kind::Comma,
            Token::Semi => Kind::Semi,
            Token::AssignOp(AssignOp::Assign) => Kind::Assign,
            Token::Dot => Kind::Dot,
            Token::BinOp(BinOpToken::Sub) => Kind::Minus,
            Token::BinOp(BinOpToken::Lt) => Kind::Lt,
            Token::BinOp(BinOpToken::Gt) => Kind::Gt(1),
            Token::BinOp(BinOpToken::RShift) => Kind::Gt(2),
            Token::BinOp(BinOpToken::ZeroFillRShift) => Kind::Gt(3),
            Token::Str { .. } => Kind::Str,
            Token::Num { .. } => Kind::Num,
            Token::Error(_) => return None,
            _ => Kind::Other,
        };
        let lo = (t.span.lo.0 as usize).checked_sub(1)?;
        let hi = (t.span.hi.0 as usize).checked_sub(1)?;
        if lo > hi || hi > text.len() {
            return None;
        }
        toks.push(Tok {
            kind,
            lo,
            hi,
            line_break_before: t.had_line_break,
        });
    }
    Some(toks)
}

/// Index of the token closing the bracket opened at `open`.
fn matching(toks: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t.kind {
            Kind::LParen | Kind::LBrace | Kind::LBracket => depth += 1,
            Kind::RParen | Kind::RBrace | Kind::RBracket => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Index of the next token at bracket depth 0 (from `from`) whose kind is in `stops`.
fn next_at_depth0(toks: &[Tok], from: usize, stops: &[Kind]) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(from) {
        if depth == 0 && stops.contains(&t.kind) {
            return Some(i);
        }
        match t.kind {
            Kind::LParen | Kind::LBrace | Kind::LBracket => depth += 1,
            Kind::RParen | Kind::RBrace | Kind::RBracket => depth = depth.checked_sub(1)?,
            _ => {}
        }
    }
    None
}

fn is_ident_word(text: &str, t: &Tok) -> bool {
    t.kind == Kind::Word && {
        let w = &text[t.lo..t.hi];
        w.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
            && !w.starts_with(|c: char| c.is_ascii_digit())
    }
}

struct Member {
    name: Tok,
    /// `=` and the initializer's token range, when there is one.
    init: Option<(Tok, usize, usize)>,
    comma: Option<Tok>,
}

/// Lower `[const] enum Name { … }` at token `at` (the `enum`); returns the index after it.
fn lower_enum(text: &str, toks: &[Tok], at: usize, edits: &mut Vec<Edit>) -> Option<usize> {
    let (start, name_tok, open, close) = enum_head(text, toks, at)?;
    let name = &text[name_tok.lo..name_tok.hi];
    let members = enum_members(text, toks, open, close)?;
    let referenced = referenced_names(text, toks, &members);

    edits.push(Edit::Replace(
        start,
        toks[open].hi,
        format!("var {name} = (function ({name}) {{"),
    ));
    let mut previous_key: Option<String> = None;
    let mut pending = String::new();
    for m in &members {
        let member = &text[m.name.lo..m.name.hi];
        let key = if m.name.kind == Kind::Str {
            member.to_string()
        } else {
            format!("\"{member}\"")
        };
        let mut tail = member_edit(toks, name, m, &key, previous_key.as_deref(), edits);
        if m.name.kind == Kind::Word && referenced.contains(&member) {
            tail.push_str(&format!(" var {member} = {name}[{key}];"));
        }
        match m.comma {
            Some(comma) => edits.push(Edit::Replace(comma.lo, comma.hi, tail)),
            None => pending = tail,
        }
        previous_key = Some(key);
    }
    edits.push(Edit::Replace(
        toks[close].lo,
        toks[close].hi,
        format!("{pending} return {name}; }})({name} || {{}});"),
    ));
    Some(close + 1)
}

/// Where the enum at token `at` starts (its `const`, if any), its name and its braces'
/// tokens; `None` for a declared enum, a property named `enum`, or a shape not understood.
fn enum_head(text: &str, toks: &[Tok], at: usize) -> Option<(usize, Tok, usize, usize)> {
    let prev = |k: usize| at.checked_sub(k).map(|j| toks[j]);
    let word = |t: Tok| &text[t.lo..t.hi];
    let mut start = toks[at].lo;
    if let Some(p) = prev(1) {
        match p.kind {
            Kind::Dot => return None,
            Kind::Word if word(p) == "declare" => return None,
            Kind::Word if word(p) == "const" => {
                if prev(2).is_some_and(|pp| pp.kind == Kind::Word && word(pp) == "declare") {
                    return None;
                }
                start = p.lo;
            }
            _ => {}
        }
    }
    let name_tok = *toks.get(at + 1)?;
    let open = at + 2;
    if !is_ident_word(text, &name_tok) || toks.get(open)?.kind != Kind::LBrace {
        return None;
    }
    let close = matching(toks, open)?;
    Some((start, name_tok, open, close))
}

/// The members between the enum's braces (tokens `open` and `close`); `None` when one is
/// not a plain name or string with an optional initializer.
fn enum_members(text: &str, toks: &[Tok], open: usize, close: usize) -> Option<Vec<Member>> {
    let mut members = Vec::new();
    let mut j = open + 1;
    while j < close {
        let member_name = toks[j];
        if !(is_ident_word(text, &member_name) || member_name.kind == Kind::Str) {
            return None;
        }
        j += 1;
        let mut init = None;
        if toks[j].kind == Kind::Assign {
            let end = next_at_depth0(toks, j + 1, &[Kind::Comma, Kind::RBrace])?;
            if end == j + 1 || end > close {
                return None;
            }
            init = Some((toks[j], j + 1, end));
            j = end;
        }
        let comma = match toks[j].kind {
            Kind::Comma => {
                j += 1;
                Some(toks[j - 1])
            }
            Kind::RBrace if j == close => None,
            _ => return None,
        };
        members.push(Member {
            name: member_name,
            init,
            comma,
        });
    }
    Some(members)
}

/// Bare names used in initializers (not after a dot): those members get a local binding.
fn referenced_names<'a>(text: &'a str, toks: &[Tok], members: &[Member]) -> Vec<&'a str> {
    let mut referenced = Vec::new();
    for m in members {
        if let Some((_, from, to)) = m.init {
            for k in from..to {
                if toks[k].kind == Kind::Word && toks[k - 1].kind != Kind::Dot {
                    referenced.push(&text[toks[k].lo..toks[k].hi]);
                }
            }
        }
    }
    referenced
}

/// Rewrite member `m` (keyed `key`) of enum `name` as its assignment, and return what ends
/// it (written in place of the comma after it, or before the closing `return`).
fn member_edit(
    toks: &[Tok],
    name: &str,
    m: &Member,
    key: &str,
    previous_key: Option<&str>,
    edits: &mut Vec<Edit>,
) -> String {
    match m.init {
        None => {
            let value = match previous_key {
                Some(prev) => format!("{name}[{prev}] + 1"),
                None => "0".to_string(),
            };
            edits.push(Edit::Replace(
                m.name.lo,
                m.name.hi,
                format!("{name}[{name}[{key}] = {value}] = {key}"),
            ));
            ";".to_string()
        }
        Some((assign, from, to)) => {
            let single = to - from == 1;
            let is_string = single && toks[from].kind == Kind::Str;
            let is_number = (single && toks[from].kind == Kind::Num)
                || (to - from == 2
                    && toks[from].kind == Kind::Minus
                    && toks[from + 1].kind == Kind::Num);
            let (prefix, suffix) = if is_string {
                (format!("{name}[{key}] = "), ";".to_string())
            } else if is_number {
                (format!("{name}[{name}[{key}] = "), format!("] = {key};"))
            } else {
                (
                    format!("if (typeof ({name}[{key}] = "),
                    format!(") === \"number\") {name}[{name}[{key}]] = {key};"),
                )
            };
            edits.push(Edit::Replace(m.name.lo, assign.hi, prefix));
            suffix
        }
    }
}

/// Lower the parameter properties of `constructor(…) { … }` at token `at`.
fn lower_param_props(text: &str, toks: &[Tok], at: usize, edits: &mut Vec<Edit>) {
    if at > 0 && toks[at - 1].kind == Kind::Dot {
        return;
    }
    let open = at + 1;
    if toks.get(open).map(|t| t.kind) != Some(Kind::LParen) {
        return;
    }
    let Some(close) = matching(toks, open) else {
        return;
    };
    let body = close + 1;
    if toks.get(body).map(|t| t.kind) != Some(Kind::LBrace) {
        return;
    }
    let Some(body_end) = matching(toks, body) else {
        return;
    };
    let Some((names, blanks)) = param_props(text, toks, open, close) else {
        return;
    };
    if names.is_empty() {
        return;
    }
    let Some((insert_at, lead)) = assignments_at(text, toks, body, body_end) else {
        return;
    };
    let mut assign = String::from(lead);
    for name in names {
        assign.push_str(&format!("this.{name} = {name};"));
    }
    edits.extend(blanks);
    edits.push(Edit::Insert(insert_at, assign));
}

/// The parameters between tokens `open` and `close` that are properties: their names, and
/// the blanking of their modifiers. `None` when one cannot be lowered.
fn param_props<'a>(
    text: &'a str,
    toks: &[Tok],
    open: usize,
    close: usize,
) -> Option<(Vec<&'a str>, Vec<Edit>)> {
    let word = |t: &Tok| &text[t.lo..t.hi];
    // Parameters: split at depth-0 commas.
    let mut names = Vec::new();
    let mut blanks = Vec::new();
    let mut p = open + 1;
    while p < close {
        let end = next_at_depth0(toks, p, &[Kind::Comma, Kind::RParen]).unwrap_or(close);
        let mut q = p;
        while q + 1 < end
            && toks[q].kind == Kind::Word
            && matches!(
                word(&toks[q]),
                "public" | "private" | "protected" | "readonly" | "override"
            )
            && toks[q + 1].kind == Kind::Word
        {
            q += 1;
        }
        if q > p {
            let name = &toks[q];
            if !is_ident_word(text, name) || word(name) == "this" {
                return None;
            }
            blanks.push(Edit::Blank(toks[p].lo, name.lo));
            names.push(word(name));
        }
        p = end + 1;
    }
    Some((names, blanks))
}

/// Where the `this.x = x;` assignments go in the constructor body between tokens `body` and
/// `body_end`, and what must come before them: after `super(…)` when the body calls it at its
/// top level, else at the body's start. `None` when a `super(…)` call is not understood.
fn assignments_at(
    text: &str,
    toks: &[Tok],
    body: usize,
    body_end: usize,
) -> Option<(usize, &'static str)> {
    let word = |t: &Tok| &text[t.lo..t.hi];
    let mut depth = 0usize;
    let mut k = body + 1;
    while k < body_end {
        let t = toks[k];
        match t.kind {
            Kind::LParen | Kind::LBrace | Kind::LBracket => depth += 1,
            Kind::RParen | Kind::RBrace | Kind::RBracket => depth = depth.saturating_sub(1),
            Kind::Word
                if depth == 0
                    && word(&t) == "super"
                    && toks[k + 1].kind == Kind::LParen
                    && (k == body + 1
                        || matches!(toks[k - 1].kind, Kind::Semi | Kind::RBrace)
                        || t.line_break_before) =>
            {
                let call_end = matching(toks, k + 1)?;
                let next = toks[call_end + 1];
                return if next.kind == Kind::Semi {
                    Some((next.hi, ""))
                } else if next.line_break_before || call_end + 1 == body_end {
                    Some((toks[call_end].hi, ";"))
                } else {
                    None
                };
            }
            _ => {}
        }
        k += 1;
    }
    Some((toks[body].hi, ""))
}

fn apply(text: &str, edits: &[Edit]) -> Lowered {
    let mut out = String::with_capacity(text.len() + 64 * edits.len());
    let mut anchors = Vec::with_capacity(2 * edits.len() + 1);
    let mut copied = 0;
    anchors.push(Anchor {
        out: 0,
        orig: 0,
        copied: true,
    });
    for edit in edits {
        let (lo, hi) = match *edit {
            Edit::Replace(lo, hi, _) | Edit::Blank(lo, hi) => (lo, hi),
            Edit::Insert(at, _) => (at, at),
        };
        if lo < copied || hi > text.len() {
            continue; // overlapping edits: keep the first
        }
        out.push_str(&text[copied..lo]);
        match edit {
            Edit::Replace(_, _, with) => {
                anchors.push(Anchor {
                    out: out.len(),
                    orig: lo,
                    copied: false,
                });
                out.push_str(with);
                let replaced = &text[lo..hi];
                if let Some(last_newline) = replaced.rfind('\n') {
                    for _ in replaced.matches('\n') {
                        out.push('\n');
                    }
                    for _ in replaced[last_newline + 1..].chars() {
                        out.push(' ');
                    }
                }
            }
            Edit::Blank(..) => {
                anchors.push(Anchor {
                    out: out.len(),
                    orig: lo,
                    copied: false,
                });
                for c in text[lo..hi].chars() {
                    out.push(if c == '\n' || c == '\r' { c } else { ' ' });
                }
            }
            Edit::Insert(_, with) => {
                anchors.push(Anchor {
                    out: out.len(),
                    orig: lo,
                    copied: false,
                });
                out.push_str(with);
            }
        }
        anchors.push(Anchor {
            out: out.len(),
            orig: hi,
            copied: true,
        });
        copied = hi;
    }
    out.push_str(&text[copied..]);
    Lowered { text: out, anchors }
}

/// Blank the `<T>` of each angle-bracket type assertion `<T>expr` at the byte spans given (as
/// reported by swc), keeping the byte layout (multi-byte characters become spaces of the same
/// UTF-8 length, as swc does). `None` when one cannot be blanked safely: a line break between
/// `<` and the expression (ASI could then end a `return` early), or a shape not understood.
pub(crate) fn blank_angle_bracket_assertions(
    text: &str,
    spans: &[(usize, usize)],
) -> Option<String> {
    let mut bytes = text.as_bytes().to_vec();
    for &(lo, hi) in spans {
        if lo >= hi || hi > text.len() || !text.is_char_boundary(lo) || !text.is_char_boundary(hi) {
            return None;
        }
        let toks = tokenize(&text[lo..hi])?;
        if toks.first()?.kind != Kind::Lt {
            return None;
        }
        let mut depth = 0i32;
        let mut end = None;
        for (i, t) in toks.iter().enumerate() {
            match t.kind {
                Kind::Lt => depth += 1,
                Kind::Gt(n) => depth -= i32::from(n),
                _ => {}
            }
            if depth < 0 {
                return None;
            }
            if depth == 0 {
                end = Some(i);
                break;
            }
        }
        let end = end?;
        let expr = toks.get(end + 1)?;
        let type_end = lo + toks[end].hi;
        if text[lo..lo + expr.lo].contains(['\n', '\r', '\u{2028}', '\u{2029}']) {
            return None;
        }
        for (i, c) in text[lo..type_end].char_indices() {
            let blank: &[u8] = match c.len_utf8() {
                1 => b" ",
                2 => "\u{A0}".as_bytes(),
                3 => "\u{2002}".as_bytes(),
                _ => " \u{FEFF}".as_bytes(),
            };
            bytes[lo + i..lo + i + blank.len()].copy_from_slice(blank);
        }
    }
    String::from_utf8(bytes).ok()
}
