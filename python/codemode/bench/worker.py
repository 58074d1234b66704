"""One (target, workload) measured in a process of its own; its samples as JSON on stdout.

    python -m codemode.bench.worker --target quickjs --workload W1 [--quick]

``codemode bench`` starts one such process per engine and workload, so no engine inherits
another's heap, pools or JIT state. The method is the one of ``benches/run.py`` (which calls
:func:`measure_workload` and :func:`limit_once` in its own process):

* **W1-W8.** One sample is exactly one ``await cm.execute(code)`` (strip the types, fresh
  context, run, convert the result, dispose), timed with ``time.perf_counter()`` inside
  ``asyncio.run``, after tools.json's warm-up runs and a ``gc.collect()``. Every result, warm-ups
  included, is checked against ``expectedResult``; the first mismatch ends the workload as failed.
  Between samples, outside the timed region, the loop is yielded to three times, as a host
  application does between requests.
* **W9a-W9e.** One sample is the time until ``execute()`` returned, with the test's ``timeoutMs``
  and ``memoryLimitMb`` as per-call limits; it must fail with kind ``timeout`` or ``memory``, and
  ``return 1+1`` must give 2 afterwards on the same code mode.
* **Peers (pydeno, mini-racer).** See :mod:`codemode.bench.python_peers`; same warm-ups, runs
  and checks.

The JSON: ``target``, ``workload``, ``samples_ms``, ``deferred_ms`` (loop work after each
sample), ``ok``, ``problem`` (what failed, or null), ``tool_calls`` (W3/W4). Exit status 1 when
a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

import codemode

from .checks import json_equal, shorten
from .spec import Workload, workload
from .targets import ALL_TARGETS
from .workload_tools import build_tools

LIMIT_OVERRIDES: dict[str, dict[str, Any]] = {"W9b": {"max_tool_calls": 10**9}}
"""W9b measures the timeout over awaited tool calls. codemode answers them so fast that the default
cap of 10,000 calls per execution would stop the loop first (as ``invalid_args``, in about 50 ms), so
the cap is lifted for this test to let the timeout be what stops it."""


@dataclass
class Measurement:
    """The samples of one (target, workload), and the first failed check if any."""

    samples_ms: list[float] = field(default_factory=list)
    deferred_ms: list[float] = field(default_factory=list)
    problem: str | None = None
    tool_calls: int | None = None

    @property
    def ok(self) -> bool:
        """Whether every check passed (and there are samples)."""
        return self.problem is None and bool(self.samples_ms)


def error_text(result: codemode.ExecutionResult) -> str:
    """``kind name: message`` of a failed result, or a note that it succeeded."""
    if result.error is None:
        return f"succeeded with {shorten(result.result)!r}"
    return f"{result.error.kind} {result.error.name}: {result.error.message}"


async def drain_event_loop(iterations: int = 3) -> float:
    """Let the event loop run what an execution left scheduled; the ms it took."""
    started = time.perf_counter()
    for _ in range(iterations):
        await asyncio.sleep(0)
    return (time.perf_counter() - started) * 1000


async def timed_execute(
    cm: codemode.CodeMode, code: str, **limits: Any
) -> tuple[float, codemode.ExecutionResult]:
    """One ``execute()`` and its wall time in ms."""
    started = time.perf_counter()
    result = await cm.execute(code, **limits)
    return (time.perf_counter() - started) * 1000, result


def _wrong(spec: Workload, result: codemode.ExecutionResult) -> str | None:
    """Why ``result`` is not the workload's expected result, or None if it is."""
    if result.success and json_equal(result.result, spec.expected_result):
        return None
    return f"expected {shorten(spec.expected_result)!r}, got {error_text(result)}"


async def measure_workload(
    spec: Workload, driver: codemode.drivers.IsolateDriver | None, quick: bool
) -> tuple[Measurement, codemode.ExecutionResult | None]:
    """Warm up, then time the runs of a W1-W8 workload on ``driver``; the measurement and the
    last result (the wrong one when a check failed)."""
    code = spec.program
    measurement = Measurement()
    cm = codemode.create_code_mode(
        tools=build_tools(),
        driver=driver,
        timeout=spec.timeout_ms / 1000,
        memory_limit_mb=spec.memory_limit_mb,
    )
    result: codemode.ExecutionResult | None = None
    try:
        for _ in range(spec.warmup):
            _, result = await timed_execute(cm, code)
            await drain_event_loop()
            if (problem := _wrong(spec, result)) is not None:
                measurement.problem = f"(warm-up) {problem}"
                return measurement, result
        gc.collect()
        for _ in range(spec.sample_count(quick)):
            elapsed, result = await timed_execute(cm, code)
            measurement.deferred_ms.append(await drain_event_loop())
            if (problem := _wrong(spec, result)) is not None:
                measurement.problem = problem
                return measurement, result
            measurement.samples_ms.append(elapsed)
    finally:
        await cm.aclose()
    if spec.tool_calls is not None and result is not None:
        measurement.tool_calls = result.tool_calls
    return measurement, result


