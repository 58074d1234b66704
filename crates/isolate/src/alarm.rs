//! A thread that has running engines look at their limits on time.
//!
//! QuickJS calls the interrupt handler once every 10,000 polls, and a poll costs a native
//! built-in only one unit however long it runs (unless patched to count its work). A loop
//! whose every iteration sits in such a built-in for milliseconds would reach the handler
//! only every few thousand iterations: minutes past its deadline, or past the time slice of
//! a step on the event loop. So while an execution lives, this thread looks at it every
//! [`PERIOD`], and while one of its limits is due (slice over, deadline passed, cancelled,
//! memory or output exceeded) it sets the context's poll counter to zero: the handler runs
//! at the next poll.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rquickjs::qjs;

use crate::execution::Control;

/// How often due executions are reminded (a slice is 2 ms, a deadline is met within 10 ms).
const PERIOD: Duration = Duration::from_millis(1);

extern "C" {
    /// `vendor/rquickjs-sys` (codemode.patch): zero the context's poll counter.
    fn JS_CodemodeRequestInterrupt(ctx: *mut qjs::JSContext);
}

struct Entry {
    id: u64,
    ctx: *mut qjs::JSContext,
    control: Arc<Control>,
}

// SAFETY: the context pointer is only used by `JS_CodemodeRequestInterrupt` (a store to one
// int of the context), under the lock that `Watch::drop` takes before the context is freed.
unsafe impl Send for Entry {}

struct Watched {
    entries: Vec<Entry>,
    next_id: u64,
    thread: bool,
}

static WATCHED: Mutex<Watched> = Mutex::new(Watched {
    entries: Vec::new(),
    next_id: 0,
    thread: false,
});
static WAKE: Condvar = Condvar::new();

fn watched() -> MutexGuard<'static, Watched> {
    WATCHED.lock().unwrap_or_else(|p| p.into_inner())
}

/// While this lives, the context is watched; drop it before the context is freed.
pub(crate) struct Watch(u64);

/// Watch `ctx`, whose limits `control` holds.
pub(crate) fn watch(ctx: *mut qjs::JSContext, control: Arc<Control>) -> Watch {
    let mut w = watched();
    w.next_id += 1;
    let id = w.next_id;
    w.entries.push(Entry { id, ctx, control });
    if !w.thread {
        let started = std::thread::Builder::new()
            .name("codemode-alarm".into())
            .spawn(run);
        // Without the thread, limits are still checked every 10,000 polls.
        w.thread = started.is_ok();
    }
    if w.entries.len() == 1 {
        WAKE.notify_one();
    }
    Watch(id)
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut w = watched();
        if let Some(at) = w.entries.iter().position(|e| e.id == self.0) {
            w.entries.swap_remove(at);
        }
    }
}

fn run() {
    let mut w = watched();
    loop {
        if w.entries.is_empty() {
            w = WAKE.wait(w).unwrap_or_else(|p| p.into_inner());
            continue;
        }
        for entry in &w.entries {
            if entry.control.check_due() {
                // SAFETY: the entry is removed (under this lock) before its context is freed.
                unsafe { JS_CodemodeRequestInterrupt(entry.ctx) };
            }
        }
        drop(w);
        std::thread::sleep(PERIOD);
        w = watched();
    }
}
