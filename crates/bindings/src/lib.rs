//! `codemode._core`: the thin Python layer over `tsstrip` and `isolate`.
//!
//! It only converts. Values cross as plain tuples, strings and bytes; JavaScript runs with
//! the GIL released.

#![warn(clippy::too_many_lines, clippy::undocumented_unsafe_blocks)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

/// Rust-side allocations (swc's syntax trees, the bridge's buffers) go to mimalloc, which
/// keeps freed memory for reuse instead of handing it back to the system after each
/// execution and faulting it in again on the next.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::{Duration, Instant};

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyList, PyString, PyTuple};

create_exception!(
    _core,
    TypeScriptSyntaxError,
    PyException,
    "The program is not valid TypeScript. args: (message, line, column, frame)."
);

/// TypeScript stripped to JavaScript.
#[pyclass(frozen, module = "codemode._core")]
struct StripResult {
    inner: tsstrip::Stripped,
}

#[pymethods]
impl StripResult {
    /// The JavaScript program body.
    #[getter]
    fn javascript(&self) -> &str {
        &self.inner.code
    }

    /// True when every line and column of the JavaScript is that of the TypeScript.
    #[getter]
    fn positions_preserved(&self) -> bool {
        self.inner.positions_preserved
    }

    /// Map a 1-based (line, column) of the JavaScript to the TypeScript.
    fn original_position(&self, line: u32, column: u32) -> (u32, u32) {
        self.inner.original_position(line, column)
    }
}

/// What a panic carried, for an `internal` error's message.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let reason = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned());
    format!("codemode failed internally: {reason}")
}

/// `f()`, with a panic (a bug) turned into an `internal` error: no panic ever crosses
/// into Python.
fn guarded<T>(f: impl FnOnce() -> Result<T, isolate::JsError>) -> Result<T, isolate::JsError> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|panic| Err(isolate::JsError::internal(panic_message(&*panic))))
}

/// Strip TypeScript types; raises `TypeScriptSyntaxError` when it does not parse.
#[pyfunction]
fn strip_types(py: Python<'_>, source: &str) -> PyResult<StripResult> {
    let stripped = py.detach(|| {
        catch_unwind(|| tsstrip::strip(source)).unwrap_or_else(|panic| {
            Err(tsstrip::Diagnostic {
                message: panic_message(&*panic),
                line: 1,
                column: 1,
                frame: String::new(),
            })
        })
    });
    match stripped {
        Ok(inner) => Ok(StripResult { inner }),
        Err(d) => Err(TypeScriptSyntaxError::new_err((
            d.message, d.line, d.column, d.frame,
        ))),
    }
}

/// Raise `ValueError` (with the reason) unless `javascript` is exactly the body of one async
/// function of `input`, as the engine reads it.
#[pyfunction]
fn check_function_body(py: Python<'_>, javascript: &str) -> PyResult<()> {
    let checked = py.detach(|| {
        catch_unwind(|| isolate::check_function_body(javascript))
            .unwrap_or_else(|panic| Err(panic_message(&*panic)))
    });
    checked.map_err(pyo3::exceptions::PyValueError::new_err)
}

/// A short code frame pointing at (line, column), 1-based.
#[pyfunction]
fn code_frame(source: &str, line: u32, column: u32) -> String {
    tsstrip::code_frame(source, line, column)
}

/// Per tool, a JSON Schema the engine checks each input against before the call crosses
/// (see `_core.pyi`); made once per set of tools.
#[pyclass(frozen, module = "codemode._core")]
struct InputChecks(isolate::InputChecks);

#[pymethods]
impl InputChecks {
    #[new]
    fn new(py: Python<'_>, schemas: Vec<Option<String>>) -> Self {
        // A schema the validator cannot take (or a bug in it) leaves inputs to the host.
        Self(py.detach(|| {
            catch_unwind(|| isolate::InputChecks::new(&schemas))
                .unwrap_or_else(|_| isolate::InputChecks::new(&vec![None; schemas.len()]))
        }))
    }
}

