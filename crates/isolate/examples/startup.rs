//! Prints what a fresh execution of `return 1+1` costs (medians of 2,000).
use std::time::{Duration, Instant};

use isolate::{Execution, Limits, Settles, Status};

fn main() {
    let prewarm = std::env::var("PREWARM")
        .map(|v| v.parse().unwrap())
        .unwrap_or(2);
    isolate::set_prewarm(prewarm);
    let tools = vec!["echo".to_owned()];
    let (mut new, mut step, mut drop_t) = (vec![], vec![], vec![]);
    for _ in 0..2000 {
        let t = Instant::now();
        let mut exec = Execution::new(
            "return 1+1",
            &tools,
            Limits::default(),
            Instant::now() + Duration::from_secs(5),
        )
        .unwrap();
        new.push(t.elapsed());
        let t = Instant::now();
        let out = exec.step(Settles::new(), None);
        step.push(t.elapsed());
        assert!(matches!(out.status, Status::Done(Ok(_))));
        let t = Instant::now();
        exec.dispose();
        drop_t.push(t.elapsed());
    }
    for (name, mut v) in [("new", new), ("step", step), ("drop", drop_t)] {
        v.sort();
        println!("{name}: median {:?}", v[v.len() / 2]);
    }
}
