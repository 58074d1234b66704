"""Every limit holds, fails with its typed error, and leaves the host able to run the next program."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

import codemode

from .conftest import LOCAL_WORKERD, engine_gap, make_tools

pytestmark = pytest.mark.anyio


async def expect_failure(
    cm: codemode.CodeMode, code: str, kind: str, **limits: Any
) -> codemode.ExecutionError:
    result = await cm.execute(code, **limits)
    assert not result.success, result.result
    assert result.error is not None
    assert result.error.kind == kind, result.error
    after = await cm.execute("return 1 + 1")
    assert after.success and after.result == 2
    return result.error


async def timed(cm: codemode.CodeMode, code: str, kind: str, **limits: Any) -> float:
    started = time.perf_counter()
    await expect_failure(cm, code, kind, **limits)
    return time.perf_counter() - started


@engine_gap("cloudflare", reason=LOCAL_WORKERD, run=False)
async def test_busy_loop_times_out(cm: codemode.CodeMode) -> None:
    elapsed = await timed(cm, "while (true) {}", "timeout", timeout=0.2)
    assert 0.2 <= elapsed < 2.0


async def test_timeout_covers_awaited_tool_loop(cm: codemode.CodeMode) -> None:
    elapsed = await timed(
        cm,
        "let i = 0\nwhile (true) { await external_echo({ i: i++ }) }",
        "timeout",
        timeout=0.2,
        max_tool_calls=100_000_000,
    )
    assert 0.2 <= elapsed < 2.0


async def test_timeout_covers_a_hung_tool(cm: codemode.CodeMode) -> None:
    elapsed = await timed(cm, "return await external_sleep({ ms: 5000 })", "timeout", timeout=0.2)
    assert 0.2 <= elapsed < 2.0


async def test_timeout_covers_timers(cm: codemode.CodeMode) -> None:
    elapsed = await timed(cm, "await new Promise(r => setTimeout(r, 5000))", "timeout", timeout=0.2)
    assert 0.2 <= elapsed < 2.0


@engine_gap("cloudflare", reason=LOCAL_WORKERD, run=False)
async def test_timeout_inside_catch_all(cm: codemode.CodeMode) -> None:
    code = "for (;;) { try { while (true) {} } catch (e) {} finally { continue } }"
    await expect_failure(cm, code, "timeout", timeout=0.2)


@engine_gap("cloudflare", reason=LOCAL_WORKERD, run=False)
async def test_timeout_in_regex_and_sort(cm: codemode.CodeMode) -> None:
    await expect_failure(cm, "return /(a+)+$/.test('a'.repeat(40) + 'b')", "timeout", timeout=0.3)
    sort = "const a = Array.from({length: 2e5}, (_, i) => i); for (;;) a.sort((x, y) => y - x)"
    await expect_failure(cm, sort, "timeout", timeout=0.3)


@engine_gap("cloudflare", reason=LOCAL_WORKERD, run=False)
async def test_memory_bomb_is_stopped(cm: codemode.CodeMode) -> None:
    code = "const chunks: number[][] = []\nwhile (true) { chunks.push(new Array(1_000_000).fill(chunks.length)) }"
    error = await expect_failure(cm, code, "memory", memory_limit_mb=32)
    assert "memory" in error.message


@engine_gap("cloudflare", reason=LOCAL_WORKERD, run=False)
async def test_memory_error_caught_by_program_still_fails(cm: codemode.CodeMode) -> None:
    code = "const keep: string[] = []\ntry { for (;;) keep.push('x'.repeat(1 << 20) + keep.length) } catch (e) {}\nreturn keep.length"
    await expect_failure(cm, code, "memory", memory_limit_mb=16)


async def test_string_and_json_bombs(cm: codemode.CodeMode) -> None:
    await expect_failure(
        cm, "let s = 'x'.repeat(1024); for (;;) s = s.repeat(2)", "memory", memory_limit_mb=16
    )
    await expect_failure(
        cm,
        "const a = new Array(1e6).fill('abc'); return JSON.stringify(a).repeat(100)",
        "memory",
        memory_limit_mb=16,
    )


async def test_typed_array_bomb(cm: codemode.CodeMode) -> None:
    await expect_failure(cm, "return new Uint8Array(64 * 1024 * 1024).length", "memory", memory_limit_mb=32)


async def test_deep_recursion(cm: codemode.CodeMode) -> None:
    error = await expect_failure(
        cm, "function f(n: number): number { return f(n + 1) + 1 }\nreturn f(0)", "memory"
    )
    assert error.name in ("RangeError", "InternalError")
    result = await cm.execute(
        "function f(n: number): number { return f(n + 1) }\ntry { f(0) } catch (e: any) { return e.name }"
    )
    assert result.success and result.result in ("RangeError", "InternalError")


DEPTH = "let d = 0\nfunction f(): void { d++; f() }\ntry { f() } catch (e) {}\nreturn d"


@engine_gap("cloudflare", reason="a Worker's stack is the runtime's own: stack_limit_kb does not apply")
async def test_stack_limit_bounds_recursion(cm: codemode.CodeMode) -> None:
    """``stack_limit_kb`` is the stack a program gets: the depth it reaches grows with it."""
    depths = {}
    for kb in (256, 2048):
        result = await cm.execute(DEPTH, stack_limit_kb=kb)
        assert result.success, result.error
        depths[kb] = result.result
    assert depths[2048] > 4 * depths[256] > 0, depths


async def test_stack_limit_beyond_the_threads_stack_holds(cm: codemode.CodeMode) -> None:
    """A limit above what a thread's stack holds (and above 16 MiB, which QuickJS's binding
    once took to mean no limit at all) still ends deep recursion with an error the program
    can catch, and the host survives."""
    result = await cm.execute(DEPTH, stack_limit_kb=64 * 1024)
    assert result.success, result.error
    assert result.result > 0
    after = await cm.execute("return 1 + 1")
    assert after.success and after.result == 2


async def test_tool_call_limit(driver: codemode.drivers.IsolateDriver) -> None:
    cm = codemode.create_code_mode(make_tools(), driver=driver, max_tool_calls=50)
    error = await expect_failure(cm, "for (let i = 0; ; i++) await external_echo({ i })", "invalid_args")
    assert "limit" in error.message
    result = await cm.execute(
        "let n = 0\ntry { for (let i = 0; ; i++) { await external_echo({ i }); n++ } } catch (e: any) { return [n, e.name] }"
    )
    assert result.result == [50, "InvalidArgumentsError"]


async def test_concurrent_tool_calls_are_capped_and_queued(driver: codemode.drivers.IsolateDriver) -> None:
    running = 0
    peak = 0

    async def slow(args: dict[str, Any]) -> dict[str, Any]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.01)
        running -= 1
        return args

    tool = codemode.Tool.from_schema("slow", "slow echo", {"type": "object"}, None, slow)
    cm = codemode.create_code_mode([tool], driver=driver, max_concurrent_tool_calls=8)
    result = await cm.execute(
        "const r = await Promise.all(Array.from({ length: 40 }, (_, i) => external_slow({ i })))\nreturn r.length"
    )
    assert result.result == 40
    assert peak == 8


async def test_log_output_is_truncated_with_marker(driver: codemode.drivers.IsolateDriver) -> None:
    cm = codemode.create_code_mode(make_tools(), driver=driver, max_log_lines=100)
    result = await cm.execute("for (let i = 0; i < 1000; i++) console.log('line', i)\nreturn 'done'")
    assert result.success and result.result == "done"
    assert len(result.logs) == 101
    assert result.logs[99] == "line 99"
    assert "truncated" in result.logs[100]
    result = await cm.execute(
        "for (let i = 0; i < 100; i++) console.log('y'.repeat(100000))\nreturn 1", max_log_bytes=250_000
    )
    assert result.success
    assert len(result.logs) == 3 and "truncated" in result.logs[-1]


async def test_log_output_can_fail_hard(driver: codemode.drivers.IsolateDriver) -> None:
    cm = codemode.create_code_mode(make_tools(), driver=driver, max_log_lines=10, log_overflow="error")
    await expect_failure(cm, "for (;;) console.log('spam')", "output_limit")


async def test_result_size_limit(driver: codemode.drivers.IsolateDriver) -> None:
    cm = codemode.create_code_mode(make_tools(), driver=driver, max_result_bytes=1000)
    await expect_failure(cm, "return 'x'.repeat(2000)", "result")
    assert (await cm.execute("return 'x'.repeat(900)")).success


async def test_pending_tool_calls_are_cancelled_on_timeout(driver: codemode.drivers.IsolateDriver) -> None:
    finished: list[int] = []
    cancelled: list[int] = []

    async def hang(args: dict[str, Any]) -> None:
        try:
            await anyio.sleep(5)
            finished.append(args["i"])
        except anyio.get_cancelled_exc_class():
            cancelled.append(args["i"])
            raise

    tool = codemode.Tool.from_schema("hang", "never answers in time", {"type": "object"}, None, hang)
    cm = codemode.create_code_mode([tool], driver=driver, timeout=0.2)
    result = await cm.execute("await Promise.all([1, 2, 3].map(i => external_hang({ i })))")
    assert result.error is not None and result.error.kind == "timeout"
    await anyio.sleep(0.05)
    assert sorted(cancelled) == [1, 2, 3]
    assert finished == []


RSS_PROBE = str(Path(__file__).with_name("rss_probe.py"))


def probe_memory_bomb(driver: str, memory_limit_mb: int) -> dict[str, Any]:
    """Run the memory bomb in a fresh child process; its RSS growth, error kind and time."""
    out = subprocess.run(
        [sys.executable, RSS_PROBE, driver, str(memory_limit_mb)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


def test_memory_bomb_does_not_grow_the_host() -> None:
    """Run the bomb in a child process and read that process's RSS before and after."""
    report = probe_memory_bomb("quickjs", 32)
    assert report["kind"] == "memory"
    assert report["after"] == 2
    assert report["growth"] < 64 * 1024 * 1024, report