/// The hard limits of one execution (see `_core.pyi`), given to `Execution` whole.
#[pyclass(frozen, module = "codemode._core")]
struct ExecutionLimits {
    #[pyo3(get)]
    timeout: f64,
    #[pyo3(get)]
    memory_limit_bytes: usize,
    #[pyo3(get)]
    stack_limit_bytes: usize,
    #[pyo3(get)]
    max_tool_calls: u32,
    #[pyo3(get)]
    max_log_bytes: usize,
    #[pyo3(get)]
    max_log_lines: usize,
    #[pyo3(get)]
    fail_on_log_overflow: bool,
    #[pyo3(get)]
    max_result_bytes: usize,
}

#[pymethods]
impl ExecutionLimits {
    #[new]
    #[pyo3(signature = (*, timeout, memory_limit_bytes, stack_limit_bytes, max_tool_calls,
                        max_log_bytes, max_log_lines, fail_on_log_overflow, max_result_bytes))]
    #[allow(clippy::too_many_arguments)] // one keyword argument per limit, as Python names them
    fn new(
        timeout: f64,
        memory_limit_bytes: usize,
        stack_limit_bytes: usize,
        max_tool_calls: u32,
        max_log_bytes: usize,
        max_log_lines: usize,
        fail_on_log_overflow: bool,
        max_result_bytes: usize,
    ) -> Self {
        Self {
            timeout,
            memory_limit_bytes,
            stack_limit_bytes,
            max_tool_calls,
            max_log_bytes,
            max_log_lines,
            fail_on_log_overflow,
            max_result_bytes,
        }
    }
}

impl ExecutionLimits {
    /// The engine's limits (the timeout becomes the execution's deadline).
    fn engine_limits(&self) -> isolate::Limits {
        isolate::Limits {
            memory_bytes: self.memory_limit_bytes,
            stack_bytes: self.stack_limit_bytes,
            max_tool_calls: self.max_tool_calls,
            max_log_bytes: self.max_log_bytes,
            max_log_lines: self.max_log_lines,
            fail_on_log_overflow: self.fail_on_log_overflow,
            max_result_bytes: self.max_result_bytes,
        }
    }
}

/// The validators a host library checks values with, `check(i, value)` (see `_core.pyi`);
/// made once per list of schemas.
#[pyclass(frozen, module = "codemode._core")]
struct LibraryChecks(isolate::schema::LibraryChecks);

#[pymethods]
impl LibraryChecks {
    #[new]
    fn new(py: Python<'_>, schemas: Vec<String>) -> PyResult<Self> {
        py.detach(|| catch_unwind(|| isolate::schema::LibraryChecks::new(&schemas)))
            .map(Self)
            .map_err(|_| {
                pyo3::exceptions::PyRuntimeError::new_err("the schemas could not be compiled")
            })
    }
}

create_exception!(
    _core,
    InvalidSchema,
    pyo3::exceptions::PyValueError,
    "The schema is not valid JSON Schema. args: (path, message)."
);

/// A compiled JSON Schema (see `_core.pyi`): the validator the engine checks tool input with.
#[pyclass(frozen, module = "codemode._core")]
struct JsonSchema(std::sync::Arc<isolate::schema::Validator>);

/// Deeper values than the engine lets a tool call's input be are refused unconverted.
const VALUE_DEPTH_MAX: usize = isolate::JSON_DEPTH_MAX + 1;

#[pymethods]
impl JsonSchema {
    #[new]
    fn new(py: Python<'_>, schema: &str) -> PyResult<Self> {
        let compiled = py.detach(|| {
            catch_unwind(|| isolate::schema::compile(schema)).unwrap_or_else(|panic| {
                Err(isolate::schema::Problem {
                    path: String::new(),
                    message: panic_message(&*panic),
                })
            })
        });
        match compiled {
            Ok(validator) => Ok(Self(validator)),
            Err(problem) => Err(InvalidSchema::new_err((problem.path, problem.message))),
        }
    }

    /// `None` when `value` (Python JSON data) is valid, else `(path, message)`.
    fn validate(&self, value: &Bound<'_, PyAny>) -> Option<(String, String)> {
        let mut path = String::new();
        let instance = match json_value(value, &mut path, 0) {
            Ok(instance) => instance,
            Err(message) => return Some((path, message)),
        };
        self.check(&instance)
    }

    /// `None` when `text` (JSON) is valid, else `(path, message)`.
    fn validate_json(&self, py: Python<'_>, text: &str) -> Option<(String, String)> {
        py.detach(|| match serde_json::from_str::<serde_json::Value>(text) {
            Ok(instance) => self.check(&instance),
            Err(e) => Some((String::new(), format!("is not JSON: {e}"))),
        })
    }
}

