//! One program run in one fresh QuickJS runtime, driven step by step by the host.

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

impl Machine {
    /// Prepare a fresh runtime for `javascript` (a program body) with one
    /// `external_<name>` per entry of `tool_names`. `deadline` bounds the whole execution.
    pub(crate) fn new(
        javascript: &str,
        tool_names: &[String],
        limits: Limits,
        deadline: Instant,
    ) -> Result<Self, JsError> {
        let engine = crate::pool::take().map_err(|_| {
            JsError::new(
                ErrorKind::Runtime,
                "InternalError",
                "could not create the engine",
            )
        })?;
        let Engine {
            helpers,
            shared,
            control,
            context,
            runtime,
        } = engine;
        // The engine may have been made on another thread: read this thread's stack top
        // before any JavaScript runs here (QuickJS measures its stack limit from it).
        // SAFETY: the runtime pointer is valid for the life of `context`.
        unsafe { qjs::JS_UpdateStackTop(context.get_runtime_ptr()) };
        control.meter.set_limit(limits.memory_bytes);
        set_stack_limit(&context, stack_limit_on_thread(limits.stack_bytes));
        // QuickJS collects cycles whenever its heap grows past a threshold, first at 256 KiB:
        // a program that makes a thousand promises would collect several times over. Most
        // garbage is freed by reference counting anyway, so start at an eighth of the limit.
        runtime
            .set_gc_threshold((limits.memory_bytes / 8).clamp(GC_THRESHOLD_MIN, GC_THRESHOLD_MAX));
        control.set_deadline(deadline);
        {
            let mut s = shared.borrow_mut();
            s.max_calls = limits.max_tool_calls;
            s.max_log_bytes = limits.max_log_bytes;
            s.max_log_lines = limits.max_log_lines;
            s.fail_on_log_overflow = limits.fail_on_log_overflow;
        }
        let mut program = String::with_capacity(javascript.len() + 32);
        program.push_str(WRAP_PREFIX);
        program.push_str(javascript);
        program.push_str(WRAP_SUFFIX);
        // From here on `Execution`'s drop order applies (handles before context and runtime),
        // also when installing the tools fails.
        let execution = Self {
            _watch: alarm::watch(context.as_raw().as_ptr(), control.clone()),
            main: None,
            helpers,
            shared,
            program: Some(program),
            source: javascript.to_owned(),
            tool_names: tool_names.to_vec(),
            limits,
            control,
            report_channel: false,
            library: None,
            steps: 0,
            context,
            _runtime: runtime,
        };
        let installed = execution.context.with(|ctx| -> rquickjs::Result<()> {
            let helpers = execution.helpers.clone().restore(&ctx)?;
            let names = Array::new(ctx.clone())?;
            for (i, name) in tool_names.iter().enumerate() {
                names.set(i, name.as_str())?;
            }
            let install: Function = helpers.get("installTools")?;
            install.call((names, execution.limits.max_tool_calls))
        });
        if installed.is_err() {
            let kind = if execution.control.meter.exceeded() {
                ErrorKind::Memory
            } else {
                ErrorKind::Runtime
            };
            return Err(JsError::new(
                kind,
                "InternalError",
                "could not install the tools",
            ));
        }
        Ok(execution)
    }

    /// Hand the program a report channel: a function, the wrapper's parameter
    /// `__codemode_channel`, that writes a line the host receives among the step's logs with
    /// [`LogLevel::Report`], outside the console and its limits (16 MiB per execution).
    /// Meant for code the host places before the model's, which takes it before the model's
    /// code runs. Call before the first step.
    pub(crate) fn open_report_channel(&mut self) {
        self.report_channel = true;
    }

    /// The validators (one per tool) the engine checks each call's input against before
    /// handing the call out: a call whose input it finds certainly valid is marked
    /// [`ToolCall::checked`]. Only ever a "yes": anything else is left to the host.
    pub(crate) fn set_input_checks(&mut self, checks: crate::InputChecks) {
        self.shared.borrow_mut().prechecks = checks;
    }

    /// The validators the host library checks values with: its second argument is
    /// `check(i, value)`, `null` when `value` is valid by validator `i`, else `[path,
    /// message]` (see [`crate::schema::Problem`]). Call before the first step.
    pub(crate) fn set_library_checks(&mut self, checks: crate::schema::LibraryChecks) {
        self.shared.borrow_mut().library_checks = checks;
    }

    /// Run `source`, a host library (JavaScript evaluating to a function), before the
    /// program: the program's parameter `__codemode_channel` becomes what the library's
    /// function returns when called with the report channel (or `undefined` when the channel
    /// is not open). The library is compiled to bytecode once per process (by its text), so
    /// a large library costs each execution only its loading. Call before the first step.
    pub(crate) fn set_library(&mut self, source: &str) -> Result<(), JsError> {
        self.library = Some(library_bytecode(source).map_err(|message| {
            JsError::new(
                ErrorKind::Runtime,
                "InternalError",
                format!("the host library does not compile: {message}"),
            )
        })?);
        Ok(())
    }

