"""Values a hostile program sends across the bridge: they count toward its limits, and they
come back as typed results, never as exceptions out of ``execute()`` or a crash."""

from __future__ import annotations

from typing import Any

import pytest

import codemode
from codemode.engine import say

from ..conftest import LOCAL_WORKERD, engine_gap, make_tools

pytestmark = pytest.mark.anyio


def _echo_tool() -> codemode.Tool:
    async def echo(args: dict[str, Any]) -> dict[str, Any]:
        return args

    return codemode.Tool.from_schema("echo_any", "Return the input", {"type": "object"}, None, echo)


def _code_mode(driver: codemode.drivers.IsolateDriver, **limits: Any) -> codemode.CodeMode:
    return codemode.create_code_mode([*make_tools(), _echo_tool()], driver=driver, **limits)


async def _then_healthy(cm: codemode.CodeMode) -> None:
    after = await cm.execute("return (await external_echo({ i: 41 })).i + 1")
    assert after.success and after.result == 42, after


@engine_gap("cloudflare", reason=LOCAL_WORKERD, only=("8000-megabyte", "doubling"), run=False)
@pytest.mark.parametrize(
    "argument",
    [
        'Array(8000).fill("x".repeat(1 << 20))',
        "(() => { const a = []; a.length = 2 ** 31 - 1; return a })()",
        "(() => { let o = [1]; for (let i = 0; i < 26; i++) o = [o, o]; return o })()",
        "(() => { const a = []; a.length = 2 ** 32 - 1; return a })()",
    ],
    ids=["8000-megabyte-strings", "sparse-2e31", "doubling-dag", "sparse-2e32"],
)
async def test_huge_tool_arguments_stop_at_the_memory_limit_or_deadline(
    driver: codemode.drivers.IsolateDriver, argument: str
) -> None:
    cm = _code_mode(driver, timeout=2.0, memory_limit_mb=16)
    result = await cm.execute(f"return await external_echo_any({{ a: {argument} }})")
    assert result.error is not None, str(result.result)[:100]
    # or refused before any JSON is built (V8's strings stop at 2**29 - 24 characters)
    assert result.error.kind in ("memory", "timeout", "invalid_args"), result.error
    await _then_healthy(cm)


async def test_a_caught_bridge_limit_still_ends_the_execution(driver: codemode.drivers.IsolateDriver) -> None:
    # the deadline is far: the point is the memory limit (the 100 MB of strings take over 2 s
    # to build on a local workerd under load)
    cm = _code_mode(driver, timeout=10.0, memory_limit_mb=16)
    code = (
        "const big = { a: Array(100).fill('x'.repeat(1 << 20)) }\n"
        "try { await external_echo_any(big) } catch (e) {}\n"
        "return 'went on'"
    )
    result = await cm.execute(code)
    assert result.error is not None and result.error.kind == "memory", result
    await _then_healthy(cm)


async def test_lone_surrogates_become_replacement_characters_everywhere(
    driver: codemode.drivers.IsolateDriver,
) -> None:
    cm = _code_mode(driver, timeout=5.0)
    code = (
        "console.log('log \\ud800 end')\n"
        "const echoed = await external_echo_any({ ['k\\udc00']: 'v\\ud800', nested: ['\\udbff'] })\n"
        "return { echoed, direct: 'r\\ud800', pair: '\\ud83d\\ude00' }"
    )
    result = await cm.execute(code)
    assert result.success, result.error
    assert result.logs == ["log \ufffd end"]
    assert result.result == {
        "echoed": {"k\ufffd": "v\ufffd", "nested": ["\ufffd"]},
        "direct": "r\ufffd",
        "pair": "\U0001f600",
    }


async def test_lone_surrogates_in_the_program_text(driver: codemode.drivers.IsolateDriver) -> None:
    cm = _code_mode(driver, timeout=5.0)
    result = await cm.execute("return 'a\ud800b'")
    assert result.success, result.error
    assert result.result == "a\ufffdb"
    output = await cm.tool.call({"typescriptCode": "return 'x\udfff'"})
    assert output["success"] and output["result"] == "x\ufffd"