impl JsonSchema {
    fn check(&self, instance: &serde_json::Value) -> Option<(String, String)> {
        catch_unwind(AssertUnwindSafe(|| {
            isolate::schema::check(&self.0, instance)
        }))
        .unwrap_or_else(|panic| {
            Some(isolate::schema::Problem {
                path: String::new(),
                message: panic_message(&*panic),
            })
        })
        .map(|p| (p.path, p.message))
    }
}

/// Python JSON data (dict with str keys, list, tuple, str, int, float, bool, None) as a JSON
/// value; anything else is refused with a message, `path` then naming where it is.
fn json_value(
    value: &Bound<'_, PyAny>,
    path: &mut String,
    depth: usize,
) -> Result<serde_json::Value, String> {
    use pyo3::types::{PyBool, PyDict, PyFloat, PyInt};
    use serde_json::Value;
    if depth > VALUE_DEPTH_MAX {
        return Err(format!("is nested more than {VALUE_DEPTH_MAX} levels deep"));
    }
    if value.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Value::String(
            s.to_str().map_err(|e| e.to_string())?.to_owned(),
        ));
    }
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        if let Ok(i) = value.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = value.extract::<u64>() {
            return Ok(Value::from(u));
        }
        let f: f64 = value.extract().map_err(|e: PyErr| e.to_string())?;
        return finite(f);
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return finite(f.value());
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut map = serde_json::Map::with_capacity(dict.len());
        for (key, item) in dict.iter() {
            let Ok(key) = key.cast::<PyString>() else {
                return Err(format!("has a key that is not a string: {key}"));
            };
            let key = key.to_str().map_err(|e| e.to_string())?;
            let at = path.len();
            isolate::schema::push_key(path, key);
            let item = json_value(&item, path, depth + 1)?;
            path.truncate(at);
            map.insert(key.to_owned(), item);
        }
        return Ok(Value::Object(map));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let mut items = Vec::with_capacity(value.len().unwrap_or(0));
        for (i, item) in value.try_iter().map_err(|e| e.to_string())?.enumerate() {
            let at = path.len();
            path.push_str(&format!("[{i}]"));
            let item = item.map_err(|e| e.to_string())?;
            items.push(json_value(&item, path, depth + 1)?);
            path.truncate(at);
        }
        return Ok(Value::Array(items));
    }
    let kind = value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    Err(format!("is not JSON data (a {kind})"))
}

fn finite(f: f64) -> Result<serde_json::Value, String> {
    serde_json::Number::from_f64(f)
        .map(serde_json::Value::Number)
        .ok_or_else(|| format!("is not JSON data ({f})"))
}

/// Cancels an execution from any thread, even while one of its steps runs.
#[pyclass(frozen, module = "codemode._core")]
struct CancelHandle(isolate::CancelHandle);

#[pymethods]
impl CancelHandle {
    fn cancel(&self) {
        self.0.cancel();
    }
}

const DONE_OK: u8 = 0;
const DONE_ERROR: u8 = 1;
const WAITING: u8 = 2;
const SUSPENDED: u8 = 3;

/// One program in one fresh QuickJS runtime (see `_core.pyi` for the step protocol).
#[pyclass(frozen, module = "codemode._core")]
struct Execution {
    inner: Mutex<Option<Result<isolate::Execution, isolate::JsError>>>,
    cancel: Option<isolate::CancelHandle>,
}

