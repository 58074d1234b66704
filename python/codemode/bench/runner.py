"""Run the plan: one child process per (target, workload), samples collected as JSON.

codemode's engines and the Python peers run in ``python -m codemode.bench.worker``; TanStack's
driver in Node (``tanstack.mjs --only <workload>``). Workloads run one after another, each on
every target in turn, so a burst of load on a shared machine weighs on all targets alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import tanstack
from .machine import loadavg, machine_info, now
from .spec import Workload
from .stats import ratios_to_fastest, summarise
from .targets import QUICKJS_VERSION, Target

JOB_TIMEOUT_S = 900
"""A (target, workload) process still running after this long is stopped and counted failed."""


@dataclass(frozen=True)
class Job:
    """One (target, workload) to measure in a process of its own."""

    target: Target
    workload: Workload


@dataclass
class Setup:
    """What the run needs before the first job: the targets that run and those skipped."""

    targets: list[Target]
    skipped: dict[str, str] = field(default_factory=dict)
    """target id -> why it does not run here."""
    versions: dict[str, Any] = field(default_factory=dict)
    """target id -> its version details."""
    node: tanstack.NodeTools | None = None
    peer_dir: Path | None = None


def prepare(wanted: list[Target], say: Callable[[str], None] = print) -> Setup:
    """Check which targets can run here; install TanStack's peer on first use (``npm ci``).
    A target that cannot run is skipped with its reason, never an error."""
    setup = Setup(targets=[])
    for target in wanted:
        reason = target.unavailable()
        if reason is None and target.id == "tanstack":
            reason = _prepare_tanstack(setup, say)
        if reason is not None:
            setup.skipped[target.id] = reason
            continue
        setup.targets.append(target)
        setup.versions[target.id] = _version(target, setup)
    return setup


def _prepare_tanstack(setup: Setup, say: Callable[[str], None]) -> str | None:
    tools = tanstack.find_node_tools()
    assert tools is not None
    directory = tanstack.install_dir()
    try:
        if not tanstack.is_installed(directory):
            say(f"Installing the TanStack peer (npm ci, first use) in {directory}")
        tanstack.install(tools, directory)
        binary = tanstack.check_isolated_vm(tools, directory)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        return f"could not install or load it: {e}"
    setup.node, setup.peer_dir = tools, directory
    setup.versions["tanstack"] = {
        **tanstack.node_version(tools),
        **tanstack.installed_versions(directory),
        "isolated-vm binary": binary,
    }
    return None


def _version(target: Target, setup: Setup) -> Any:
    if target.id == "tanstack":
        return setup.versions["tanstack"]
    if target.kind == "peer":
        return target.version()
    if target.id in ("quickjs", "quickjs-process"):
        return QUICKJS_VERSION
    if target.id == "v8":
        from codemode.v8 import find_node

        return tanstack.node_version(tanstack.NodeTools(find_node(), []))
    if target.id == "cloudflare":
        return {"url": os.environ.get("CODEMODE_CLOUDFLARE_URL")}
    return None


def plan(workloads: list[Workload], targets: list[Target]) -> list[Job]:
    """Each workload on each target that runs it (peers do not run the W9 limit tests)."""
    return [Job(t, w) for w in workloads for t in targets if t.runs_limits or not w.is_limit]


def _worker_env() -> dict[str, str]:
    """The environment of a worker: this codemode first on its import path."""
    package_root = str(Path(__file__).resolve().parent.parent.parent)
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=package_root + (os.pathsep + path if path else ""))


def run_python_job(job: Job, quick: bool) -> dict[str, Any]:
    """``python -m codemode.bench.worker`` for one job; its JSON (or a failure describing why)."""
    command = [sys.executable, "-m", "codemode.bench.worker", "--target", job.target.id]
    command += ["--workload", job.workload.id] + (["--quick"] if quick else [])
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, env=_worker_env(), timeout=JOB_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return {"samples_ms": [], "ok": False, "problem": f"still running after {JOB_TIMEOUT_S} s"}
    lines = proc.stdout.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (proc.stderr or proc.stdout).strip()[-500:]
        return {"samples_ms": [], "ok": False, "problem": f"worker exited with {proc.returncode}: {tail}"}
    return result


def run_node_job(job: Job, setup: Setup, quick: bool) -> dict[str, Any]:
    """TanStack's driver on one workload in a Node process; the same shape as a worker's JSON."""
    assert setup.node is not None and setup.peer_dir is not None
    report = tanstack.run(setup.node, setup.peer_dir, [job.workload.id], quick)
    if "error" in report:
        return {"samples_ms": [], "ok": False, "problem": report["error"]}
    stats = report.get("workloads", {}).get(job.workload.id)
    failures = report.get("failures", [])
    if stats is None or failures:
        problem = "; ".join(f"{f['test']}: {f['problem']}" for f in failures) or "no result"
        return {"samples_ms": [], "ok": False, "problem": problem}
    return {
        "samples_ms": stats["samples_ms"],
        "deferred_ms": [],
        "ok": True,
        "problem": None,
        "tool_calls": job.workload.tool_calls,
    }


def run_job(job: Job, setup: Setup, quick: bool) -> dict[str, Any]:
    """Measure one job in its own process."""
    if job.target.runner == "node":
        return run_node_job(job, setup, quick)
    return run_python_job(job, quick)


def result_entry(raw: dict[str, Any]) -> dict[str, Any]:
    """A job's entry in the report: the summary of its samples, the samples, and its check."""
    samples: list[float] = raw.get("samples_ms") or []
    ok = bool(raw.get("ok")) and bool(samples)
    entry: dict[str, Any] = summarise(samples) if ok else {"median_ms": None}
    entry.update(
        ok=ok,
        problem=raw.get("problem"),
        samples_ms=samples,
        deferred_ms=raw.get("deferred_ms") or [],
    )
    if raw.get("tool_calls"):
        entry["tool_calls"] = raw["tool_calls"]
    return entry


