//! Steps that can stop half-way and go on elsewhere.
//!
//! A step runs JavaScript on the caller's thread, usually the host's event loop: tool calls
//! answered there cost no thread hop. A step that computes for long must not hold that
//! thread, yet it cannot be stopped and started again (the program has already been seen
//! doing things). So a step runs on a stack of its own (a stackful coroutine): when its time
//! slice is over, the engine's interrupt handler switches back to the caller, and the host
//! resumes the step later, on any thread, where it left off.
//!
//! QuickJS keeps no state tied to a thread (it measures its stack limit from the stack it
//! runs on, which moves with the step), and the code a step runs keeps no thread-local
//! state across the switch: the switch happens inside the interrupt handler only.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};

/// A stack for steps, with a guard page below it.
struct Stack(DefaultStack);

// SAFETY: a stack is a mapping of memory and its bounds, nothing tied to a thread; a kept one
// is used by no step until `take_stack` hands it to one, and a step uses it from one thread
// at a time.
unsafe impl Send for Stack {}

/// Stacks of finished steps, kept for the next ones (steps that can be suspended are
/// usually short, and a stack is an mmap and its page faults).
static STACKS: Mutex<Vec<(usize, Stack)>> = Mutex::new(Vec::new());
const STACKS_KEPT: usize = 32;
/// Larger stacks are unmapped when their step ends: a deep recursion leaves its pages behind.
const KEPT_STACK_MAX: usize = 4 << 20;

/// A stack of `size` bytes for [`Fiber::start`] (a kept one if there is one).
pub(crate) fn take_stack(size: usize) -> std::io::Result<DefaultStack> {
    let mut stacks = STACKS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(i) = stacks.iter().position(|(s, _)| *s == size) {
        return Ok(stacks.swap_remove(i).1 .0);
    }
    drop(stacks);
    DefaultStack::new(size)
}

fn give_back(size: usize, stack: DefaultStack) {
    if size > KEPT_STACK_MAX {
        return;
    }
    let mut stacks = STACKS.lock().unwrap_or_else(|p| p.into_inner());
    if stacks.len() < STACKS_KEPT {
        stacks.push((size, Stack(stack)));
    }
}

/// Where the running step's interrupt handler can switch back to its caller.
#[derive(Default)]
pub(crate) struct SuspendPoint(AtomicPtr<Yielder<(), ()>>);

impl SuspendPoint {
    /// Switch back to whoever resumed the running step; returns when it is resumed again
    /// (possibly on another thread). False when the step is not running on a fiber.
    ///
    /// Only to be called from the engine's interrupt handler, at one of the engine's safe
    /// points, on the fiber's own stack.
    pub(crate) fn suspend(&self) -> bool {
        let yielder = self.0.load(Ordering::Relaxed);
        if yielder.is_null() {
            return false;
        }
        // SAFETY: set by `Fiber::start` for as long as the step runs on its fiber, and this
        // is called from inside that step.
        unsafe { (*yielder).suspend(()) };
        true
    }
}

/// One step running, or suspended, on a stack of its own.
pub(crate) struct Fiber<T> {
    coroutine: Option<Coroutine<(), (), T, DefaultStack>>,
    stack_size: usize,
}

// SAFETY: what a suspended step holds on its stack is the engine's state (owned by one
// execution, used by one thread at a time) and plain Rust values of this crate; nothing
// refers to the thread it was suspended on.
unsafe impl<T: Send> Send for Fiber<T> {}

/// What [`Fiber::resume`] came back with.
pub(crate) enum Progress<T> {
    Done(T),
    Suspended,
}

impl<T: 'static> Fiber<T> {
    /// A step that will run `f` on `stack` (of `stack_size` bytes, from [`take_stack`]);
    /// while it runs, `point` lets it suspend itself.
    pub(crate) fn start(
        stack: DefaultStack,
        stack_size: usize,
        point: std::sync::Arc<SuspendPoint>,
        f: impl FnOnce() -> T + 'static,
    ) -> Self {
        let coroutine = Coroutine::with_stack(stack, move |yielder: &Yielder<(), ()>, ()| {
            point
                .0
                .store(ptr::from_ref(yielder).cast_mut(), Ordering::Relaxed);
            let out = f();
            point.0.store(ptr::null_mut(), Ordering::Relaxed);
            out
        });
        Self {
            coroutine: Some(coroutine),
            stack_size,
        }
    }

    /// Run the step until it ends or suspends itself.
    pub(crate) fn resume(&mut self) -> Progress<T> {
        let Some(coroutine) = self.coroutine.as_mut() else {
            return Progress::Suspended;
        };
        match coroutine.resume(()) {
            CoroutineResult::Yield(()) => Progress::Suspended,
            CoroutineResult::Return(out) => {
                if let Some(done) = self.coroutine.take() {
                    give_back(self.stack_size, done.into_stack());
                }
                Progress::Done(out)
            }
        }
    }

    /// Whether the step has ended.
    pub(crate) fn finished(&self) -> bool {
        self.coroutine.is_none()
    }
}

impl<T> Drop for Fiber<T> {
    fn drop(&mut self) {
        // A suspended step must be driven to its end by its owner (which cancels it first):
        // unwinding its stack would cross the engine's C frames. Should one still be
        // suspended here, its stack and state are leaked rather than unwound.
        if let Some(coroutine) = self.coroutine.take() {
            if coroutine.started() && !coroutine.done() {
                std::mem::forget(coroutine);
            }
        }
    }
}