    /// Run until the program has nothing left to do (see [`Execution::step`]), with `stack`
    /// bytes of stack for the engine below this point.
    fn step(&mut self, settles: Settles, stack: usize) -> StepOutput {
        self.steps += 1;
        // SAFETY: the runtime pointer is valid for the life of `self.context`.
        unsafe { qjs::JS_UpdateStackTop(self.context.get_runtime_ptr()) };
        set_stack_limit(&self.context, stack);

        let status = if self.control.should_interrupt() {
            self.interrupted_status()
                .unwrap_or(Status::Waiting { next_timer: None })
        } else {
            let program = self.program.take();
            let context = self.context.clone();
            context.with(|ctx| self.run(&ctx, program, settles))
        };
        let status = match status {
            // A breached memory limit fails the execution even if the program caught the
            // out-of-memory error and went on (or finished before the next interrupt check);
            // so does console output past its limit under `fail_on_log_overflow`.
            Status::Done(
                Ok(_)
                | Err(JsError {
                    kind: ErrorKind::Runtime | ErrorKind::Result,
                    ..
                }),
            )
            | Status::Waiting { .. }
                if self.control.meter.exceeded() =>
            {
                Status::Done(Err(memory_error_with(self.limits.memory_bytes)))
            }
            Status::Done(Ok(_)) | Status::Waiting { .. }
                if self.control.output_overflow.load(Relaxed) =>
            {
                Status::Done(Err(self.output_limit_error()))
            }
            other => other,
        };
        // The step's calls and lines go to the host: the bridge holds nothing any more.
        self.control.meter.release_bridge();
        let mut shared = self.shared.borrow_mut();
        StepOutput {
            status,
            calls: std::mem::take(&mut shared.calls),
            logs: std::mem::take(&mut shared.logs),
        }
    }

