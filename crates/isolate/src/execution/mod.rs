//! One program run in one fresh QuickJS runtime, driven step by step by the host.
//!
//! Here: the limits' control block, the state a program runs with, and [`Execution`], the
//! host's handle. `state` makes a [`Machine`] and takes what the host sets before the first
//! step; `start` compiles and starts the program; `step` runs the engine and settles calls
//! and timers; `outcome` reads what a step ends with; `prelude` makes an [`Engine`] and the
//! prelude's host functions.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::ffi::CString;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::OnceLock;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::messages::say;
use rquickjs::context::EvalOptions;
use rquickjs::promise::PromiseState;
use rquickjs::{qjs, Array, Context, Ctx, Function, Object, Persistent, Promise, Runtime, Value};

use crate::alarm;
use crate::alloc::{LimitedAllocator, Meter};
use crate::fiber::{self, Fiber, Progress, SuspendPoint};
use crate::json;
use crate::stack::{in_characters, program_frames, PROGRAM_FILE};
use crate::text;
use crate::{
    ErrorKind, JsError, Limits, LogLevel, LogLine, Outcome, Settles, Status, StepOutput, ToolCall,
};

mod outcome;
mod prelude;
mod start;
mod state;
mod step;

pub(crate) use prelude::Engine;

/// The program becomes the body of an async function. The prefix stays on line 1 so
/// line numbers are unchanged; columns on line 1 are corrected by its length. Its one
/// parameter is the report channel when the host opened it (else `undefined`): code placed
/// before the model's on line 1 takes it and clears it (which clears `arguments[0]` too).
const WRAP_PREFIX: &str = "(async function (__codemode_channel) {";
/// Stack a step needs beyond the engine's own stack limit: the frames around the engine,
/// and native code that runs past the engine's last check.
const STEP_STACK_ROOM: usize = 1 << 20;
/// A step on a thread's own stack leaves this much of it below the engine's limit, for the
/// same reasons: the engine never gets more stack than the thread has.
const THREAD_STACK_ROOM: usize = 256 << 10;
/// The limit on a thread whose stack size is unknown (steps then run on a stack of their own).
const UNKNOWN_STACK_LIMIT: usize = 256 << 10;
/// What one execution may write through its report channel; the rest is dropped.
const REPORT_BYTES_MAX: usize = 16 << 20;
const WRAP_SUFFIX: &str = "\n})";
/// Deepest nesting of a tool argument or result that crosses to the host (JSON readers
/// such as Python's stop at about 1,000 levels).
pub const JSON_DEPTH_MAX: usize = 1000;

const GC_THRESHOLD_MIN: usize = 256 << 10;
const GC_THRESHOLD_MAX: usize = 4 << 20;

const NO_REASON: u8 = 0;
const TIMEOUT: u8 = 1;
const MEMORY: u8 = 2;
const CANCELLED: u8 = 3;
const OUTPUT: u8 = 5;

/// State the interrupt handler reads; shared with [`CancelHandle`].
pub(crate) struct Control {
    start: Instant,
    deadline_ns: AtomicU64,
    slice_ns: AtomicU64,
    reason: AtomicU8,
    cancelled: AtomicBool,
    output_overflow: AtomicBool,
    pub(crate) meter: Arc<Meter>,
    /// Where the interrupt handler suspends a step whose time slice is over.
    suspend: Arc<SuspendPoint>,
}

impl Control {
    pub(crate) fn new(meter: Arc<Meter>) -> Self {
        Self {
            start: Instant::now(),
            deadline_ns: AtomicU64::new(u64::MAX),
            slice_ns: AtomicU64::new(u64::MAX),
            reason: AtomicU8::new(NO_REASON),
            cancelled: AtomicBool::new(false),
            output_overflow: AtomicBool::new(false),
            meter,
            suspend: Arc::new(SuspendPoint::default()),
        }
    }

