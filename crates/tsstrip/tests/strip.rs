//! The corpus of programs models write, and the behaviour codemode relies on.

use std::path::PathBuf;

use tsstrip::{code_frame, strip, Diagnostic, Stripped};

/// The corpus: the crate's own programs (`tests/corpus`) plus the shared workload programs the
/// benchmarks run (`python/codemode/bench/workloads`), named `workload-*`, `feature-*` and `limits-*`.
fn corpus_sources() -> Vec<(&'static str, PathBuf)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let workloads = root.join("../../python/codemode/bench/workloads");
    vec![
        ("", root.join("tests/corpus")),
        ("workload-", workloads.clone()),
        ("feature-", workloads.join("ts-features")),
        ("limits-", workloads.join("W9-limits")),
    ]
}

fn corpus() -> Vec<(String, String)> {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for (prefix, dir) in corpus_sources() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "ts") {
                let name = format!("{prefix}{}", path.file_name().unwrap().to_string_lossy());
                files.push((name, path));
            }
        }
    }
    files.sort();
    assert!(files.len() >= 30, "corpus has {} files", files.len());
    files
        .into_iter()
        .map(|(name, path)| (name, std::fs::read_to_string(&path).expect("read")))
        .collect()
}

fn corpus_file(name: &str) -> String {
    corpus()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no corpus file {name}"))
        .1
}

fn ok(ts: &str) -> Stripped {
    match strip(ts) {
        Ok(s) => s,
        Err(d) => panic!("strip failed:\n{d}\n--- source ---\n{ts}"),
    }
}

fn err(ts: &str) -> Diagnostic {
    match strip(ts) {
        Ok(s) => panic!("expected a syntax error, got:\n{}", s.code),
        Err(d) => d,
    }
}

/// Every `external_xxx(` call: (name, 1-based line, 1-based column in characters).
fn external_calls(text: &str) -> Vec<(String, u32, u32)> {
    let mut calls = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let mut c = 0;
        while c < chars.len() {
            let rest: String = chars[c..].iter().collect();
            let before_ok = c == 0 || !(chars[c - 1].is_alphanumeric() || chars[c - 1] == '_');
            if before_ok && rest.starts_with("external_") {
                let name: String = rest
                    .chars()
                    .take_while(|ch| ch.is_alphanumeric() || *ch == '_')
                    .collect();
                calls.push((name.clone(), n as u32 + 1, c as u32 + 1));
                c += name.chars().count();
            } else {
                c += 1;
            }
        }
    }
    calls
}

#[test]
fn every_corpus_program_strips() {
    let mut preserved = 0;
    for (name, ts) in corpus() {
        let s = strip(&ts).unwrap_or_else(|d| panic!("{name}: {d}"));
        assert!(!s.code.trim().is_empty() || ts.trim().is_empty(), "{name}");
        if s.positions_preserved {
            preserved += 1;
        }
        // No type syntax should be left where a JS engine could trip on it.
        for bad in [
            "interface ",
            ": number",
            ": string",
            " as const",
            "satisfies ",
        ] {
            assert!(
                !s.code.contains(bad) || ts.contains(&format!("\"{bad}")),
                "{name}: `{bad}` left in\n{}",
                s.code
            );
        }
    }
    assert!(preserved >= 20, "only {preserved} programs kept positions");
}

#[test]
fn preserved_positions_are_identical() {
    for (name, ts) in corpus() {
        let s = ok(&ts);
        if !s.positions_preserved {
            continue;
        }
        let (src_lines, out_lines): (Vec<&str>, Vec<&str>) =
            (ts.split('\n').collect(), s.code.split('\n').collect());
        assert_eq!(src_lines.len(), out_lines.len(), "{name}: line count");
        for (i, (a, b)) in src_lines.iter().zip(&out_lines).enumerate() {
            let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
            assert_eq!(a.len(), b.len(), "{name}:{}: length in chars", i + 1);
            for (col, (x, y)) in a.iter().zip(&b).enumerate() {
                // Each character is kept, blanked, or a `;` put in to keep statements apart.
                assert!(
                    x == y || y.is_whitespace() || *y == ';',
                    "{name}:{}:{}: {x:?} became {y:?}",
                    i + 1,
                    col + 1
                );
            }
        }
        // Calls kept are where they were (declarations like `declare function external_x` go).
        let originals = external_calls(&ts);
        for call in external_calls(&s.code) {
            assert!(originals.contains(&call), "{name}: {call:?}");
        }
        // Identity mapping.
        assert_eq!(s.original_position(3, 7), (3, 7));
    }
}

