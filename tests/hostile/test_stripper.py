"""Hostile program text: deep nesting and odd characters reach the stripper before any limit.

A stack overflow cannot be caught, so it would kill the host process: every deep construct
must come back as a typed result (it runs, or it is a ``syntax`` error saying why)."""

from __future__ import annotations

import pytest

import codemode

from ..conftest import make_tools

pytestmark = pytest.mark.anyio

DEEP = [
    ("return ", "(", "1", ")"),
    ("return ", "[", "1", "]"),
    ("", "{", "", "}"),
    ("return ", "!", "1", ""),
    ("return ", "1?", "1", ":1"),
    ("return ", "()=>", "1", ""),
    ("let x: ", "Array<", "number", ">"),
    ("return ", "`${", "1", "}`"),
    ("return f", "(1)", "", ""),
    ("return 1", "+1", "", ""),
    ("", "if (1) 1; else ", "1", ""),
    ("return 1", " as any", "", ""),
    ("return ", "<any>", "1", ""),
    ("return ", "{a:", "1", "}"),
    ("", "function f(){", "", "}"),
]


@pytest.mark.parametrize("n", [2_000, 50_000])
@pytest.mark.parametrize(("before", "open_", "middle", "close"), DEEP, ids=[d[1].strip() for d in DEEP])
async def test_deep_nesting_is_a_result_never_a_crash(
    driver: codemode.drivers.IsolateDriver, before: str, open_: str, middle: str, close: str, n: int
) -> None:
    cm = codemode.create_code_mode(make_tools(), driver=driver, timeout=5.0)
    code = f"{before}{open_ * n}{middle}{close * n}"
    result = await cm.execute(code)
    if not result.success:
        assert result.error is not None
        # V8 parses some of these and then refuses the 2,000-deep value as a result
        assert result.error.kind in ("syntax", "memory", "runtime", "result"), result.error
    after = await cm.execute("return 1 + 1")
    assert after.result == 2


async def test_too_deep_is_a_syntax_error_that_says_so(cm: codemode.CodeMode) -> None:
    result = await cm.execute("return " + "(" * 300_000 + "1" + ")" * 300_000)
    assert result.error is not None
    assert result.error.kind == "syntax"
    assert "nested too deeply" in result.error.message
    assert result.error.line == 1


def test_strip_types_on_its_own_refuses_deep_text() -> None:
    with pytest.raises(codemode._core.TypeScriptSyntaxError, match="nested too deeply"):
        codemode._core.strip_types("return " + "[" * 300_000 + "1" + "]" * 300_000)


async def test_a_raw_nul_is_a_syntax_error_at_its_position(cm: codemode.CodeMode) -> None:
    result = await cm.execute("const a = 1\nreturn 'x\0y'")
    assert result.error is not None
    assert (result.error.kind, result.error.line, result.error.column) == ("syntax", 2, 10)
    assert "NUL" in result.error.message


async def test_line_separators_end_comments_as_in_every_engine(cm: codemode.CodeMode) -> None:
    # U+2028 is a line terminator in JavaScript: the comment ends there, so `b` is code
    result = await cm.execute("// a\u2028b\nreturn 2")
    assert result.error is not None
    assert (result.error.kind, result.error.name, result.error.column) == ("runtime", "ReferenceError", 6)
    assert (await cm.execute("/* a\u2028b */ return 2")).result == 2
    assert (await cm.execute("return '\u2028'.length")).result == 1


async def test_lines_are_counted_at_newlines_alike_on_every_engine(cm: codemode.CodeMode) -> None:
    # a lone \r and \r\n end a line as \n does; U+2028 and U+2029 do not start one
    for code, line, column in [
        ("let a = 1\r// c\rnope()", 3, 1),
        ("let a = 1\r\nlet b = 2\r\n  nope()", 3, 3),
        ("const s = '\U0001f600\U0001f600'; nope()", 1, 17),
        ("const x = '\u2028\u2029'; nope()", 1, 17),
        ("// a\u2029b\nreturn 2", 1, 6),
    ]:
        result = await cm.execute(code)
        assert result.error is not None, code
        assert (result.error.name, result.error.line, result.error.column) == (
            "ReferenceError",
            line,
            column,
        ), code
