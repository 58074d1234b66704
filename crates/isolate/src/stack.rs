//! Reading program positions out of QuickJS stack traces.

use crate::Frame;

/// The file name the program is evaluated under.
pub(crate) const PROGRAM_FILE: &str = "program.js";

/// Frames of `stack` that lie inside the program, innermost first. `line1_offset` is the
/// length of the wrapper text put before the program on line 1; it is subtracted there.
pub(crate) fn program_frames(stack: &str, line1_offset: u32) -> Vec<Frame> {
    stack
        .lines()
        .filter_map(|line| parse_frame(line, line1_offset))
        .collect()
}

fn parse_frame(line: &str, line1_offset: u32) -> Option<Frame> {
    let text = line.trim();
    let text = text.strip_prefix("at ").unwrap_or(text);
    let at = text.find(PROGRAM_FILE)?;
    let function = text[..at].trim().trim_end_matches('(').trim().to_owned();
    let rest = &text[at + PROGRAM_FILE.len()..];
    let rest = rest.strip_prefix(':')?;
    let (line_no, rest) = split_number(rest)?;
    let column = rest
        .strip_prefix(':')
        .and_then(split_number)
        .map(|(c, _)| c)
        .unwrap_or(1);
    let column = if line_no == 1 {
        column.saturating_sub(line1_offset).max(1)
    } else {
        column
    };
    let function = match function.as_str() {
        "" | "<anonymous>" | "<eval>" => "<program>".to_owned(),
        _ => function,
    };
    Some(Frame {
        function,
        line: line_no,
        column,
    })
}

/// QuickJS counts columns in UTF-8 bytes; positions are reported in characters (as the
/// stripper and code frames count them). `source` is the program text the frames point into.
pub(crate) fn in_characters(mut frames: Vec<Frame>, source: &str) -> Vec<Frame> {
    for frame in &mut frames {
        let Some(line) = source
            .split('\n')
            .nth(frame.line.saturating_sub(1) as usize)
        else {
            continue;
        };
        if line.is_ascii() {
            continue;
        }
        let mut bytes = (frame.column.saturating_sub(1) as usize).min(line.len());
        while !line.is_char_boundary(bytes) {
            bytes -= 1;
        }
        frame.column = line[..bytes].chars().count() as u32 + 1;
    }
    frames
}

fn split_number(s: &str) -> Option<(u32, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n = s[..end].parse().ok()?;
    Some((n, &s[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_columns_become_character_columns() {
        let frame = |line, column| Frame {
            function: "f".into(),
            line,
            column,
        };
        let source = "const s = \"é\"; b\n// a\u{2028}b\nplain";
        let frames = in_characters(vec![frame(1, 17), frame(2, 8), frame(3, 2)], source);
        let columns: Vec<u32> = frames.iter().map(|f| f.column).collect();
        assert_eq!(columns, [16, 6, 2]);
    }

    #[test]
    fn parses_frames_and_line_one_offset() {
        let stack = "    at f (program.js:3:11)\n    at <anonymous> (program.js:1:25)\n    at x (codemode:prelude:4:2)\n";
        let frames = program_frames(stack, 20);
        assert_eq!(
            frames,
            vec![
                Frame {
                    function: "f".into(),
                    line: 3,
                    column: 11
                },
                Frame {
                    function: "<program>".into(),
                    line: 1,
                    column: 5
                },
            ]
        );
    }
}
