//! The engine made ahead of time, and the prelude's host functions: the native side of
//! tool calls, the console, timers, the report channel and `check`.

use super::start::load_prelude;
use super::*;

/// A runtime with its context and prelude, made before it is needed (see `pool`).
pub(crate) struct Engine {
    pub(super) helpers: Persistent<Object<'static>>,
    pub(super) shared: Rc<RefCell<Shared>>,
    pub(super) control: Arc<Control>,
    pub(super) context: Context,
    pub(super) runtime: Runtime,
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

/// Run the prelude with its host functions, which write into `shared`; the helpers it
/// returns, with `check` added.
pub(super) fn install_prelude<'js>(
    ctx: &Ctx<'js>,
    shared: &Rc<RefCell<Shared>>,
    control: &Arc<Control>,
) -> rquickjs::Result<Persistent<Object<'static>>> {
    let setup = load_prelude(ctx)?;

    let host_call = host_call(ctx, shared, control)?;
    let host_log = host_log(ctx, shared, control)?;
    let host_timer = host_timer(ctx, shared)?;
    let host_clear_timer = host_clear_timer(ctx, shared)?;
    let host_json = host_json(ctx, control)?;
    let host_report = host_report(ctx, shared, control)?;
    let host_check = host_check(ctx, shared, control)?;

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

/// The host's side of a tool call: `host_call(tool, input)`.
fn host_call<'js>(
    ctx: &Ctx<'js>,
    shared: &Rc<RefCell<Shared>>,
    control: &Arc<Control>,
) -> rquickjs::Result<Function<'js>> {
    let calls = shared.clone();
    let call_control = control.clone();
    Function::new(
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
    )
}

/// A console line, kept within the log limits: `host_log(level, text)`.
fn host_log<'js>(
    ctx: &Ctx<'js>,
    shared: &Rc<RefCell<Shared>>,
    control: &Arc<Control>,
) -> rquickjs::Result<Function<'js>> {
    let logs = shared.clone();
    let log_control = control.clone();
    Function::new(
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
    )
}

/// Start timer `id`, due in `ms` milliseconds: `host_timer(id, ms)`.
fn host_timer<'js>(
    ctx: &Ctx<'js>,
    shared: &Rc<RefCell<Shared>>,
) -> rquickjs::Result<Function<'js>> {
    let timers = shared.clone();
    Function::new(ctx.clone(), move |id: u32, ms: f64| {
        let mut s = timers.borrow_mut();
        let delay = Duration::from_secs_f64((ms / 1000.0).clamp(0.0, 1e9));
        let at = Instant::now() + delay;
        s.timers.insert((at, id));
        s.timer_due.insert(id, at);
    })
}

/// Forget timer `id`: `host_clear_timer(id)`.
fn host_clear_timer<'js>(
    ctx: &Ctx<'js>,
    shared: &Rc<RefCell<Shared>>,
) -> rquickjs::Result<Function<'js>> {
    let cleared = shared.clone();
    Function::new(ctx.clone(), move |id: u32| {
        let mut s = cleared.borrow_mut();
        if let Some(at) = s.timer_due.remove(&id) {
            s.timers.remove(&(at, id));
        }
    })
}

/// JSON of a console value: binary values as for the host, within the memory limit.
fn host_json<'js>(ctx: &Ctx<'js>, control: &Arc<Control>) -> rquickjs::Result<Function<'js>> {
    let json_control = control.clone();
    Function::new(
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
    )
}

/// A line through the report channel, within its 16 MiB: `host_report(text)`.
fn host_report<'js>(
    ctx: &Ctx<'js>,
    shared: &Rc<RefCell<Shared>>,
    control: &Arc<Control>,
) -> rquickjs::Result<Function<'js>> {
    let reports = shared.clone();
    let report_control = control.clone();
    Function::new(ctx.clone(), move |ctx: Ctx<'js>, text: Value<'js>| {
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
    })
}

/// `check(i, value)` of the host library: `value` as its JSON crosses to the host (the
/// memory limit and deadline apply while it is written), checked by validator `i`.
fn host_check<'js>(
    ctx: &Ctx<'js>,
    shared: &Rc<RefCell<Shared>>,
    control: &Arc<Control>,
) -> rquickjs::Result<Function<'js>> {
    let checks = shared.clone();
    let check_control = control.clone();
    Function::new(
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
    )
}

/// The deepest nesting `check` takes (the validator's parser goes no deeper).
const CHECK_DEPTH_MAX: usize = 128;

/// `value`'s JSON as it crosses to the host (`None` when `JSON.stringify` gives undefined),
/// written within the room left under the memory limit; throws past it, when interrupted,
/// and where `JSON.stringify` throws.
pub(super) fn json_for_host<'js>(
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
pub(super) fn bridge_limit(ctx: &Ctx<'_>, control: &Control) -> rquickjs::Error {
    control.should_interrupt();
    let message = if control.meter.exceeded() {
        "out of memory: the value is too large to cross to the host"
    } else {
        "interrupted"
    };
    rquickjs::Exception::throw_internal(ctx, message)
}
