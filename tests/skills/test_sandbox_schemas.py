"""JSON Schema draft 2020-12 in skills' schemas, on every engine: the program sees the problem
the one JSON Schema validator (``codemode._core.JsonSchema``, as tools use it) reports."""

from __future__ import annotations

import json
from typing import Any

import pytest

import codemode
from codemode import _core
from codemode.skills import Skill, SkillRuntime

pytestmark = pytest.mark.anyio

POINT = {
    "type": "object",
    "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
    "required": ["x", "y"],
}
PAIR = Skill(
    name="pair",
    description="A tuple: an integer, then a string, nothing more",
    code="return input;",
    input_schema={"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False},
)
ROUTE = Skill(
    name="route",
    description="Two points through $defs and $ref",
    code="return { dx: input.to.x - input.from.x, dy: input.to.y - input.from.y };",
    input_schema={
        "$defs": {"point": POINT},
        "type": "object",
        "properties": {"from": {"$ref": "#/$defs/point"}, "to": {"$ref": "#/$defs/point"}},
        "required": ["from", "to"],
    },
)
SPLIT = Skill(
    name="split",
    description="Returns a tuple checked against prefixItems",
    code="return input.ok ? [1, 'one'] : [1, 2];",
    input_schema={"type": "object", "properties": {"ok": {"type": "boolean"}}},
    output_schema={"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False},
)
NAMED = Skill(
    name="named",
    description="No property besides those some subschema evaluates",
    code="return input;",
    input_schema={
        "type": "object",
        "allOf": [{"properties": {"name": {"type": "string"}}}],
        "properties": {"age": {"type": "integer"}},
        "unevaluatedProperties": False,
    },
)

# Each call's outcome, as the program sees it: ["ok", result] or [error name, message].
OUTCOMES = """
const outcomes = [];
for (const call of CALLS) {
  try { outcomes.push(["ok", await call()]); } catch (e) { outcomes.push([e.name, e.message]); }
}
return outcomes;
"""


def program(*calls: str) -> str:
    return OUTCOMES.replace("CALLS", "[" + ", ".join(f"() => {call}" for call in calls) + "]")


def refused(skill: Skill, value: Any) -> str:
    """The message of an input refused by the one validator: what the program must see."""
    problem = _core.JsonSchema(json.dumps(skill.input_schema)).validate(value)
    assert problem is not None, value
    return f"skill_{skill.name}: invalid input: input{problem[0]} {problem[1]}"


async def run(driver: codemode.drivers.IsolateDriver, skills: list[Skill], code: str) -> Any:
    cm = codemode.create_code_mode(tools=[], driver=driver, timeout=10)
    try:
        result = await SkillRuntime(cm, skills).execute(code)
    finally:
        await cm.aclose()
    assert result.success, result.error
    return result.result


async def test_prefix_items_items_false_and_refs(driver: codemode.drivers.IsolateDriver) -> None:
    outcomes = await run(
        driver,
        [PAIR, ROUTE, SPLIT],
        program(
            "skill_pair([1, 'x'])",
            "skill_pair(['x', 1])",
            "skill_pair([1, 'x', 2])",
            "skill_route({ from: { x: 0, y: 0 }, to: { x: 1, y: 2 } })",
            "skill_route({ from: { x: 0, y: 0 }, to: { x: 1 } })",
            "skill_route({ from: { x: '0', y: 0 }, to: { x: 1, y: 1 } })",
            "skill_split({ ok: true })",
            "skill_split({ ok: false })",
        ),
    )
    assert outcomes == [
        ["ok", [1, "x"]],
        ["InvalidArgumentsError", "skill_pair: invalid input: input[0] must be integer"],
        ["InvalidArgumentsError", "skill_pair: invalid input: input[2] is not allowed"],
        ["ok", {"dx": 1, "dy": 2}],
        ["InvalidArgumentsError", 'skill_route: invalid input: input.to must have property "y"'],
        ["InvalidArgumentsError", "skill_route: invalid input: input.from.x must be number"],
        ["ok", [1, "one"]],
        ["SkillError", "skill_split returned an invalid result: output[1] must be string"],
    ]
    # the words of the one validator
    assert outcomes[1][1] == refused(PAIR, ["x", 1])
    assert outcomes[2][1] == refused(PAIR, [1, "x", 2])
    assert outcomes[4][1] == refused(ROUTE, {"from": {"x": 0, "y": 0}, "to": {"x": 1}})
    assert outcomes[5][1] == refused(ROUTE, {"from": {"x": "0", "y": 0}, "to": {"x": 1, "y": 1}})


async def test_unevaluated_properties(driver: codemode.drivers.IsolateDriver) -> None:
    outcomes = await run(
        driver,
        [NAMED],
        program("skill_named({ name: 'Ann', age: 3 })", "skill_named({ name: 'Ann', extra: 1 })"),
    )
    assert outcomes == [
        ["ok", {"name": "Ann", "age": 3}],
        ["InvalidArgumentsError", "skill_named: invalid input: input.extra is not allowed"],
    ]
    assert outcomes[1][1] == refused(NAMED, {"name": "Ann", "extra": 1})


async def test_checks_are_not_tool_calls(driver: codemode.drivers.IsolateDriver) -> None:
    """A skill's checks count toward no limit and make no tool call or tool event, on every
    engine (on V8 and Workers each is a message to the host)."""
    cm = codemode.create_code_mode(tools=[], driver=driver, timeout=10, max_tool_calls=0)
    events: list[codemode.Event] = []
    try:
        result = await SkillRuntime(cm, [SPLIT, ROUTE]).execute(
            program(
                "skill_split({ ok: true })",
                "skill_split({ ok: false })",
                "skill_route({ from: { x: 0, y: 0 }, to: { x: 1 } })",
            ),
            on_event=events.append,
        )
    finally:
        await cm.aclose()
    assert result.success, result.error
    assert [outcome[0] for outcome in result.result] == ["ok", "SkillError", "InvalidArgumentsError"]
    assert result.tool_calls == 0
    assert not [e.name for e in events if "external" in e.name or "tool_call" in e.name]
