"""Built-ins that loop natively over huge array-likes, sparse arrays and long strings: the
deadline holds inside them (they used to run for seconds, or forever, past it)."""

from __future__ import annotations

import time
from typing import Any

import pytest

import codemode

from ..conftest import LOCAL_WORKERD, engine_gap, runs_on_v8

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
    # a pattern that nearly matches everywhere: len * pattern_len steps
    *(
        f'"a".repeat(1e7).{call}("a".repeat(1e4) + "b"{arg})'
        for call, arg in [
            ("indexOf", ""),
            ("lastIndexOf", ""),
            ("includes", ""),
            ("split", ""),
            ("replace", ', ""'),
            ("replaceAll", ', ""'),
        ]
    ),
    # the default comparator of a typed array is native (8M elements: seconds)
    *(
        "const a = new Int32Array(2 ** 23); for (let i = 0; i < 2 ** 16; i++) a[i] = i * 2654435761;"
        f" for (let n = 2 ** 16; n < a.length; n *= 2) a.copyWithin(n, 0, n); a.{call}()"
        for call in ("sort", "toSorted")
    ),
    # regexps whose compilation is quadratic
    'new RegExp("(?<=" + "a".repeat(1e6) + ")")',
    'new RegExp("[" + Array.from({ length: 1e5 }, (_, i) => String.fromCharCode(2 * i)).join("") + "]")',
    # combining marks in reverse order of their classes: a quadratic sort
    '("\\u0301".repeat(1e5) + "\\u0316".repeat(1e5)).normalize("NFD")',
    '("\\u0301".repeat(1e5) + "\\u0316".repeat(1e5)).localeCompare("a")',
    # native iteration: each element of Array.from and of a spread
    'Array.from("x".repeat(3e7))',
    '[..."x".repeat(3e7)]',
    # BigInt arithmetic is quadratic in its size (up to 1 Mbit): seconds per operation
    "const x = 7n ** 300000n; for (;;) x.toString()",
    "const x = 7n ** 300000n; for (;;) x * x",
    "const x = 7n ** 300000n, y = 3n ** 200000n; for (;;) x / y",
    "for (;;) BigInt('9'.repeat(300000))",
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the engine is the subject here, not the event loop


@engine_gap("cloudflare", reason=LOCAL_WORKERD, run=False)
@pytest.mark.parametrize("code", NATIVES)
async def test_the_deadline_holds_inside_native_loops(
    driver: codemode.drivers.IsolateDriver, code: str
) -> None:
    cm = codemode.create_code_mode([], driver=driver, timeout=0.2, memory_limit_mb=128)
    started = time.perf_counter()
    result = await cm.execute(code)
    elapsed = time.perf_counter() - started
    # QuickJS stops at the deadline or the memory limit; V8 refuses some of these lengths at
    # once (RangeError, TypeError) or finishes them within its deadline's grace
    if not result.success:
        assert result.error is not None and result.error.kind in ("timeout", "memory", "runtime"), result
    # before the engine polled inside these loops, they ran for 20 s or never ended
    assert elapsed < 10, elapsed
    assert (await cm.execute("return 1 + 1")).result == 2


@engine_gap("cloudflare", reason=LOCAL_WORKERD, run=False)
async def test_cancelling_a_native_loop_stops_it(driver: codemode.drivers.IsolateDriver) -> None:
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


# Built-ins that work through their input in one native loop, linear in its size: with a
# deadline falling while they run, the run must end as a timeout, not finish late as a
# success. On QuickJS each takes 0.1-0.4 s at these sizes (2-vCPU EPYC); the program starts
# it just before the deadline (if that is already past, the run times out in the wait,
# which proves nothing but cannot fail). V8's built-ins do these in milliseconds, and its
# deadline inside one is `test_v8.py::test_a_deadline_inside_a_native_builtin_stops_the_engine`.
LINEAR = {
    "toLowerCase": ('const s = "Ä".repeat(2e7)', "s.toLowerCase()"),
    "toUpperCase": ('const s = "a".repeat(4e7)', "s.toUpperCase()"),
    "repeat": ('const s = "ab"', "s.repeat(3e7)"),
    "padStart": ('const s = "x"', 's.padStart(6e7, "ab")'),
    "encodeURIComponent": ('const s = "é".repeat(5e6)', "encodeURIComponent(s)"),
    "escape": ('const s = "é".repeat(1e7)', "escape(s)"),
    "JSON.parse": ('const s = "[" + "1,".repeat(5e6) + "1]"', "JSON.parse(s)"),
    "slice": ("const a = new Array(3e6).fill(1)", "a.slice()"),
    "concat": ("const a = new Array(2e6).fill(1)", "a.concat(a)"),
    "flat": ("const a = new Array(2e6).fill(1)", "[a].flat()"),
    "join": ('const a = new Array(3e6).fill("ab")', 'a.join(",")'),
    "Float64Array": ("const a = new Array(1.5e6).fill(1.5)", "new Float64Array(a)"),
    "Float64Array.from": ("const a = new Array(1.5e6).fill(1.5)", "Float64Array.from(a)"),
    "Object.keys": ("const a = new Array(1.5e6).fill(0)", "Object.keys(a)"),
    # quadratic: about 2.5 s for one toString, 0.6 s for one parse or division (2-vCPU EPYC)
    "BigInt.toString": ("const x = 7n ** 300000n", "x.toString()"),
    "BigInt division": ("const x = 7n ** 300000n, y = 3n ** 200000n", "x / y"),
    "BigInt parse": ("const s = '9'.repeat(300000)", "BigInt(s)"),
}


