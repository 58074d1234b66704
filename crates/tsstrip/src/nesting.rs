//! How much native stack parsing a text may take, judged before swc sees it.
//!
//! swc parses recursively: each nested bracket, arrow, ternary, unary operator or type
//! argument is a few hundred bytes to a few KiB of stack, and a short hostile text
//! (`(` × 2,000 is 4 KB) overflows any thread's stack, which kills the process. A stack
//! overflow cannot be caught, so the depth is bounded before parsing: [`stack_bytes`] is a
//! conservative upper bound of the stack a parse of `text` can need, from one linear pass.
//!
//! The bound counts, at every point, each enclosing bracket (`(`, `[`, `{`, `${`) and every
//! token seen since the last `,` or `;` of each enclosing bracket: any construct that can
//! make the parser recurse (`!!!x`, `a ? b ? …`, `() => () => …`, `Array<Array<…>>`,
//! `x as any as any …`, `if … else if …`, and chains like `a.b.c…` or `f(1)(1)…`, whose
//! syntax trees are as deep as they are long) is made of such tokens, so the count can only
//! overestimate the depth. Strings, template text and comments are skipped; a regular
//! expression is scanned as if it were code, which can only add to the count.

/// Stack one counted token may take (measured in release: a nested `(` takes about 4 KiB,
/// a `!` 512 bytes; an unrecognised token is charged like the cheapest).
const TOKEN: usize = 512;
/// A bracket, an arrow, a template substitution: the most expensive constructs.
const BRACKET: usize = 8 * TOKEN;
/// `<`: a type argument list or an angle-bracket assertion.
const ANGLE: usize = 4 * TOKEN;

/// One open bracket (or the whole text).
struct Frame {
    /// The opening byte: `(`, `[`, `{`, `` ` `` (a template substitution), 0 for the text.
    kind: u8,
    /// Stack charged to tokens since its last `,` or `;`.
    since_separator: usize,
    /// Stack charged to `else`s, kept until the bracket closes (`if … else if …` nests
    /// across `;`).
    kept: usize,
}

impl Frame {
    fn new(kind: u8) -> Self {
        Self {
            kind,
            since_separator: 0,
            kept: 0,
        }
    }
}

/// An upper bound, in bytes, of the native stack that parsing and transforming `text` may
/// use (before a safety factor), and the byte offset where it is reached.
pub(crate) fn stack_bytes(text: &str) -> (usize, usize) {
    let bytes = text.as_bytes();
    let mut scan = Scan {
        frames: vec![Frame::new(0)],
        total: 0,
    };
    let mut worst: usize = 0;
    let mut worst_at = 0;
    let mut i = 0;
    while i < bytes.len() {
        i = scan.step(bytes, i);
        if scan.total > worst {
            worst = scan.total;
            worst_at = i.min(bytes.len());
        }
    }
    (worst, worst_at)
}

/// The open brackets at a point of the text, and what they are charged.
struct Scan {
    frames: Vec<Frame>,
    /// The stack charged in all open frames together, each bracket included.
    total: usize,
}

impl Scan {
    /// Charge `cost` to the innermost bracket.
    fn charge(&mut self, cost: usize) {
        if let Some(top) = self.frames.last_mut() {
            top.since_separator += cost;
        }
        self.total += cost;
    }

    fn open(&mut self, kind: u8) {
        self.frames.push(Frame::new(kind));
        self.total += BRACKET;
    }

