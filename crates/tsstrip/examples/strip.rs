//! Strip a TypeScript program body and print the JavaScript (or the syntax error).
//!
//! `cargo run --release -p tsstrip --example strip -- FILE.ts... [--bench N]`
//!
//! With `--bench N` each file is stripped up to 100 times to warm up, then N times (1000 by
//! default) timed, and the mean time per strip is printed; a file that does not strip is an
//! error (exit 1), so the figure is never that of the error path.

use std::time::Instant;

const USAGE: &str = "usage: strip FILE.ts... [--bench N]";

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let bench = match args.iter().position(|a| a == "--bench") {
        Some(i) => {
            let n = args.get(i + 1).and_then(|n| n.parse::<u32>().ok());
            let taken = if n.is_some() { 2 } else { 1 };
            args.drain(i..(i + taken).min(args.len()));
            Some(n.unwrap_or(1000).max(1))
        }
        None => None,
    };
    if args.is_empty() {
        eprintln!("{USAGE}");
        std::process::exit(2);
    }
    for path in &args {
        let source = std::fs::read_to_string(path).expect("read the file");
        match bench {
            Some(n) => bench_file(path, &source, n),
            None => print_stripped(&source),
        }
    }
}

/// Print the JavaScript of `source`, or its syntax error (exit 1).
fn print_stripped(source: &str) {
    match tsstrip::strip(source) {
        Ok(stripped) => {
            println!("// positions_preserved: {}", stripped.positions_preserved);
            print!("{}", stripped.code);
        }
        Err(diagnostic) => {
            eprintln!("{diagnostic}");
            std::process::exit(1);
        }
    }
}

/// Time `n` strips of `source` after a warm-up, and print the mean.
fn bench_file(path: &str, source: &str, n: u32) {
    if let Err(diagnostic) = tsstrip::strip(source) {
        eprintln!("{path}: {diagnostic}");
        std::process::exit(1);
    }
    for _ in 0..n.min(100) {
        let _ = tsstrip::strip(source);
    }
    let start = Instant::now();
    for _ in 0..n {
        let _ = std::hint::black_box(tsstrip::strip(std::hint::black_box(source)));
    }
    let per = start.elapsed() / n;
    println!("{path}: {per:?} per strip ({n} iterations)");
}