async def test_nul_is_kept_in_keys_and_values(driver: codemode.drivers.IsolateDriver) -> None:
    cm = _code_mode(driver, timeout=5.0)
    code = "const r = await external_echo_any({ 'role\\0x': 'a\\0b' })\nreturn [Object.keys(r), r]"
    result = await cm.execute(code)
    assert result.success, result.error
    assert result.result == [["role\0x"], {"role\0x": "a\0b"}]


async def test_a_lone_surrogate_in_an_error_message_is_described(
    driver: codemode.drivers.IsolateDriver,
) -> None:
    cm = _code_mode(driver, timeout=5.0)
    result = await cm.execute("throw new Error('bad \\ud800 thing')")
    assert result.error is not None
    assert (result.error.kind, result.error.message) == ("runtime", "bad \ufffd thing")


@pytest.mark.parametrize("where", ["result", "argument"])
async def test_deep_values_are_typed_errors(driver: codemode.drivers.IsolateDriver, where: str) -> None:
    cm = _code_mode(driver, timeout=5.0)
    make = "let v = 1; for (let i = 0; i < 2000; i++) v = [v]"
    if where == "result":
        result = await cm.execute(f"{make}\nreturn v")
        assert result.error is not None and result.error.kind == "result", result
        assert "nested" in result.error.message
    else:
        result = await cm.execute(f"{make}\nreturn await external_echo_any({{ v }})")
        assert result.error is not None and result.error.kind == "invalid_args", result
        caught = await cm.execute(
            f"{make}\ntry {{ await external_echo_any({{ v }}) }} catch (e) {{ return e.name }}"
        )
        assert caught.result == "InvalidArgumentsError"
    await _then_healthy(cm)


async def test_array_lengths_past_int32_in_arguments(driver: codemode.drivers.IsolateDriver) -> None:
    cm = _code_mode(driver, timeout=1.0, memory_limit_mb=16)
    code = "const a = []; a.length = 2 ** 31 + 5; return await external_echo_any({ a })"
    result = await cm.execute(code)
    # or refused before any JSON is built (V8's strings stop at 2**29 - 24 characters)
    assert result.error is not None and result.error.kind in ("memory", "timeout", "invalid_args"), result
    await _then_healthy(cm)


async def test_log_overflow_error_fails_even_when_the_program_ends_at_once(
    driver: codemode.drivers.IsolateDriver,
) -> None:
    cm = _code_mode(driver, timeout=5.0, max_log_lines=5, log_overflow="error")
    result = await cm.execute("for (let i = 0; i < 20; i++) console.log(i)\nreturn 'done'")
    assert result.error is not None and result.error.kind == "output_limit", result


async def test_a_huge_console_line_is_not_copied(driver: codemode.drivers.IsolateDriver) -> None:
    cm = _code_mode(driver, timeout=5.0, max_log_bytes=1000)
    result = await cm.execute("console.log('x'.repeat(50_000_000)); console.log('after'); return 1")
    assert result.success, result.error
    assert len("".join(result.logs)) < 2000
    assert any("truncated" in line for line in result.logs)


async def test_doubling_a_string_until_the_engine_refuses_is_a_memory_error(
    driver: codemode.drivers.IsolateDriver,
) -> None:
    cm = _code_mode(driver, timeout=5.0, memory_limit_mb=16)
    result = await cm.execute("let s = 'x'; while (true) s += s")
    assert result.error is not None and result.error.kind == "memory", result.error
    await _then_healthy(cm)


HUGE_BINARY = 200_000_000
"""Bytes of the binary values below: their base64 (266,666,668 characters) fits neither the
result's limit nor, with the buffer, the 256 MiB memory limit."""

