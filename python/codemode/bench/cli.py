"""``codemode bench``: the shared workloads on every engine installed here, beside the peers.

    codemode bench [--quick] [--only W1,W3] [--engines quickjs,v8] [--peers tanstack|none]
                   [--out DIR] [--compare old.json [--threshold 10] [--fail-on-regression]]

Prints a table of medians with each target's ratio to the fastest, and writes to ``--out``
(default ``bench-results/``): ``bench.json`` (raw samples, checks, machine and versions),
``plots/*.png`` (with matplotlib) and ``report.html`` (self-contained). Exit status: 0; 1 when
a check failed, or on a regression against ``--compare`` with ``--fail-on-regression``; 2 for
bad arguments or a missing ``rich``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from .runner import Job, Setup
    from .spec import Workload
    from .targets import Target

DEFAULT_OUT = Path("bench-results")


def add_bench_command(commands: Any) -> None:
    """Add ``codemode bench`` to the ``codemode`` command's subcommands."""
    bench = commands.add_parser(
        "bench",
        help="run the benchmark workloads on every engine here, beside peers",
        description="Run the shared workloads W1-W9 on every codemode engine installed here and on "
        "the peers found (each (target, workload) in a process of its own, every result checked); "
        "print the medians, write JSON, plots and an HTML report.",
    )
    configure_parser(bench)
    bench.set_defaults(handler=_bench)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """The flags of ``codemode bench``."""
    parser.add_argument("--quick", action="store_true", help="fewer runs (tools.json's / 10, at least 3)")
    parser.add_argument("--only", help="comma-separated workloads, e.g. W1,W3 (W9 = W9a-W9e; default all)")
    parser.add_argument(
        "--engines",
        help="comma-separated: quickjs,quickjs-process,v8,cloudflare (default: all; one not installed "
        "or not configured is skipped)",
    )
    parser.add_argument(
        "--peers", help="comma-separated: pydeno,mini-racer,tanstack, or none (default: all found here)"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT}/)"
    )
    parser.add_argument("--compare", type=Path, help="an earlier bench.json: print the change of each median")
    parser.add_argument(
        "--threshold",
        type=float,
        default=10.0,
        help="with --compare: percent change of a median flagged as a regression (default 10)",
    )
    parser.add_argument(
        "--fail-on-regression", action="store_true", help="with --compare: exit 1 on a regression"
    )


def _bench(args: argparse.Namespace) -> int:
    return run(args)


def _usage(message: str) -> int:
    print(f"codemode bench: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Run ``codemode bench`` with parsed arguments; the exit status."""
    try:
        from rich.console import Console
    except ImportError:
        return _usage("needs rich: pip install 'codemode[bench]'")

    from . import runner, table

    try:
        workloads, wanted = _selected(args)
        old_report = _earlier_report(args.compare)
    except ValueError as e:
        return _usage(str(e))

    console = Console() if sys.stdout.isatty() else Console(width=160)
    started = time.perf_counter()
    machine = runner.machine_info()
    # reasons and problems are plain text (``codemode[v8-engine]`` is no rich markup)
    setup = runner.prepare(wanted, say=lambda text: console.print(text, highlight=False, markup=False))
    for target_id, reason in setup.skipped.items():
        console.print(f"skipping {target_id}: {reason}", highlight=False, markup=False)
    jobs = runner.plan(workloads, setup.targets)
    results = _run_with_progress(console, jobs, setup, args.quick)
    options = {
        "quick": args.quick,
        "only": args.only,
        "engines": args.engines,
        "peers": args.peers,
        "duration_s": None,
    }
    report = runner.build_report(workloads, setup, wanted, results, options, machine)
    report["options"]["duration_s"] = round(time.perf_counter() - started, 1)
    table.print_report(console, report)
    _write_results(console, report, args.out)

    status = 1 if report["failures"] else 0
    if old_report is not None:
        regressions = _print_comparison(console, old_report, report, args.threshold)
        if regressions and args.fail_on_regression:
            status = 1
    return status


def _selected(args: argparse.Namespace) -> tuple[list[Workload], list[Target]]:
    """The workloads and the targets (engines, then peers) the arguments name; ValueError for an
    unknown name."""
    from . import spec, targets

    workloads = spec.select(args.only)
    wanted = [targets.ENGINES[n] for n in targets.parse_names(args.engines, targets.ENGINES, "--engines")]
    wanted += [targets.PEERS[n] for n in targets.parse_names(args.peers, targets.PEERS, "--peers")]
    return workloads, wanted


def _earlier_report(path: Path | None) -> dict[str, Any] | None:
    """The report of ``--compare`` (None without it); ValueError when it cannot be read."""
    if path is None:
        return None
    try:
        report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"--compare: cannot read {path}: {e}") from None
    return report


def _run_with_progress(
    console: Console, jobs: list[Job], setup: Setup, quick: bool
) -> dict[tuple[str, str], dict[str, Any]]:
    """Run the jobs under a progress bar (each failure printed as it happens); their raw results."""
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import runner

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("benchmark", total=len(jobs))

        def on_start(job: Job) -> None:
            progress.update(task, description=f"{job.workload.id} on {job.target.label}")

        def on_done(job: Job, raw: dict[str, Any]) -> None:
            progress.advance(task)
            if not raw.get("ok"):
                progress.console.print(
                    f"[red]FAILED[/] {job.workload.id} on {job.target.id}: {escape(str(raw.get('problem')))}",
                    highlight=False,
                )

        return runner.run_all(jobs, setup, quick, on_start, on_done)


def _write_results(console: Console, report: dict[str, Any], out: Path) -> None:
    """Write ``bench.json``, the plots (with matplotlib) and ``report.html`` to ``out``, and say so."""
    from . import html_report, plots

    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "bench.json"
    json_path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    made: dict[str, Path] = {}
    if plots.available():
        made = plots.make_plots(report, out / "plots")
    else:
        console.print(
            "matplotlib is not installed (pip install 'codemode[bench]'): no plots", highlight=False
        )
    html_path = html_report.write(report, made, out / "report.html")
    console.print(
        f"Wrote {json_path}, {html_path}" + (f" and {len(made)} plots in {out / 'plots'}" if made else ""),
        highlight=False,
    )


def _print_comparison(
    console: Console, old_report: dict[str, Any], report: dict[str, Any], threshold_percent: float
) -> int:
    """Print the change of each median against an earlier report; the number of regressions
    beyond ``threshold_percent``."""
    from . import compare, table

    threshold = threshold_percent / 100
    changes = compare.compare(old_report, report, threshold)
    gone = [c for c in changes if c.status == "gone"]
    console.print(table.comparison_table([c for c in changes if c.status != "gone"], threshold))
    if gone:
        console.print(f"{len(gone)} result(s) of the earlier run not measured this time", highlight=False)
    found = compare.regressions(changes)
    if found:
        console.print(
            f"[bold red]{len(found)} regression(s)[/] beyond {threshold_percent:g}%: "
            + ", ".join(f"{c.workload} on {c.target}" for c in found),
            highlight=False,
        )
    return len(found)


def main(argv: list[str] | None = None) -> int:
    """``python -m codemode.bench``: the same as ``codemode bench``."""
    parser = argparse.ArgumentParser(prog="codemode bench", description=__doc__.split("\n")[0])
    configure_parser(parser)
    return run(parser.parse_args(argv))
