//! Engine-level tests: programs run to completion with a synchronous echo host.

use std::time::{Duration, Instant};

use isolate::{ErrorKind, Execution, JsError, Limits, LogLevel, Outcome, Settles, Status};

/// Runs `js` answering every tool call at once: tool 0 echoes, tool 1 fails.
fn run_with(js: &str, limits: Limits, timeout: Duration) -> (Result<String, JsError>, Vec<String>) {
    let tools = vec!["echo".to_owned(), "fail".to_owned()];
    let mut exec = Execution::new(js, &tools, limits, Instant::now() + timeout).expect("runtime");
    let mut settles = Settles::new();
    let mut logs = Vec::new();
    loop {
        let out = exec.step(std::mem::take(&mut settles), None);
        logs.extend(out.logs.into_iter().map(|l| l.text));
        for call in out.calls {
            if call.tool == 0 {
                settles.ok(call.id, &call.args_json);
            } else {
                settles.error(call.id, Outcome::ToolError, "boom");
            }
        }
        match out.status {
            Status::Done(r) => return (r, logs),
            Status::Waiting { next_timer } => {
                if settles.is_empty() {
                    std::thread::sleep(next_timer.unwrap_or_default());
                }
            }
            Status::Suspended => panic!("no slice was given"),
        }
    }
}

fn run(js: &str) -> (Result<String, JsError>, Vec<String>) {
    run_with(js, Limits::default(), Duration::from_secs(5))
}

#[test]
fn returns_json() {
    assert_eq!(run("return 1+1").0.unwrap(), "2");
    assert_eq!(run("return").0.unwrap(), "null");
    assert_eq!(
        run("return {a: [1, 'x', null], f() {}}").0.unwrap(),
        r#"{"a":[1,"x",null]}"#
    );
}

#[test]
fn tool_calls_round_trip() {
    let (r, _) = run(
        "let t = 0; for (let i = 0; i < 100; i++) { t += (await external_echo({ i })).i } return t",
    );
    assert_eq!(r.unwrap(), "4950");
    let (r, _) = run("const rs = await Promise.all([1,2,3].map(i => external_echo({ i }))); return rs.map(r => r.i)");
    assert_eq!(r.unwrap(), "[1,2,3]");
}

#[test]
fn tool_errors_are_catchable_and_typed() {
    let (r, _) = run("try { await external_fail({}) } catch (e) { return [e.name, e.message, e instanceof Error] }");
    assert_eq!(r.unwrap(), r#"["ToolError","boom",true]"#);
    let e = run("await external_fail({})").0.unwrap_err();
    assert_eq!((e.kind, e.name.as_str()), (ErrorKind::Tool, "ToolError"));
}

#[test]
fn runtime_error_has_position() {
    let e = run("const a = 1\nconst b = null\nreturn b.x")
        .0
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Runtime);
    assert_eq!(e.name, "TypeError");
    let f = &e.frames[0];
    assert_eq!((f.line, f.column), (3, 8), "{e:?}");
    let e = run("throw new Error('top')").0.unwrap_err();
    assert_eq!((e.frames[0].line, e.frames[0].column), (1, 11), "{e:?}");
}

#[test]
fn console_lines_keep_order_and_level() {
    let (_, logs) =
        run("console.log('a', 1, {b: 2}); console.warn('w'); console.error(new TypeError('t'))");
    assert_eq!(
        logs,
        vec!["a 1 {\"b\":2}", "WARN: w", "ERROR: TypeError: t"]
    );
}

#[test]
fn timers_fire_in_order() {
    let (r, _) = run(
        "const out = []; await new Promise(res => { setTimeout(() => out.push(2), 20); setTimeout(() => { out.push(1) }, 5); setTimeout(res, 40) }); return out",
    );
    assert_eq!(r.unwrap(), "[1,2]");
}

#[test]
fn busy_loop_times_out() {
    let started = Instant::now();
    let e = run_with(
        "while (true) {}",
        Limits::default(),
        Duration::from_millis(100),
    )
    .0
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn memory_bomb_is_stopped() {
    let limits = Limits {
        memory_bytes: 32 << 20,
        ..Limits::default()
    };
    let e = run_with(
        "const c = []; while (true) c.push(new Array(1e6).fill(1))",
        limits.clone(),
        Duration::from_secs(10),
    )
    .0
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Memory, "{e:?}");
    let e = run_with(
        "const c = []; try { while (true) c.push(new Array(1e6).fill(1)) } catch (e) {} return 1",
        limits,
        Duration::from_secs(10),
    )
    .0
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Memory, "{e:?}");
}