    fn run<'js>(&mut self, ctx: &Ctx<'js>, program: Option<String>, settles: Settles) -> Status {
        let helpers = match self.helpers.clone().restore(ctx) {
            Ok(h) => h,
            Err(_) => {
                return Status::Done(Err(JsError::new(
                    ErrorKind::Runtime,
                    "InternalError",
                    "lost the prelude",
                )))
            }
        };
        if let Some(program) = program {
            match self.start_program(ctx, program) {
                Ok(promise) => self.main = Some(Persistent::save(ctx, promise)),
                Err(status) => return status,
            }
        }
        if !settles.is_empty() {
            self.settle(ctx, &helpers, settles);
        }
        let main = self.main.clone().and_then(|p| p.restore(ctx).ok());
        run_jobs(ctx, main.as_ref());
        if let Some(status) = self.interrupted_status() {
            return status;
        }
        if let Err(status) = self.fire_due_timers(ctx, &helpers, main.as_ref()) {
            return status;
        }
        if let Some(status) = self.interrupted_status() {
            return status;
        }
        self.outcome(ctx)
    }

    fn start_program<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        program: String,
    ) -> Result<Promise<'js>, Status> {
        let mut options = EvalOptions::default();
        options.global = true;
        options.strict = false;
        options.filename = Some(PROGRAM_FILE.to_owned());
        // The program must be exactly the body of the wrapper function, as the engine reads
        // it: text that closes the wrapper early (where the stripper and the engine disagree
        // on how to read it, say) would run at the top level, before and around the host's
        // code. The script's value must be a function whose source is the whole wrapper; if
        // it is not, whatever the top level did stays in this runtime, which is thrown away.
        let wrapper = program[1..program.len() - 1].to_owned();
        let evaluated = ctx.eval_with_options::<Value, _>(program, options);
        let func = match evaluated {
            Ok(value) if self.source_of(ctx, &value).as_deref() == Some(wrapper.as_str()) => {
                value.into_function()
            }
            Ok(_) => None,
            Err(_) => {
                if let Some(status) = self.interrupted_status() {
                    return Err(status);
                }
                let mut error = self.describe(ctx, ctx.catch());
                error.kind = ErrorKind::Syntax;
                return Err(Status::Done(Err(error)));
            }
        };
        let Some(func) = func else {
            self.discard_effects();
            return Err(Status::Done(Err(JsError::new(
                ErrorKind::Syntax,
                "SyntaxError",
                say("not_one_body", &[]),
            ))));
        };
        let mut channel: Value = if self.report_channel {
            self.helpers
                .clone()
                .restore(ctx)
                .and_then(|h| h.get("channel"))
                .unwrap_or_else(|_| Value::new_undefined(ctx.clone()))
        } else {
            Value::new_undefined(ctx.clone())
        };
        if let Some(library) = self.library.clone() {
            let check: Value = self
                .helpers
                .clone()
                .restore(ctx)
                .and_then(|h| h.get("check"))
                .unwrap_or_else(|_| Value::new_undefined(ctx.clone()));
            let built = load_bytecode(ctx, &library, false)
                .and_then(|value| value.into_function().ok_or(rquickjs::Error::Unknown))
                .and_then(|library| library.call::<_, Value>((channel, check)));
            channel = match built {
                Ok(value) => value,
                Err(_) => {
                    let exc = ctx.catch();
                    return Err(self.interrupted_status().unwrap_or_else(|| {
                        let cause = self.describe(ctx, exc);
                        Status::Done(Err(JsError::new(
                            ErrorKind::Runtime,
                            "InternalError",
                            say(
                                "library_failed",
                                &[("cause", &format_args!("{}: {}", cause.name, cause.message))],
                            ),
                        )))
                    }));
                }
            };
        }
        match func.call::<_, Promise>((channel,)) {
            Ok(p) => Ok(p),
            Err(_) => {
                let exc = ctx.catch();
                Err(self
                    .interrupted_status()
                    .unwrap_or_else(|| Status::Done(Err(self.describe(ctx, exc)))))
            }
        }
    }

    /// The source text of `value` if it is a function the engine parsed, read with the
    /// built-in `Function.prototype.toString` as the prelude found it.
    fn source_of<'js>(&self, ctx: &Ctx<'js>, value: &Value<'js>) -> Option<String> {
        let helpers = self.helpers.clone().restore(ctx).ok()?;
        let source_of: Function = helpers.get("sourceOf").ok()?;
        match source_of.call::<_, Value>((value.clone(),)) {
            Ok(source) => text::string(ctx, &source),
            Err(_) => {
                let _ = ctx.catch();
                None
            }
        }
    }

    /// Forget every call, console line, report and timer the program made: none of it
    /// reaches the host.
    fn discard_effects(&mut self) {
        let mut shared = self.shared.borrow_mut();
        shared.calls.clear();
        shared.logs.clear();
        shared.pending.clear();
        shared.open_calls = 0;
        shared.timers.clear();
        shared.timer_due.clear();
        drop(shared);
        self.control.meter.release_bridge();
    }

    /// Resolve or reject every call `settles` answers (unknown or already settled ids are
    /// skipped). The answers are parsed as one array; if that fails, every call of the
    /// batch rejects with a `ToolError`.
    fn settle<'js>(&mut self, ctx: &Ctx<'js>, helpers: &Object<'js>, settles: Settles) {
        let (ids, outcomes, json) = settles.into_parts();
        let answers = match json::parse(ctx, &json) {
            Ok(value) => value.into_array(),
            Err(_) => {
                let _ = ctx.catch();
                None
            }
        };
        for (i, (id, outcome)) in ids.into_iter().zip(outcomes).enumerate() {
            let Some((resolve, reject)) = self.take_resolvers(id) else {
                continue;
            };
            let answer = answers.as_ref().map(|a| a.get::<Value>(i));
            let settled = match (outcome, answer) {
                (Outcome::Ok, Some(Ok(value))) => {
                    resolve.restore(ctx).and_then(|f| f.call::<_, ()>((value,)))
                }
                (Outcome::Ok, _) => {
                    let message = say("tool_result_not_json", &[]);
                    reject_with(ctx, helpers, reject, "ToolError", &message, "tool")
                }
                (outcome, answer) => {
                    let message = answer
                        .and_then(|a| a.ok())
                        .and_then(|v| v.into_string())
                        .and_then(|s| s.to_string().ok())
                        .unwrap_or_else(|| say("tool_failed", &[]));
                    let (name, kind) = match outcome {
                        Outcome::InvalidArgs => ("InvalidArgumentsError", "invalid_args"),
                        _ => ("ToolError", "tool"),
                    };
                    reject_with(ctx, helpers, reject, name, &message, kind)
                }
            };
            if settled.is_err() {
                let _ = ctx.catch();
            }
        }
    }

    fn take_resolvers(&self, id: u64) -> Option<Resolvers> {
        let mut shared = self.shared.borrow_mut();
        let slot = shared
            .pending
            .get_mut(usize::try_from(id).ok()?.checked_sub(1)?)?;
        let resolvers = slot.take()?;
        shared.open_calls -= 1;
        Some(resolvers)
    }

    fn fire_due_timers<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        helpers: &Object<'js>,
        main: Option<&Promise<'js>>,
    ) -> Result<(), Status> {
        loop {
            if main.is_some_and(|p| p.state() != PromiseState::Pending) {
                return Ok(());
            }
            let due = {
                let mut shared = self.shared.borrow_mut();
                match shared.timers.first().copied() {
                    Some((at, id)) if at <= Instant::now() => {
                        shared.timers.remove(&(at, id));
                        shared.timer_due.remove(&id);
                        id
                    }
                    _ => return Ok(()),
                }
            };
            let fired = helpers
                .get::<_, Function>("fire")
                .and_then(|f| f.call::<_, ()>((due,)));
            if fired.is_err() {
                let exc = ctx.catch();
                if let Some(status) = self.interrupted_status() {
                    return Err(status);
                }
                return Err(Status::Done(Err(self.describe(ctx, exc))));
            }
            run_jobs(ctx, main);
            if self.control.should_interrupt() {
                return Err(self
                    .interrupted_status()
                    .unwrap_or(Status::Waiting { next_timer: None }));
            }
        }
    }

    fn outcome<'js>(&mut self, ctx: &Ctx<'js>) -> Status {
        let Some(main) = self.main.clone().and_then(|p| p.restore(ctx).ok()) else {
            return Status::Done(Err(JsError::new(
                ErrorKind::Runtime,
                "InternalError",
                "lost the program",
            )));
        };
        match main.state() {
            PromiseState::Resolved => {
                let value: Value = match main.result::<Value>() {
                    Some(Ok(v)) => v,
                    _ => Value::new_undefined(ctx.clone()),
                };
                let max = self.limits.max_result_bytes;
                // Base64 left out past the limit (`over`): the result is over it, by the
                // text's length and those bytes.
                let written = json::stringify_for_host(ctx, &value, max);
                let read = written.map(|(json, over)| {
                    if json.is_undefined() {
                        Some(Ok("null".to_owned()))
                    } else if over == 0 {
                        text::string_of(ctx, &json, max)
                    } else {
                        // The text's length (it is not copied) and the base64 left out.
                        text::string_of(ctx, &json, 0).map(|text| {
                            Err(text
                                .map_or_else(|len| len, |t| t.len())
                                .saturating_add(over))
                        })
                    }
                });
                match read {
                    Ok(Some(Ok(json))) if json::depth(&json) > JSON_DEPTH_MAX => {
                        Status::Done(Err(JsError::new(
                            ErrorKind::Result,
                            "ResultError",
                            say("result_too_deep", &[("max", &JSON_DEPTH_MAX)]),
                        )))
                    }
                    Ok(Some(Ok(json))) => {
                        Status::Done(Ok(text::json_without_lone_surrogates(json)))
                    }
                    Ok(Some(Err(len))) => Status::Done(Err(JsError::new(
                        ErrorKind::Result,
                        "ResultError",
                        say("result_too_large", &[("bytes", &len), ("max", &max)]),
                    ))),
                    Ok(None) => Status::Done(Err(JsError::new(
                        ErrorKind::Result,
                        "ResultError",
                        say("result_not_json", &[]),
                    ))),
                    Err(_) => {
                        let exc = ctx.catch();
                        if let Some(status) = self.interrupted_status() {
                            return status;
                        }
                        let cause = self.describe(ctx, exc);
                        Status::Done(Err(JsError::new(
                            ErrorKind::Result,
                            "ResultError",
                            say(
                                "result_not_json_because",
                                &[("cause", &format_args!("{}: {}", cause.name, cause.message))],
                            ),
                        )))
                    }
                }
            }
            PromiseState::Rejected => {
                let _ = main.result::<Value>();
                let exc = ctx.catch();
                Status::Done(Err(self.describe(ctx, exc)))
            }
            PromiseState::Pending => {
                let shared = self.shared.borrow();
                if shared.open_calls == 0 && shared.timers.is_empty() {
                    return Status::Done(Err(JsError::new(
                        ErrorKind::Runtime,
                        "DeadlockError",
                        say("deadlock", &[]),
                    )));
                }
                let next_timer = shared
                    .timers
                    .first()
                    .map(|(at, _)| at.saturating_duration_since(Instant::now()));
                Status::Waiting { next_timer }
            }
        }
    }

    /// The status an interrupt stands for, if the program was interrupted.
    fn interrupted_status(&self) -> Option<Status> {
        let error = match self.control.reason.load(Relaxed) {
            NO_REASON => return None,
            TIMEOUT => JsError::new(
                ErrorKind::Timeout,
                "TimeoutError",
                // Python words it again with the whole timeout (this one is what was left).
                say("timeout", &[("ms", &"?")]),
            ),
            MEMORY => memory_error_with(self.limits.memory_bytes),
            CANCELLED => JsError::new(
                ErrorKind::Cancelled,
                "CancelledError",
                say("cancelled", &[]),
            ),
            _ => self.output_limit_error(),
        };
        Some(Status::Done(Err(error)))
    }

    fn output_limit_error(&self) -> JsError {
        JsError::new(
            ErrorKind::OutputLimit,
            "OutputLimitError",
            say(
                "log_limit",
                &[
                    ("lines", &self.limits.max_log_lines),
                    ("bytes", &self.limits.max_log_bytes),
                ],
            ),
        )
    }

    /// Turn a thrown value into a classified [`JsError`].
    fn describe<'js>(&self, ctx: &Ctx<'js>, thrown: Value<'js>) -> JsError {
        let helpers = self.helpers.clone().restore(ctx).ok();
        let text: Option<String> = helpers
            .and_then(|h| h.get::<_, Function>("describe").ok())
            .and_then(|f| f.call::<_, String>((thrown,)).ok());
        let Some(text) = text else {
            let _ = ctx.catch();
            // A getter of the error that ran into the deadline (or the memory limit).
            if let Some(Status::Done(Err(error))) = self.interrupted_status() {
                return error;
            }
            return JsError::new(ErrorKind::Runtime, "Error", say("undescribable", &[]));
        };
        let text = text::json_without_lone_surrogates(text);
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let field = |k: &str| parsed.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let name = field("name").unwrap_or_else(|| "Error".to_owned());
        let mut message = field("message").unwrap_or_default();
        let frames = field("stack")
            .map(|s| in_characters(program_frames(&s, WRAP_PREFIX.len() as u32), &self.source))
            .unwrap_or_default();
        let kind = match field("kind").as_deref() {
            Some("tool") => ErrorKind::Tool,
            Some("invalid_args") => ErrorKind::InvalidArgs,
            _ if is_stack_overflow(&name, &message) => ErrorKind::Memory,
            // The engine's longest string (2**30 characters): a limit of memory too.
            _ if name == "InternalError" && message == "string too long" => ErrorKind::Memory,
            _ if name == "ReferenceError" && unknown_tool(&message).is_some() => {
                let missing = unknown_tool(&message).unwrap_or_default().to_owned();
                let available: Vec<String> = self
                    .tool_names
                    .iter()
                    .map(|n| format!("external_{n}"))
                    .collect();
                let available = if available.is_empty() {
                    say("no_tools", &[])
                } else {
                    available.join(", ")
                };
                message = say(
                    "unknown_tool",
                    &[("name", &missing), ("available", &available)],
                );
                ErrorKind::InvalidArgs
            }
            _ if self.control.meter.exceeded() => ErrorKind::Memory,
            _ => ErrorKind::Runtime,
        };
        JsError {
            kind,
            name,
            message,
            frames,
        }
    }
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