async def limit_once(
    cm: codemode.CodeMode, spec: Workload
) -> tuple[float, codemode.ExecutionResult, codemode.ExecutionResult]:
    """Run a W9 limit test once with its limits, then ``return 1+1``: (ms until ``execute()``
    returned, its result, the result of ``return 1+1``)."""
    elapsed, result = await timed_execute(
        cm,
        spec.program,
        timeout=spec.timeout_ms / 1000,
        memory_limit_mb=spec.memory_limit_mb,
        **LIMIT_OVERRIDES.get(spec.id, {}),
    )
    _, after = await timed_execute(cm, "return 1+1")
    return elapsed, result, after


async def measure_limit(
    spec: Workload, driver: codemode.drivers.IsolateDriver | None, quick: bool
) -> Measurement:
    """The samples of a W9 limit test: each must fail with the expected kind, and the code mode
    must still run ``return 1+1`` afterwards."""
    measurement = Measurement()
    cm = codemode.create_code_mode(tools=build_tools(), driver=driver)
    try:
        await cm.execute("return 1+1")
        for _ in range(spec.sample_count(quick)):
            elapsed, result, after = await limit_once(cm, spec)
            kind = result.error.kind if result.error else None
            if result.success or kind != spec.expected_kind:
                measurement.problem = f"expected a {spec.expected_kind} failure, got {error_text(result)}"
                break
            if not (after.success and after.result == 2):
                measurement.problem = f"`return 1+1` afterwards gave {error_text(after)}"
                break
            measurement.samples_ms.append(elapsed)
    finally:
        await cm.aclose()
    return measurement


async def measure_peer(peer: str, spec: Workload, quick: bool) -> Measurement:
    """Warm up, then time the runs of a W1-W8 workload on a Python peer (a fresh runtime per
    execution, made outside the timing)."""
    from .python_peers import fresh_runtime, wrap_program

    javascript = wrap_program(spec.program)
    measurement = Measurement()
    total = spec.warmup + spec.sample_count(quick)
    for index in range(total):
        runtime = await fresh_runtime(peer)
        started = time.perf_counter()
        try:
            value = await runtime.run(javascript)
        except Exception as e:
            measurement.problem = f"expected {shorten(spec.expected_result)!r}, got {type(e).__name__}: {e}"
            return measurement
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            await runtime.close()
        deferred = await drain_event_loop()
        if not json_equal(value, spec.expected_result):
            got = shorten(value)
            measurement.problem = f"expected {shorten(spec.expected_result)!r}, got {got!r}"
            return measurement
        if index == spec.warmup - 1:
            gc.collect()
        if index >= spec.warmup:
            measurement.samples_ms.append(elapsed)
            measurement.deferred_ms.append(deferred)
    return measurement


def make_driver(engine: str) -> codemode.drivers.IsolateDriver:
    """The driver of one of codemode's engines (``targets.ENGINES``)."""
    if engine == "quickjs":
        return codemode.QuickJSDriver()
    if engine == "quickjs-process":
        return codemode.QuickJSDriver(isolation="process")
    if engine == "v8":
        return codemode.V8Driver()
    if engine == "cloudflare":
        import os

        from codemode.cloudflare import CloudflareDriver

        return CloudflareDriver(
            os.environ["CODEMODE_CLOUDFLARE_URL"], os.environ["CODEMODE_CLOUDFLARE_SECRET"]
        )
    raise ValueError(f"unknown engine {engine!r}")


async def measure(target: str, spec: Workload, quick: bool) -> Measurement:
    """Measure one workload on one target (an engine or a Python peer)."""
    if ALL_TARGETS[target].kind == "peer":
        return await measure_peer(target, spec, quick)
    driver = make_driver(target)
    try:
        if spec.is_limit:
            return await measure_limit(spec, driver, quick)
        measurement, _ = await measure_workload(spec, driver, quick)
        return measurement
    finally:
        close = getattr(driver, "close", None)
        if close is not None:
            close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m codemode.bench.worker", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--target", required=True, choices=sorted(ALL_TARGETS))
    parser.add_argument("--workload", required=True, help="W1 ... W8, W9a ... W9e")
    parser.add_argument("--quick", action="store_true", help="fewer runs (tools.json's / 10, at least 3)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Measure, print the JSON on stdout; 1 if a check failed or the measurement raised."""
    args = parse_args(argv)
    spec = workload(args.workload)
    try:
        measurement = asyncio.run(measure(args.target, spec, args.quick))
    except Exception as e:
        tail = "".join(traceback.format_exception_only(type(e), e)).strip()
        measurement = Measurement(problem=f"the measurement raised {tail[-500:]}")
    report = {"target": args.target, "workload": spec.id, **asdict(measurement), "ok": measurement.ok}
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    return 0 if measurement.ok else 1


if __name__ == "__main__":
    sys.exit(main())
