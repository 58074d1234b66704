"""Run a memory bomb in this process and print how much the process's RSS grew (JSON).

Usage: ``python tests/rss_probe.py quickjs|v8 MEMORY_LIMIT_MB``. The tests start it as a child
process so the measurement is of a process that does nothing else.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import psutil

import codemode

BOMB = "const c: number[][] = []\nwhile (true) { c.push(new Array(1_000_000).fill(c.length)) }"


async def main(driver_name: str, memory_limit_mb: int) -> None:
    driver = codemode.V8Driver() if driver_name == "v8" else codemode.QuickJSDriver()
    cm = codemode.create_code_mode([], driver=driver)
    await cm.execute("return 1 + 1")
    process = psutil.Process()
    before = process.memory_info().rss
    started = time.perf_counter()
    result = await cm.execute(BOMB, memory_limit_mb=memory_limit_mb)
    elapsed = time.perf_counter() - started
    peak = max(process.memory_info().rss, before)
    after = await cm.execute("return 1 + 1")
    kind = result.error.kind if result.error else None
    print(json.dumps({"kind": kind, "elapsed": elapsed, "growth": peak - before, "after": after.result}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