fn memory_error_with(limit: usize) -> JsError {
    JsError::new(
        ErrorKind::Memory,
        "MemoryError",
        say("memory", &[("mib", &crate::messages::mib(limit))]),
    )
}

fn is_stack_overflow(name: &str, message: &str) -> bool {
    (name == "RangeError" || name == "InternalError")
        && (message.contains("stack overflow") || message.contains("call stack size"))
}

fn unknown_tool(message: &str) -> Option<&str> {
    let name = message.strip_suffix(" is not defined")?;
    (name.starts_with("external_") && !name.contains(' ')).then_some(name)
}

/// Reject a call's promise with a host error (`ToolError`, `InvalidArgumentsError`).
///
/// The error is an `Error` with no stack yet: QuickJS records an error's stack when it is
/// first thrown through a frame if it has none, so when the program's `await` throws it,
/// the stack (and the error's line and column) is the line that awaited the call.
fn reject_with<'js>(
    ctx: &Ctx<'js>,
    helpers: &Object<'js>,
    reject: Persistent<Function<'static>>,
    name: &str,
    message: &str,
    kind: &str,
) -> rquickjs::Result<()> {
    let raw = ctx.as_raw().as_ptr();
    // SAFETY: plain QuickJS C API on a live context; the new value is owned by `error`.
    let error = unsafe {
        let object = qjs::JS_NewObjectClass(raw, error_class_id());
        if qjs::JS_VALUE_GET_TAG(object) == qjs::JS_TAG_EXCEPTION {
            return Err(rquickjs::Error::Exception);
        }
        Value::from_raw(ctx.clone(), object)
    };
    let mark: Function = helpers.get("markHostError")?;
    mark.call::<_, ()>((error.clone(), name, message, kind))?;
    reject.restore(ctx)?.call::<_, ()>((error,))
}