    fn set_deadline(&self, deadline: Instant) {
        let ns = deadline.saturating_duration_since(self.start).as_nanos() as u64;
        self.deadline_ns.store(ns, Relaxed);
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Called by QuickJS every few thousand operations: true stops the program with an
    /// uncatchable error. Once a reason is set it sticks.
    pub(crate) fn should_interrupt(&self) -> bool {
        if self.reason.load(Relaxed) != NO_REASON {
            return true;
        }
        let reason = self.limit_reached(self.now_ns());
        if reason == NO_REASON {
            return false;
        }
        self.reason.store(reason, Relaxed);
        true
    }

    /// Which limit the program has reached at `now` (memory first), or `NO_REASON`.
    fn limit_reached(&self, now: u64) -> u8 {
        if self.meter.exceeded() {
            MEMORY
        } else if self.cancelled.load(Relaxed) {
            CANCELLED
        } else if self.output_overflow.load(Relaxed) {
            OUTPUT
        } else if now >= self.deadline_ns.load(Relaxed) {
            TIMEOUT
        } else {
            NO_REASON
        }
    }
}

impl Control {
    /// Whether a limit is due that the interrupt handler should look at now (see `alarm`).
    pub(crate) fn check_due(&self) -> bool {
        let now = self.now_ns();
        self.reason.load(Relaxed) != NO_REASON
            || now >= self.slice_ns.load(Relaxed)
            || self.limit_reached(now) != NO_REASON
    }

    /// The engine's interrupt handler: when the step's time slice is over (and it runs on a
    /// fiber), hand the thread back to the host first; then say whether to stop the program.
    fn on_interrupt(&self) -> bool {
        if self.reason.load(Relaxed) == NO_REASON && self.now_ns() >= self.slice_ns.load(Relaxed) {
            self.slice_ns.store(u64::MAX, Relaxed);
            self.suspend.suspend();
        }
        self.should_interrupt()
    }
}

/// Stops an execution from another thread (the program is interrupted at its next check,
/// or at the start of its next step).
#[derive(Clone)]
pub struct CancelHandle(Arc<Control>);

impl CancelHandle {
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Relaxed);
    }
}

type Resolvers = (Persistent<Function<'static>>, Persistent<Function<'static>>);

/// Host-side state the native functions of the prelude write into.
pub(crate) struct Shared {
    max_calls: u32,
    max_log_bytes: usize,
    max_log_lines: usize,
    fail_on_log_overflow: bool,
    calls: Vec<ToolCall>,
    /// Per tool, the validator that may vouch for its input (see `precheck`).
    prechecks: crate::InputChecks,
    /// The validators of the host library's `check(i, value)`.
    library_checks: crate::schema::LibraryChecks,
    /// The resolve and reject functions of call `id`, at index `id - 1`, until settled.
    pending: Vec<Option<Resolvers>>,
    open_calls: usize,
    calls_made: u32,
    logs: Vec<LogLine>,
    log_bytes: usize,
    log_lines: usize,
    log_truncated: bool,
    report_bytes: usize,
    timers: BTreeSet<(Instant, u32)>,
    timer_due: HashMap<u32, Instant>,
}

/// One program in one fresh runtime: the engine's side of an [`Execution`].
pub(crate) struct Machine {
    // Field order is drop order: the alarm's watch and JavaScript handles before the
    // context and runtime.
    _watch: alarm::Watch,
    main: Option<Persistent<Promise<'static>>>,
    helpers: Persistent<Object<'static>>,
    shared: Rc<RefCell<Shared>>,
    program: Option<String>,
    /// The program text as the host gave it (positions of errors point into it).
    source: String,
    tool_names: Vec<String>,
    limits: Limits,
    control: Arc<Control>,
    report_channel: bool,
    library: Option<Arc<Vec<u8>>>,
    steps: u64,
    context: Context,
    _runtime: Runtime,
}

