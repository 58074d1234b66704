"""Scale checks of design section 10: many executions in flight, and a long run with flat memory.

Usage: ``python3 benches/soak.py [--in-flight 1000] [--in-a-row 100000] [--json out.json]
[--driver quickjs|quickjs-process] [--workers 4]`` (``--in-a-row 0`` skips part 2)

1. ``--in-flight`` executions start at once, each awaiting a slow host tool (1 s); meanwhile a
   ticker task measures how late the event loop wakes it (its worst lag is reported).
2. ``--in-a-row`` executions of W2 (``return 1+1``) one after another; RSS is sampled every
   tenth of the run, and the growth after the first tenth is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from pathlib import Path
from typing import Any

import codemode


def rss_mib() -> float:
    """Resident set size of this process in MiB (from /proc, current, not peak)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / (1024 * 1024)


async def slow(args: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(args["seconds"])
    return {"slept": args["seconds"]}


SLOW = codemode.Tool.from_schema(
    "slow",
    "Sleep on the host",
    {"type": "object", "properties": {"seconds": {"type": "number"}}, "required": ["seconds"]},
    None,
    slow,
)


DRIVER: codemode.drivers.IsolateDriver | None = None
"""The engine (``--driver``; None: the default, in-process QuickJS)."""


async def in_flight(count: int) -> dict[str, Any]:
    """``count`` executions at once, each awaiting a 1 s tool; the event loop's worst lag."""
    cm = codemode.create_code_mode([SLOW], driver=DRIVER)
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - before - 0.005)

    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    results = await asyncio.gather(
        *(
            cm.execute(f"const r = await external_slow({{ seconds: 1 }})\nreturn {i} + r.slept")
            for i in range(count)
        )
    )
    elapsed = time.perf_counter() - started
    done.set()
    await tick
    ok = sum(1 for i, r in enumerate(results) if r.success and r.result == i + 1)
    return {
        "executions": count,
        "succeeded": ok,
        "wall_s": round(elapsed, 3),
        "loop_lag_max_ms": round(max(lags) * 1000, 2),
        "loop_lag_p50_ms": round(sorted(lags)[len(lags) // 2] * 1000, 3),
    }


async def in_a_row(count: int) -> dict[str, Any]:
    """``count`` executions of ``return 1+1`` in a row; RSS sampled every tenth of the run."""
    cm = codemode.create_code_mode([], driver=DRIVER)
    samples: list[float] = []
    tenth = max(1, count // 10)
    started = time.perf_counter()
    for i in range(count):
        result = await cm.execute("return 1+1")
        if not result.success:
            raise SystemExit(f"execution {i} failed: {result.error}")
        if i % tenth == tenth - 1:
            await asyncio.sleep(0)
            samples.append(round(rss_mib(), 1))
    elapsed = time.perf_counter() - started
    return {
        "executions": count,
        "wall_s": round(elapsed, 2),
        "rss_mib_samples": samples,
        "rss_growth_after_first_tenth_mib": round(samples[-1] - samples[0], 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in-flight", type=int, default=1000)
    parser.add_argument("--in-a-row", type=int, default=100_000)
    parser.add_argument("--json", type=Path, default=Path("bench-results/soak.json"))
    parser.add_argument("--driver", choices=("quickjs", "quickjs-process"), default="quickjs")
    parser.add_argument("--workers", type=int, default=4, help="worker processes (quickjs-process)")
    args = parser.parse_args()
    global DRIVER
    if args.driver == "quickjs-process":
        DRIVER = codemode.QuickJSDriver(isolation="process", workers=args.workers)
    report: dict[str, Any] = {"driver": args.driver, "in_flight": await in_flight(args.in_flight)}
    if args.in_a_row:
        report["in_a_row"] = await in_a_row(args.in_a_row)
    print(json.dumps(report, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
