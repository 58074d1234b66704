//! Stepping an execution: running the engine's jobs, settling the host's answers to tool
//! calls and firing due timers.

use super::outcome::memory_error_with;
use super::*;

impl Machine {
    /// Run until the program has nothing left to do (see [`Execution::step`]), with `stack`
    /// bytes of stack for the engine below this point.
    pub(super) fn step(&mut self, settles: Settles, stack: usize) -> StepOutput {
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

    pub(super) fn run<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        program: Option<String>,
        settles: Settles,
    ) -> Status {
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

    /// Forget every call, console line, report and timer the program made: none of it
    /// reaches the host.
    pub(super) fn discard_effects(&mut self) {
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
    pub(super) fn settle<'js>(&mut self, ctx: &Ctx<'js>, helpers: &Object<'js>, settles: Settles) {
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

    pub(super) fn take_resolvers(&self, id: u64) -> Option<Resolvers> {
        let mut shared = self.shared.borrow_mut();
        let slot = shared
            .pending
            .get_mut(usize::try_from(id).ok()?.checked_sub(1)?)?;
        let resolvers = slot.take()?;
        shared.open_calls -= 1;
        Some(resolvers)
    }

    pub(super) fn fire_due_timers<'js>(
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
}

/// Reject a call's promise with a host error (`ToolError`, `InvalidArgumentsError`).
///
/// The error is an `Error` with no stack yet: QuickJS records an error's stack when it is
/// first thrown through a frame if it has none, so when the program's `await` throws it,
/// the stack (and the error's line and column) is the line that awaited the call.
pub(super) fn reject_with<'js>(
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
pub(super) fn error_class_id() -> qjs::JSClassID {
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
pub(super) fn run_jobs(ctx: &Ctx<'_>, main: Option<&Promise<'_>>) {
    // SAFETY: `ctx` is a live context for the whole call, so its raw pointer is valid, and
    // its runtime outlives it.
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