// SAFETY: a QuickJS runtime is not tied to the thread that made it; it must only never be
// used by two threads at once. `Machine` owns its runtime exclusively, every entry
// point takes `&mut self`, and the `Rc`s inside never leave it. Each step re-reads the
// native stack top of the stack it runs on.
unsafe impl Send for Machine {}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// One program in one fresh runtime. Create it, call [`Execution::step`] until it returns
/// [`Status::Done`], answering the tool calls of each step in the next one.
pub struct Execution {
    /// Boxed: a suspended step keeps a pointer to it while the execution moves.
    machine: Box<Machine>,
    /// The step that used up its time slice, to be finished by [`Execution::resume`].
    suspended: Option<Fiber<StepOutput>>,
    /// The stack a step needs: the engine's stack limit and room for the frames around it.
    stack_size: usize,
}

/// Let the engine use `bytes` of stack below the stack top it last read. Set through QuickJS
/// itself: rquickjs takes any limit above 16 MiB to mean no limit at all.
fn set_stack_limit(context: &Context, bytes: usize) {
    // SAFETY: the runtime pointer is valid for the life of `context`; 0 would mean no limit.
    unsafe { qjs::JS_SetMaxStackSize(context.get_runtime_ptr(), bytes.max(1) as _) };
}

/// The engine's stack limit for a step on this thread's own stack: `wanted`, or less when
/// the thread has less left (a limit beyond the stack would let the program overrun it).
/// Where the thread's stack cannot be known (a confined process may not read its own
/// memory map), at most [`UNKNOWN_STACK_LIMIT`].
fn stack_limit_on_thread(wanted: usize) -> usize {
    match stacker::remaining_stack() {
        Some(left) => wanted.min(left.saturating_sub(THREAD_STACK_ROOM)),
        None => wanted.min(UNKNOWN_STACK_LIMIT),
    }
}

impl Execution {
    /// Prepare a fresh runtime for `javascript` (a program body) with one
    /// `external_<name>` per entry of `tool_names`. `deadline` bounds the whole execution.
    pub fn new(
        javascript: &str,
        tool_names: &[String],
        limits: Limits,
        deadline: Instant,
    ) -> Result<Self, JsError> {
        let stack_size = limits.stack_bytes.saturating_add(STEP_STACK_ROOM);
        Ok(Self {
            machine: Box::new(Machine::new(javascript, tool_names, limits, deadline)?),
            suspended: None,
            stack_size,
        })
    }

    /// Hand the program a report channel: a function, the wrapper's parameter
    /// `__codemode_channel`, that writes a line the host receives among the step's logs with
    /// [`LogLevel::Report`], outside the console and its limits (16 MiB per execution).
    /// Meant for code the host places before the model's, which takes it before the model's
    /// code runs. Call before the first step.
    pub fn open_report_channel(&mut self) {
        self.machine.open_report_channel();
    }

    /// The validators (one per tool) the engine checks each call's input against before
    /// handing the call out: a call whose input it finds certainly valid is marked
    /// [`ToolCall::checked`]. Only ever a "yes": anything else is left to the host.
    pub fn set_input_checks(&mut self, checks: crate::InputChecks) {
        self.machine.set_input_checks(checks);
    }

    /// The validators the host library checks values with: it is called with the report
    /// channel and `check(i, value)`, which is `null` when `value` (as its JSON crosses to the
    /// host) is valid by validator `i`, else `[path, message]` (the path a suffix to the
    /// value's name: `""`, `.n`, `[0]`). Synchronous, in the engine: no host round trip.
    /// Call before the first step.
    pub fn set_library_checks(&mut self, checks: crate::schema::LibraryChecks) {
        self.machine.set_library_checks(checks);
    }

    /// Run `source`, a host library (JavaScript evaluating to a function), before the
    /// program: the program's parameter `__codemode_channel` becomes what the library's
    /// function returns when called with the report channel (or `undefined` when the channel
    /// is not open). The library is compiled to bytecode once per process (by its text), so
    /// a large library costs each execution only its loading. Call before the first step.
    pub fn set_library(&mut self, source: &str) -> Result<(), JsError> {
        self.machine.set_library(source)
    }