HUGE_BASE64 = (HUGE_BINARY + 2) // 3 * 4


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("return new ArrayBuffer(200e6)", ("result", HUGE_BASE64 + 2)),
        (
            "return { a: [1, { b: new Uint8Array(200e6 + 1).subarray(1) }], s: 'é' }",
            ("result", len('{"a":[1,{"b":""}],"s":"é"}'.encode()) + HUGE_BASE64),
        ),
        ("return await external_echo_any({ data: new ArrayBuffer(200e6) })", ("memory", None)),
        (
            "try { await external_echo_any({ a: [{ b: new DataView(new ArrayBuffer(200e6)) }] }) } catch (e) {}\n"
            "return 'went on'",
            ("memory", None),
        ),
        ("console.log(new Uint8Array(200e6).subarray(0, 10)); return 'small views cross'", (None, None)),
    ],
    ids=["result", "nested-result", "argument", "caught-argument", "small-view"],
)
async def test_a_huge_binary_value_stops_at_its_limit_unbuilt(
    driver: codemode.drivers.IsolateDriver, code: str, outcome: tuple[str | None, int | None]
) -> None:
    cm = _code_mode(driver, timeout=20.0, memory_limit_mb=256)
    result = await cm.execute(code)
    kind, size = outcome
    if kind is None:
        assert result.success and result.logs == ['"AAAAAAAAAAAAAA=="'], result.error
    else:
        assert result.error is not None and result.error.kind == kind, result.error
    if size is not None:
        # the base64 is counted, never built: with the buffer it would not fit in memory
        assert result.error is not None
        assert result.error.message == say("result_too_large", bytes=size, max=16 << 20)
    await _then_healthy(cm)


async def test_binary_values_that_each_fit_count_together(driver: codemode.drivers.IsolateDriver) -> None:
    cm = _code_mode(driver, timeout=20.0)
    result = await cm.execute("return Array.from({ length: 40 }, () => new Uint8Array(1 << 20))")
    whole = 40 * ((1 << 20) + 2) // 3 * 4 + 40 * 2 + 39 + 2
    assert result.error is not None
    assert (result.error.kind, result.error.message) == (
        "result",
        say("result_too_large", bytes=whole, max=16 << 20),
    )
    await _then_healthy(cm)


async def test_replacing_what_the_bridge_reads_of_binary_values_changes_nothing(
    driver: codemode.drivers.IsolateDriver,
) -> None:
    cm = _code_mode(driver, timeout=5.0)
    code = """
const bytes = new Uint8Array([1, 2, 3, 4])
const view = bytes.subarray(1, 3)
const numbers = new Int16Array([-1, 300])
const buffer = bytes.buffer
const dv = new DataView(buffer, 2)
const T = Object.getPrototypeOf(Uint8Array).prototype
for (const key of ['buffer', 'byteOffset', 'byteLength', 'length']) Object.defineProperty(T, key, { get: () => 0 })
Object.defineProperty(T, Symbol.toStringTag, { get: () => 'Float64Array' })
Object.defineProperty(DataView.prototype, 'byteLength', { get: () => 0 })
Object.defineProperty(ArrayBuffer.prototype, 'byteLength', { get: () => 0 })
;(ArrayBuffer as any).isView = () => false
Object.prototype.isPrototypeOf = () => false
;(String as any).fromCharCode = () => 'x'
;(Uint8Array.prototype as any).toBase64 = () => 'forged'
;(Reflect as any).construct = () => ({})
console.log(view)
return { view, buffer, dv, numbers, echoed: await external_echo_any({ view, numbers }) }
"""
    result = await cm.execute(code)
    assert result.success, result.error
    assert result.logs == ['"AgM="']
    assert result.result == {
        "view": "AgM=",
        "buffer": "AQIDBA==",
        "dv": "AwQ=",
        "numbers": [-1, 300],
        "echoed": {"view": "AgM=", "numbers": [-1, 300]},
    }
