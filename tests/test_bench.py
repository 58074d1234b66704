"""``codemode bench``: a real quick run in a subprocess, the ratio and compare logic, and the
workloads shipped in the package being the ones benches/ uses (a single copy)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from codemode.bench import compare, spec, stats

from .conftest import child_python_path

ROOT = Path(__file__).resolve().parent.parent
PYTHON_DIR = ROOT / "python"
TREE_WORKLOADS = PYTHON_DIR / "codemode" / "bench" / "workloads"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("bench")
    env = dict(os.environ, PYTHONPATH=child_python_path())
    command = [sys.executable, "-m", "codemode", "bench", "--quick", "--only", "W2,W3"]
    command += ["--engines", "quickjs", "--peers", "none", "--out", str(out)]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, cwd=out)
    return proc, out


def test_quick_run_prints_the_table(quick_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, _ = quick_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "codemode QuickJS" in proc.stdout
    assert re.search(r"W2 hello\s*│\s*[\d.]+ ms\s+x1\.00", proc.stdout), proc.stdout
    assert re.search(r"W3 sequential-calls\s*│\s*[\d.]+ ms\s+x1\.00", proc.stdout), proc.stdout


def test_quick_run_writes_the_json(quick_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = quick_run
    report = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    for key in ("cpu", "cores", "os", "python", "codemode", "date"):
        assert report["machine"][key], key
    assert report["targets"]["quickjs"]["status"] == "ran"
    assert report["targets"]["quickjs"]["version"].startswith("QuickJS")
    assert set(report["workloads"]) == {"W2", "W3"}
    assert report["failures"] == []
    for workload_id, runs in (("W2", 50), ("W3", 3)):
        result = report["workloads"][workload_id]["results"]["quickjs"]
        assert result["ok"] is True and result["problem"] is None  # checked against expectedResult
        assert len(result["samples_ms"]) == runs == result["runs"]
        assert result["median_ms"] == pytest.approx(stats.percentile(result["samples_ms"], 50))
        assert result["p5_ms"] <= result["median_ms"] <= result["p95_ms"]
        assert result["ratio_to_fastest"] == 1.0
    assert report["workloads"]["W3"]["results"]["quickjs"]["tool_calls"] == 1000


def test_quick_run_writes_plots_and_a_self_contained_report(
    quick_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, out = quick_run
    pytest.importorskip("matplotlib")
    for name in ("overview", "W2", "W3"):
        assert (out / "plots" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3
    assert "codemode QuickJS" in page and "Machine and versions" in page
    assert not re.search(r"""(src|href)\s*=\s*(?!["']?data:)""", page), "an external resource"
    assert "<script" not in page and "<link" not in page


def _result(median: float, p25: float, p75: float, ok: bool = True) -> dict[str, Any]:
    return {"median_ms": median, "p25_ms": p25, "p75_ms": p75, "ok": ok}


def _report(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"workloads": {"W1": {"results": results}}}


def test_ratios_to_the_fastest() -> None:
    ratios = stats.ratios_to_fastest({"quickjs": 2.0, "v8": 1.0, "tanstack": 3.0, "broken": None})
    assert ratios == {"quickjs": 2.0, "v8": 1.0, "tanstack": 3.0, "broken": None}
    assert stats.fastest({"quickjs": 2.0, "v8": 1.0, "broken": None}) == "v8"
    assert stats.ratios_to_fastest({"a": None}) == {"a": None}


def test_percentile_interpolates() -> None:
    assert stats.percentile([1, 2, 3, 4], 50) == 2.5
    assert stats.percentile([10], 95) == 10
    assert stats.summarise([1.0, 2.0, 3.0])["median_ms"] == 2.0


def test_compare_flags_a_regression_and_noise() -> None:
    old = _report(
        {
            "quickjs": _result(1.0, 0.95, 1.05),  # becomes 25 % slower, quartiles apart: regression
            "v8": _result(1.0, 0.6, 1.6),  # becomes 20 % slower, quartiles overlap: noise
            "tanstack": _result(1.0, 0.95, 1.05),  # within 10 %: same
            "pydeno": _result(2.0, 1.9, 2.1),  # becomes twice as fast: improvement
        }
    )
    new = _report(
        {
            "quickjs": _result(1.25, 1.2, 1.3),
            "v8": _result(1.2, 0.9, 1.7),
            "tanstack": _result(1.05, 1.0, 1.1),
            "pydeno": _result(1.0, 0.95, 1.05),
            "mini-racer": _result(5.0, 4.0, 6.0),
        }
    )
    changes = {c.target: c for c in compare.compare(old, new, threshold=0.10)}
    assert {t: c.status for t, c in changes.items()} == {
        "quickjs": "regression",
        "v8": "noise",
        "tanstack": "same",
        "pydeno": "improvement",
        "mini-racer": "new",
    }
    assert changes["quickjs"].ratio == pytest.approx(1.25)
    assert [c.target for c in compare.regressions(list(changes.values()))] == ["quickjs"]
    # a wider threshold lets the same change through
    assert (
        compare.classify(
            old["workloads"]["W1"]["results"]["quickjs"], new["workloads"]["W1"]["results"]["quickjs"], 0.3
        )
        == "same"
    )
    failed = compare.classify(_result(1.0, 1.0, 1.0), {"median_ms": None, "ok": False}, 0.1)
    assert failed == "failed"


def test_compare_fails_the_command_on_a_regression(tmp_path: Path) -> None:
    """--compare --fail-on-regression exits 1 against an old run that was much faster."""
    from codemode.bench import cli

    old = {
        "workloads": {
            "W2": {"results": {"quickjs": _result(1e-6, 1e-6, 1e-6)}},
        }
    }
    old_path = tmp_path / "old.json"
    old_path.write_text(json.dumps(old), encoding="utf-8")
    argv = ["--quick", "--only", "W2", "--engines", "quickjs", "--peers", "none", "--out", str(tmp_path)]
    assert cli.main([*argv, "--compare", str(old_path)]) == 0
    assert cli.main([*argv, "--compare", str(old_path), "--fail-on-regression"]) == 1


def test_the_package_ships_the_single_copy_of_the_workloads() -> None:
    """benches/ and the package use the same programs: the package's, with no copy left behind."""
    assert not (ROOT / "benches" / "workloads").exists()
    shipped = sorted(p.relative_to(spec.WORKLOADS_DIR) for p in spec.WORKLOADS_DIR.rglob("*") if p.is_file())
    in_tree = sorted(p.relative_to(TREE_WORKLOADS) for p in TREE_WORKLOADS.rglob("*") if p.is_file())
    assert shipped == in_tree and len(in_tree) > 20  # an installed copy ships them all, unchanged
    for name in in_tree:
        assert (spec.WORKLOADS_DIR / name).read_bytes() == (TREE_WORKLOADS / name).read_bytes(), name
    for name in ("run.py", "peers.py", "v8_candidates.py", "approvals.py", "prompt_size.py"):
        source = (ROOT / "benches" / name).read_text(encoding="utf-8")
        assert "codemode.bench" in source, name
        assert '/ "workloads"' not in source, name
    ids = [w.id for w in spec.all_workloads()]
    assert ids == ["W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9a", "W9b", "W9c", "W9d", "W9e"]
    for workload in spec.all_workloads():
        assert workload.path.is_file(), workload.path
    assert [w.id for w in spec.select("W2,W9")] == ["W2", "W9a", "W9b", "W9c", "W9d", "W9e"]
    with pytest.raises(ValueError, match="W42"):
        spec.select("W42")


def test_the_quickjs_version_named_in_reports_is_the_vendored_one() -> None:
    from codemode.bench.targets import QUICKJS_VERSION

    header = ROOT / "vendor" / "rquickjs-sys" / "quickjs" / "quickjs.h"
    if not header.exists():
        pytest.skip("no vendored QuickJS here")
    text = header.read_text(encoding="utf-8", errors="replace")
    parts = [re.search(rf"#define QJS_VERSION_{p}\s+(\d+)", text) for p in ("MAJOR", "MINOR", "PATCH")]
    assert all(parts)
    assert QUICKJS_VERSION == "QuickJS-ng " + ".".join(m.group(1) for m in parts if m)