/// QuickJS's class id of `Error` objects (the same in every runtime of this build).
fn error_class_id() -> qjs::JSClassID {
    static ID: OnceLock<qjs::JSClassID> = OnceLock::new();
    *ID.get_or_init(|| {
        let runtime = Runtime::new().expect("QuickJS runtime for the Error class id");
        let context = Context::full(&runtime).expect("QuickJS context for the Error class id");
        context.with(|ctx| {
            let raw = ctx.as_raw().as_ptr();
            // SAFETY: a new error, read and freed at once.
            unsafe {
                let error = qjs::JS_NewError(raw);
                let id = qjs::JS_GetClassID(error);
                qjs::JS_FreeValue(raw, error);
                id
            }
        })
    })
}

/// Run pending promise jobs until there are none, or until `main` (the program's promise)
/// has settled: what the program left running after its body returned is dropped with the
/// runtime, and must not hold back its result. Exceptions inside jobs are uncaught promise
/// rejections or interrupts; the caller reads interrupts from the control block.
fn run_jobs(ctx: &Ctx<'_>, main: Option<&Promise<'_>>) {
    let rt = unsafe { qjs::JS_GetRuntime(ctx.as_raw().as_ptr()) };
    loop {
        if main.is_some_and(|p| p.state() != PromiseState::Pending) {
            break;
        }
        let mut job_ctx: *mut qjs::JSContext = std::ptr::null_mut();
        // SAFETY: `rt` is the live runtime of `ctx`; we hold its lock through `ctx`.
        let ran = unsafe { qjs::JS_ExecutePendingJob(rt, &mut job_ctx) };
        if ran == 0 {
            break;
        }
        if ran < 0 {
            let _ = ctx.catch();
        }
    }
}

