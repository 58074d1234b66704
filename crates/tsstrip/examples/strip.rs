//! Strip a TypeScript program body and print the JavaScript (or the syntax error).
//!
//! `cargo run --release -p tsstrip --example strip -- FILE.ts [--bench N]`

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: strip FILE.ts [--bench N]");
        std::process::exit(2);
    };
    let source = std::fs::read_to_string(path).expect("read the file");
    if let Some(i) = args.iter().position(|a| a == "--bench") {
        let n: u32 = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(1000);
        for _ in 0..n.min(100) {
            let _ = tsstrip::strip(&source);
        }
        let start = Instant::now();
        for _ in 0..n {
            let _ = std::hint::black_box(tsstrip::strip(std::hint::black_box(&source)));
        }
        let per = start.elapsed() / n;
        println!("{path}: {per:?} per strip ({n} iterations)");
        return;
    }
    match tsstrip::strip(&source) {
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
