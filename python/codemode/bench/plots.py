"""The plots of a report (matplotlib, the ``bench`` extra): one bar chart per workload with
p5-p95 error bars, and a log-scale overview of all workloads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colours(report: dict[str, Any]) -> dict[str, str]:
    return {t: COLOURS[i % len(COLOURS)] for i, t in enumerate(report["targets"])}


def workload_chart(report: dict[str, Any], workload_id: str, path: Path) -> Path:
    """Bars of each target's median for one workload, error bars from p5 to p95."""
    plt = _pyplot()
    workload = report["workloads"][workload_id]
    measured = {t: e for t, e in workload["results"].items() if e["ok"]}
    labels = [report["targets"][t]["label"] for t in measured]
    medians = [e["median_ms"] for e in measured.values()]
    low = [e["median_ms"] - e["p5_ms"] for e in measured.values()]
    high = [e["p95_ms"] - e["median_ms"] for e in measured.values()]
    colours = _colours(report)
    figure, axes = plt.subplots(figsize=(7, 3.6), dpi=100)
    axes.bar(
        range(len(medians)),
        medians,
        yerr=[low, high],
        capsize=4,
        color=[colours[t] for t in measured],
    )
    axes.set_xticks(range(len(medians)), labels, rotation=15, ha="right", fontsize=8)
    axes.set_ylabel("ms (median, p5-p95)")
    axes.set_title(f"{workload_id} {workload['name']}")
    for index, (value, above) in enumerate(zip(medians, high, strict=True)):
        axes.annotate(f"{value:.3g}", (index, value + above), ha="center", va="bottom", fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def overview_chart(report: dict[str, Any], path: Path) -> Path:
    """Grouped bars of every workload's medians, one colour per target, on a log scale."""
    plt = _pyplot()
    workloads = list(report["workloads"])
    targets = [t for t, info in report["targets"].items() if info["status"] == "ran"]
    colours = _colours(report)
    width = 0.8 / max(1, len(targets))
    figure, axes = plt.subplots(figsize=(max(7, 0.9 * len(workloads) + 2), 4.8), dpi=100)
    for index, target in enumerate(targets):
        xs, ys = [], []
        for position, workload_id in enumerate(workloads):
            entry = report["workloads"][workload_id]["results"].get(target)
            if entry and entry["ok"]:
                xs.append(position + (index - (len(targets) - 1) / 2) * width)
                ys.append(entry["median_ms"])
        axes.bar(xs, ys, width, label=report["targets"][target]["label"], color=colours[target])
    axes.set_yscale("log")
    axes.set_xticks(range(len(workloads)), workloads)
    axes.set_ylabel("median ms per execute() (log)")
    quick = ", --quick" if report["options"].get("quick") else ""
    axes.set_title(f"codemode bench: medians per workload ({report['machine']['cores']} cores{quick})")
    axes.grid(axis="y", which="major", alpha=0.3)
    axes.legend(
        fontsize=8, ncol=min(4, max(1, len(targets))), loc="upper center", bbox_to_anchor=(0.5, -0.08)
    )
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def make_plots(report: dict[str, Any], directory: Path) -> dict[str, Path]:
    """Write ``overview.png`` and ``<workload>.png`` into ``directory``; name -> path."""
    directory.mkdir(parents=True, exist_ok=True)
    plots = {"overview": overview_chart(report, directory / "overview.png")}
    for workload_id, workload in report["workloads"].items():
        if any(e["ok"] for e in workload["results"].values()):
            plots[workload_id] = workload_chart(report, workload_id, directory / f"{workload_id}.png")
    return plots
