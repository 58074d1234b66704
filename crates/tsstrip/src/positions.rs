//! Lines and columns: offsets to (line, column) in characters and back, UTF-16 columns, and
//! how a position in the JavaScript maps back to the TypeScript (anchors of the in-place
//! lowering, or the transform's source map).

use std::sync::OnceLock;

use crate::lower;
use crate::swc::PREFIX;

/// 1-based (line, column in characters) of byte `offset` in `text`; lines end at `\n`.
pub(crate) fn line_col(text: &str, offset: usize) -> (u32, u32) {
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
pub(crate) enum PositionMap {
    /// Transformed by swc: its source map.
    Transformed(SourceMapped),
    /// Enums / parameter properties lowered in place: anchors into `body`.
    Lowered {
        lowered: lower::Lowered,
        body: String,
    },
}

impl PositionMap {
    pub(crate) fn lookup(&self, code: &str, line: u32, column: u32) -> (u32, u32) {
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
pub(crate) fn offset_of(text: &str, line: u32, column: u32) -> usize {
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
pub(crate) struct SourceMapped {
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
    /// Positions from the source map `mappings` of the transform of the wrapped `source`.
    pub(crate) fn new(mappings: String, source: String, line_offset: u32, head_utf16: u32) -> Self {
        SourceMapped {
            mappings,
            decoded: OnceLock::new(),
            source,
            line_offset,
            head_utf16,
        }
    }

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
pub(crate) fn extract_mappings(map: &str) -> Option<String> {
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
}