#[test]
fn mapped_positions_find_the_original_calls() {
    let mut mapped = 0;
    for (name, ts) in corpus() {
        let s = ok(&ts);
        if s.positions_preserved {
            continue;
        }
        mapped += 1;
        let originals = external_calls(&ts);
        for (call, line, column) in external_calls(&s.code) {
            let (ol, oc) = s.original_position(line, column);
            assert!(
                originals.contains(&(call.clone(), ol, oc)),
                "{name}: {call} at {line}:{column} mapped to {ol}:{oc}, calls are at {originals:?}\n{}",
                s.code
            );
        }
    }
    assert!(mapped >= 5, "{mapped}");
}

#[test]
fn workload_w8_lowers_enum_and_parameter_property_in_place() {
    let ts = corpus_file("workload-W8-typescript.ts");
    let s = ok(&ts);
    assert!(!s.positions_preserved);
    assert_eq!(s.code.lines().count(), ts.lines().count(), "{}", s.code);
    assert!(s.code.contains(r#"Tier["Gold"] =  'gold';"#), "{}", s.code);
    assert!(s.code.contains("this.label = label;"), "{}", s.code);
    assert!(
        s.code.contains("return Tier; })(Tier || {});"),
        "{}",
        s.code
    );
    assert!(!s.code.contains("private"));
    assert!(s
        .code
        .contains("const response = (await external_getTopProducts({ limit: 5 }))"));
    // Lines away from the rewritten ones map to themselves...
    let line = ts
        .lines()
        .position(|l| l.starts_with("const response"))
        .unwrap() as u32
        + 1;
    assert_eq!(s.original_position(line, 25), (line, 25));
    // ...and positions inside the lowered enum map into it.
    assert_eq!(s.original_position(3, 21), (3, 12)); // 'silver' of `Silver = 'silver',`
    assert_eq!(s.original_position(3, 10), (3, 3)); // inserted text: the member
    assert_eq!(s.original_position(1, 1), (1, 1));
    // The inserted assignment stands for the constructor body it was put in.
    let ctor = ts.lines().position(|l| l.contains("constructor(")).unwrap() as u32 + 1;
    let col = s
        .code
        .lines()
        .nth(ctor as usize - 1)
        .unwrap()
        .find("this.label")
        .unwrap() as u32
        + 1;
    let (l, c) = s.original_position(ctor, col);
    assert_eq!(l, ctor);
    assert_eq!(
        c,
        ts.lines()
            .nth(ctor as usize - 1)
            .unwrap()
            .find("{}")
            .unwrap() as u32
            + 2
    );
}

#[test]
fn enums_lower_like_tsc() {
    let s = ok(&corpus_file("feature-enum-numeric.ts"));
    assert_eq!(
        s.code,
        "var Color = (function (Color) {\n  Color[Color[\"Red\"] = 0] = \"Red\";\n  Color[Color[\"Green\"] =  5] = \"Green\";\n  Color[Color[\"Blue\"] = Color[\"Green\"] + 1] = \"Blue\";\n return Color; })(Color || {});\nreturn [Color.Red, Color.Green, Color.Blue, Color[5]]\n"
    );
    let s = ok(&corpus_file("feature-const-enum.ts"));
    assert!(
        s.code.contains("var Size = (function (Size) {"),
        "{}",
        s.code
    );
    assert!(s.code.contains("return Size.M + Size.L"));

    let s = ok(&corpus_file("own-enums.ts"));
    // Members referenced by bare name get a local binding.
    assert!(
        s.code.contains(r#"var Read = Flags["Read"];"#),
        "{}",
        s.code
    );
    assert!(
        s.code.contains(r#"Mixed['with-dash'] =  'dash';"#),
        "{}",
        s.code
    );
    // A position in a later line is unchanged.
    let line = s
        .code
        .lines()
        .position(|l| l.contains("external_getLevels"))
        .unwrap() as u32
        + 1;
    assert_eq!(s.original_position(line, 14), (line, 14));
}

#[test]
fn enum_position_maps_back_through_full_transform() {
    // An angle-bracket assertion is left to swc's full transform: positions come from its map.
    let ts = "enum E { A = 1 }\nconst n = <number>E.A\nconst r = await external_getItem({ id: n })\nreturn r\n";
    let s = ok(ts);
    assert!(!s.positions_preserved);
    assert!(!s.code.contains("<number>"), "{}", s.code);
    let (line, col) = s
        .code
        .lines()
        .enumerate()
        .find_map(|(i, l)| {
            l.find("external_getItem")
                .map(|c| (i as u32 + 1, c as u32 + 1))
        })
        .expect("call kept");
    assert_eq!(s.original_position(line, col), (3, 17));
    // The `return`.
    let (line, col) = s
        .code
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find("return r").map(|c| (i as u32 + 1, c as u32 + 1)))
        .expect("return kept");
    assert_eq!(s.original_position(line, col), (4, 1));
}

#[test]
fn namespaces_run() {
    let s = ok(&corpus_file("feature-namespace.ts"));
    assert!(!s.positions_preserved);
    assert!(s.code.contains("MathUtil.twice = (n)=>n * 2"), "{}", s.code);
    assert!(s.code.contains("var MathUtil"), "{}", s.code);
    assert!(s.code.contains("return MathUtil.twice(21)"));

    let s = ok(&corpus_file("own-namespaces.ts"));
    assert!(s.code.contains("Geometry.Inner.unit"), "{}", s.code);
    assert!(!s.code.contains("Ambient"), "{}", s.code);
    assert!(!s.code.contains("TypesOnly"), "{}", s.code);

    // A namespace with only types is erased in place.
    let s = ok("namespace T { export type A = string }\nconst a: T.A = 'x'\nreturn a\n");
    assert!(s.positions_preserved);
    assert_eq!(s.code.lines().nth(1), Some("const a      = 'x'"));
}

#[test]
fn top_level_await_and_return_survive() {
    let ts = "const x: number = await external_a({})\nif (x > 1) return x as number\nreturn await Promise.resolve(x)\n";
    let s = ok(ts);
    assert!(s.positions_preserved);
    assert_eq!(
        s.code,
        "const x         = await external_a({})\nif (x > 1) return x          \nreturn await Promise.resolve(x)\n"
    );
    // Also when transformed.
    let s = ok("enum E { A }\nnamespace N { export const v = 1 }\nconst y = await external_b({})\nif (!y) return N.v\nreturn E.A");
    assert!(s.code.contains("await external_b({})"), "{}", s.code);
    assert!(s.code.contains("return N.v"), "{}", s.code);
    assert!(s.code.contains("return "), "{}", s.code);
    assert!(!s.code.contains("__codemode"), "{}", s.code);
}

#[test]
fn output_is_the_body_without_wrapper() {
    for (name, ts) in corpus() {
        let s = ok(&ts);
        assert!(!s.code.contains("__codemode"), "{name}");
        assert!(
            !s.code.trim_end().ends_with("})") || ts.trim_end().ends_with("})"),
            "{name}"
        );
    }
    assert_eq!(ok("").code, "");
    assert_eq!(ok("return 1").code, "return 1");
    assert_eq!(ok("// only a comment").code, "// only a comment");
}

#[test]
fn syntax_error_on_line_1() {
    let d = err("const x = = 1\nreturn x\n");
    assert_eq!((d.line, d.column), (1, 11));
    assert_eq!(d.message, "Expression expected");
    assert_eq!(d.frame, "  1 | const x = = 1\n    |           ^");
    let shown = d.to_string();
    assert!(
        shown.starts_with("Expression expected (line 1, column 11)\n"),
        "{shown}"
    );

    // Column 1 of line 1, right after the wrapper.
    let d = err(")oops\n");
    assert_eq!((d.line, d.column), (1, 1));
}

#[test]
fn syntax_error_on_line_5() {
    let ts = "const a = 1\nconst b = 2\nconst c = 3\nconst d = 4\nconst x: number = y.z +\n";
    let d = err(&(ts.to_string() + ")\nreturn x\n"));
    assert_eq!((d.line, d.column), (6, 1));

    let ts = "const a = 1\nconst b = 2\n\nconst d = 4\nconst x: number = y..z\nreturn x\n";
    let d = err(ts);
    assert_eq!((d.line, d.column), (5, 21), "{d}");
    assert_eq!(
        d.frame,
        "  3 |\n  4 | const d = 4\n  5 | const x: number = y..z\n    |                     ^"
    );
    assert!(!d.message.contains('\u{1b}'));
    assert!(!d.message.contains("<anon>"));
}

#[test]
fn syntax_errors_are_reported_as_written_with_lowering_or_transform() {
    // A lowered enum does not move the error.
    let d = err("enum E { A }\nconst a = 1\nlet x = )\n");
    assert_eq!((d.line, d.column), (3, 9));
    // Nor does a namespace (full transform).
    let d = err("namespace N { export const a = 1 }\nlet x = )\n");
    assert_eq!((d.line, d.column), (2, 9));
}

#[test]
fn syntax_error_columns_count_characters() {
    let d = err("const s = '😀é'; const x = = 1\n");
    assert_eq!((d.line, d.column), (1, 27));
    assert!(
        d.frame.ends_with(&format!("| {}^", " ".repeat(26))),
        "{:?}",
        d.frame
    );
}

#[test]
fn import_and_export_type_only_are_erased() {
    let ts = corpus_file("own-import-export-type.ts");
    let s = ok(&ts);
    assert!(s.positions_preserved);
    assert!(!s.code.contains("import"), "{}", s.code);
    assert!(!s.code.contains("export"), "{}", s.code);
    assert!(
        s.code.contains("       const summary          = {"),
        "{}",
        s.code
    );
    assert!(s
        .code
        .contains("       function describe(s         )         {"));

    // `export` declarations that need the transform.
    let s = ok(
        "export enum E { A = 'a' }\nexport namespace N { export const x = 1 }\nreturn [E.A, N.x]",
    );
    assert!(s.code.contains("N.x = 1"), "{}", s.code);
    // import alias of a namespace member.
    let s = ok("namespace N { export const x = 1 }\nimport y = N.x\nreturn y");
    assert!(s.code.contains("const y = N.x"), "{}", s.code);
}

#[test]
fn module_syntax_that_cannot_run_is_a_clear_error() {
    let d = err("const a = 1\nimport fs from 'node:fs'\nreturn fs\n");
    assert_eq!((d.line, d.column), (2, 1));
    assert!(d.message.contains("node:fs"), "{}", d.message);
    let d = err("export default { a: 1 }\n");
    assert!(d.message.contains("`return`"), "{}", d.message);
    let d = err("import x = require('y')\n");
    assert!(d.message.contains("require"), "{}", d.message);
    let d = err("const a = 1\nexport = a\n");
    assert_eq!(d.line, 2);
    // Dynamic import is an expression: left alone.
    let s = ok("const m = await import('x')\nreturn m");
    assert!(s.code.contains("import('x')"));
}

#[test]
fn parameter_properties_after_super() {
    let s = ok(&corpus_file("feature-abstract-class.ts"));
    assert!(
        s.code.contains("    super();this.side = side;"),
        "{}",
        s.code
    );
    let s = ok(&corpus_file("own-classes.ts"));
    assert!(
        s.code
            .contains("super();this.domain = domain;this.strict = strict;"),
        "{}",
        s.code
    );
    assert!(s.code.contains("strict = true"), "{}", s.code);
    // Without a semicolon after super(...).
    let s = ok("class A {}\nclass B extends A {\n  constructor(public x: number) {\n    super()\n  }\n}\nreturn new B(1).x");
    assert!(s.code.contains("super();this.x = x;"), "{}", s.code);
    // Object method called constructor and `this.constructor(...)` are left alone.
    let s = ok("const o = { constructor(a: number) { return a } }\nreturn o.constructor(1)");
    assert!(s.positions_preserved, "{}", s.code);
}

#[test]
fn asi_is_kept_where_types_are_removed() {
    let s = ok(&corpus_file("own-asi-hazards.ts"));
    let lines: Vec<&str> = s.code.lines().collect();
    assert_eq!(lines[2], ";[1, 2].forEach((x) => x)");
    assert_eq!(lines[5], ";(async () => {})()");
    assert_eq!(lines[7], ";[c] = [2]");
}

#[test]
fn astral_characters_keep_character_columns() {
    let ts = "type E = '😀' | '🎉'\nconst e: E = '🎉'; const x = e\nreturn x\n";
    let s = ok(ts);
    assert!(s.positions_preserved);
    for (a, b) in ts.lines().zip(s.code.lines()) {
        assert_eq!(a.chars().count(), b.chars().count(), "{a:?} / {b:?}");
    }
    assert!(!s.code.contains('\u{feff}'));
}

#[test]
fn code_frame_format() {
    let src = "line1\nline2\nline3\nline4\nline5\nconst a = 1\nconst x = y.z\n";
    assert_eq!(
        code_frame(src, 7, 11),
        "  5 | line5\n  6 | const a = 1\n  7 | const x = y.z\n    |           ^"
    );
    assert_eq!(code_frame(src, 1, 1), "  1 | line1\n    | ^");
    assert_eq!(code_frame("a\nb", 2, 2), "  1 | a\n  2 | b\n    |  ^");
    // Numbers right-aligned when the width changes.
    let many: String = (1..=12).map(|i| format!("l{i}\n")).collect();
    assert_eq!(
        code_frame(&many, 10, 2),
        "   8 | l8\n   9 | l9\n  10 | l10\n     |  ^"
    );
    // Tabs are kept so the caret lines up.
    assert_eq!(code_frame("\tx = 1", 1, 2), "  1 | \tx = 1\n    | \t^");
    // Out of range is clamped.
    assert_eq!(code_frame("a", 9, 0), "  1 | a\n    | ^");
}

#[test]
fn diagnostic_is_an_error() {
    let d = err("let = ;");
    let e: Box<dyn std::error::Error + Send + Sync> = Box::new(d.clone());
    assert!(e.to_string().contains(&d.message));
}

#[test]
fn strips_from_many_threads() {
    let programs = corpus();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let programs = &programs;
            scope.spawn(move || {
                for (name, ts) in programs.iter().skip(t).step_by(2) {
                    let a = strip(ts).unwrap_or_else(|d| panic!("{name}: {d}"));
                    let b = strip(ts).unwrap();
                    assert_eq!(a.code, b.code, "{name}");
                }
            });
        }
    });
}

