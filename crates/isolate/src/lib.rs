//! `isolate`: runs one JavaScript program in a fresh, hard-limited QuickJS runtime.
//!
//! The program is the body of an async function. It runs step by step: each
//! [`Execution::step`] runs JavaScript until it has nothing left to do, then hands back
//! every tool call the program made (to be answered by the host in any order), the
//! console lines it wrote, and when the next timer is due. The host settles calls with
//! [`Settles`] in the next step. Values cross the boundary only as JSON text.
//!
//! Nothing here knows about Python; the bindings crate converts.

#![warn(clippy::too_many_lines, clippy::undocumented_unsafe_blocks)]
// An `unsafe fn` states its contract; each unsafe operation inside it still gets a block of
// its own, with the reason it is sound.
#![deny(unsafe_op_in_unsafe_fn)]

mod alarm;
mod alloc;
mod body;
mod execution;
mod fiber;
mod json;
pub mod messages;
mod pool;
mod precheck;
pub mod schema;
mod stack;
mod text;

use std::time::Duration;

pub use body::check_function_body;
pub use execution::{CancelHandle, Execution, JSON_DEPTH_MAX};
pub use pool::set_prewarm;
pub use precheck::InputChecks;

/// Hard limits for one execution.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Engine heap limit in bytes (every QuickJS allocation counts).
    pub memory_bytes: usize,
    /// Native stack the engine may use, in bytes.
    pub stack_bytes: usize,
    /// Maximum number of tool calls one execution may start.
    pub max_tool_calls: u32,
    /// Console output limit in bytes (UTF-8) over the whole execution.
    pub max_log_bytes: usize,
    /// Console output limit in lines over the whole execution.
    pub max_log_lines: usize,
    /// When true, exceeding the console limits fails the execution (`output_limit`)
    /// instead of truncating the output with a marker.
    pub fail_on_log_overflow: bool,
    /// Maximum size of the JSON result in bytes.
    pub max_result_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 128 << 20,
            stack_bytes: 1 << 20,
            max_tool_calls: 10_000,
            max_log_bytes: 1 << 20,
            max_log_lines: 10_000,
            fail_on_log_overflow: false,
            max_result_bytes: 16 << 20,
        }
    }
}

/// Why an execution failed. The names are the public error kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Syntax,
    Runtime,
    Timeout,
    Memory,
    Tool,
    InvalidArgs,
    Result,
    OutputLimit,
    Cancelled,
    /// A fault of the host side itself (a bug), never of the program.
    Internal,
}

impl ErrorKind {
    /// The kind as it appears in results (`"invalid_args"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Syntax => "syntax",
            ErrorKind::Runtime => "runtime",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Memory => "memory",
            ErrorKind::Tool => "tool",
            ErrorKind::InvalidArgs => "invalid_args",
            ErrorKind::Result => "result",
            ErrorKind::OutputLimit => "output_limit",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Internal => "internal",
        }
    }
}

/// One frame of a JavaScript stack trace inside the program (positions are 1-based and
/// relative to the program text the host passed in, wrapper already removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub function: String,
    pub line: u32,
    pub column: u32,
}

/// A failed execution.
#[derive(Debug, Clone)]
pub struct JsError {
    pub kind: ErrorKind,
    pub name: String,
    pub message: String,
    /// Frames inside the program, innermost first. The first one is where it failed.
    pub frames: Vec<Frame>,
}

impl JsError {
    /// A fault of the host side (a bug caught before it reached the caller).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "InternalError", message)
    }

    pub(crate) fn new(kind: ErrorKind, name: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.to_owned(),
            message: message.into(),
            frames: Vec::new(),
        }
    }
}

/// Console level of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Log,
    Info,
    Warn,
    Error,
    Debug,
    /// Not console output: a line written through the execution's report channel (see
    /// [`Execution::open_report_channel`]).
    Report,
}

impl LogLevel {
    fn from_code(code: u32) -> Self {
        match code {
            1 => LogLevel::Info,
            2 => LogLevel::Warn,
            3 => LogLevel::Error,
            4 => LogLevel::Debug,
            _ => LogLevel::Log,
        }
    }

    /// `"log"`, `"info"`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Log => "log",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Debug => "debug",
            LogLevel::Report => "report",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            LogLevel::Log => "",
            LogLevel::Info => "INFO: ",
            LogLevel::Warn => "WARN: ",
            LogLevel::Error => "ERROR: ",
            LogLevel::Debug => "DEBUG: ",
            LogLevel::Report => "",
        }
    }
}

