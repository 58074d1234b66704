"""Run the shared workloads through codemode's public API and report wall-time percentiles.

Usage: ``python3 benches/run.py [--only W1,W2] [--json out.json] [--quick]``

Each sample is one ``await cm.execute(code)`` (strip, fresh context, run, dispose), timed with
``time.perf_counter()`` after the warm-up runs, and its result is checked against tools.json's
``expectedResult``. Then the W9 limit tests (timeout and memory, host unharmed afterwards; W9e
also in a fresh process for host RSS) and the TypeScript feature probes. Exits 1 if any check fails.

The developer's harness: every workload in this one process, with the limit tests' details (RSS,
overshoot) and the TS probes. It measures with the package's code (``codemode.bench.worker``:
``measure_workload``, ``limit_once``), on the workloads shipped in ``codemode.bench``; the
installed command ``codemode bench`` runs the same in one process per (engine, workload), beside
the peers, and writes plots and an HTML report.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import codemode
from codemode.bench.checks import json_equal
from codemode.bench.checks import shorten as _shorten
from codemode.bench.spec import LIMIT_KINDS, workload
from codemode.bench.stats import percentile
from codemode.bench.worker import error_text as _error_text
from codemode.bench.worker import limit_once, measure_workload, timed_execute
from codemode.bench.workload_tools import SPEC, WORKLOADS_DIR, build_tools

BENCH_DIR = Path(__file__).resolve().parent
RSS_PROBE = BENCH_DIR / "rss_probe.py"
DEFAULT_JSON = Path("bench-results/latest.json")

RSS_LIMIT_TESTS = ("W9e",)
"""Limit tests also run in a fresh child process to measure host RSS growth."""
SYNTAX_ALLOWED = ("namespace",)
"""TS feature probes that may instead fail with kind ``syntax`` (value namespaces)."""
DEFERRED_SHOWN_MS = 0.1
"""Loop work left behind by an execution is shown in the table from this median (ms) on."""
FEATURES_SELECTOR = "ts"
"""``--only`` token that selects the TS feature probes."""


@dataclass
class Failures:
    """Every failed check of the run; printed at the end and written to the JSON."""

    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, test: str, problem: str, code: str, result: codemode.ExecutionResult | None) -> None:
        """Record a failed check, with the program, the error and the result that came back."""
        entry: dict[str, Any] = {"test": test, "problem": problem, "program": code}
        if result is not None:
            entry["success"] = result.success
            entry["error"] = result.error.model_dump(exclude_none=True) if result.error else None
            entry["result"] = _shorten(result.result)
        self.items.append(entry)
        print(f"  !! {test}: {problem}", flush=True)


# ---------------------------------------------------------------- helpers


def load_program(file_field: str) -> str:
    """The TypeScript of a tools.json ``file`` entry (``workloads/...``), shipped in codemode.bench."""
    return (WORKLOADS_DIR.parent / file_field).read_text(encoding="utf-8")


def selected(test_id: str, only: set[str] | None) -> bool:
    """Whether ``--only`` selects this test (``W9`` selects every W9 limit test)."""
    return only is None or test_id in only or (test_id.startswith("W9") and "W9" in only)


def machine_info() -> dict[str, Any]:
    """The machine and software the numbers were measured on."""
    return {
        "processor": platform.processor(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "codemode": importlib.metadata.version("codemode"),
    }


# ---------------------------------------------------------------- W1-W8


def check_result(
    test: str, code: str, result: codemode.ExecutionResult, expected: Any, failures: Failures
) -> bool:
    """Whether ``result`` succeeded with ``expected``; records a failure if not."""
    if result.success and json_equal(result.result, expected):
        return True
    problem = f"expected {_shorten(expected)!r}, got {_error_text(result)}"
    failures.add(test, problem, code, result)
    return False


async def bench_workload(spec: dict[str, Any], quick: bool, failures: Failures) -> dict[str, Any] | None:
    """Warm up, then time ``runs`` executions of one workload (``codemode.bench.worker``'s
    method); None if a result was wrong."""
    test = f"{spec['id']} {spec['name']}"
    measurement, last = await measure_workload(workload(spec["id"]), DRIVER, quick)
    if measurement.problem is not None:
        warm_up = measurement.problem.startswith("(warm-up) ")
        problem = measurement.problem.removeprefix("(warm-up) ")
        failures.add(f"{test} (warm-up)" if warm_up else test, problem, load_program(spec["file"]), last)
        return None
    assert last is not None
    return summarise(spec, measurement.samples_ms, measurement.deferred_ms, last)


def summarise(
    spec: dict[str, Any], samples: list[float], deferred: list[float], last: codemode.ExecutionResult
) -> dict[str, Any]:
    """p50/p95/min/mean of the samples (ms), the median loop work left behind (``deferred``),
    and µs per tool call for the tool-call workloads."""
    stats: dict[str, Any] = {
        "name": spec["name"],
        "p50_ms": statistics.median(samples),
        "p95_ms": percentile(samples, 95),
        "min_ms": min(samples),
        "mean_ms": statistics.fmean(samples),
        "runs": len(samples),
        "warmup": spec["warmup"],
        "deferred_p50_ms": statistics.median(deferred),
        "samples_ms": samples,
    }
    if "toolCalls" in spec:
        stats["tool_calls"] = last.tool_calls
        stats["us_per_tool_call"] = stats["p50_ms"] * 1000 / spec["toolCalls"]
    return stats


def format_workload(test_id: str, stats: dict[str, Any]) -> str:
    """One table line, e.g. ``W2 hello   p50   0.082 ms   p95   0.120 ms   min 0.070 ms   (500 runs)``."""
    line = (
        f"{test_id:<4}{stats['name']:<18}p50 {stats['p50_ms']:>9.3f} ms   p95 {stats['p95_ms']:>9.3f} ms   "
        f"min {stats['min_ms']:>9.3f} ms   ({stats['runs']} runs)"
    )
    if "us_per_tool_call" in stats:
        line += f"   {stats['us_per_tool_call']:.2f} µs/call"
    if stats["deferred_p50_ms"] >= DEFERRED_SHOWN_MS:
        line += f"   [+{stats['deferred_p50_ms']:.3f} ms deferred loop work]"
    return line


async def run_workloads(only: set[str] | None, quick: bool, failures: Failures) -> dict[str, Any]:
    """Every selected workload W1-W8, printed as it finishes."""
    specs = [spec for spec in SPEC["workloads"] if selected(spec["id"], only)]
    if specs:
        print("\nWorkloads (wall time per execute(), after warm-up)")
    results: dict[str, Any] = {}
    for spec in specs:
        stats = await bench_workload(spec, quick, failures)
        if stats is not None:
            results[spec["id"]] = stats
            print(format_workload(spec["id"], stats), flush=True)
    return results


# ---------------------------------------------------------------- W9 limits


async def run_limit(spec: dict[str, Any], failures: Failures) -> dict[str, Any]:
    """Run one limit test in this process; then check ``return 1+1`` still gives 2."""
    code = load_program(spec["file"])
    test = f"{spec['id']} {spec['name']}"
    expected_kind = LIMIT_KINDS[spec["id"]]
    cm = codemode.create_code_mode(tools=build_tools(), driver=DRIVER)
    try:
        await cm.execute("return 1+1")
        elapsed, result, after = await limit_once(cm, workload(spec["id"]))
    finally:
        await cm.aclose()
    kind = result.error.kind if result.error else None
    if result.success or kind != expected_kind:
        failures.add(test, f"expected a {expected_kind} failure, got {_error_text(result)}", code, result)
    after_ok = after.success and after.result == 2
    if not after_ok:
        failures.add(f"{test} (after)", f"`return 1+1` gave {_error_text(after)}", "return 1+1", after)
    outcome: dict[str, Any] = {
        "name": spec["name"],
        "timeout_ms": spec["timeoutMs"],
        "memory_limit_mb": spec["memoryLimitMb"],
        "expected_kind": expected_kind,
        "success": result.success,
        "error_kind": kind,
        "error_message": result.error.message if result.error else None,
        "elapsed_ms": elapsed,
        "after_ok": after_ok,
    }
    if expected_kind == "timeout":
        outcome["overshoot_ms"] = elapsed - spec["timeoutMs"]
    return outcome


async def probe_rss(spec: dict[str, Any], failures: Failures) -> dict[str, Any]:
    """Run one limit test in a fresh child process (rss_probe.py) and return its measurements."""
    test = f"{spec['id']} {spec['name']} (fresh process)"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(RSS_PROBE),
        str(WORKLOADS_DIR.parent / spec["file"]),
        "--timeout-ms",
        str(spec["timeoutMs"]),
        "--memory-limit-mb",
        str(spec["memoryLimitMb"]),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    if process.returncode != 0:
        problem = f"probe exited with {process.returncode}: {stderr.decode(errors='replace')[-500:]}"
        failures.add(test, problem, load_program(spec["file"]), None)
        return {"exit_code": process.returncode}
    probe: dict[str, Any] = json.loads(stdout)
    expected_kind = LIMIT_KINDS[spec["id"]]
    if probe["success"] or probe["error_kind"] != expected_kind or not probe["after_ok"]:
        failures.add(test, f"expected a {expected_kind} failure then 1+1 = 2, got {probe}", "", None)
    return probe


def format_limit(test_id: str, outcome: dict[str, Any]) -> str:
    """One line of the limits table."""
    kind = outcome["error_kind"] or ("success" if outcome["success"] else "?")
    status = "ok" if kind == outcome["expected_kind"] and not outcome["success"] else "FAIL"
    line = (
        f"{test_id:<4}{outcome['name']:<21}{kind:<13}{status:<5} stopped in {outcome['elapsed_ms']:>8.1f} ms"
    )
    if "overshoot_ms" in outcome:
        line += f"  (overshoot {outcome['overshoot_ms']:+.1f} ms, timeout {outcome['timeout_ms']} ms)"
    else:
        line += f"  (limit {outcome['memory_limit_mb']} MiB)"
    line += "   then 1+1 = 2 " + ("ok" if outcome["after_ok"] else "FAIL")
    return line


def format_rss(test_id: str, probe: dict[str, Any]) -> str:
    """The line of a fresh-process RSS measurement."""
    if "elapsed_ms" not in probe:
        return f"{test_id:<4}fresh process: probe failed (exit code {probe.get('exit_code')})"
    peak = probe["peak_rss_growth_mib"]
    peak_text = f"{peak:.1f} MiB" if peak is not None else "below the earlier high-water mark"
    return (
        f"{test_id:<4}fresh process: {probe['error_kind']} in {probe['elapsed_ms']:.1f} ms; host RSS "
        f"{probe['rss_before_mib']:.1f} -> {probe['rss_after_mib']:.1f} MiB "
        f"(growth {probe['rss_growth_mib']:+.1f} MiB, peak growth {peak_text})"
    )


async def run_limits(only: set[str] | None, failures: Failures) -> dict[str, Any]:
    """Every selected W9 limit test, printed as it finishes."""
    specs = [spec for spec in SPEC["limits"] if selected(spec["id"], only)]
    if specs:
        print("\nLimits (one execute() each, with the test's timeoutMs / memoryLimitMb)")
    results: dict[str, Any] = {}
    for spec in specs:
        outcome = await run_limit(spec, failures)
        print(format_limit(spec["id"], outcome), flush=True)
        if spec["id"] in RSS_LIMIT_TESTS:
            outcome["fresh_process"] = await probe_rss(spec, failures)
            print(format_rss(spec["id"], outcome["fresh_process"]), flush=True)
        results[spec["id"]] = outcome
    return results


# ---------------------------------------------------------------- TS features


async def run_feature(cm: codemode.CodeMode, spec: dict[str, Any], failures: Failures) -> dict[str, Any]:
    """Run one TS feature probe: it must return its expectedResult (or, if allowed, fail as syntax)."""
    name = Path(spec["file"]).stem
    code = load_program(spec["file"])
    elapsed, result = await timed_execute(cm, code)
    kind = result.error.kind if result.error else None
    if result.success and json_equal(result.result, spec["expectedResult"]):
        status = "ok"
    elif name in SYNTAX_ALLOWED and kind == "syntax":
        status = "syntax (allowed)"
    else:
        status = "FAIL"
        check_result(f"ts-features/{name}", code, result, spec["expectedResult"], failures)
    return {
        "status": status,
        "expected": spec["expectedResult"],
        "result": result.result,
        "error_kind": kind,
        "error_message": result.error.message if result.error else None,
        "elapsed_ms": elapsed,
    }


async def run_features(failures: Failures) -> dict[str, Any]:
    """Every TS feature probe, printed as it finishes."""
    print("\nTypeScript features")
    cm = codemode.create_code_mode(tools=build_tools(), driver=DRIVER)
    results: dict[str, Any] = {}
    try:
        for spec in SPEC["tsFeatures"]:
            name = Path(spec["file"]).stem
            outcome = await run_feature(cm, spec, failures)
            results[name] = outcome
            detail = outcome["error_message"] if outcome["status"] != "ok" else json.dumps(outcome["result"])
            print(f"  {name:<26}{outcome['status']:<18}{detail}", flush=True)
    finally:
        await cm.aclose()
    return results


# ---------------------------------------------------------------- main


DRIVER: codemode.drivers.IsolateDriver | None = None
"""The engine every code mode of the run uses (``--driver``; None: the default, QuickJS)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description="Run the shared workloads through codemode.")
    parser.add_argument(
        "--only",
        help="comma-separated ids to run, e.g. W1,W2 (W9 = all limit tests, W9a..W9e one, ts = TS features)",
    )
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"output file (default {DEFAULT_JSON})"
    )
    parser.add_argument("--quick", action="store_true", help="run counts / 10 (at least 3), for smoke tests")
    parser.add_argument(
        "--prewarm", type=int, default=None, help="engines kept ready on a background thread (QuickJSDriver)"
    )
    parser.add_argument(
        "--driver",
        choices=("quickjs", "quickjs-process", "v8", "cloudflare"),
        default="quickjs",
        help="the engine (v8 needs codemode[v8-engine]; quickjs-process: QuickJS in confined workers; "
        "cloudflare: the Worker at $CODEMODE_CLOUDFLARE_URL, else one on a local workerd)",
    )
    return parser.parse_args(argv)