#[test]
fn deep_recursion_is_a_memory_error() {
    let e = run("function f(n) { return f(n + 1) + 1 } return f(0)")
        .0
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Memory, "{e:?}");
    assert_eq!(
        run("function f(n) { return f(n + 1) } try { f(0) } catch (e) { return e.name }")
            .0
            .unwrap(),
        "\"RangeError\""
    );
}

#[test]
fn unknown_tool_is_invalid_args() {
    let e = run("return await external_nope({})").0.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgs);
    assert!(e.message.contains("external_echo"), "{e:?}");
}

#[test]
fn unserialisable_results() {
    assert_eq!(run("return 10n").0.unwrap_err().kind, ErrorKind::Result);
    assert_eq!(
        run("const a = {}; a.a = a; return a").0.unwrap_err().kind,
        ErrorKind::Result
    );
    assert_eq!(
        run("return [NaN, undefined, () => 1]").0.unwrap(),
        "[null,null,null]"
    );
}

#[test]
fn syntax_error_is_typed() {
    let e = run("return (").0.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Syntax, "{e:?}");
}

#[test]
fn deadlock_is_reported() {
    let e = run("await new Promise(() => {})").0.unwrap_err();
    assert_eq!(e.name, "DeadlockError");
}

#[test]
fn a_step_past_its_slice_suspends_and_finishes_on_another_thread() {
    let tools = vec!["echo".to_owned()];
    let code = "const a = await external_echo({ n: 1 })\n\
                let i = 0; const end = Date.now() + 50; while (Date.now() < end) i++\n\
                console.log('computed')\nreturn a.n + (i > 0 ? 1 : 0)";
    let mut exec = Execution::new(
        code,
        &tools,
        Limits::default(),
        Instant::now() + Duration::from_secs(5),
    )
    .unwrap();
    let first = exec.step(Settles::new(), Some(Duration::from_millis(2)));
    assert!(matches!(first.status, Status::Waiting { .. }));
    let mut settles = Settles::new();
    settles.ok(first.calls[0].id, &first.calls[0].args_json);
    let second = exec.step(settles, Some(Duration::from_millis(2)));
    assert!(matches!(second.status, Status::Suspended));
    assert!(second.logs.is_empty());
    let finished = std::thread::spawn(move || exec.resume()).join().unwrap();
    assert_eq!(finished.logs.len(), 1);
    match finished.status {
        Status::Done(Ok(json)) => assert_eq!(json, "2"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_suspended_step_is_stopped_when_the_execution_is_dropped() {
    let tools: Vec<String> = vec![];
    let mut exec = Execution::new(
        "while (true) {}",
        &tools,
        Limits::default(),
        Instant::now() + Duration::from_secs(60),
    )
    .unwrap();
    let out = exec.step(Settles::new(), Some(Duration::from_millis(2)));
    assert!(matches!(out.status, Status::Suspended));
    let started = Instant::now();
    drop(exec);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn global_scope_is_clean() {
    let (r, _) =
        run("return Object.getOwnPropertyNames(globalThis).filter(n => /^[a-z]/.test(n)).sort()");
    let names: Vec<String> = serde_json::from_str(&r.unwrap()).unwrap();
    for forbidden in ["require", "process", "fetch", "print", "std", "os", "Deno"] {
        assert!(
            !names.contains(&forbidden.to_owned()),
            "{forbidden} in {names:?}"
        );
    }
}

#[test]
fn executions_run_on_threads_other_than_the_one_that_made_the_engine() {
    // Engines are prewarmed on a background thread and used on others; each thread must see
    // its own stack top. Run several in a row on fresh threads.
    for i in 0..8 {
        let handle = std::thread::spawn(move || run(&format!("return {i} + 1")).0.unwrap());
        assert_eq!(handle.join().unwrap(), format!("{}", i + 1));
    }
    let tools = vec!["echo".to_owned()];
    let mut exec = Execution::new(
        "return (await external_echo({ i: 5 })).i",
        &tools,
        Limits::default(),
        Instant::now() + Duration::from_secs(5),
    )
    .unwrap();
    let first = exec.step(Settles::new(), None);
    let call = first.calls[0].clone();
    let out = std::thread::spawn(move || {
        let mut settles = Settles::new();
        settles.ok(call.id, &call.args_json);
        let out = exec.step(settles, None);
        (out.status, exec)
    })
    .join()
    .unwrap();
    assert!(
        matches!(out.0, Status::Done(Ok(ref r)) if r == "5"),
        "{:?}",
        out.0
    );
}

/// Runs `js` once, answers every call of its first step with `answer`, and returns the result.
fn answer_first_step(
    js: &str,
    answer: impl FnOnce(&[isolate::ToolCall]) -> Settles,
) -> Result<String, JsError> {
    let tools = vec!["echo".to_owned()];
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut exec = Execution::new(js, &tools, Limits::default(), deadline).unwrap();
    let first = exec.step(Settles::new(), None);
    let out = exec.step(answer(&first.calls), None);
    match out.status {
        Status::Done(r) => r,
        other => panic!("not done: {other:?}"),
    }
}

#[test]
fn one_batch_settles_results_and_both_error_kinds_in_any_order() {
    let js = "const out = await Promise.allSettled([external_echo({a: 1}), external_echo({b: 2}), external_echo({c: 3})])\n\
              return out.map(o => o.status === 'fulfilled' ? o.value : [o.reason.name, o.reason.message])";
    let r = answer_first_step(js, |calls| {
        let mut settles = Settles::new();
        settles.error(calls[2].id, Outcome::InvalidArgs, "c: \"bad\"");
        settles.ok(calls[0].id, &calls[0].args_json);
        settles.error(calls[1].id, Outcome::ToolError, "down");
        settles
    });
    assert_eq!(
        r.unwrap(),
        r#"[{"a":1},["ToolError","down"],["InvalidArgumentsError","c: \"bad\""]]"#
    );
}

#[test]
fn unknown_and_repeated_ids_are_ignored() {
    let js = "return (await external_echo({ i: 1 })).i";
    let r = answer_first_step(js, |calls| {
        let mut settles = Settles::new();
        settles.ok(999, "{\"i\":7}");
        settles.ok(calls[0].id, "{\"i\":2}");
        settles.ok(calls[0].id, "{\"i\":3}");
        settles
    });
    assert_eq!(r.unwrap(), "2");
}

#[test]
fn an_unreadable_batch_rejects_its_calls_with_tool_errors() {
    let js = "try { await external_echo({}) } catch (e) { return [e.name, e.message] }";
    let r = answer_first_step(js, |calls| {
        let mut settles = Settles::new();
        settles.ok(calls[0].id, "{not json");
        settles
    });
    assert_eq!(
        r.unwrap(),
        r#"["ToolError","the tool's result could not be read as JSON"]"#
    );
}

#[test]
fn the_report_channel_is_handed_to_the_program_only_when_opened() {
    let tools: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let js = "const ch = __codemode_channel; __codemode_channel = undefined\n\
              if (ch) { ch('one'); ch('two') }\n\
              console.log('log')\n\
              return [typeof ch, typeof arguments[0]]";
    for opened in [false, true] {
        let mut exec = Execution::new(js, &tools, Limits::default(), deadline).unwrap();
        if opened {
            exec.open_report_channel();
        }
        let out = exec.step(Settles::new(), None);
        let lines: Vec<(LogLevel, String)> =
            out.logs.into_iter().map(|l| (l.level, l.text)).collect();
        match out.status {
            Status::Done(Ok(r)) if opened => assert_eq!(r, r#"["function","undefined"]"#),
            Status::Done(Ok(r)) => assert_eq!(r, r#"["undefined","undefined"]"#),
            other => panic!("{other:?}"),
        }
        let mut expected = Vec::new();
        if opened {
            expected.push((LogLevel::Report, "one".to_owned()));
            expected.push((LogLevel::Report, "two".to_owned()));
        }
        expected.push((LogLevel::Log, "log".to_owned()));
        assert_eq!(lines, expected);
    }
}

#[test]
fn a_host_library_is_called_with_the_channel_and_its_value_handed_to_the_program() {
    let tools: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let library = "(function (report) { return { hello(x) { report('hi ' + x); return x * 2 } } })";
    let js = "const lib = __codemode_channel; __codemode_channel = undefined\nreturn lib.hello(21)";
    let mut exec = Execution::new(js, &tools, Limits::default(), deadline).unwrap();
    exec.open_report_channel();
    exec.set_library(library).unwrap();
    let out = exec.step(Settles::new(), None);
    assert!(
        matches!(out.status, Status::Done(Ok(ref r)) if r == "42"),
        "{:?}",
        out.status
    );
    assert_eq!(out.logs[0].text, "hi 21");
    let mut broken = Execution::new(js, &tools, Limits::default(), deadline).unwrap();
    assert!(broken.set_library("(function (").is_err());
}
