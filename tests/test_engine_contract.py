"""One contract on every engine: the same kinds, names and messages for the sandbox's own
errors (from the one table, ``_core.MESSAGES``), the same globals, the same log records. Each
case once differed between QuickJS and V8."""

from __future__ import annotations

import base64
import json
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
    # 64-bit integer arrays cross as arrays of their elements: BigInts, which JSON refuses
    ("return new BigInt64Array([1n])", "result", "ResultError"),
    (
        "return await external_echo({ i: new BigUint64Array([1n]) } as any)",
        "invalid_args",
        "InvalidArgumentsError",
    ),
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


def _with_echo_any() -> list[codemode.Tool]:
    async def echo_any(args: dict[str, Any]) -> dict[str, Any]:
        return args

    return [
        *make_tools(),
        codemode.Tool.from_schema("echo_any", "Return the input", {"type": "object"}, None, echo_any),
    ]


# What a binary value is as JSON (the same on every engine): the bytes of an ArrayBuffer, or
# the bytes a DataView, Uint8Array or Uint8ClampedArray views, as base64; any other typed
# array as an array of its numbers.
BINARY = [
    ("new Uint8Array([1, 2, 3, 4, 5])", "AQIDBAU="),
    ("new Uint8Array([104, 105, 33])", "aGkh"),
    ("new Uint8Array([1, 2, 3, 4]).buffer", "AQIDBA=="),
    ("new Uint8Array([0, 1, 2, 3, 4, 5]).subarray(1, 4)", "AQID"),
    ("new Uint8Array(new ArrayBuffer(8), 2, 3)", "AAAA"),
    ("new DataView(new Uint8Array([9, 1, 2, 9]).buffer, 1, 2)", "AQI="),
    ("new Uint8ClampedArray([255, 0])", "/wA="),
    ("new Uint8Array(0)", ""),
    ("new ArrayBuffer(0)", ""),
    ("new DataView(new ArrayBuffer(0))", ""),
    ("(() => { const b = new ArrayBuffer(4); new Uint8Array(b).fill(7); b.transfer(); return b })()", ""),
    ("(() => { const b = new ArrayBuffer(4); const v = new Uint8Array(b); b.transfer(); return v })()", ""),
    (
        "(() => { const b = new ArrayBuffer(2, { maxByteLength: 8 }); const v = new Uint8Array(b);"
        " b.resize(4); v[3] = 7; return v })()",
        "AAAABw==",
    ),
    ("new Int8Array([-1, 2])", [-1, 2]),
    ("new Int16Array([-300, 300])", [-300, 300]),
    ("new Uint16Array([65535])", [65535]),
    ("new Int32Array([-2147483648, 7])", [-2147483648, 7]),
    ("new Uint32Array([4294967295])", [4294967295]),
    ("new Float32Array([0.5, NaN, -Infinity])", [0.5, None, None]),
    ("new Float64Array([1.5, -0, 1e300])", [1.5, 0, 1e300]),
    ("new Float64Array(new ArrayBuffer(24), 8, 1)", [0]),
    ("new Float64Array(0)", []),
    ("new BigInt64Array(0)", []),
]


@pytest.mark.parametrize(("expression", "expected"), BINARY, ids=[e for e, _ in BINARY])
async def test_binary_values_cross_alike(
    driver: codemode.drivers.IsolateDriver, expression: str, expected: Any
) -> None:
    cm = codemode.create_code_mode(_with_echo_any(), driver=driver, timeout=10.0)
    code = (
        f"const value: any = {expression}\n"
        "console.log(value)\n"
        "const echoed = await external_echo_any({ value })\n"
        "return { value, echoed }"
    )
    result = await cm.execute(code)
    assert result.success, result.error
    # in the result, in a tool's argument, and as a console value
    assert result.result == {"value": expected, "echoed": {"value": expected}}
    assert [json.loads(line) for line in result.logs] == [expected]


async def test_binary_values_nested_anywhere_cross_as_base64(driver: codemode.drivers.IsolateDriver) -> None:
    seen: list[dict[str, Any]] = []

    async def store(args: dict[str, Any]) -> int:
        seen.append(args)
        return len(args)

    tools = [codemode.Tool.from_schema("store", "Store", {"type": "object"}, None, store)]
    cm = codemode.create_code_mode(tools, driver=driver, timeout=10.0)
    code = """
class Doc { bytes: Uint8Array; constructor(bytes: Uint8Array) { this.bytes = bytes } }
class Wrapped { toJSON() { return { size: 3, data: bytes } } }
const bytes = new Uint8Array([1, 2, 3])
const value = {
  list: [bytes, [bytes.buffer, new DataView(bytes.buffer, 1)]],
  doc: new Doc(bytes),
  viaToJSON: { toJSON: () => bytes },
  wrapped: new Wrapped(),
  own: Object.assign(new Uint8Array([9]), { toJSON: () => "its own toJSON" }),
  extra: Object.assign(new Uint8Array([4]), { label: "not written" }),
  date: new Date(0),
  map: new Map([[1, bytes]]),
}
await external_store({ data: value })
return value
"""
    expected = {
        "list": ["AQID", ["AQID", "AgM="]],
        "doc": {"bytes": "AQID"},
        "viaToJSON": "AQID",
        "wrapped": {"size": 3, "data": "AQID"},
        "own": "its own toJSON",
        "extra": "BA==",
        "date": "1970-01-01T00:00:00.000Z",
        "map": {},
    }
    result = await cm.execute(code)
    assert result.success, result.error
    assert result.result == expected
    assert seen == [{"data": expected}]


async def test_long_binary_values_are_whole_base64(driver: codemode.drivers.IsolateDriver) -> None:
    cm = codemode.create_code_mode(_with_echo_any(), driver=driver, timeout=10.0)
    sizes = [1535, 1536, 1537, 3071, 3072, 3073, 100_001]
    code = (
        f"const out = []\nfor (const n of {sizes}) {{\n"
        "  const b = new Uint8Array(n)\n"
        "  for (let i = 0; i < n; i++) b[i] = (i * 7 + 3) & 255\n"
        "  out.push(b)\n}\n"
        "return { out, echoed: (await external_echo_any({ out })).out }"
    )
    result = await cm.execute(code)
    assert result.success, result.error
    expected = [base64.b64encode(bytes((i * 7 + 3) & 255 for i in range(n))).decode() for n in sizes]
    assert result.result == {"out": expected, "echoed": expected}


async def test_base64_counts_toward_the_result_limit_alike(driver: codemode.drivers.IsolateDriver) -> None:
    cm = codemode.create_code_mode(make_tools(), driver=driver, timeout=10.0, max_result_bytes=10)
    cases = [
        # the whole size of the JSON, base64 included, though it is never built
        ("return new Uint8Array(9)", 14),
        ("return { a: new Uint8Array(9), s: 'é' }", 29),
        # each fits, not both
        ("return [new Uint8Array(6), new Uint8Array(6)]", 23),
    ]
    for code, size in cases:
        result = await cm.execute(code)
        assert result.error is not None, code
        assert (result.error.kind, result.error.message) == (
            "result",
            say("result_too_large", bytes=size, max=10),
        ), code
    result = await cm.execute("return [new Uint8Array(3)]")
    assert result.result == ["AAAA"], result.error