    /// Scan the token (or blank, or comment) at `i`; returns the index after it.
    fn step(&mut self, bytes: &[u8], mut i: usize) -> usize {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = find(bytes, i + 2, b"\n").unwrap_or(bytes.len());
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = find(bytes, i + 2, b"*/").map_or(bytes.len(), |end| end + 2);
            }
            b'\'' | b'"' => {
                i = skip_string(bytes, i + 1, b);
                self.charge(TOKEN);
            }
            b'`' => {
                // Template text up to the closing backtick or the first substitution.
                let (next, substitution) = skip_template(bytes, i + 1);
                if substitution {
                    self.open(b'`');
                } else {
                    self.charge(TOKEN);
                }
                i = next;
            }
            b'(' | b'[' | b'{' => {
                self.open(b);
                i += 1;
            }
            b')' | b']' | b'}' if self.frames.len() > 1 => i = self.close(bytes, i),
            b',' | b';' => {
                if let Some(top) = self.frames.last_mut() {
                    self.total -= top.since_separator;
                    top.since_separator = 0;
                }
                i += 1;
            }
            b'=' if bytes.get(i + 1) == Some(&b'>') => {
                self.charge(BRACKET);
                i += 2;
            }
            b'<' => {
                self.charge(ANGLE);
                i += 1;
            }
            _ if is_word(b) => i = self.word(bytes, i),
            _ => {
                self.charge(TOKEN);
                i += 1;
            }
        }
        i
    }

    /// The closing bracket at `i` (some bracket is open); returns the index after it, or
    /// after the template text that follows the end of a substitution.
    fn close(&mut self, bytes: &[u8], mut i: usize) -> usize {
        let frame = self.frames.pop().unwrap_or(Frame::new(0));
        self.total -= frame.since_separator + frame.kept + BRACKET;
        // The bracketed part is one operand of what encloses it: `f(1)(1)…` and
        // `a[0][0]…` nest in the syntax tree as deep as they are long.
        self.charge(TOKEN);
        i += 1;
        if frame.kind == b'`' && bytes[i - 1] == b'}' {
            // Back in the template's text: to its end or its next substitution.
            let (next, substitution) = skip_template(bytes, i);
            if substitution {
                self.open(b'`');
            }
            i = next;
        }
        i
    }

    /// The word that starts at `i`; returns the index after it.
    fn word(&mut self, bytes: &[u8], mut i: usize) -> usize {
        let start = i;
        while i < bytes.len() && is_word(bytes[i]) {
            i += 1;
        }
        if &bytes[start..i] == b"else" {
            if let Some(top) = self.frames.last_mut() {
                top.kept += ANGLE;
            }
            self.total += ANGLE;
        } else {
            self.charge(TOKEN);
        }
        i
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The index after the string that starts before `from` and ends with `quote`.
fn skip_string(bytes: &[u8], mut i: usize, quote: u8) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\n' => return i,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Skip template text from `i`: the index after its closing backtick (`false`), or after the
/// `${` of its next substitution (`true`).
fn skip_template(bytes: &[u8], mut i: usize) -> (usize, bool) {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'`' => return (i + 1, false),
            b'$' if bytes.get(i + 1) == Some(&b'{') => return (i + 2, true),
            _ => i += 1,
        }
    }
    (bytes.len(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_code_is_cheap_and_nesting_adds_up() {
        let flat = "const a = f(1, 2, 3);\nconst b = [1, 2, 3].map((x) => x * 2);\nreturn a + b";
        assert!(stack_bytes(flat).0 < 64 * TOKEN);
        let nested = format!("return {}1{}", "(".repeat(100), ")".repeat(100));
        assert!(stack_bytes(&nested).0 >= 100 * BRACKET);
        let chain = format!("return {}1", "!".repeat(1000));
        assert!(stack_bytes(&chain).0 >= 1000 * TOKEN);
    }

    #[test]
    fn separators_reset_a_bracket_and_closing_frees_it() {
        let list = format!("return [{}]", "!x, ".repeat(10_000));
        assert!(stack_bytes(&list).0 < 16 * BRACKET);
        let sequential = "f((((1))));".repeat(1000);
        assert!(stack_bytes(&sequential).0 < 8 * BRACKET);
    }

    #[test]
    fn strings_comments_and_template_text_are_skipped() {
        let text = "const s = \"((((((((((\"; // ((((((((\n/* [[[[[[[[ */ const t = `((((${1}((((`";
        assert!(stack_bytes(text).0 < 4 * BRACKET);
        let nested = format!("return {}1{}", "`${".repeat(50), "}`".repeat(50));
        assert!(stack_bytes(&nested).0 >= 50 * BRACKET);
    }
}