#[test]
fn angle_bracket_assertions_are_blanked_in_place() {
    let s = ok(&corpus_file("feature-generics-keyof-as-const.ts"));
    assert!(s.positions_preserved, "{}", s.code);
    assert!(s
        .code
        .ends_with("return pick(record, 'role') + ':' + (        pick(record, 'id'))\n"));

    let ts = "const v = <Array<Array<number>>>[[1]]\nconst w = <{ a: \"é😀\"; }>{ a: \"é😀\" }\nreturn [v, w, <any>(<unknown>v)]\n";
    let s = ok(ts);
    assert!(s.positions_preserved);
    let lines: Vec<&str> = s.code.lines().collect();
    assert_eq!(lines[0], "const v =                       [[1]]");
    assert_eq!(lines[2], "return [v, w,      (         v)]");
    for (a, b) in ts.lines().zip(s.code.lines()) {
        assert_eq!(a.chars().count(), b.chars().count(), "{b:?}");
    }

    // A line break after the type would let ASI end the `return`: swc's transform handles it.
    let s = ok("const x = 1\nreturn <number>\n  x\n");
    assert!(!s.positions_preserved);
    assert!(s.code.contains("return x;"), "{}", s.code);
}

/// Cut every corpus program at many points: whatever the text, `strip` answers without
/// panicking, keeps lines when it says so, and maps every position somewhere in the source.
#[test]
fn truncated_programs_never_panic() {
    for (name, ts) in corpus() {
        let cuts: Vec<usize> = ts.char_indices().map(|(i, _)| i).collect();
        // Each prefix, and the program with one character left out.
        let variants =
            cuts.iter()
                .map(|&cut| ts[..cut].to_string())
                .chain(cuts.iter().step_by(3).map(|&cut| {
                    let mut t = ts.clone();
                    t.remove(cut);
                    t
                }));
        for (cut, part) in variants.enumerate() {
            let part = part.as_str();
            match strip(part) {
                Ok(s) => {
                    if s.positions_preserved {
                        assert_eq!(s.code.split('\n').count(), part.split('\n').count());
                    }
                    let lines = part.split('\n').count() as u32;
                    for (i, line) in s.code.split('\n').enumerate() {
                        for col in [1, 2, line.chars().count() as u32 + 1] {
                            let (l, c) = s.original_position(i as u32 + 1, col);
                            assert!(l >= 1 && l <= lines && c >= 1, "{name}@{cut}: {l}:{c}");
                        }
                    }
                }
                Err(d) => {
                    assert!(d.line >= 1 && d.column >= 1, "{name}@{cut}");
                    assert!(d.frame.contains('^'));
                    assert!(!d.message.is_empty());
                }
            }
        }
    }
}