@pytest.mark.parametrize("name", sorted(LINEAR))
async def test_a_deadline_inside_a_linear_builtin_ends_the_run(
    driver: codemode.drivers.IsolateDriver, name: str
) -> None:
    if runs_on_v8(driver):
        pytest.skip("V8 runs these in milliseconds")
    setup, call = LINEAR[name]
    cm = codemode.create_code_mode([], driver=driver, timeout=1.5, memory_limit_mb=128)
    code = f"const t0 = Date.now()\n{setup}\nwhile (Date.now() - t0 < 1460) {{}}\nconst r = {call}\nreturn 'finished late'"
    result = await cm.execute(code)
    assert result.error is not None and result.error.kind == "timeout", result
    assert (await cm.execute("return 1 + 1")).result == 2


async def test_a_deadline_while_a_large_structure_is_freed_ends_the_run(
    driver: codemode.drivers.IsolateDriver,
) -> None:
    # Freeing three million objects cannot be interrupted (0.1-0.2 s on QuickJS here); a
    # deadline falling in it still ends the run as a timeout, and the structure is freed after.
    if runs_on_v8(driver):
        pytest.skip("V8 frees in its garbage collector, not in the program's own time")
    if getattr(driver, "isolation", None) == "process":
        pytest.skip("a worker's step is cut off 10 ms past the deadline, which a result may beat")
    cm = codemode.create_code_mode([], driver=driver, timeout=1.5, memory_limit_mb=768)
    code = (
        "const t0 = Date.now()\nlet a: any = []\nfor (let i = 0; i < 3e6; i++) a.push({ i })\n"
        "while (Date.now() - t0 < 1480) {}\na = null\nreturn 'finished late'"
    )
    result = await cm.execute(code)
    assert result.error is not None and result.error.kind == "timeout", result
    assert (await cm.execute("return 1 + 1")).result == 2


@engine_gap("cloudflare", reason=LOCAL_WORKERD, run=False)
async def test_a_loop_of_slow_builtins_is_stopped_on_time(driver: codemode.drivers.IsolateDriver) -> None:
    # Each `toReversed` of 3M elements copies for ~10 ms without a poll, and the interrupt
    # handler ran only every 10,000 polls: the loop reached its time slice and deadline only
    # after minutes, holding the event loop (first step) or a thread (later steps) all along.
    # Now a watcher has the handler run on time.
    import anyio

    cm = codemode.create_code_mode([], driver=driver, timeout=0.5, memory_limit_mb=256)
    result, stall = await _longest_loop_stall(
        cm.execute("const a = new Array(3e6).fill(1)\nfor (;;) a.toReversed()")
    )
    assert result.error is not None and result.error.kind == "timeout", result
    # the event loop was never held for long (it was held past the whole deadline before)
    assert stall < 0.4, stall
    # and nothing keeps computing after the run (a runaway thread burns 0.5 s of CPU here)
    await anyio.sleep(0.05)
    cpu = time.process_time()
    await anyio.sleep(0.5)
    assert time.process_time() - cpu < 0.25
    assert (await cm.execute("return 1 + 1")).result == 2


@engine_gap("cloudflare", reason=LOCAL_WORKERD, run=False)
@pytest.mark.parametrize(
    "code",
    [
        "new Uint8Array(4e8).reverse()",
        "new Uint8Array(4e8).lastIndexOf(1)",
        "new Uint16Array(2e8).indexOf(1)",
        "new Float64Array(5e7).includes(1)",
        "(' '.repeat(3e8) + 'x').trim()",
    ],
)
async def test_a_buffer_loop_started_on_the_event_loop_lets_it_run(
    driver: codemode.drivers.IsolateDriver, code: str
) -> None:
    # A first step runs on the event loop for its 2 ms slice; these built-ins loop over
    # hundreds of MB without a poll (0.3-0.5 s here) and held the loop for all of it.
    cm = codemode.create_code_mode([], driver=driver, timeout=0.1, memory_limit_mb=1024)
    _, stall = await _longest_loop_stall(cm.execute(code))
    assert stall < 0.2, stall
    assert (await cm.execute("return 1 + 1")).result == 2


async def _longest_loop_stall(run: Any) -> tuple[codemode.ExecutionResult, float]:
    """Await ``run`` (an execution) beside a heartbeat; its result and the longest time the
    event loop went without running the heartbeat."""
    import anyio

    gaps = [0.0]
    outcome: list[codemode.ExecutionResult] = []

    async def heartbeat() -> None:
        last = time.perf_counter()
        while True:
            await anyio.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async with anyio.create_task_group() as tg:
        tg.start_soon(heartbeat)
        await anyio.sleep(0.01)
        outcome.append(await run)
        tg.cancel_scope.cancel()
    return outcome[0], max(gaps)