    /// A handle that cancels this execution from any thread.
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle(self.machine.control.clone())
    }

    /// Run until the program has nothing left to do.
    ///
    /// `settles` answers tool calls handed out by earlier steps. With a `slice`, the step
    /// runs on a stack of its own and, if it is still running when the slice is over, hands
    /// the thread back with [`Status::Suspended`]: finish it with [`Execution::resume`], on
    /// any thread. Without one, it runs to its end here.
    pub fn step(&mut self, settles: Settles, slice: Option<Duration>) -> StepOutput {
        if self.suspended.is_some() {
            return self.resume();
        }
        let control = &self.machine.control;
        let wanted = self.machine.limits.stack_bytes;
        let here = stack_limit_on_thread(wanted);
        let slice_end = match slice {
            Some(slice) => control.now_ns().saturating_add(slice.as_nanos() as u64),
            // To its end, on this thread's stack when the limit fits in it (else on a stack
            // of its own, which always fits).
            None if here >= wanted => {
                control.slice_ns.store(u64::MAX, Relaxed);
                return self.machine.step(settles, here);
            }
            None => u64::MAX,
        };
        control.slice_ns.store(slice_end, Relaxed);
        let Ok(stack) = fiber::take_stack(self.stack_size) else {
            // No stack to be had: run the step here, to its end.
            control.slice_ns.store(u64::MAX, Relaxed);
            return self.machine.step(settles, here);
        };
        let point = control.suspend.clone();
        let machine: *mut Machine = &mut *self.machine;
        // SAFETY: the machine is boxed, so it stays where it is while the step is suspended,
        // and it is neither used nor dropped before the step ends (`resume`, `Drop`).
        // The fiber's stack holds the whole limit and its room.
        let fiber = Fiber::start(stack, self.stack_size, point, move || unsafe {
            (*machine).step(settles, wanted)
        });
        self.drive(fiber)
    }

    /// Finish the step that [`Status::Suspended`] (on any thread); it runs to its end.
    pub fn resume(&mut self) -> StepOutput {
        match self.suspended.take() {
            Some(fiber) => self.drive(fiber),
            None => StepOutput {
                status: Status::Done(Err(JsError::internal("no step is suspended"))),
                calls: Vec::new(),
                logs: Vec::new(),
            },
        }
    }

    fn drive(&mut self, mut fiber: Fiber<StepOutput>) -> StepOutput {
        match fiber.resume() {
            Progress::Done(output) => {
                // No slice runs until the next step (the alarm leaves an idle engine alone).
                self.machine.control.slice_ns.store(u64::MAX, Relaxed);
                output
            }
            Progress::Suspended => {
                self.suspended = Some(fiber);
                StepOutput {
                    status: Status::Suspended,
                    calls: Vec::new(),
                    logs: Vec::new(),
                }
            }
        }
    }

    /// Free the engine: on the pool's background thread when engines are prewarmed or when
    /// it holds much memory (freeing millions of objects takes milliseconds), else here.
    pub fn dispose(self) {
        crate::pool::dispose(self);
    }

    /// Bytes the engine's heap holds.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.machine.control.meter.used()
    }
}

impl Drop for Execution {
    fn drop(&mut self) {
        // A suspended step is stopped and driven to its end, so its stack unwinds normally.
        if let Some(mut fiber) = self.suspended.take() {
            self.machine.control.cancelled.store(true, Relaxed);
            while !fiber.finished() {
                if let Progress::Done(_) = fiber.resume() {
                    break;
                }
            }
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        // Release every handle into the runtime before it is freed.
        let mut shared = self.shared.borrow_mut();
        shared.pending.clear();
        shared.timers.clear();
        drop(shared);
        self.main = None;
    }
}
