//! Making an execution: a runtime from the pool, the wrapped program, the tools, and
//! what the host sets before the first step.

use super::start::library_bytecode;
use super::*;

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
        // From here on `Execution`'s drop order applies (handles before context and runtime),
        // also when installing the tools fails.
        let execution = Self {
            _watch: alarm::watch(context.as_raw().as_ptr(), control.clone()),
            main: None,
            helpers,
            shared,
            program: Some(wrap(javascript)),
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
        execution.install_tools()?;
        Ok(execution)
    }

    /// Give the program one `external_<name>` per tool, within the call limit.
    fn install_tools(&self) -> Result<(), JsError> {
        let installed = self.context.with(|ctx| -> rquickjs::Result<()> {
            let helpers = self.helpers.clone().restore(&ctx)?;
            let names = Array::new(ctx.clone())?;
            for (i, name) in self.tool_names.iter().enumerate() {
                names.set(i, name.as_str())?;
            }
            let install: Function = helpers.get("installTools")?;
            install.call((names, self.limits.max_tool_calls))
        });
        if installed.is_err() {
            let kind = if self.control.meter.exceeded() {
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
        Ok(())
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
}

/// The program as the body of the async wrapper function.
fn wrap(javascript: &str) -> String {
    let mut program = String::with_capacity(javascript.len() + 32);
    program.push_str(WRAP_PREFIX);
    program.push_str(javascript);
    program.push_str(WRAP_SUFFIX);
    program
}