def cloudflare_driver() -> codemode.drivers.IsolateDriver:
    """The Worker at ``$CODEMODE_CLOUDFLARE_URL`` (secret: ``$CODEMODE_CLOUDFLARE_SECRET``), or
    one started on a local workerd for this run."""
    import atexit
    import os

    from codemode.cloudflare import CloudflareDriver
    from codemode.cloudflare.local import LocalWorker

    url = os.environ.get("CODEMODE_CLOUDFLARE_URL")
    if url:
        return CloudflareDriver(url)
    worker = LocalWorker()
    worker.start()
    atexit.register(worker.stop)
    return CloudflareDriver(worker.url, worker.secret)


def write_json(path: Path, report: dict[str, Any]) -> None:
    """Write the report, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


async def run(args: argparse.Namespace) -> int:
    """Run the selected sections, print the tables, write the JSON; 1 if any check failed."""
    only = {token.strip() for token in args.only.split(",") if token.strip()} if args.only else None
    global DRIVER
    if args.prewarm is not None:
        codemode.QuickJSDriver(prewarm=args.prewarm)  # a process-wide setting
    DRIVER = {
        "v8": codemode.V8Driver,
        "quickjs-process": lambda: codemode.QuickJSDriver(isolation="process"),
        "cloudflare": cloudflare_driver,
    }.get(args.driver, lambda: None)()
    failures = Failures()
    info = machine_info()
    print(
        f"codemode {info['codemode']} | Python {info['python']} | {info['platform']} | "
        f"{info['processor'] or info['machine']} x{info['cpu_count']}" + (" | --quick" if args.quick else "")
    )
    report: dict[str, Any] = {
        "machine": info,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "prewarm": args.prewarm,
        "driver": args.driver,
        "workloads": await run_workloads(only, args.quick, failures),
        "limits": await run_limits(only, failures),
    }
    if only is None or FEATURES_SELECTOR in only:
        report["ts_features"] = await run_features(failures)
    report["failures"] = failures.items
    write_json(args.json, report)
    print(f"\nWrote {args.json}")
    if failures.items:
        print(f"\n{len(failures.items)} CHECK(S) FAILED:")
        for item in failures.items:
            print(f"  {item['test']}: {item['problem']}")
        return 1
    return 0


def main() -> None:
    """Entry point: ``python3 benches/run.py``."""
    sys.exit(asyncio.run(run(parse_args())))


if __name__ == "__main__":
    main()
