//! Is a text exactly one function body, as the engine reads it?
//!
//! Code the host splices into a program (a skill's code, as the body of its own function)
//! must not be able to close that function and run around it. The engine's own parser
//! decides: the text is evaluated inside `(async function (input) {\n` … `\n})` in a scratch
//! runtime with no host functions, and must give a function whose source is that whole
//! wrapper. Anything the text runs at the top level when it is not runs there, under a
//! small memory limit and deadline, and is thrown away with the runtime.

use std::time::{Duration, Instant};

use rquickjs::context::EvalOptions;
use rquickjs::{Context, Function, Runtime, Value};

const PREFIX: &str = "(async function (input) {\n";
const SUFFIX: &str = "\n})";
const MEMORY: usize = 32 << 20;
const TIME: Duration = Duration::from_millis(200);

/// `Ok` when `javascript` is exactly the body of one async function (of `input`); else why not.
pub fn check_function_body(javascript: &str) -> Result<(), String> {
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    runtime.set_memory_limit(MEMORY);
    runtime.set_max_stack_size(1 << 20);
    let deadline = Instant::now() + TIME;
    runtime.set_interrupt_handler(Some(Box::new(move || Instant::now() >= deadline)));
    let context = Context::full(&runtime).map_err(|e| e.to_string())?;
    let wrapped = format!("{PREFIX}{javascript}{SUFFIX}");
    let expected = &wrapped[1..wrapped.len() - 1];
    context.with(|ctx| {
        let source_of: Function = ctx
            .eval("(f) => typeof f === 'function' ? Reflect.apply(Function.prototype.toString, f, []) : null")
            .map_err(|e| e.to_string())?;
        // As programs are evaluated: a global script, not strict.
        let mut options = EvalOptions::default();
        options.global = true;
        options.strict = false;
        let value: Value = match ctx.eval_with_options(wrapped.as_str(), options) {
            Ok(value) => value,
            Err(_) => {
                let thrown = ctx.catch();
                let message = thrown
                    .as_exception()
                    .and_then(|e| e.message())
                    .unwrap_or_else(|| "it does not compile".to_owned());
                return Err(message);
            }
        };
        let source = source_of
            .call::<_, Value>((value,))
            .ok()
            .and_then(|s| crate::text::string(&ctx, &s));
        if source.as_deref() == Some(expected) {
            Ok(())
        } else {
            Err("it is not one function body: it closes the function it is the body of".to_owned())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::check_function_body;

    #[test]
    fn bodies_pass_and_breakouts_do_not() {
        assert!(check_function_body("return input.a + 1").is_ok());
        assert!(check_function_body("const x = /}/.test('}')\nreturn x // }").is_ok());
        assert!(check_function_body(
            "}\nfunction external_send(args) { return 1 }\nasync function __tail() {"
        )
        .is_err());
        assert!(check_function_body("}/ 1); (async function () {/;{///\nreturn 1").is_err());
        assert!(check_function_body("return (").is_err());
        assert!(check_function_body("}); while (true) {} (async function () {").is_err());
    }
}
