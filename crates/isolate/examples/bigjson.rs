//! Times a 1 MB tool result (W7) through the bridge.
use std::time::{Duration, Instant};

use isolate::{Execution, Limits, Settles, Status};

/// The W7 orders (python/codemode/bench/workloads/tools.json, `data.orders.generator`) as JSON text.
fn orders_json(count: usize) -> String {
    const STATUSES: [&str; 4] = ["pending", "shipped", "delivered", "returned"];
    let orders: Vec<String> = (0..count)
        .map(|i| {
            format!(
                r#"{{"id":{},"customer":"customer-{}","sku":"SKU-{:05}","quantity":{},"status":"{}"}}"#,
                i + 1,
                (i * 37) % 1000,
                (i * 7919) % 100_000,
                1 + i % 9,
                STATUSES[i % 4]
            )
        })
        .collect();
    format!("[{}]", orders.join(","))
}

fn main() {
    let payload = orders_json(11_300);
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
        let out = exec.step(Settles::new(), None);
        let id = out.calls[0].id;
        let mut settles = Settles::new();
        settles.ok(id, &payload);
        let out = exec.step(settles, None);
        assert!(matches!(out.status, Status::Done(Ok(ref n)) if n == "11300"));
        drop(exec);
        samples.push(t.elapsed());
    }
    samples.sort();
    println!("W7 in the engine: median {:?}", samples[samples.len() / 2]);
}