#[test]
fn results_cross_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Stripped>();
    send_sync::<Diagnostic>();
}

/// Deep nesting of every kind is refused or stripped, never a stack overflow (which would
/// kill the process running the tests).
#[test]
fn deep_nesting_never_overflows_the_stack() {
    // (before, repeated, middle, repeated closing, after)
    let constructs: [(&str, &str, &str, &str); 18] = [
        ("return ", "(", "1", ")"),
        ("return ", "[", "1", "]"),
        ("", "{", "", "}"),
        ("return ", "!", "1", ""),
        ("return ", "typeof ", "1", ""),
        ("return ", "1?", "1", ":1"),
        ("return ", "()=>", "1", ""),
        ("let x: ", "Array<", "number", ">"),
        ("return ", "`${", "1", "}`"),
        ("return f", "(1)", "", ""),
        ("return 1", "**1", "", ""),
        ("", "if (1) 1; else ", "1", ""),
        ("return 1", " as any", "", ""),
        ("return ", "<any>", "1", ""),
        ("return ", "{a:", "1", "}"),
        ("", "function f(){", "", "}"),
        ("", "a=", "1", ""),
        ("let x: ", "(", "number", ")"),
    ];
    for (before, open, middle, close) in constructs {
        for n in [1_000, 2_000, 20_000, 200_000] {
            let text = format!("{before}{}{middle}{}", open.repeat(n), close.repeat(n));
            if let Err(d) = tsstrip::strip(&text) {
                assert!(
                    !d.message.contains("internal error"),
                    "{open:?} x {n}: {}",
                    d.message
                );
            }
        }
    }
    let refused = tsstrip::strip(&format!(
        "return {}1{}",
        "(".repeat(200_000),
        ")".repeat(200_000)
    ))
    .unwrap_err();
    assert!(
        refused.message.contains("nested too deeply"),
        "{}",
        refused.message
    );
    assert_eq!(refused.line, 1);
}