#[pymethods]
impl Execution {
    #[new]
    #[pyo3(signature = (javascript, tool_names, limits, *, report_channel=false, library=None,
                        input_checks=None, library_checks=None))]
    #[allow(clippy::too_many_arguments)] // Python's keyword arguments, each optional but the first three
    fn new(
        py: Python<'_>,
        javascript: &str,
        tool_names: Vec<String>,
        limits: PyRef<'_, ExecutionLimits>,
        report_channel: bool,
        library: Option<&str>,
        input_checks: Option<PyRef<'_, InputChecks>>,
        library_checks: Option<PyRef<'_, LibraryChecks>>,
    ) -> Self {
        let timeout = limits.timeout;
        let limits = limits.engine_limits();
        let deadline = Instant::now() + Duration::from_secs_f64(timeout.clamp(0.0, 1e9));
        let checks = input_checks.map(|c| c.0.clone());
        let library_checks = library_checks.map(|c| c.0.clone());
        let created = py.detach(|| {
            guarded(|| {
                let mut execution =
                    isolate::Execution::new(javascript, &tool_names, limits, deadline)?;
                if report_channel {
                    execution.open_report_channel();
                }
                if let Some(library) = library {
                    execution.set_library(library)?;
                }
                if let Some(checks) = checks {
                    execution.set_input_checks(checks);
                }
                if let Some(checks) = library_checks {
                    execution.set_library_checks(checks);
                }
                Ok(execution)
            })
        });
        let cancel = created.as_ref().ok().map(|e| e.cancel_handle());
        Self {
            inner: Mutex::new(Some(created)),
            cancel,
        }
    }

    /// A handle that cancels this execution from any thread.
    fn cancel_handle(&self) -> PyResult<CancelHandle> {
        self.cancel
            .clone()
            .map(CancelHandle)
            .ok_or_else(|| PyRuntimeError::new_err("the execution failed to start"))
    }

    /// Run JavaScript until it is idle, first settling the calls answered since the last
    /// step: `ids[i]` ends with outcome `outcomes[i]` (0 = result, 1 = tool error,
    /// 2 = invalid arguments) and element `i` of the JSON array `answers` (the result, or
    /// the error message). Returns `(status, calls, logs, payload)`.
    #[pyo3(signature = (ids, outcomes, answers, slice=None))]
    fn step<'py>(
        &self,
        py: Python<'py>,
        ids: Vec<u64>,
        outcomes: &Bound<'py, PyAny>,
        answers: &Bound<'py, PyAny>,
        slice: Option<f64>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let converted = isolate::Settles::from_parts(
            ids,
            bytes_of(outcomes)?
                .into_iter()
                .map(isolate::Outcome::from_code)
                .collect(),
            text_of(answers)?,
        );
        let slice = slice.map(|s| Duration::from_secs_f64(s.max(0.0)));
        self.run(py, move |exec| exec.step(converted, slice))
    }

    /// Finish a step that came back suspended (status 3), on this thread; same return value
    /// as ``step``.
    fn resume<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        self.run(py, |exec| exec.resume())
    }

    /// Release the engine now (idempotent); it is freed off this thread when engines are
    /// prewarmed or its heap is large. Dropping the object frees it too. While a step runs
    /// in another thread, this waits for it with the GIL released.
    fn close(&self, py: Python<'_>) {
        let taken = py.detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some(Ok(execution)) = taken {
            execution.dispose();
        }
    }
}

impl Execution {
    /// Run `f` on the engine with the GIL released (a panic becomes an `internal` error),
    /// and convert what the step produced.
    fn run<'py>(
        &self,
        py: Python<'py>,
        f: impl FnOnce(&mut isolate::Execution) -> isolate::StepOutput + Send,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let output = py.detach(|| {
            let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_mut() {
                Some(Ok(exec)) => {
                    match catch_unwind(AssertUnwindSafe(|| f(exec))) {
                        Ok(output) => Ok(output),
                        Err(panic) => {
                            // The engine may be half-way through anything: never touch it again,
                            // not even to free it.
                            if let Some(Ok(broken)) = guard.take() {
                                std::mem::forget(broken);
                            }
                            Err(Some(isolate::JsError::internal(panic_message(&*panic))))
                        }
                    }
                }
                Some(Err(e)) => Err(Some(e.clone())),
                None => Err(None),
            }
        });
        let output = match output {
            Ok(o) => o,
            Err(Some(e)) => {
                self.close(py);
                let calls = calls_tuple(py, Vec::new())?;
                let logs = PyList::empty(py);
                return (DONE_ERROR, calls, logs, error_tuple(py, &e)?).into_pyobject(py);
            }
            Err(None) => return Err(PyRuntimeError::new_err("the execution is closed")),
        };
        let calls = calls_tuple(py, output.calls)?;
        let logs = PyList::empty(py);
        for line in output.logs {
            logs.append((
                line.level.as_str(),
                line.text,
                line.timestamp_ms,
                line.calls_before,
            ))?;
        }
        let (status, payload): (u8, Bound<'py, PyAny>) = match output.status {
            isolate::Status::Done(Ok(json)) => (DONE_OK, PyString::new(py, &json).into_any()),
            isolate::Status::Done(Err(e)) => (DONE_ERROR, error_tuple(py, &e)?.into_any()),
            isolate::Status::Waiting { next_timer } => (
                WAITING,
                next_timer
                    .map(|d| d.as_secs_f64())
                    .into_pyobject(py)?
                    .into_any(),
            ),
            isolate::Status::Suspended => (SUSPENDED, py.None().into_bound(py)),
        };
        (status, calls, logs, payload).into_pyobject(py)
    }
}

