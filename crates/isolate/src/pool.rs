//! Engines made ahead of time, and finished executions freed, on one background thread.
//!
//! A runtime with its context and prelude costs about 60 µs to make and 20 µs to free.
//! Neither depends on the program, its tools or its limits, so a background thread keeps a
//! few engines ready and frees finished executions, off the caller's path. Every engine is
//! used by exactly one execution: nothing crosses from one execution to the next.

use std::sync::{Condvar, Mutex, OnceLock};
use std::thread;

use crate::execution::{Engine, Execution};

struct Pool {
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    ready: Vec<Engine>,
    finished: Vec<Execution>,
    target: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        thread::Builder::new()
            .name("codemode-engines".into())
            .spawn(background)
            .expect("spawn the engine pool thread");
        Pool {
            state: Mutex::new(State {
                ready: Vec::new(),
                finished: Vec::new(),
                target: 2,
            }),
            wake: Condvar::new(),
        }
    })
}

fn background() {
    let pool = pool();
    loop {
        let mut state = pool.state.lock().unwrap_or_else(|p| p.into_inner());
        while state.finished.is_empty() && state.ready.len() >= state.target {
            state = pool.wake.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        let finished = std::mem::take(&mut state.finished);
        let wanted = state.target.saturating_sub(state.ready.len());
        drop(state);
        drop(finished);
        for _ in 0..wanted {
            let Ok(engine) = Engine::new() else { break };
            let mut state = pool.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.ready.len() >= state.target {
                break;
            }
            state.ready.push(engine);
        }
    }
}

/// How many engines to keep ready (0 makes every engine on demand and frees small ones
/// inline).
pub fn set_prewarm(count: usize) {
    let pool = pool();
    let mut state = pool.state.lock().unwrap_or_else(|p| p.into_inner());
    state.target = count;
    state.ready.truncate(count);
    pool.wake.notify_one();
}

pub(crate) fn take() -> rquickjs::Result<Engine> {
    let pool = pool();
    let taken = {
        let mut state = pool.state.lock().unwrap_or_else(|p| p.into_inner());
        let engine = state.ready.pop();
        if state.target > 0 {
            pool.wake.notify_one();
        }
        engine
    };
    match taken {
        Some(engine) => Ok(engine),
        None => Engine::new(),
    }
}

/// A heap this small is freed at once wherever it is disposed of.
const FREE_INLINE_MAX: usize = 4 << 20;

pub(crate) fn dispose(execution: Execution) {
    let pool = pool();
    let mut state = pool.state.lock().unwrap_or_else(|p| p.into_inner());
    if state.target == 0 && execution.heap_bytes() <= FREE_INLINE_MAX {
        drop(state);
        drop(execution);
        return;
    }
    state.finished.push(execution);
    pool.wake.notify_one();
}
