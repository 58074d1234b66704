"""The host's event loop while programs compute: 50 MCP clients against one server.

The server (``codemode.integrations.mcp.serve_streamable_http``, as ``codemode mcp serve
--transport streamable-http`` runs it) runs in this process, with a probe task that sleeps
1 ms at a time and records how late it wakes: the loop's gaps. The clients run in a second
process, so their own work does not count against the server's loop:

- 50 clients call ``execute_typescript`` with a trivial program (``return 1 + 1``) in a loop;
- one client, at the same time, runs a program that computes for about a second after a tool
  call (``await external_tick({}); <busy loop>``), again and again.

Reported: the server loop's worst gap and its p99 gap while the clients run, and the latency
(p50, p99) of the trivial executions as the clients see them.

    python3 benches/mcp_loop.py [--seconds 10] [--clients 50] [--interval 0.2] [--no-compute]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import heapq
import json
import os
import platform
import socket
import subprocess
import sys
import time
from typing import Any

import codemode

COMPUTE = (
    "await external_tick({})\n"
    "let x = 0\nconst end = Date.now() + 1000\nwhile (Date.now() < end) x++\nreturn x > 0"
)


def _tick_tool() -> codemode.Tool:
    async def tick(args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True}

    return codemode.Tool.from_schema("tick", "Answer at once", {"type": "object"}, None, tick)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# -- the clients (second process) -------------------------------------------------------


async def _clients(url: str, clients: int, seconds: float, with_compute: bool, interval: float) -> None:
    """Connect every client, say ``ready``, run for ``seconds``, print the results as JSON,
    and only then disconnect (so connecting and disconnecting are outside the measurement)."""
    import contextlib

    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    latencies: list[float] = []
    computed = 0

    async with contextlib.AsyncExitStack() as stack:

        async def connect() -> ClientSession:
            read, write, *_ = await stack.enter_async_context(streamable_http_client(url))
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            return session

        sessions = [await connect() for _ in range(clients + 1)]
        print("ready", flush=True)
        stop = time.perf_counter() + seconds

        async def trivial(session: ClientSession) -> None:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                result = await session.call_tool("execute_typescript", {"typescriptCode": "return 1 + 1"})
                latencies.append((time.perf_counter() - started) * 1000)
                assert not result.is_error, result
                await asyncio.sleep(interval)

        async def compute(session: ClientSession) -> None:
            nonlocal computed
            while with_compute and time.perf_counter() < stop:
                await session.call_tool("execute_typescript", {"typescriptCode": COMPUTE})
                computed += 1

        await asyncio.gather(compute(sessions[0]), *(trivial(s) for s in sessions[1:]))
        result = {
            "trivial_executions": len(latencies),
            "trivial_p50_ms": _percentile(latencies, 0.5),
            "trivial_p99_ms": _percentile(latencies, 0.99),
            "compute_executions": computed,
        }
        print(json.dumps(result), flush=True)


# -- the server (this process) ----------------------------------------------------------


class _Holds(list[tuple[float, str]]):
    """How long each callback of the loop held it (ms), the longest 100 kept."""

    def __init__(self) -> None:
        super().__init__()
        self.max_cpu = 0.0
        """The most CPU time one callback used, less the garbage collections inside it."""
        self.max_cpu_at = ""
        self.gc_cpu = 0.0
        """CPU time (ms) spent in Python's garbage collections so far."""
        self.restore: Any = None

    def record(self, ms: float, what: Any) -> None:
        if len(self) < 100 or ms > self[0][0]:
            item = (ms, repr(what)[:160])
            if len(self) < 100:
                heapq.heappush(self, item)
            else:
                heapq.heapreplace(self, item)

    def over(self, ms: float) -> int:
        return sum(1 for held, _ in self if held > ms)

    def stop(self) -> None:
        if self.restore is not None:
            self.restore()


def _watch_callbacks() -> _Holds:
    """Time every callback the loop runs (the time it holds the loop): what blocks the loop,
    as distinct from the loop being busy with many short callbacks."""
    import asyncio.events

    holds = _Holds()
    original = asyncio.events.Handle._run

    def timed(handle: asyncio.events.Handle) -> None:
        started = time.perf_counter()
        cpu = time.thread_time()
        collecting = holds.gc_cpu
        try:
            original(handle)
        finally:
            held = (time.perf_counter() - started) * 1000
            if held > 1.0:
                used = (time.thread_time() - cpu) * 1000
                what = getattr(getattr(handle._callback, "__self__", None), "get_coro", None)
                if used - (holds.gc_cpu - collecting) > holds.max_cpu:
                    holds.max_cpu = used - (holds.gc_cpu - collecting)
                    holds.max_cpu_at = repr(what() if what else handle)[:120]
                holds.record(held, f"{what() if what else handle} cpu {used:.1f} ms")

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]

    def restore() -> None:
        asyncio.events.Handle._run = original  # type: ignore[method-assign]

    holds.restore = restore
    return holds