/// One console line, as written (`text` carries the level prefix, e.g. `"WARN: low stock"`).
#[derive(Debug, Clone)]
pub struct LogLine {
    pub level: LogLevel,
    pub text: String,
    /// Wall-clock time it was written, milliseconds since the Unix epoch.
    pub timestamp_ms: f64,
    /// How many tool calls the program had made when it wrote this line, so a host can
    /// interleave lines and calls of one step in the order they happened.
    pub calls_before: u32,
}

/// A tool call made by the program, to be answered through [`Settles`].
#[derive(Debug, Clone)]
pub struct ToolCall {
    pub id: u64,
    /// Index into the tool names given to [`Execution::new`].
    pub tool: u32,
    /// The argument, JSON text of an object.
    pub args_json: String,
    /// The engine checked the argument against the tool's input schema and it is valid (see
    /// [`Execution::set_input_checks`]); the host need not check it again.
    pub checked: bool,
}

/// How a settled call ends inside the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Outcome {
    /// The call resolves with the tool's result.
    Ok = 0,
    /// The call rejects with a `ToolError`: the tool itself failed.
    ToolError = 1,
    /// The call rejects with an `InvalidArgumentsError`: the arguments did not validate.
    InvalidArgs = 2,
}

impl Outcome {
    /// The outcome with this code (0, 1, 2); unknown codes are tool errors.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => Outcome::Ok,
            2 => Outcome::InvalidArgs,
            _ => Outcome::ToolError,
        }
    }
}

/// The host's answers to tool calls, handed to one step together: one JSON array whose
/// element `i` answers call `ids[i]`: the tool's result for [`Outcome::Ok`], else the
/// error message as a JSON string. The engine parses the array once, whatever its length.
#[derive(Debug, Clone, Default)]
pub struct Settles {
    ids: Vec<u64>,
    outcomes: Vec<Outcome>,
    /// `[` and the elements so far, comma-separated; `]` is added when read.
    json: String,
}

impl Settles {
    pub fn new() -> Self {
        Self::default()
    }

    /// Settles built elsewhere: `json_array` is the whole JSON array text.
    pub fn from_parts(ids: Vec<u64>, outcomes: Vec<Outcome>, json_array: String) -> Self {
        let mut json = json_array;
        if json.ends_with(']') {
            json.pop();
        }
        Self {
            ids,
            outcomes,
            json,
        }
    }

    /// Resolve call `id` with the tool's result, `json` (JSON text).
    pub fn ok(&mut self, id: u64, json: &str) {
        self.push(id, Outcome::Ok, json);
    }

    /// Reject call `id` with an error of `outcome`'s kind carrying `message`.
    pub fn error(&mut self, id: u64, outcome: Outcome, message: &str) {
        let text = serde_json::to_string(message).unwrap_or_else(|_| "\"error\"".to_owned());
        self.push(id, outcome, &text);
    }

    fn push(&mut self, id: u64, outcome: Outcome, json: &str) {
        self.json.push(if self.ids.is_empty() { '[' } else { ',' });
        self.json.push_str(json);
        self.ids.push(id);
        self.outcomes.push(outcome);
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub(crate) fn into_parts(mut self) -> (Vec<u64>, Vec<Outcome>, String) {
        if self.json.is_empty() {
            self.json.push('[');
        }
        self.json.push(']');
        (self.ids, self.outcomes, self.json)
    }
}

/// What a step ended with.
#[derive(Debug, Clone)]
pub enum Status {
    /// The program finished: its return value as JSON text, or the error.
    Done(Result<String, JsError>),
    /// The program waits on tool calls and/or timers. `next_timer` is how long until the
    /// earliest timer is due (`None`: no timers).
    Waiting { next_timer: Option<Duration> },
    /// The step ran past its time slice and handed the thread back half-way: finish it with
    /// [`Execution::resume`] (on any thread). Its calls and lines come with its end.
    Suspended,
}

/// Everything one step produced.
#[derive(Debug)]
pub struct StepOutput {
    pub status: Status,
    /// Tool calls made during this step, in call order.
    pub calls: Vec<ToolCall>,
    /// Console lines written during this step, in order.
    pub logs: Vec<LogLine>,
}

/// The sandbox prelude of every engine (`prelude.js`), with the message table baked in:
/// QuickJS compiles it once per process; the V8 engine host gets it from Python.
pub fn sandbox_prelude() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        include_str!("prelude.js").replacen("__MESSAGES__", &messages::prelude_functions(), 1)
    })
}
