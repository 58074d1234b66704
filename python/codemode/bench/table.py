"""The report as rich tables: medians with each target's ratio to the fastest, the skipped
targets, the failed checks, and a comparison with an earlier run."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from .compare import Change
from .stats import format_ms


def _ran(report: dict[str, Any]) -> list[str]:
    return [t for t, info in report["targets"].items() if info["status"] == "ran"]


def median_cell(entry: dict[str, Any] | None) -> tuple[str, str]:
    """The text of one cell (``1.23 ms x1.85``) and its style (the fastest bold green)."""
    if entry is None:
        return "-", "dim"
    if not entry["ok"]:
        return "FAILED", "bold red"
    ratio = entry["ratio_to_fastest"]
    text = f"{format_ms(entry['median_ms'])} ms  x{ratio:.2f}"
    return text, "bold green" if ratio == 1.0 else ""


def medians_table(report: dict[str, Any]) -> Table:
    """One row per workload, one column per target: median ms and ratio to the fastest."""
    targets = _ran(report)
    quick = " (--quick)" if report["options"].get("quick") else ""
    table = Table(
        title=f"codemode bench{quick}: median ms per execute(), x ratio to the fastest",
        caption="W9: ms until the limit stopped the program; '-': not run (peers run W1-W8)",
        title_justify="left",
    )
    table.add_column("workload")
    for target in targets:
        table.add_column(report["targets"][target]["label"], justify="right")
    for workload_id, workload in report["workloads"].items():
        cells = [median_cell(workload["results"].get(t)) for t in targets]
        table.add_row(
            f"{workload_id} {workload['name']}",
            *(f"[{style}]{text}[/]" if style else text for text, style in cells),
        )
    return table


def print_report(console: Console, report: dict[str, Any]) -> None:
    """The medians table, then the skipped targets and the failed checks."""
    machine = report["machine"]
    console.print(
        f"{machine['cpu']} x{machine['cores']} | {machine['os']} | {machine['python']} | "
        f"codemode {machine['codemode']}",
        highlight=False,
    )
    console.print(medians_table(report))
    for target, info in report["targets"].items():
        if info["status"] == "skipped":
            console.print(f"skipped {target}: {info['reason']}", highlight=False, markup=False)
    for failure in report["failures"]:
        console.print(
            f"[bold red]FAILED[/] {failure['workload']} on {failure['target']}: {failure['problem']}",
            highlight=False,
        )


STATUS_STYLE = {
    "regression": "bold red",
    "improvement": "green",
    "noise": "yellow",
    "same": "",
    "new": "dim",
    "gone": "dim",
    "failed": "bold red",
}


def comparison_table(changes: list[Change], threshold: float) -> Table:
    """The change of each median against the earlier run."""
    table = Table(
        title=f"Against the earlier run (flagged beyond {threshold:.0%}; noise: the quartile ranges overlap)",
        title_justify="left",
    )
    for name, justify in (("workload", "left"), ("target", "left"), ("old ms", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("new ms", justify="right")
    table.add_column("change", justify="right")
    table.add_column("status")
    for change in changes:
        ratio = change.ratio
        style = STATUS_STYLE[change.status]
        table.add_row(
            change.workload,
            change.target,
            format_ms(change.old_ms) if change.old_ms is not None else "-",
            format_ms(change.new_ms) if change.new_ms is not None else "-",
            f"{ratio - 1:+.1%}" if ratio is not None else "-",
            f"[{style}]{change.status}[/]" if style else change.status,
        )
    return table
