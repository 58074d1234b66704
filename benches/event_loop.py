"""How long a busy program holds the host's event loop: a ticker wakes every millisecond while
an execution computes until its timeout, and the gaps between its ticks are reported.

    python3 benches/event_loop.py [--engines quickjs,quickjs-process,v8] [--runs 5] [--timeout 0.6]

A blocked loop would show one gap as long as the program; codemode runs a program's steps past
their 2 ms slice in a worker thread, so the worst gap stays in the milliseconds. (The test
suite checks only that the loop keeps ticking; the numbers are measured here.)
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import anyio

import codemode
from codemode.bench.worker import make_driver

BUSY = "let s = 0\nfor (let i = 0; i < 1e10; i++) s += i % 7\nreturn s"


async def gaps_during_one_run(cm: codemode.CodeMode, timeout: float) -> list[float]:
    ticks: list[float] = []
    done = anyio.Event()

    async def ticker() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            await anyio.sleep(0.001)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await anyio.sleep(0.005)
        result = await cm.execute(BUSY, timeout=timeout)
        done.set()
    assert result.error is not None and result.error.kind == "timeout", result
    return [(b - a) * 1000 for a, b in itertools.pairwise(ticks)]


async def measure(engine: str, runs: int, timeout: float) -> None:
    driver = make_driver(engine)
    cm = codemode.create_code_mode([], driver=driver, timeout=10.0)
    await cm.execute("return 1")  # start-up outside the measurement
    worst: list[float] = []
    p99: list[float] = []
    for _ in range(runs):
        gaps = sorted(await gaps_during_one_run(cm, timeout))
        worst.append(gaps[-1])
        p99.append(gaps[int(len(gaps) * 0.99)])
    close = getattr(driver, "close", None)
    if close is not None:
        close()
    print(
        f"{engine:16} worst gap median {statistics.median(worst):7.2f} ms (max {max(worst):7.2f})"
        f"   p99 gap median {statistics.median(p99):6.2f} ms   ({runs} runs of {timeout * 1000:g} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="quickjs,quickjs-process,v8")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=0.6)
    args = parser.parse_args()
    for engine in args.engines.split(","):
        anyio.run(measure, engine, args.runs, args.timeout)


if __name__ == "__main__":
    main()
