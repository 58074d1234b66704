//! Times a 1 MB tool result (W7) through the bridge.
use std::time::{Duration, Instant};

use isolate::{Execution, Limits, Settle, Status};

fn main() {
    let payload = std::fs::read_to_string("/tmp/orders.json").expect("orders JSON");
    let tools = vec!["getAllOrders".to_owned()];
    let mut samples = Vec::new();
    for _ in 0..std::env::var("N").map(|v| v.parse().unwrap()).unwrap_or(20) {
        let t = Instant::now();
        let mut exec = Execution::new(
            "const o = await external_getAllOrders({})\nreturn o.length",
            &tools,
            Limits::default(),
            Instant::now() + Duration::from_secs(5),
        )
        .unwrap();
        let out = exec.step(vec![], None);
        let id = out.calls[0].id;
        let text = payload.clone();
        let t2 = Instant::now();
        let out = exec.step(vec![(id, Settle::Ok(text))], None);
        let stepped = t2.elapsed();
        assert!(matches!(out.status, Status::Done(Ok(_))));
        let t3 = Instant::now();
        drop(exec);
        eprintln!("step {:?} drop {:?}", stepped, t3.elapsed());
        samples.push(t.elapsed());
    }
    samples.sort();
    println!("W7 in the engine: median {:?}", samples[samples.len() / 2]);
}
