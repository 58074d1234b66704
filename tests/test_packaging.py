"""The package's own metadata: what pip reads before anything is installed."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.specifiers import InvalidSpecifier, Specifier

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
EXTRAS = sorted(tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["optional-dependencies"])


@pytest.mark.parametrize("extra", EXTRAS)
def test_no_extra_name_reads_as_a_version(extra: str) -> None:
    """pip 24.2 (the pip of Python 3.13.0) evaluates `extra == "<name>"` as a version
    comparison when the name parses as a version (e.g. "v8") and then refuses the wheel."""
    with pytest.raises(InvalidSpecifier):
        Specifier(f"=={extra}")
