//! Times the compute workloads (W5 loop, W6 sort) in the engine alone.
use std::time::{Duration, Instant};

use isolate::{Execution, Limits, Settles, Status};

fn run(js: &str) -> Duration {
    let t = Instant::now();
    let mut exec = Execution::new(
        js,
        &[],
        Limits::default(),
        Instant::now() + Duration::from_secs(30),
    )
    .unwrap();
    let out = exec.step(Settles::new(), None);
    assert!(
        matches!(out.status, Status::Done(Ok(_))),
        "{:?}",
        out.status
    );
    t.elapsed()
}

fn main() {
    let w5 = "let s=0; for(let i=0;i<2e7;i++){ s+= i%7 } return s";
    let w6 = "const rows = []\nfor (let i = 0; i < 100000; i++) { rows.push({ id: i, name: `user_${i}`, score: (i * 7919) % 100003 }) }\nrows.sort((a, b) => b.score - a.score)\nreturn rows.slice(0, 10)";
    let build = "const rows = []\nfor (let i = 0; i < 100000; i++) { rows.push({ id: i, name: `user_${i}`, score: (i * 7919) % 100003 }) }\nreturn rows.length";
    for (name, js) in [("W5", w5), ("W6", w6), ("W6 build only", build)] {
        let mut samples: Vec<Duration> = (0..5).map(|_| run(js)).collect();
        samples.sort();
        println!("{name}: median {:?}", samples[2]);
    }
}
