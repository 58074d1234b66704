"""Random programs and values across the boundary (hypothesis). A short run is part of the
suite; ``CODEMODE_FUZZ_EXAMPLES=100000 python3 -m pytest tests/hostile/test_fuzz.py`` runs a
long one. Whatever the input: a typed result, never an exception out of ``execute()``, and
the next execution works."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import codemode

from ..conftest import LOCAL_WORKERD, engine_gap

pytestmark = pytest.mark.anyio

EXAMPLES = int(os.environ.get("CODEMODE_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
KINDS = {"syntax", "runtime", "timeout", "memory", "tool", "invalid_args", "result", "output_limit"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _echo_tool() -> codemode.Tool:
    async def echo(args: dict[str, Any]) -> dict[str, Any]:
        return args

    return codemode.Tool.from_schema("echo_any", "Return the input", {"type": "object"}, None, echo)


# Text with what breaks boundaries: lone surrogates, NUL, line separators, quotes, escapes.
TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec=None, exclude_categories=()),
        st.sampled_from(["\ud800", "\udfff", "\0", "\u2028", '"', "\\", "\n", "😀"]),
    ),
    max_size=12,
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=20,
)


def _well_formed(value: Any) -> Any:
    """What the program gets back: lone surrogates as U+FFFD, -0 as 0, integral floats as ints."""
    if isinstance(value, str):
        return codemode.drivers.well_formed(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, list):
        return [_well_formed(v) for v in value]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out[_well_formed(k)] = _well_formed(v)
        return out
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b, rel_tol=1e-15)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


@given(value=VALUES)
@FUZZ
async def test_values_cross_both_ways_as_json(driver: codemode.drivers.IsolateDriver, value: Any) -> None:
    cm = codemode.create_code_mode([_echo_tool()], driver=driver, timeout=5.0)
    # parsed as JSON in the program (a literal would read "__proto__" as the prototype)
    text = json.dumps(json.dumps({"v": value}))
    code = f"const sent = JSON.parse({text})\nconst back = await external_echo_any(sent)\nreturn [back.v, sent.v]"
    result = await cm.execute(code)
    assert result.success, result.error
    expected = _well_formed(value)
    assert _same(result.result[0], expected) and _same(result.result[1], expected), (result.result, expected)


PIECES = st.sampled_from(
    [
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "/",
        "//",
        "/*",
        "*/",
        "`",
        "${",
        "'",
        '"',
        "\\",
        "\n",
        " ",
        ";",
        ",",
        "=>",
        "<",
        ">",
        "!",
        "?",
        ":",
        "=",
        "+",
        "1",
        "x",
        "return",
        "await",
        "async",
        "function",
        "class",
        "if",
        "else",
        "let",
        "const",
        "as",
        "any",
        "type",
        "interface",
        "enum",
        "namespace",
        "import",
        "export",
        "<!--",
        "-->",
        "#",
        "@",
        "\u2028",
        "\0",
        "\ud800",
        "external_echo_any({})",
        "arguments",
        "__codemode_channel",
        "eval",
        "Function",
    ]
)


@engine_gap("cloudflare", reason=LOCAL_WORKERD + " (a generated loop may never end)", run=False)
@given(pieces=st.lists(PIECES, max_size=40))
@FUZZ
async def test_any_text_is_a_typed_result(driver: codemode.drivers.IsolateDriver, pieces: list[str]) -> None:
    cm = codemode.create_code_mode([_echo_tool()], driver=driver, timeout=1.0, memory_limit_mb=32)
    result = await cm.execute("".join(pieces))
    if not result.success:
        assert result.error is not None and result.error.kind in KINDS, result.error
    assert (await cm.execute("return 1 + 1")).result == 2
