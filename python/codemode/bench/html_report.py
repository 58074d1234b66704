"""A self-contained HTML report: the machine, the medians table, failures, skipped targets and
the plots inline as base64 PNG (no external scripts, styles or images)."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from .stats import format_ms

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.fastest { font-weight: bold; color: #167a16; }
td.failed { font-weight: bold; color: #b00; }
img { max-width: 100%; margin: 0.5em 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 8px; }
code { background: #f3f3f3; padding: 1px 4px; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def _machine(report: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(v)}</td></tr>" for k, v in report["machine"].items())
    for info in report["targets"].values():
        if info["status"] == "ran" and info["version"]:
            version = info["version"]
            text = json.dumps(version) if isinstance(version, dict) else version
            rows += f"<tr><td>{_esc(info['label'])}</td><td>{_esc(text)}</td></tr>"
    return f"<table>{rows}</table>"


def _medians(report: dict[str, Any]) -> str:
    targets = [t for t, info in report["targets"].items() if info["status"] == "ran"]
    head = "".join(f"<th>{_esc(report['targets'][t]['label'])}</th>" for t in targets)
    body = ""
    for workload_id, workload in report["workloads"].items():
        cells = ""
        for target in targets:
            entry = workload["results"].get(target)
            if entry is None:
                cells += "<td>-</td>"
            elif not entry["ok"]:
                cells += f'<td class="failed" title="{_esc(entry["problem"])}">FAILED</td>'
            else:
                ratio = entry["ratio_to_fastest"]
                css = ' class="fastest"' if ratio == 1.0 else ""
                spread = f"p5 {format_ms(entry['p5_ms'])} - p95 {format_ms(entry['p95_ms'])} ms"
                title = _esc(f"{spread}, {entry['runs']} runs")
                median = format_ms(entry["median_ms"])
                cells += f'<td{css} title="{title}">{median} ms &times;{ratio:.2f}</td>'
        body += f"<tr><td>{_esc(workload_id)} {_esc(workload['name'])}</td>{cells}</tr>"
    return f"<table><tr><th>workload</th>{head}</tr>{body}</table>"


def render(report: dict[str, Any], plots: dict[str, Path]) -> str:
    """The HTML page of a report, with ``plots`` (name -> PNG file) embedded."""
    quick = " (--quick)" if report["options"].get("quick") else ""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>codemode bench {_esc(report['machine']['date'])}</title><style>{STYLE}</style></head><body>",
        f"<h1>codemode bench{quick}</h1>",
        "<p>Median wall ms per <code>execute()</code> (W9: ms until the limit stopped the program), "
        "&times; ratio to the fastest target of the workload; hover a cell for p5-p95 and the run count. "
        "Each (target, workload) ran in a process of its own; every result was checked against "
        "tools.json's expected result.</p>",
        _medians(report),
    ]
    skipped = [(t, i) for t, i in report["targets"].items() if i["status"] == "skipped"]
    if skipped:
        items = "".join(f"<li><b>{_esc(i['label'])}</b>: {_esc(i['reason'])}</li>" for _, i in skipped)
        parts.append(f"<h2>Skipped</h2><ul>{items}</ul>")
    if report["failures"]:
        items = "".join(
            f"<li>{_esc(f['workload'])} on {_esc(f['target'])}: {_esc(f['problem'])}</li>"
            for f in report["failures"]
        )
        parts.append(f"<h2>Failed checks</h2><ul>{items}</ul>")
    if "overview" in plots:
        parts.append("<h2>Overview</h2>" + _image(plots["overview"], "medians of every workload, log scale"))
    charts = [_image(path, name) for name, path in plots.items() if name != "overview"]
    if charts:
        parts.append("<h2>Per workload (median, p5-p95)</h2><div class='grid'>" + "".join(charts) + "</div>")
    elif not plots:
        parts.append(
            "<p>No plots: matplotlib is not installed (<code>pip install 'codemode[bench]'</code>).</p>"
        )
    parts.append(f"<h2>Machine and versions</h2>{_machine(report)}</body></html>\n")
    return "".join(parts)


def write(report: dict[str, Any], plots: dict[str, Path], path: Path) -> Path:
    """Write the HTML report to ``path``."""
    path.write_text(render(report, plots), encoding="utf-8")
    return path