def build_report(
    workloads: list[Workload],
    setup: Setup,
    wanted: list[Target],
    results: dict[tuple[str, str], dict[str, Any]],
    options: dict[str, Any],
    machine: dict[str, Any],
) -> dict[str, Any]:
    """The JSON report: machine, options, targets (ran or skipped, versions), and per workload
    every target's samples, summary, check and ratio to the fastest."""
    report_workloads: dict[str, Any] = {}
    for spec in workloads:
        entries = {
            target.id: result_entry(results[(target.id, spec.id)])
            for target in setup.targets
            if (target.id, spec.id) in results
        }
        ratios = ratios_to_fastest({t: e["median_ms"] for t, e in entries.items()})
        for target_id, entry in entries.items():
            entry["ratio_to_fastest"] = ratios[target_id]
        report_workloads[spec.id] = {
            "name": spec.name,
            "kind": "limit" if spec.is_limit else "timed",
            "metric": f"ms until execute() returned (must fail: {spec.expected_kind})"
            if spec.is_limit
            else "wall ms per execute()",
            "warmup": spec.warmup,
            "runs": spec.sample_count(options["quick"]),
            "tool_calls": spec.tool_calls,
            "results": entries,
        }
    targets = {
        t.id: {
            "label": t.label,
            "kind": t.kind,
            "status": "skipped" if t.id in setup.skipped else "ran",
            "reason": setup.skipped.get(t.id),
            "version": setup.versions.get(t.id),
        }
        for t in wanted
    }
    failures = [
        {"target": t, "workload": w, "problem": e["problem"]}
        for w, entry in report_workloads.items()
        for t, e in entry["results"].items()
        if not e["ok"]
    ]
    machine = {**machine, "loadavg_end": loadavg(), "finished": now()}
    return {
        "schema": "codemode-bench/1",
        "machine": machine,
        "options": options,
        "targets": targets,
        "workloads": report_workloads,
        "failures": failures,
    }


def run_all(
    jobs: list[Job],
    setup: Setup,
    quick: bool,
    on_start: Callable[[Job], None] = lambda job: None,
    on_done: Callable[[Job, dict[str, Any]], None] = lambda job, raw: None,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Every job, one after another; ``{(target id, workload id): the job's JSON}``."""
    results: dict[tuple[str, str], dict[str, Any]] = {}
    for job in jobs:
        on_start(job)
        raw = run_job(job, setup, quick)
        results[(job.target.id, job.workload.id)] = raw
        on_done(job, raw)
    return results


__all__ = [
    "Job",
    "Setup",
    "build_report",
    "machine_info",
    "plan",
    "prepare",
    "result_entry",
    "run_all",
    "run_job",
]