/// The bytes of a `bytes` or `bytearray`, or the UTF-8 of a `str`.
fn bytes_of(value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(bytes) = value.cast::<PyBytes>() {
        Ok(bytes.as_bytes().to_vec())
    } else if let Ok(array) = value.cast::<PyByteArray>() {
        Ok(array.to_vec())
    } else {
        Ok(value.extract::<String>()?.into_bytes())
    }
}

/// The text of a `str`, `bytes` or `bytearray` (UTF-8).
fn text_of(value: &Bound<'_, PyAny>) -> PyResult<String> {
    String::from_utf8(bytes_of(value)?)
        .map_err(|_| PyRuntimeError::new_err("tool result is not UTF-8"))
}

/// A step's tool calls as `(ids, tool indexes, arguments, checked)`: the arguments are one
/// JSON array (element `i` belongs to call `ids[i]`), so the host parses them in one go;
/// `checked[i]` is 1 when the engine found argument `i` valid for its tool's schema.
fn calls_tuple<'py>(
    py: Python<'py>,
    calls: Vec<isolate::ToolCall>,
) -> PyResult<Bound<'py, PyTuple>> {
    let mut args =
        String::with_capacity(2 + calls.iter().map(|c| c.args_json.len() + 1).sum::<usize>());
    args.push('[');
    let mut ids = Vec::with_capacity(calls.len());
    let mut tools = Vec::with_capacity(calls.len());
    let mut checked = Vec::with_capacity(calls.len());
    for (i, call) in calls.into_iter().enumerate() {
        if i > 0 {
            args.push(',');
        }
        args.push_str(&call.args_json);
        ids.push(call.id);
        tools.push(call.tool);
        checked.push(u8::from(call.checked));
    }
    args.push(']');
    let checked = PyBytes::new(py, &checked);
    (
        PyList::new(py, ids)?,
        PyList::new(py, tools)?,
        args,
        checked,
    )
        .into_pyobject(py)
}

fn error_tuple<'py>(py: Python<'py>, e: &isolate::JsError) -> PyResult<Bound<'py, PyTuple>> {
    let frames = PyList::empty(py);
    for f in &e.frames {
        frames.append((f.function.as_str(), f.line, f.column))?;
    }
    (e.kind.as_str(), e.name.as_str(), e.message.as_str(), frames).into_pyobject(py)
}

/// Keep `count` engines ready on a background thread (0: make each one on demand).
#[pyfunction]
fn set_prewarm(count: usize) {
    isolate::set_prewarm(count);
}

mod confine;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<StripResult>()?;
    m.add_class::<Execution>()?;
    m.add_class::<ExecutionLimits>()?;
    m.add_class::<CancelHandle>()?;
    m.add_class::<InputChecks>()?;
    m.add_class::<LibraryChecks>()?;
    m.add_class::<JsonSchema>()?;
    m.add("InvalidSchema", m.py().get_type::<InvalidSchema>())?;
    m.add_function(wrap_pyfunction!(strip_types, m)?)?;
    m.add_function(wrap_pyfunction!(code_frame, m)?)?;
    m.add_function(wrap_pyfunction!(check_function_body, m)?)?;
    m.add_function(wrap_pyfunction!(set_prewarm, m)?)?;
    m.add(
        "TypeScriptSyntaxError",
        m.py().get_type::<TypeScriptSyntaxError>(),
    )?;
    m.add("MESSAGES", isolate::messages::table().clone())?;
    m.add("SANDBOX_PRELUDE", isolate::sandbox_prelude())?;
    m.add("DONE_OK", DONE_OK)?;
    m.add("DONE_ERROR", DONE_ERROR)?;
    m.add("WAITING", WAITING)?;
    m.add("SUSPENDED", SUSPENDED)?;
    confine::register(m)?;
    Ok(())
}
