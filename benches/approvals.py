"""What pausing and resuming cost (issue 16's numbers), on the embedded engine.

    python3 benches/approvals.py [--runs 30]

* **pause + resume of W1 with one approval, on SQLite**: W1 (the shared workload) with
  ``getTopProducts`` needing approval: the execution that pauses plus the resume, minus two
  plain executions of W1 (the part that is the pause: saving the run, the token, claiming it,
  the replay's bookkeeping).
* **replay of 1,000 recorded calls**: a program making 1,000 sequential calls, then one that
  needs approval; the resume (1,000 calls answered from the log, then the approved one) minus
  a plain run of the same 1,001 calls.
* **per call, approvals on vs off**: W3 (1,000 sequential calls) in a code mode whose tools
  may need approval (every call goes through the run's log) against one with none.
* **per call, tracing on vs off**: W3 with an OpenTelemetry SDK tracer provider (spans to an
  in-memory exporter) against none; then the SDK's own cost of one such span, made alone, and
  what is left: codemode's part of a traced call.

Medians of ``--runs`` rounds, each measuring the variants side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import codemode
from codemode.approvals import SQLiteExecutionStore
from codemode.bench.workload_tools import WORKLOADS_DIR, build_tools


def _with_approval(tools: tuple[codemode.Tool, ...], name: str) -> list[codemode.Tool]:
    """The workload tools, with ``name`` needing approval."""
    out = []
    for tool in tools:
        if tool.name == name:
            tool = codemode.Tool.from_schema(
                tool.name,
                tool.description,
                tool.input_schema,
                tool.output_schema,
                tool.handler,
                requires_approval=True,
            )
        out.append(tool)
    return out


async def _ms(awaitable: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await awaitable
    return (time.perf_counter() - started) * 1000, result


async def pause_resume_w1(runs: int, store: SQLiteExecutionStore) -> dict[str, float]:
    code = (WORKLOADS_DIR / "W1-ecommerce.ts").read_text()
    plain = codemode.create_code_mode(build_tools())
    gated = codemode.create_code_mode(
        _with_approval(build_tools(), "getTopProducts"),
        execution_store=store,
        approval_key="bench key, 16 bytes+",
    )
    overheads, plains, totals = [], [], []
    for round_ in range(runs + 3):
        plain_ms, _ = await _ms(plain.execute(code))
        pause_ms, paused = await _ms(gated.execute(code))
        assert paused.paused is not None
        decision = {paused.paused.pending[0].call_id: codemode.approve()}
        resume_ms, done = await _ms(gated.resume(paused.paused.token, decision))
        assert done.success, done.error
        if round_ >= 3:  # warm-up rounds
            plains.append(plain_ms)
            totals.append(pause_ms + resume_ms)
            overheads.append(pause_ms + resume_ms - 2 * plain_ms)
    return {
        "plain W1 ms": statistics.median(plains),
        "pause + resume ms": statistics.median(totals),
        "beyond the two executions ms": statistics.median(overheads),
    }


REPLAY_1000 = """
let sum = 0
for (let i = 0; i < 1000; i++) sum += (await external_echo({ i })).i
return (await external_echo_gated({ i: sum })).i
"""


async def replay_1000(runs: int) -> dict[str, float]:
    tools = build_tools()
    echo = next(tool for tool in tools if tool.name == "echo")
    gated_echo = codemode.Tool.from_schema(
        "echo_gated",
        echo.description,
        echo.input_schema,
        echo.output_schema,
        echo.handler,
        requires_approval=True,
    )
    plain_echo = codemode.Tool.from_schema(
        "echo_gated", echo.description, echo.input_schema, echo.output_schema, echo.handler
    )
    plain = codemode.create_code_mode([echo, plain_echo])
    gated = codemode.create_code_mode([echo, gated_echo], approval_key="bench key, 16 bytes+")
    overheads, plains, resumes = [], [], []
    for round_ in range(runs + 3):
        plain_ms, result = await _ms(plain.execute(REPLAY_1000))
        assert result.result == 499500, result
        paused = await gated.execute(REPLAY_1000)
        assert paused.paused is not None
        resume_ms, done = await _ms(gated.resume(paused.paused.token, {1001: codemode.approve()}))
        assert done.result == 499500, done
        if round_ >= 3:
            plains.append(plain_ms)
            resumes.append(resume_ms)
            overheads.append(resume_ms - plain_ms)
    return {
        "plain 1,001 calls ms": statistics.median(plains),
        "resume (1,000 replayed + 1) ms": statistics.median(resumes),
        "beyond the run ms": statistics.median(overheads),
    }


async def per_call(runs: int) -> dict[str, float]:
    code = (WORKLOADS_DIR / "W3-sequential-calls.ts").read_text()
    plain = codemode.create_code_mode(build_tools())
    recorded = codemode.create_code_mode(
        _with_approval(build_tools(), "getAllOrders"), approval_key="bench key, 16 bytes+"
    )
    offs, ons = [], []
    for round_ in range(runs + 3):
        off_ms, a = await _ms(plain.execute(code))
        on_ms, b = await _ms(recorded.execute(code))
        assert a.success and b.success, (a.error, b.error)
        if round_ >= 3:
            offs.append(off_ms)
            ons.append(on_ms)
    off, on = statistics.median(offs), statistics.median(ons)
    return {"W3 off us/call": off, "W3 on us/call": on, "on - off us/call": on - off}


async def per_call_tracing(runs: int) -> dict[str, float]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    code = (WORKLOADS_DIR / "W3-sequential-calls.ts").read_text()
    plain = codemode.create_code_mode(build_tools())
    traced = codemode.create_code_mode(build_tools(), tracer_provider=provider)
    offs, ons = [], []
    for round_ in range(runs + 3):
        off_ms, _ = await _ms(plain.execute(code))
        on_ms, _ = await _ms(traced.execute(code))
        exporter.clear()
        if round_ >= 3:
            offs.append(off_ms)
            ons.append(on_ms)
    off, on = statistics.median(offs), statistics.median(ons)
    sdk = _sdk_span_us(provider, runs)
    return {
        "W3 off us/call": off,
        "W3 traced us/call": on,
        "traced - off us/call": on - off,
        "SDK span alone us": sdk,
        "codemode's part us/call": on - off - sdk,
    }


def _sdk_span_us(provider: Any, runs: int) -> float:
    """What the SDK takes for one span like a tool call's (started, made current, three
    attributes, ended, handed to the processor), with no codemode around it: the floor of
    tracing on."""
    from opentelemetry.context import attach, detach
    from opentelemetry.trace import set_span_in_context

    tracer = provider.get_tracer("bench")
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        for index in range(1000):
            attributes = {"codemode.tool": "t", "codemode.call_id": index, "codemode.tool_call_id": ""}
            span = tracer.start_span("codemode.tool_call", attributes=attributes, record_exception=False)
            token = attach(set_span_in_context(span))
            detach(token)
            span.end()
        samples.append((time.perf_counter() - started) * 1000)  # ms per 1,000 = us per span
    return statistics.median(samples)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}")
    gc.collect()
    with tempfile.TemporaryDirectory() as directory:
        async with SQLiteExecutionStore(Path(directory) / "runs.db") as store:
            for name, value in (await pause_resume_w1(args.runs, store)).items():
                print(f"W1 pause+resume  {name:32} {value:8.3f}")
    for name, value in (await replay_1000(args.runs)).items():
        print(f"replay 1,000     {name:32} {value:8.3f}")
    for name, value in (await per_call(args.runs)).items():
        print(f"per call         {name:32} {value:8.3f}")  # W3 makes 1,000 calls: ms = us/call
    for name, value in (await per_call_tracing(args.runs)).items():
        print(f"tracing          {name:32} {value:8.3f}")


if __name__ == "__main__":
    asyncio.run(main())