/// `source` compiled to QuickJS bytecode (a global script), or the compile error's text.
fn compile(source: &str, file: &str) -> Result<Vec<u8>, String> {
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    let context = Context::full(&runtime).map_err(|e| e.to_string())?;
    context.with(|ctx| {
        let raw = ctx.as_raw().as_ptr();
        let text = CString::new(source).map_err(|_| "the source contains NUL".to_owned())?;
        let file = CString::new(file).map_err(|_| "the file name contains NUL".to_owned())?;
        let flags =
            qjs::JS_EVAL_TYPE_GLOBAL | qjs::JS_EVAL_FLAG_STRICT | qjs::JS_EVAL_FLAG_COMPILE_ONLY;
        // SAFETY: plain QuickJS C API use on a live context; every value is freed.
        unsafe {
            let compiled = qjs::JS_Eval(
                raw,
                text.as_ptr(),
                source.len() as _,
                file.as_ptr(),
                flags as i32,
            );
            if qjs::JS_VALUE_GET_TAG(compiled) == qjs::JS_TAG_EXCEPTION {
                let error = ctx.catch();
                let message = error
                    .as_exception()
                    .and_then(|e| e.message())
                    .unwrap_or_else(|| "a syntax error".to_owned());
                return Err(message);
            }
            let mut len = 0;
            let buf =
                qjs::JS_WriteObject(raw, &mut len, compiled, qjs::JS_WRITE_OBJ_BYTECODE as i32);
            qjs::JS_FreeValue(raw, compiled);
            if buf.is_null() {
                return Err("the bytecode could not be written".to_owned());
            }
            let bytes = std::slice::from_raw_parts(buf, len as usize).to_vec();
            qjs::js_free(raw, buf.cast());
            Ok(bytes)
        }
    })
}

/// The prelude compiled once per process; every context loads the bytecode, which is
/// several times cheaper than parsing the source again.
fn prelude_bytecode() -> &'static [u8] {
    static BYTECODE: OnceLock<Vec<u8>> = OnceLock::new();
    BYTECODE.get_or_init(|| {
        compile(crate::sandbox_prelude(), "codemode:prelude").expect("the prelude compiles")
    })
}

/// Host libraries compiled once per process, by their text (a handful at most: the cache
/// is cleared if it ever holds more than 32).
fn library_bytecode(source: &str) -> Result<Arc<Vec<u8>>, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Vec<u8>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(bytes) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(source) {
        return Ok(bytes.clone());
    }
    let bytes = Arc::new(compile(source, "codemode:library")?);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= 32 {
        cache.clear();
    }
    cache.insert(source.to_owned(), bytes.clone());
    Ok(bytes)
}

/// Evaluate bytecode written by [`compile`] in `ctx`. `rom`: the bytes outlive the runtime,
/// so QuickJS may point into them instead of copying.
fn load_bytecode<'js>(ctx: &Ctx<'js>, bytes: &[u8], rom: bool) -> rquickjs::Result<Value<'js>> {
    let raw = ctx.as_raw().as_ptr();
    let mut flags = qjs::JS_READ_OBJ_BYTECODE;
    if rom {
        flags |= qjs::JS_READ_OBJ_ROM_DATA;
    }
    // SAFETY: the bytes were written by JS_WriteObject of this same engine build; with `rom`
    // they live for the whole process.
    unsafe {
        let object = qjs::JS_ReadObject(raw, bytes.as_ptr(), bytes.len() as _, flags as i32);
        if qjs::JS_VALUE_GET_TAG(object) == qjs::JS_TAG_EXCEPTION {
            return Err(rquickjs::Error::Exception);
        }
        let result = qjs::JS_EvalFunction(raw, object);
        if qjs::JS_VALUE_GET_TAG(result) == qjs::JS_TAG_EXCEPTION {
            return Err(rquickjs::Error::Exception);
        }
        Ok(Value::from_raw(ctx.clone(), result))
    }
}

fn load_prelude<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Function<'js>> {
    load_bytecode(ctx, prelude_bytecode(), true)?
        .into_function()
        .ok_or(rquickjs::Error::Unknown)
}

/// A runtime with its context and prelude, made before it is needed (see `pool`).
pub(crate) struct Engine {
    helpers: Persistent<Object<'static>>,
    shared: Rc<RefCell<Shared>>,
    control: Arc<Control>,
    context: Context,
    runtime: Runtime,
}

// SAFETY: as for `Execution`: exclusively owned, never used by two threads at once. An
// engine holds no pending calls or timers before it is taken, and its fields drop in order
// (handles before context before runtime).
unsafe impl Send for Engine {}

