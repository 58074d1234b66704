"""V8-specific behaviour: engine processes, hard memory, the isolate boundary.

The engine-neutral contract runs on V8 through the ``driver`` fixture (conftest.DRIVERS), and
the hostile suite in ``tests/hostile``; these tests cover what only this driver has: engine
processes that can die and are replaced, and memory outside the V8 heap.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import codemode

from .conftest import _v8_missing, make_tools
from .test_limits import probe_memory_bomb

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(_v8_missing() is not None, reason=str(_v8_missing())),
]


@pytest.fixture
def v8() -> codemode.CodeMode:
    return codemode.create_code_mode(make_tools(), driver=codemode.V8Driver(), timeout=10.0)


async def test_compute_runs_to_its_result(v8: codemode.CodeMode) -> None:
    # its speed (the JIT: W5 in benches/run.py --driver v8) is measured by the benchmarks
    code = "let s = 0\nfor (let i = 0; i < 2e7; i++) s += i % 7\nreturn s"
    assert (await v8.execute(code)).result == 59999997


async def test_memory_bomb_ends_only_its_execution(v8: codemode.CodeMode) -> None:
    code = "const c: number[][] = []\nwhile (true) { c.push(new Array(1_000_000).fill(c.length)) }"
    result = await v8.execute(code, memory_limit_mb=128)
    assert result.error is not None and result.error.kind == "memory"
    assert "128 MiB" in result.error.message
    assert (await v8.execute("return 1 + 1")).result == 2


async def test_array_buffer_memory_counts_even_when_caught(v8: codemode.CodeMode) -> None:
    code = "const keep: Uint8Array[] = []\ntry { for (;;) keep.push(new Uint8Array(4 << 20)) } catch (e) {}\nreturn keep.length"
    result = await v8.execute(code, memory_limit_mb=32)
    assert result.error is not None and result.error.kind == "memory"
    small = await v8.execute("return new Float64Array(1000).map((_, i) => i).reduce((a, b) => a + b)")
    assert small.result == 499500


async def test_engine_process_death_fails_the_run_and_is_replaced() -> None:
    import anyio

    driver = codemode.V8Driver()
    cm = codemode.create_code_mode(make_tools(), driver=driver, timeout=10.0)
    assert (await cm.execute("return 1")).result == 1
    killed: list[int] = []

    async def kill_soon() -> None:
        while not killed:  # as soon as an engine runs the program
            await anyio.sleep(0.05)
            for engine in list(driver._engines):
                if engine.run is not None and engine.proc is not None:
                    killed.append(engine.proc.pid)
                    engine.proc.kill()

    async with anyio.create_task_group() as tg:
        tg.start_soon(kill_soon)
        result = await cm.execute("return await external_sleep({ ms: 5000 })")
    assert killed
    assert result.error is not None and result.error.kind == "internal"
    assert "exited" in result.error.message
    assert (await cm.execute("return 2")).result == 2
    assert all(engine.proc is None or engine.proc.pid not in killed for engine in driver._engines)
    driver.close()


@pytest.mark.parametrize(
    "code",
    [
        # errors of the host realm must never reach the program
        "try { await import('fs') } catch (e: any) { return typeof e.constructor.constructor('return process')() }",
        "try { await eval(\"import('fs')\") } catch (e: any) { return typeof e.constructor.constructor('return process')() }",
        "(Error as any).prepareStackTrace = (e: any, s: any[]) => s\nreturn typeof (new Error('x').stack as any)",
        "return typeof (globalThis as any).constructor.constructor('return process')()",
        "function f(): any { try { return f() } catch (e: any) { try { console.log('x') } catch (e2: any) { return e2.constructor.constructor('return typeof process')() } } }\nreturn f()",
    ],
)
async def test_no_way_to_the_host_realm(v8: codemode.CodeMode, code: str) -> None:
    result = await v8.execute(code)
    if result.success:
        assert result.result in ("undefined", "string", None), result.result
    else:
        assert result.error is not None and result.error.kind in ("runtime", "memory"), result.error
        assert "process" not in result.error.message or "not defined" in result.error.message


async def test_leftover_work_after_return_does_not_block_the_next_run(v8: codemode.CodeMode) -> None:
    result = await v8.execute("(async () => { for (;;) await null })()\nreturn 'returned'")
    assert result.result == "returned"
    # the next execution runs within its own deadline: the leftover loop was not left running
    assert (await v8.execute("return 1 + 1", timeout=2.0)).result == 2


async def test_more_executions_than_workers_wait_their_turn() -> None:
    import anyio

    cm = codemode.create_code_mode(make_tools(), driver=codemode.V8Driver(max_workers=2), timeout=10.0)
    results: list[object] = []

    async def one(n: int) -> None:
        results.append((await cm.execute(f"await external_sleep({{ ms: 20 }})\nreturn {n}")).result)

    async with anyio.create_task_group() as tg:
        for n in range(8):
            tg.start_soon(one, n)
    assert sorted(results) == list(range(8))  # type: ignore[type-var]


def test_memory_bomb_leaves_the_python_host_alone() -> None:
    report = probe_memory_bomb("v8", 128)
    assert report["kind"] == "memory"
    assert report["after"] == 2
    assert report["growth"] < 16 * 1024 * 1024, report


async def test_an_engine_that_cannot_start_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bogus = tmp_path / "isolated_vm.node"
    bogus.write_bytes(b"not a shared library")
    monkeypatch.setenv("CODEMODE_ISOLATED_VM", str(bogus))
    driver = codemode.V8Driver()
    try:
        cm = codemode.create_code_mode(make_tools(), driver=driver, timeout=10.0)
        result = await cm.execute("return 1")
    finally:
        driver.close()
    assert result.error is not None and result.error.kind == "internal"
    assert "exited" in result.error.message
    assert "isolated_vm.node" in result.error.message, result.error.message  # Node's own reason


def test_works_from_a_path_reached_through_symlinks(tmp_path: Path) -> None:
    package_root = Path(codemode.__file__).resolve().parent.parent
    linked = tmp_path / "linked-site"
    linked.symlink_to(package_root, target_is_directory=True)
    node_link = tmp_path / "node"
    node_link.symlink_to(codemode.v8.find_node())
    code = (
        "import asyncio, codemode\n"
        "cm = codemode.create_code_mode([], driver=codemode.V8Driver())\n"
        "print(asyncio.run(cm.execute('return 6 * 7')).result)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(linked), "CODEMODE_NODE": str(node_link)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "42", out.stderr


async def test_a_deadline_inside_a_native_builtin_stops_the_engine(v8: codemode.CodeMode) -> None:
    code = "Array.prototype.copyWithin.call({ length: 2 ** 40 }, 0, 1)\nreturn 'done'"
    result = await v8.execute(code, timeout=0.5)
    assert result.error is not None and result.error.kind == "timeout"
    assert (await v8.execute("return 3")).result == 3


@pytest.mark.parametrize(
    "code",
    [
        "const B: any = Object.getPrototypeOf(Int8Array.prototype).constructor\nconst keep = []\nfor (let i = 0; i < 64; i++) keep.push(new ArrayBuffer(1 << 20))\nreturn keep.length",
        "const AB: any = Object.getPrototypeOf(ArrayBuffer)\nconst keep = []\nfor (let i = 0; i < 64; i++) keep.push(new AB(1 << 20))\nreturn keep.length",
        "const keep = []\nfor (let i = 0; i < 64; i++) keep.push(new ArrayBuffer(8).transfer(1 << 20))\nreturn keep.length",
        "const keep = []\nfor (let i = 0; i < 64; i++) { const b = new (ArrayBuffer as any)(0, { maxByteLength: 1 << 20 }); b.resize(1 << 20); keep.push(b) }\nreturn keep.length",
        "const keep = []\nconst AB: any = new Uint8Array(1).buffer.constructor\nfor (let i = 0; i < 64; i++) { const b = new AB(0, { maxByteLength: 1 << 20 }); b.resize(1 << 20); keep.push(b) }\nreturn keep.length",
        "const keep = []\nfor (let i = 0; i < 64; i++) keep.push(Uint8Array.from({ length: 1 << 20 }))\nreturn keep.length",
        "const keep = []\nfor (let i = 0; i < 64; i++) keep.push(new (new Uint8Array(1).constructor as any)(1 << 20))\nreturn keep.length",
        "const keep = []\nfor (let i = 0; i < 64; i++) keep.push(new Float64Array(1 << 17).map((x) => x))\nreturn keep.length",
        "return 'ab'.repeat(2 ** 27).length",
        "return ''.padEnd(2 ** 28, 'ab').length",
    ],
)
async def test_no_allocation_route_around_the_memory_limit(v8: codemode.CodeMode, code: str) -> None:
    result = await v8.execute(code, memory_limit_mb=16)
    assert result.error is not None, result
    # the memory limit, or no such route at all (the engine's own constructors are out of reach)
    assert result.error.kind == "memory" or "not a constructor" in result.error.message, result
    assert (await v8.execute("return 1")).result == 1


async def test_a_missing_engine_is_an_error_result(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CODEMODE_ISOLATED_VM", str(tmp_path / "absent.node"))
    cm = codemode.create_code_mode(make_tools(), driver=codemode.V8Driver(), timeout=10.0)
    result = await cm.execute("return 1")
    assert result.error is not None and result.error.kind == "internal"
    assert "isolated-vm" in result.error.message


async def test_drivers_share_one_pool_and_close_only_their_own() -> None:
    import anyio

    first, second = codemode.V8Driver(), codemode.V8Driver(max_workers=4)
    one = codemode.create_code_mode(make_tools(), driver=first, timeout=10.0)
    two = codemode.create_code_mode(make_tools(), driver=second, timeout=10.0)
    try:
        assert (await one.execute("return 1")).result == 1
        assert (await two.execute("return 2")).result == 2
        assert first._get_pool() is second._get_pool()
        results: dict[str, object] = {}

        async def run(name: str, cm: codemode.CodeMode, code: str) -> None:
            results[name] = await cm.execute(code)

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, "first", one, "await external_sleep({ ms: 5000 })\nreturn 'slept'")
            tg.start_soon(run, "second", two, "await external_sleep({ ms: 300 })\nreturn 'second'")
            await anyio.sleep(0.1)
            first.close()  # ends the first driver's execution, not the second's
        ended = results["first"]
        assert isinstance(ended, codemode.ExecutionResult)
        assert ended.error is not None and ended.error.kind == "internal", ended
        assert isinstance(results["second"], codemode.ExecutionResult)
        assert results["second"].result == "second"
        assert (await two.execute("return 3")).result == 3
        closed = await one.execute("return 4")
        assert closed.error is not None and "closed" in closed.error.message
    finally:
        first.close()
        second.close()


async def test_sequential_tool_calls_are_answered_on_the_loop() -> None:
    # Many sequential calls in one execution, on either event loop (asyncio or trio): the
    # engine is read on the run's own loop, with polling right after each answer.
    driver = codemode.V8Driver()
    cm = codemode.create_code_mode(make_tools(), driver=driver, timeout=20.0)
    try:
        code = "let t = 0\nfor (let i = 0; i < 2000; i++) { const r = await external_echo({ i }); t += r.i }\nreturn t"
        result = await cm.execute(code)
        assert result.result == sum(range(2000)), result
    finally:
        driver.close()


async def test_back_to_back_runs_reuse_engines_getting_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    # An engine makes its next isolate right after each run; a run that finds none ready
    # waits for it instead of starting another process. Back to back, the pool starts no
    # more than the engines it keeps ready plus the one getting ready.
    driver = codemode.V8Driver(prewarm=2)
    pool = driver._get_pool()
    started: list[int] = []
    spawn = pool._spawn
    monkeypatch.setattr(pool, "_spawn", lambda mib: (started.append(mib), spawn(mib)))
    cm = codemode.create_code_mode([], driver=driver, timeout=10.0, memory_limit_mb=77)
    try:
        for i in range(300):
            assert (await cm.execute(f"return {i}")).result == i
        assert len(started) <= 3, started
    finally:
        driver.close()
