"""One contract on every engine: the same kinds, names and messages for the sandbox's own
errors (from the one table, ``_core.MESSAGES``), the same globals, the same log records. Each
case once differed between QuickJS and V8."""

from __future__ import annotations

from typing import Any

import pytest

import codemode
from codemode import _core
from codemode.engine import say

from .conftest import LOCAL_WORKERD, engine_gap, make_tools

pytestmark = pytest.mark.anyio


KINDS = [
    # an invalid length asked for is the program's error, not memory
    ("new Array(-1)", "runtime", "RangeError"),
    ("new Array(2 ** 32)", "runtime", "RangeError"),
    ("const a: number[] = []; a.length = -1", "runtime", "RangeError"),
    ("new Uint8Array(-1)", "runtime", "RangeError"),
    ("new ArrayBuffer(-1)", "runtime", "RangeError"),
    ("'x'.repeat(-1)", "runtime", "RangeError"),
    ("null!.x", "runtime", "TypeError"),
    ("JSON.parse('{')", "runtime", "SyntaxError"),
    ("throw 1", "runtime", "Error"),
    ("await new Promise(() => {})", "runtime", "DeadlockError"),
    ("return 10n", "result", "ResultError"),
    ("const o: any = {}; o.o = o; return o", "result", "ResultError"),
    ("function f(): number { return f() + 1 }\nreturn f()", "memory", "RangeError"),
    ("let s = 'x'; while (true) s += s", "memory", "MemoryError"),
    ("const a: unknown[] = []; while (true) a.push({ n: a.length })", "memory", "MemoryError"),
    ("return await external_nope({})", "invalid_args", "ReferenceError"),
    ("return await external_echo({ i: 'not a number' })", "invalid_args", "InvalidArgumentsError"),
    ("return await external_echo(5 as any)", "invalid_args", "InvalidArgumentsError"),
    ("return await external_fail({})", "tool", "ToolError"),
]


@engine_gap("cloudflare", reason=LOCAL_WORKERD, only=("a.push",), run=False)
@pytest.mark.parametrize(("code", "kind", "name"), KINDS)
async def test_errors_are_classified_alike(
    driver: codemode.drivers.IsolateDriver, code: str, kind: str, name: str
) -> None:
    cm = codemode.create_code_mode(make_tools(), driver=driver, timeout=10.0, memory_limit_mb=32)
    result = await cm.execute(code)
    assert result.error is not None, result
    assert (result.error.kind, result.error.name) == (kind, name), result.error


async def test_the_sandbox_own_messages_are_the_same_text(driver: codemode.drivers.IsolateDriver) -> None:
    cm = codemode.create_code_mode(
        make_tools(), driver=driver, timeout=10.0, memory_limit_mb=20.5, max_tool_calls=1, max_log_lines=1
    )
    expected: list[tuple[str, dict[str, Any]]] = [
        ("await new Promise(() => {})", {"kind": "runtime", "message": say("deadlock")}),
        ("let s = 'x'; while (true) s += s", {"kind": "memory", "message": say("memory", mib="20.5")}),
        (
            "await external_echo({ i: 1 }); return await external_echo({ i: 2 })",
            {"kind": "invalid_args", "message": say("call_limit", tool="external_echo", max=1)},
        ),
        (
            "return await external_echo(5 as any)",
            {"kind": "invalid_args", "message": say("args_not_object", tool="external_echo", got="5")},
        ),
        (
            "return await external_echo({ i: 10n } as any)",
            {"kind": "invalid_args", "message": say("args_not_json", tool="external_echo", cause="?")},
        ),
        (
            "return await external_nope({})",
            {
                "kind": "invalid_args",
                "message": say(
                    "unknown_tool",
                    name="external_nope",
                    available="external_echo, external_fail, external_sleep, external_add",
                ),
            },
        ),
        ("return 'x'.repeat(2 ** 20) + 'y'.repeat(2 ** 20)", None),
        ("setTimeout(5 as any, 1)", {"kind": "runtime", "message": say("timer_callback")}),
    ]
    for code, want in expected:
        result = await cm.execute(code)
        if want is None:
            assert result.success, result.error
            continue
        assert result.error is not None, code
        got = {"kind": result.error.kind, "message": result.error.message}
        if "(?)" in want["message"]:  # the engine's own words for the cause
            prefix = want["message"].split("(?)")[0]
            assert got["kind"] == want["kind"] and got["message"].startswith(prefix), (code, got)
        else:
            assert got == want, code
    small = codemode.create_code_mode(make_tools(), driver=driver, timeout=0.25, max_result_bytes=10)
    result = await small.execute("return 'x'.repeat(100)")
    assert result.error is not None
    assert result.error.message == say("result_too_large", bytes=102, max=10)
    result = await small.execute("while (true) {}")
    assert result.error is not None
    assert (result.error.kind, result.error.message) == ("timeout", say("timeout", ms=250))


async def test_console_lines_past_the_limit_are_cut_alike(driver: codemode.drivers.IsolateDriver) -> None:
    cm = codemode.create_code_mode(make_tools(), driver=driver, timeout=10.0, max_log_lines=2)
    result = await cm.execute("for (let i = 0; i < 5; i++) console.log(i)\nreturn 1")
    assert result.logs == ["0", "1", say("log_truncated", lines=2, bytes=1 << 20)]
    strict = codemode.create_code_mode(
        make_tools(), driver=driver, timeout=10.0, max_log_lines=2, log_overflow="error"
    )
    result = await strict.execute("for (let i = 0; i < 5; i++) console.log(i)\nreturn 1")
    assert result.error is not None
    assert (result.error.kind, result.error.message) == (
        "output_limit",
        say("log_limit", lines=2, bytes=1 << 20),
    )


async def test_console_events_keep_the_time_each_line_was_written(
    driver: codemode.drivers.IsolateDriver,
) -> None:
    cm = codemode.create_code_mode(make_tools(), driver=driver, timeout=10.0)
    events: list[codemode.Event] = []
    code = "console.log('a')\nawait new Promise((r) => setTimeout(r, 60))\nconsole.log('b')\nreturn 1"
    result = await cm.execute(code, on_event=events.append)
    assert result.success, result.error
    stamps = [e.value["timestamp"] for e in events if e.name == "code_mode:console"]
    assert len(stamps) == 2 and stamps[1] - stamps[0] >= 50, stamps


def test_every_message_has_its_values_named() -> None:
    for key, template in _core.MESSAGES.items():
        assert template and "{}" not in template, key