impl Engine {
    /// A fresh runtime, context and prelude, with no tools and no limits set yet.
    pub(crate) fn new() -> rquickjs::Result<Self> {
        let meter = Arc::new(Meter::new());
        let control = Arc::new(Control::new(meter.clone()));
        let runtime = Runtime::new_with_alloc(LimitedAllocator::new(meter))?;
        let handler_control = control.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || handler_control.on_interrupt())));
        let context = Context::full(&runtime)?;
        let shared = Rc::new(RefCell::new(Shared {
            max_calls: 0,
            max_log_bytes: 0,
            max_log_lines: 0,
            fail_on_log_overflow: false,
            calls: Vec::new(),
            prechecks: crate::InputChecks::default(),
            library_checks: crate::schema::LibraryChecks::default(),
            pending: Vec::new(),
            open_calls: 0,
            calls_made: 0,
            logs: Vec::new(),
            log_bytes: 0,
            log_lines: 0,
            log_truncated: false,
            report_bytes: 0,
            timers: BTreeSet::new(),
            timer_due: HashMap::new(),
        }));
        let helpers = context.with(|ctx| install_prelude(&ctx, &shared, &control))?;
        Ok(Self {
            helpers,
            shared,
            control,
            context,
            runtime,
        })
    }
}

fn install_prelude<'js>(
    ctx: &Ctx<'js>,
    shared: &Rc<RefCell<Shared>>,
    control: &Arc<Control>,
) -> rquickjs::Result<Persistent<Object<'static>>> {
    let setup = load_prelude(ctx)?;

    let calls = shared.clone();
    let call_control = control.clone();
    let host_call = Function::new(
        ctx.clone(),
        // The call's promise; `false` when the argument is not a JSON object, a number (the
        // most allowed) when it is nested too deep, `null` when the
        // call limit is reached; throws when the argument cannot be serialised, or when its
        // JSON would not fit under the memory limit or the deadline passed while writing it.
        move |ctx: Ctx<'js>, tool: u32, input: Value<'js>| -> rquickjs::Result<Value<'js>> {
            let control = &*call_control;
            let Some(json) = json_for_host(&ctx, control, &input)? else {
                return Ok(Value::new_bool(ctx, false));
            };
            if !json.starts_with('{') {
                return Ok(Value::new_bool(ctx, false));
            }
            if json::depth(&json) > JSON_DEPTH_MAX {
                return Ok(Value::new_int(ctx, JSON_DEPTH_MAX as i32));
            }
            let mut s = calls.borrow_mut();
            if s.calls_made >= s.max_calls {
                return Ok(Value::new_null(ctx));
            }
            // The argument stays with the bridge until the host takes the step's calls.
            if !control.meter.charge_bridge(json.len()) {
                drop(s);
                return Err(bridge_limit(&ctx, control));
            }
            s.calls_made += 1;
            let (promise, resolve, reject) = ctx.promise()?;
            s.pending.push(Some((
                Persistent::save(&ctx, resolve),
                Persistent::save(&ctx, reject),
            )));
            s.open_calls += 1;
            let id = s.pending.len() as u64;
            let checked = s
                .prechecks
                .get(tool as usize)
                .is_some_and(|validator| crate::precheck::passes(validator, &json));
            s.calls.push(ToolCall {
                id,
                tool,
                args_json: json,
                checked,
            });
            Ok(promise.into_value())
        },
    )?;

    let logs = shared.clone();
    let log_control = control.clone();
    let host_log = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, level: u32, text: Value<'js>| {
            let mut s = logs.borrow_mut();
            if s.log_truncated {
                return;
            }
            let (max_lines, max_bytes) = (s.max_log_lines, s.max_log_bytes);
            let level = LogLevel::from_code(level);
            let prefix = level.prefix();
            let calls_before = s.calls_made;
            let room = max_bytes.saturating_sub(s.log_bytes + prefix.len());
            // A line past the byte limit is never copied out of the engine.
            let copied = text::string_of(&ctx, &text, room).unwrap_or(Err(usize::MAX));
            let fits = s.log_lines < max_lines && copied.is_ok();
            let text = match copied {
                Ok(text) if fits && log_control.meter.charge_bridge(prefix.len() + text.len()) => {
                    text
                }
                _ => {
                    s.log_truncated = true;
                    if log_control.meter.exceeded() {
                        // The interrupt handler stops the program for its memory.
                    } else if s.fail_on_log_overflow {
                        log_control.output_overflow.store(true, Relaxed);
                    } else {
                        s.logs.push(LogLine {
                            level: LogLevel::Warn,
                            text: say(
                                "log_truncated",
                                &[("lines", &max_lines), ("bytes", &max_bytes)],
                            ),
                            timestamp_ms: now_ms(),
                            calls_before,
                        });
                    }
                    return;
                }
            };
            s.log_lines += 1;
            s.log_bytes += prefix.len() + text.len();
            let text = if prefix.is_empty() {
                text
            } else {
                format!("{prefix}{text}")
            };
            s.logs.push(LogLine {
                level,
                text,
                timestamp_ms: now_ms(),
                calls_before,
            });
        },
    )?;

    let timers = shared.clone();
    let host_timer = Function::new(ctx.clone(), move |id: u32, ms: f64| {
        let mut s = timers.borrow_mut();
        let delay = Duration::from_secs_f64((ms / 1000.0).clamp(0.0, 1e9));
        let at = Instant::now() + delay;
        s.timers.insert((at, id));
        s.timer_due.insert(id, at);
    })?;
    let cleared = shared.clone();
    let host_clear_timer = Function::new(ctx.clone(), move |id: u32| {
        let mut s = cleared.borrow_mut();
        if let Some(at) = s.timer_due.remove(&id) {
            s.timers.remove(&(at, id));
        }
    })?;

    // JSON of a console value: binary values as for the host, within the memory limit.
    let json_control = control.clone();
    let host_json = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, value: Value<'js>| -> rquickjs::Result<Value<'js>> {
            let control = &*json_control;
            let (json, over) = json::stringify_for_host(&ctx, &value, control.meter.room())?;
            if over > 0 {
                control.meter.charge_bridge(usize::MAX);
                return Err(bridge_limit(&ctx, control));
            }
            Ok(json)
        },
    )?;

    let reports = shared.clone();
    let report_control = control.clone();
    let host_report = Function::new(ctx.clone(), move |ctx: Ctx<'js>, text: Value<'js>| {
        let mut s = reports.borrow_mut();
        let room = REPORT_BYTES_MAX.saturating_sub(s.report_bytes);
        let Some(Ok(text)) = text::string_of(&ctx, &text, room) else {
            return;
        };
        if !report_control.meter.charge_bridge(text.len()) {
            return;
        }
        s.report_bytes += text.len();
        let calls_before = s.calls_made;
        s.logs.push(LogLine {
            level: LogLevel::Report,
            text,
            timestamp_ms: now_ms(),
            calls_before,
        });
    })?;

    // `check(i, value)` of the host library: `value` as its JSON crosses to the host (the
    // memory limit and deadline apply while it is written), checked by validator `i`.
    let checks = shared.clone();
    let check_control = control.clone();
    let host_check = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, index: u32, value: Value<'js>| -> rquickjs::Result<Value<'js>> {
            let control = &*check_control;
            let json = json_for_host(&ctx, control, &value)?.unwrap_or_else(|| "null".to_owned());
            let problem = if json::depth(&json) > CHECK_DEPTH_MAX {
                Some(crate::schema::Problem {
                    path: String::new(),
                    message: format!("is nested deeper than {CHECK_DEPTH_MAX} levels"),
                })
            } else {
                let validators = checks.borrow().library_checks.clone();
                validators.check(index as usize, &json)
            };
            match problem {
                None => Ok(Value::new_null(ctx)),
                Some(problem) => {
                    let pair = Array::new(ctx.clone())?;
                    pair.set(0, problem.path)?;
                    pair.set(1, problem.message)?;
                    Ok(pair.into_value())
                }
            }
        },
    )?;

    let helpers: Object = setup.call((
        host_call,
        host_log,
        host_timer,
        host_clear_timer,
        host_report,
        Value::new_undefined(ctx.clone()),
        host_json,
    ))?;
    helpers.set("check", host_check)?;
    Ok(Persistent::save(ctx, helpers))
}

