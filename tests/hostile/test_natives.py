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
    # QuickJS stops at the deadline or the memory limit; V8 refuses some of these lengths at
    # once (RangeError, TypeError) or finishes them within its deadline's grace
    if not result.success:
        assert result.error is not None and result.error.kind in ("timeout", "memory", "runtime"), result
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
