//! Starting the program: compiling and loading bytecode (the prelude, the host library)
//! and calling the wrapped program with its report channel.

use super::*;

impl Machine {
    /// Evaluate the wrapped program and call it with its channel: the program's promise, or
    /// the status it ended with before it got one.
    pub(super) fn start_program<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        program: String,
    ) -> Result<Promise<'js>, Status> {
        let func = self.wrapper_function(ctx, program)?;
        let channel = self.channel(ctx)?;
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

    /// The wrapper function the program evaluates to, or the status when it does not
    /// compile or is not exactly one function body.
    fn wrapper_function<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        program: String,
    ) -> Result<Function<'js>, Status> {
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
        Ok(func)
    }

    /// The program's one argument: the report channel when it is open (else `undefined`),
    /// or, with a host library, what the library's function returns for it.
    fn channel<'js>(&self, ctx: &Ctx<'js>) -> Result<Value<'js>, Status> {
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
        Ok(channel)
    }

    /// The source text of `value` if it is a function the engine parsed, read with the
    /// built-in `Function.prototype.toString` as the prelude found it.
    pub(super) fn source_of<'js>(&self, ctx: &Ctx<'js>, value: &Value<'js>) -> Option<String> {
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
}

/// `source` compiled to QuickJS bytecode (a global script), or the compile error's text.
pub(super) fn compile(source: &str, file: &str) -> Result<Vec<u8>, String> {
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
pub(super) fn prelude_bytecode() -> &'static [u8] {
    static BYTECODE: OnceLock<Vec<u8>> = OnceLock::new();
    BYTECODE.get_or_init(|| {
        compile(crate::sandbox_prelude(), "codemode:prelude").expect("the prelude compiles")
    })
}

/// Host libraries compiled once per process, by their text (a handful at most: the cache
/// is cleared if it ever holds more than 32).
pub(super) fn library_bytecode(source: &str) -> Result<Arc<Vec<u8>>, String> {
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
pub(super) fn load_bytecode<'js>(
    ctx: &Ctx<'js>,
    bytes: &[u8],
    rom: bool,
) -> rquickjs::Result<Value<'js>> {
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

pub(super) fn load_prelude<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Function<'js>> {
    load_bytecode(ctx, prelude_bytecode(), true)?
        .into_function()
        .ok_or(rquickjs::Error::Unknown)
}
