//! What a step ends with: the program's result, its error, or what it waits for.

use super::*;

impl Machine {
    /// What the step ends with, as the program's promise stands after it.
    pub(super) fn outcome<'js>(&mut self, ctx: &Ctx<'js>) -> Status {
        let Some(main) = self.main.clone().and_then(|p| p.restore(ctx).ok()) else {
            return Status::Done(Err(JsError::new(
                ErrorKind::Runtime,
                "InternalError",
                "lost the program",
            )));
        };
        match main.state() {
            PromiseState::Resolved => self.resolved(ctx, &main),
            PromiseState::Rejected => {
                let _ = main.result::<Value>();
                let exc = ctx.catch();
                Status::Done(Err(self.describe(ctx, exc)))
            }
            PromiseState::Pending => self.waiting(),
        }
    }

    /// The status of a program whose promise resolved: its result's JSON, or why it has none.
    fn resolved<'js>(&self, ctx: &Ctx<'js>, main: &Promise<'js>) -> Status {
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
            Ok(Some(Ok(json))) => Status::Done(Ok(text::json_without_lone_surrogates(json))),
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

    /// The status of a program still pending: waiting for its calls or timers, or deadlocked.
    fn waiting(&self) -> Status {
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

    /// The status an interrupt stands for, if the program was interrupted.
    pub(super) fn interrupted_status(&self) -> Option<Status> {
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

    pub(super) fn output_limit_error(&self) -> JsError {
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
    pub(super) fn describe<'js>(&self, ctx: &Ctx<'js>, thrown: Value<'js>) -> JsError {
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

pub(super) fn memory_error_with(limit: usize) -> JsError {
    JsError::new(
        ErrorKind::Memory,
        "MemoryError",
        say("memory", &[("mib", &crate::messages::mib(limit))]),
    )
}

pub(super) fn is_stack_overflow(name: &str, message: &str) -> bool {
    (name == "RangeError" || name == "InternalError")
        && (message.contains("stack overflow") || message.contains("call stack size"))
}

pub(super) fn unknown_tool(message: &str) -> Option<&str> {
    let name = message.strip_suffix(" is not defined")?;
    (name.starts_with("external_") && !name.contains(' ')).then_some(name)
}