/// The deepest nesting `check` takes (the validator's parser goes no deeper).
const CHECK_DEPTH_MAX: usize = 128;

/// `value`'s JSON as it crosses to the host (`None` when `JSON.stringify` gives undefined),
/// written within the room left under the memory limit; throws past it, when interrupted,
/// and where `JSON.stringify` throws.
fn json_for_host<'js>(
    ctx: &Ctx<'js>,
    control: &Control,
    value: &Value<'js>,
) -> rquickjs::Result<Option<String>> {
    match json::stringify_plain(value, &mut json::Budget::new(control))? {
        Ok(json) => Ok(Some(json)),
        Err(json::Stop::Limit) => Err(bridge_limit(ctx, control)),
        Err(json::Stop::NotPlain) => {
            let room = control.meter.room();
            let (written, over) = json::stringify_for_host(ctx, value, room)?;
            if over > 0 {
                control.meter.charge_bridge(usize::MAX);
                return Err(bridge_limit(ctx, control));
            }
            match text::string_of(ctx, &written, control.meter.room()) {
                Some(Ok(json)) => Ok(Some(text::json_without_lone_surrogates(json))),
                Some(Err(len)) => {
                    control.meter.charge_bridge(len);
                    Err(bridge_limit(ctx, control))
                }
                None => Ok(None),
            }
        }
    }
}

/// Throw from a bridge function that stopped at a limit: the memory limit (already marked
/// as exceeded) or an interrupt. The program cannot go on past it: the interrupt handler
/// stops it at its next check, whatever it catches.
fn bridge_limit(ctx: &Ctx<'_>, control: &Control) -> rquickjs::Error {
    control.should_interrupt();
    let message = if control.meter.exceeded() {
        "out of memory: the value is too large to cross to the host"
    } else {
        "interrupted"
    };
    rquickjs::Exception::throw_internal(ctx, message)
}
