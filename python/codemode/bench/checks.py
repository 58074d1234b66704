"""Checking a workload's result against tools.json: JSON equality and short descriptions."""

from __future__ import annotations

import json
from typing import Any


def json_equal(actual: Any, expected: Any) -> bool:
    """Equality of JSON values: numbers by value (4 == 4.0), booleans only equal booleans."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, int | float):
        return isinstance(actual, int | float) and actual == expected
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(json_equal(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(json_equal(actual[k], v) for k, v in expected.items())
        )
    return type(actual) is type(expected) and actual == expected


def shorten(value: Any, limit: int = 300) -> Any:
    """A value as is if its JSON is short, else the start of its JSON."""
    text = json.dumps(value, default=str)
    return value if len(text) <= limit else text[:limit] + "..."