async def _serve(
    port: int, clients: int, seconds: float, with_compute: bool, interval: float
) -> dict[str, Any]:
    from codemode.integrations.mcp import serve_streamable_http

    cm = codemode.create_code_mode([_tick_tool()], timeout=30.0)
    server = asyncio.create_task(serve_streamable_http(cm, host="127.0.0.1", port=port, log_level="warning"))
    gaps: list[float] = []
    probing = True
    holds = _watch_callbacks()

    worst_at = 0.0
    began = 0.0

    async def probe() -> None:
        nonlocal worst_at
        while probing:
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            gap = (time.perf_counter() - started - 0.001) * 1000
            if not gaps or gap > max(gaps):
                worst_at = started - began
            gaps.append(gap)

    await asyncio.sleep(1.0)  # the server is up
    from codemode.cli import _freeze_startup_objects

    _freeze_startup_objects("streamable-http")  # as `codemode mcp serve` does before it serves
    url = f"http://127.0.0.1:{port}/mcp"
    client = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--client",
        url,
        "--clients",
        str(clients),
        "--seconds",
        str(seconds),
        "--interval",
        str(interval),
        *([] if with_compute else ["--no-compute"]),
        stdout=subprocess.PIPE,
    )
    assert client.stdout is not None
    assert (await client.stdout.readline()).strip() == b"ready"
    began = time.perf_counter()
    prober = asyncio.create_task(probe())
    holds.clear()
    holds.max_cpu = 0.0
    collections: list[float] = []

    gc_started = [0.0, 0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[:] = [time.perf_counter(), time.thread_time()]
            return
        holds.gc_cpu += (time.thread_time() - gc_started[1]) * 1000
        if info["generation"] == 2:
            collections.append((time.perf_counter() - gc_started[0]) * 1000)

    gc.callbacks.append(on_gc)
    seen = json.loads(await client.stdout.readline())
    gc.callbacks.remove(on_gc)
    probing = False
    longest = max(holds, default=(0.0, ""))
    holds.stop()
    await prober
    await client.wait()
    server.cancel()
    return {
        "loop_worst_gap_ms": max(gaps),
        "loop_p99_gap_ms": _percentile(gaps, 0.99),
        "loop_samples": len(gaps),
        "loop_worst_gap_at_s": worst_at,
        "longest_callback_ms": longest[0],
        "longest_callback": longest[1],
        "callbacks_over_5ms": holds.over(5.0),
        "longest_callback_cpu_ms": holds.max_cpu,
        "longest_callback_cpu": holds.max_cpu_at,
        "full_collections_ms": collections,
        **seen,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument(
        "--interval", type=float, default=0.0, help="each trivial client's pause between calls (s)"
    )
    parser.add_argument("--no-compute", action="store_true", help="the trivial clients alone (a baseline)")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        asyncio.run(_clients(args.client, args.clients, args.seconds, not args.no_compute, args.interval))
        return
    result = asyncio.run(_serve(_free_port(), args.clients, args.seconds, not args.no_compute, args.interval))
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"{args.clients} clients x 'return 1 + 1' (pause {args.interval:g} s)",
        "" if args.no_compute else "beside one program computing 1 s after a tool call,",
        f"{args.seconds:g} s",
    )
    print(
        f"server loop: worst gap {result['loop_worst_gap_ms']:.2f} ms,",
        f"p99 gap {result['loop_p99_gap_ms']:.2f} ms",
        f"({result['loop_samples']} probes; the worst {result['loop_worst_gap_at_s']:.1f} s in)",
    )
    print(
        f"longest single callback: {result['longest_callback_ms']:.2f} ms"
        f" ({result['callbacks_over_5ms']} over 5 ms): {result['longest_callback']};"
        f" most CPU in one callback, less GC: {result['longest_callback_cpu_ms']:.2f} ms"
        f" ({result['longest_callback_cpu']})"
    )
    pauses = result["full_collections_ms"]
    print(
        f"Python's full garbage collections (stop the world): {len(pauses)}"
        + (f", longest {max(pauses):.1f} ms" if pauses else "")
    )
    print(
        f"trivial executions: {result['trivial_executions']}, p50 {result['trivial_p50_ms']:.2f} ms, "
        f"p99 {result['trivial_p99_ms']:.2f} ms; compute executions: {result['compute_executions']}"
    )


if __name__ == "__main__":
    main()
