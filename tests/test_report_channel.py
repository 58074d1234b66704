"""The report channel: lines a host's own code (placed before the model's) sends back live,
outside the console, through a function the model's code cannot reach once it is taken."""

from __future__ import annotations

from typing import Any

import pytest

import codemode
from codemode.events import Event

from .conftest import make_tools

pytestmark = pytest.mark.anyio

TAKE = "const ch = __codemode_channel; __codemode_channel = undefined;"


async def context(driver: codemode.drivers.IsolateDriver, **limits: Any) -> codemode.drivers.IsolateContext:
    bindings = {tool.name: tool for tool in make_tools()}
    return await driver.create_context(
        bindings=bindings, limits=codemode.Limits(timeout=10.0, memory_limit_mb=64, **limits)
    )


async def test_reports_arrive_in_order_outside_the_console(driver: codemode.drivers.IsolateDriver) -> None:
    ctx = await context(driver)
    reports: list[str] = []
    events: list[Event] = []
    code = (
        TAKE + "ch('before'); console.log('a line');\n"
        "const r = await external_echo({ i: 1 }); ch('after ' + r.i); ch(42)\n"
        "return 'done'"
    )
    result = await ctx.execute(code, on_report=reports.append, on_event=events.append)
    assert result.success, result.error
    assert reports == ["before", "after 1", "42"]
    assert result.logs == ["a line"]
    consoles = [e.value["text"] for e in events if e.name == "code_mode:console"]
    assert consoles == ["a line"]


async def test_reports_are_live(driver: codemode.drivers.IsolateDriver) -> None:
    """A report written before a tool call reaches the host while that call runs."""
    reports: list[str] = []
    seen_during_call: list[list[str]] = []

    async def probe(args: dict[str, Any]) -> dict[str, Any]:
        seen_during_call.append(list(reports))
        return {}

    tool = codemode.Tool.from_schema("probe", "records what was reported", {"type": "object"}, None, probe)
    ctx = await driver.create_context(
        bindings={"probe": tool}, limits=codemode.Limits(timeout=10.0, memory_limit_mb=64)
    )
    result = await ctx.execute(
        TAKE + "ch('started'); await external_probe({}); return 1", on_report=reports.append
    )
    assert result.success, result.error
    assert seen_during_call == [["started"]]


async def test_the_model_code_cannot_reach_a_taken_channel(driver: codemode.drivers.IsolateDriver) -> None:
    ctx = await context(driver)
    reports: list[str] = []
    code = TAKE + "ch('host');\nreturn [typeof __codemode_channel, typeof arguments[0]]"
    result = await ctx.execute(code, on_report=reports.append)
    assert result.result == ["undefined", "undefined"]
    assert reports == ["host"]


async def test_no_channel_unless_opened(driver: codemode.drivers.IsolateDriver) -> None:
    ctx = await context(driver)
    result = await ctx.execute("return [typeof __codemode_channel, arguments.length]")
    assert result.result == ["undefined", 1]


async def test_reports_do_not_count_against_the_console_limits(
    driver: codemode.drivers.IsolateDriver,
) -> None:
    ctx = await context(driver, max_log_lines=3)
    reports: list[str] = []
    code = TAKE + "for (let i = 0; i < 50; i++) ch('r' + i)\nconsole.log('one'); return 'ok'"
    result = await ctx.execute(code, on_report=reports.append)
    assert result.success, result.error
    assert len(reports) == 50 and reports[-1] == "r49"
    assert result.logs == ["one"]


async def test_a_flood_of_reports_is_capped_and_the_host_survives(
    driver: codemode.drivers.IsolateDriver,
) -> None:
    ctx = await context(driver)
    received = 0

    def count(text: str) -> None:
        nonlocal received
        received += len(text)

    code = TAKE + "const s = 'x'.repeat(1 << 20); for (let i = 0; i < 40; i++) ch(s)\nreturn 'ok'"
    result = await ctx.execute(code, on_report=count)
    assert result.success, result.error
    assert received <= 16 << 20
    after = await ctx.execute("return 1 + 1")
    assert after.result == 2


LIBRARY = (
    "(function (report) { let n = 0; return { tick(x) { n++; if (report) report('tick ' + x); return n } } })"
)


async def test_a_library_gets_the_channel_and_the_program_gets_its_value(
    driver: codemode.drivers.IsolateDriver,
) -> None:
    ctx = await context(driver)
    reports: list[str] = []
    code = (
        "const lib = __codemode_channel; __codemode_channel = undefined;\nlib.tick('a'); return lib.tick('b')"
    )
    result = await ctx.execute(code, on_report=reports.append, library=LIBRARY)
    assert result.result == 2
    assert reports == ["tick a", "tick b"]
    quiet = await ctx.execute(code, library=LIBRARY)  # no channel: the library gets undefined
    assert quiet.result == 2


async def test_a_broken_library_fails_the_execution_not_the_host(
    driver: codemode.drivers.IsolateDriver,
) -> None:
    ctx = await context(driver)
    for library in ("(function () { throw new Error('library boom') })", "(function () {"):
        result = await ctx.execute("return 1", library=library)
        assert result.error is not None and result.error.kind == "runtime", result.error
    after = await ctx.execute("return 1 + 1", library=LIBRARY)
    assert after.result == 2


CHECKED = "(function (report, check) { return check })"
CHECKS = (
    '{"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}',
    '{"type": "array", "items": {"type": "string"}}',
    '{"type": 12}',
)
CHECKING = """
const check = __codemode_channel; __codemode_channel = undefined;
const deep = []; let at = deep; for (let i = 0; i < 200; i++) { at.push([]); at = at[0]; }
const cycle = {}; cycle.self = cycle;
let threw = null; try { await check(0, cycle); } catch (e) { threw = e.name; }
return [await check(0, { n: 1 }), await check(0, { n: 'x' }), await check(0, {}), await check(1, ['a', 2]),
        await check(1, undefined), await check(0, deep), (await check(2, 1))[1], threw];
"""
CHECKED_RESULT = [
    None,
    [".n", "must be integer"],
    ["", 'must have property "n"'],
    ["[1]", "must be string"],
    ["", "must be array"],
    ["", "is nested deeper than 128 levels"],
    "cannot be checked: the schema is not valid (type: must be one of "
    '["array","boolean","integer","null","number","object","string"] or array)',
    "TypeError",
]


async def test_a_library_checks_values_with_the_engine_validator(
    driver: codemode.drivers.IsolateDriver,
) -> None:
    """``library(channel, check)``: ``check(i, value)`` is null or ``[path, message]`` by schema
    ``i`` of ``library_checks``, worded as ``JsonSchema`` words it; no tool call, no event."""
    ctx = await context(driver, max_tool_calls=0)
    events: list[Event] = []
    result = await ctx.execute(CHECKING, library=CHECKED, library_checks=CHECKS, on_event=events.append)
    assert result.success, result.error
    assert result.result == CHECKED_RESULT
    assert result.tool_calls == 0
    assert [e.name for e in events if e.name != "code_mode:execution_started"] == [
        "code_mode:execution_finished"
    ]
