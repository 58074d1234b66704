"""The worker pool of ``QuickJSDriver(isolation="process")``: it grows to the concurrency asked
for and no further, spreads executions, recycles workers, retires them after a limit, and
shrinks when idle. Real worker processes throughout."""

from __future__ import annotations

import sys
from typing import Any

import anyio
import pytest

import codemode
from codemode.process import WorkerPool

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform == "win32", reason="worker processes use POSIX pipes"),
]


def live(pool: WorkerPool) -> list[Any]:
    return [w for w in pool.workers if w.dead is None]


def code_mode(pool_options: dict[str, Any], tools: list[codemode.Tool] | None = None, **limits: Any) -> Any:
    driver = codemode.QuickJSDriver(isolation="process", **pool_options)
    return driver, codemode.create_code_mode(tools or [], driver=driver, **{"timeout": 10.0, **limits})


async def test_the_pool_grows_to_the_concurrency_and_no_further() -> None:
    gate = anyio.Event()

    async def wait(args: dict[str, Any]) -> int:
        await gate.wait()
        return 1

    tool = codemode.Tool.from_schema("wait", "Wait for the test", {"type": "object"}, None, wait)
    driver, cm = code_mode({"workers": 3}, [tool])
    results: list[codemode.ExecutionResult] = []

    async def one(i: int) -> None:
        results.append(await cm.execute(f"return {i} + await external_wait({{}})"))

    async with anyio.create_task_group() as tg:
        for i in range(30):
            tg.start_soon(one, i)
        while sum(w.load for w in live(driver.pool)) < 30:
            await anyio.sleep(0.01)
        loads = sorted(w.load for w in live(driver.pool))
        gate.set()
    assert loads == [10, 10, 10]
    assert sorted(r.result for r in results) == list(range(1, 31))
    driver.close()


async def test_one_execution_per_worker_at_a_time_when_asked() -> None:
    driver, cm = code_mode({"workers": 2, "executions_per_worker": 1})
    results = []

    async def one(i: int) -> None:
        results.append(await cm.execute(f"let s = 0; for (let j = 0; j < 1e5; j++) s += j; return {i}"))

    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(one, i)
    assert sorted(r.result for r in results) == list(range(6))
    assert len(live(driver.pool)) <= 2
    driver.close()


async def test_workers_are_recycled_after_n_executions() -> None:
    driver, cm = code_mode({"workers": 2, "recycle_after": 3})
    seen: dict[int, Any] = {}
    for i in range(10):
        result = await cm.execute(f"return {i}")
        assert result.result == i
        seen.update((id(w), w) for w in driver.pool.workers)
    assert sum(w.served for w in seen.values()) == 10
    assert all(w.served <= 3 for w in seen.values())
    assert all(w.dead is not None for w in seen.values() if w.served == 3)
    driver.close()


@pytest.mark.parametrize(
    ("code", "kind", "limits"),
    [
        ("while (true) {}", "timeout", {"timeout": 0.2}),
        ("const a = []; while (true) a.push('x'.repeat(1000));", "memory", {"memory_limit_mb": 16}),
    ],
)
async def test_a_worker_that_hit_a_limit_is_replaced(code: str, kind: str, limits: dict[str, Any]) -> None:
    driver, cm = code_mode({"workers": 1}, **limits)
    assert (await cm.execute("return 0")).success
    [first] = live(driver.pool)
    result = await cm.execute(code)
    assert result.error is not None and result.error.kind == kind
    assert first.dead is not None  # retired, and gone once its last execution ended
    after = await cm.execute("return 1 + 1")
    assert after.success and after.result == 2
    driver.close()


async def test_a_cancelled_execution_retires_its_worker() -> None:
    driver, cm = code_mode({"workers": 1})
    assert (await cm.execute("return 0")).success
    [first] = live(driver.pool)
    with anyio.move_on_after(0.2):
        await cm.execute("while (true) {}")
    assert first.dead is not None
    after = await cm.execute("return 1 + 1")
    assert after.success and after.result == 2
    driver.close()


async def test_idle_workers_beyond_one_are_closed() -> None:
    driver, cm = code_mode({"workers": 3, "idle_timeout": 0.0})

    async def one() -> None:
        assert (await cm.execute("let s = 0; for (let j = 0; j < 1e5; j++) s += j; return s")).success

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(one)
    assert len(live(driver.pool)) >= 2
    assert (await cm.execute("return 1")).success  # the pool looks at its idle workers
    assert len(live(driver.pool)) <= 2  # the one used, and at most a spare
    driver.close()


async def test_a_closed_pool_fails_executions_in_flight_as_internal() -> None:
    gate = anyio.Event()

    async def wait(args: dict[str, Any]) -> int:
        await gate.wait()
        return 1

    tool = codemode.Tool.from_schema("wait", "Wait for the test", {"type": "object"}, None, wait)
    driver, cm = code_mode({"workers": 1}, [tool])
    results = []

    async def victim() -> None:
        results.append(await cm.execute("return await external_wait({})"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(victim)
        while not any(w.load for w in driver.pool.workers):
            await anyio.sleep(0.01)
        driver.close()
        gate.set()
    assert results[0].error is not None and results[0].error.kind == "internal"


def test_isolation_must_be_known() -> None:
    with pytest.raises(ValueError):
        codemode.QuickJSDriver(isolation="container")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        codemode.QuickJSDriver(workers=2)
