"""The hostile suite runs on every engine and mode. A guarantee an engine does not give yet is
marked on its test with ``@engine_gap(driver, reason=...)``: the test still runs there and must
fail (a strict xfail), so the day the gap closes, the mark has to go."""

from __future__ import annotations

import pytest


def engine_gap(*drivers: str, reason: str) -> pytest.MarkDecorator:
    """Mark a test as a known gap of ``drivers`` (names from ``tests/conftest.py`` ``DRIVERS``)."""
    return pytest.mark.engine_gap(*drivers, reason=reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        driver = callspec.params.get("driver") if callspec is not None else None
        for mark in item.iter_markers("engine_gap"):
            if driver in mark.args:
                item.add_marker(pytest.mark.xfail(strict=True, reason=mark.kwargs["reason"]))
