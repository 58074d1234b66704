"""Host RSS around one limit-breaking program, measured in a fresh process.

Run by run.py as a child process: ``python3 rss_probe.py PROGRAM.ts --timeout-ms N --memory-limit-mb M``.
After one warm-up ``return 1+1`` it records the RSS, runs the program once through ``execute()``,
records the RSS again and the peak RSS during the run (Linux VmHWM, reset just before), checks
``return 1+1`` still works, and prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import time
from pathlib import Path
from typing import Any

import codemode

MIB = 1024 * 1024


def rss_bytes() -> int:
    """Current resident set size of this process (psutil, else /proc/self/statm)."""
    try:
        import psutil
    except ImportError:
        with open("/proc/self/statm", encoding="ascii") as statm:
            resident_pages = int(statm.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE")
    return int(psutil.Process().memory_info().rss)


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def peak_rss_bytes() -> int | None:
    """Peak RSS of this process image since the last reset (VmHWM; Linux only, else None).

    Not ``ru_maxrss``: on Linux that keeps the parent's high-water mark across fork and exec.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


async def probe(code: str, timeout_ms: float, memory_limit_mb: float) -> dict[str, Any]:
    """Warm up, then run ``code`` once under the given limits and measure RSS around it."""
    cm = codemode.create_code_mode(tools=[])
    warm = await cm.execute("return 1+1")
    gc.collect()
    rss_before = rss_bytes()
    peak_reset = reset_peak_rss()
    started = time.perf_counter()
    result = await cm.execute(code, timeout=timeout_ms / 1000, memory_limit_mb=memory_limit_mb)
    elapsed_ms = (time.perf_counter() - started) * 1000
    gc.collect()
    rss_after = rss_bytes()
    peak_after = peak_rss_bytes()
    after = await cm.execute("return 1+1")
    await cm.aclose()
    return {
        "warmup_ok": warm.success and warm.result == 2,
        "success": result.success,
        "error_kind": result.error.kind if result.error else None,
        "error_message": result.error.message if result.error else None,
        "elapsed_ms": elapsed_ms,
        "rss_before_mib": rss_before / MIB,
        "rss_after_mib": rss_after / MIB,
        "rss_growth_mib": (rss_after - rss_before) / MIB,
        "peak_rss_growth_mib": (peak_after - rss_before) / MIB if peak_reset and peak_after else None,
        "after_ok": after.success and after.result == 2,
    }


def main() -> None:
    """Parse the arguments, run the probe, print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("program", type=Path)
    parser.add_argument("--timeout-ms", type=float, required=True)
    parser.add_argument("--memory-limit-mb", type=float, required=True)
    args = parser.parse_args()
    code = args.program.read_text(encoding="utf-8")
    print(json.dumps(asyncio.run(probe(code, args.timeout_ms, args.memory_limit_mb))))


if __name__ == "__main__":
    main()
