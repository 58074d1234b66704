"""Built-ins that loop natively over huge array-likes, sparse arrays and long strings: the
deadline holds inside them (they used to run for seconds, or forever, past it)."""

from __future__ import annotations

import time

import pytest

import codemode

pytestmark = pytest.mark.anyio

HUGE = "{ length: 2 ** 53 - 1 }"
SPARSE = "(() => { const a = []; a.length = 2 ** 32 - 1; return a })()"
NATIVES = [
    f"Array.prototype.copyWithin.call({HUGE}, 0, 1)",
    f"Array.prototype.reverse.call({HUGE})",
    f"Array.prototype.splice.call({HUGE}, 0, 1)",
    f"Array.prototype.shift.call({HUGE})",
    "Array.prototype.unshift.call({ length: 2 ** 53 - 2 }, 1)",
    f"Array.prototype.join.call({HUGE})",
    f"Array.prototype.fill.call({HUGE}, 0)",
    f"Array.prototype.lastIndexOf.call({HUGE}, 1)",
    f"Array.prototype.flat.call({HUGE})",
    "Array.prototype.sort.call({ length: 2 ** 32 - 1 })",
    "Array.prototype.concat.call([], { length: 2 ** 53 - 1, [Symbol.isConcatSpreadable]: true })",
    f"{SPARSE}.reverse()",
    f"{SPARSE}.copyWithin(0, 1)",
    f"{SPARSE}.shift()",
    f"{SPARSE}.splice(0, 1)",
    f"{SPARSE}.sort()",
    f"{SPARSE}.flat()",
    f"{SPARSE}.join()",
    'new Array(1e9) + ""',
    'Array(1e9).join("")',
    "JSON.stringify(new Array(3e6).fill(1))",
    'Array.from({ length: 1e6 }, (_, i) => "s" + (i * 7919 % 1000003)).sort()',
    '"ab".repeat(2e7).replaceAll("a", "xyz")',
    '"ab".repeat(5e7).split("")',
    "new Uint8Array(1e8).join()",
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the engine is the subject here, not the event loop


@pytest.mark.parametrize("code", NATIVES)
async def test_the_deadline_holds_inside_native_loops(driver: codemode.IsolateDriver, code: str) -> None:
    cm = codemode.create_code_mode([], driver=driver, timeout=0.2, memory_limit_mb=128)
    started = time.perf_counter()
    result = await cm.execute(code)
    elapsed = time.perf_counter() - started
    assert result.error is not None and result.error.kind in ("timeout", "memory"), result
    # before the engine polled inside these loops, they ran for 20 s or never ended
    assert elapsed < 10, elapsed
    assert (await cm.execute("return 1 + 1")).result == 2


async def test_cancelling_a_native_loop_stops_it(driver: codemode.IsolateDriver) -> None:
    import anyio

    cm = codemode.create_code_mode([], driver=driver, timeout=60)
    with anyio.move_on_after(0.2):
        await cm.execute(f"Array.prototype.copyWithin.call({HUGE}, 0, 1)")
    started = time.perf_counter()
    assert (await cm.execute("return 1 + 1")).result == 2
    assert time.perf_counter() - started < 5
    # and nothing keeps spinning on a core after it (a runaway thread burns 0.5 s of CPU here)
    await anyio.sleep(0.05)
    cpu = time.process_time()
    await anyio.sleep(0.5)
    assert time.process_time() - cpu < 0.25
