//! Prints what 1,000 parallel and 1,000 sequential echo calls cost in the engine alone.
use std::time::{Duration, Instant};

use isolate::{Execution, Limits, Settles, Status};

fn run(js: &str) -> Duration {
    let tools = vec!["echo".to_owned()];
    let t = Instant::now();
    let mut exec = Execution::new(
        js,
        &tools,
        Limits::default(),
        Instant::now() + Duration::from_secs(5),
    )
    .unwrap();
    let mut settles = Settles::new();
    loop {
        let out = exec.step(std::mem::take(&mut settles), None);
        for call in out.calls {
            settles.ok(call.id, &call.args_json);
        }
        if let Status::Done(r) = out.status {
            r.unwrap();
            break;
        }
    }
    t.elapsed()
}

fn main() {
    let parallel = "const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => external_echo({ i })))\nreturn results.reduce((sum, r) => sum + r.i, 0)";
    let sequential = "let total = 0\nfor (let i = 0; i < 1000; i++) { const res = await external_echo({ i }); total += res.i }\nreturn total";
    for (name, js) in [("parallel", parallel), ("sequential", sequential)] {
        let mut samples: Vec<Duration> =
            (0..std::env::var("N").map(|v| v.parse().unwrap()).unwrap_or(50))
                .map(|_| run(js))
                .collect();
        samples.sort();
        println!("{name}: median {:?}", samples[samples.len() / 2]);
    }
}
