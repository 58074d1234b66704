"""The engine's pre-check of tool input: the validator the host uses (one compiled schema,
shared), so it says "valid" exactly where the host would; an input it vouches for is not
validated again, and the host writes every error."""

from __future__ import annotations

from typing import Any

import pytest

import codemode

from .conftest import runs_on_v8

pytestmark = pytest.mark.anyio

SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"i": {"type": "number"}}, "required": ["i"]},
    {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 0, "maximum": 100},
            "name": {"type": "string", "minLength": 1, "maxLength": 3},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
            "mode": {"enum": ["a", "b", 1]},
            "flag": {"type": ["boolean", "null"]},
        },
        "required": ["n"],
        "additionalProperties": False,
    },
    {
        "$defs": {"Item": {"type": "object", "properties": {"sku": {"const": "x"}}, "required": ["sku"]}},
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/Item"}}},
        "anyOf": [{"required": ["items"]}, {"minProperties": 2}],
    },
    # the schemas the engine left to the host before it used the host's validator
    {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "default": 1, "multipleOf": 1},
            "e": {"type": "string", "format": "email", "pattern": "@"},
            "p": {
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "items": False,
                "uniqueItems": True,
            },
        },
        "propertyNames": {"maxLength": 5},
    },
    {"$schema": "http://json-schema.org/draft-07/schema#", "properties": {"e": {"format": "email"}}},
]

INPUTS = [
    "{}",
    "{ i: 1 }",
    "{ i: 1.5 }",
    "{ i: 1e21 }",
    "{ i: -0 }",
    "{ i: '1' }",
    "{ i: true }",
    "{ i: null }",
    "{ n: 3 }",
    "{ n: 3.0 }",
    "{ n: 3.5 }",
    "{ n: 1e21 }",
    "{ n: -1 }",
    "{ n: 101 }",
    "{ n: 5, name: '' }",
    "{ n: 5, name: 'abc' }",
    "{ n: 5, name: 'abcd' }",
    "{ n: 5, name: '😀😀😀' }",
    "{ n: 5, tags: ['a', 'b'] }",
    "{ n: 5, tags: ['a', 'b', 'c'] }",
    "{ n: 5, tags: [1] }",
    "{ n: 5, mode: 'a' }",
    "{ n: 5, mode: 1 }",
    "{ n: 5, mode: true }",
    "{ n: 5, mode: 1.0 }",
    "{ n: 5, flag: null }",
    "{ n: 5, flag: 0 }",
    "{ n: 5, other: 1 }",
    "{ items: [] }",
    "{ items: [{ sku: 'x' }] }",
    "{ items: [{ sku: 'y' }] }",
    "{ items: [{}] }",
    "{ a: 1, b: 2 }",
    "{ a: 1 }",
    "{ p: [1, 'x'] }",
    "{ p: ['x', 1] }",
    "{ p: [1, 'x', 2] }",
    "{ e: 'ann@example.com' }",
    "{ e: 'ann' }",
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=range(len(SCHEMAS)))
async def test_the_engine_accepts_only_what_the_host_validator_accepts(
    driver: codemode.drivers.IsolateDriver, schema: dict[str, Any]
) -> None:
    seen: list[Any] = []
    validated: list[Any] = []

    async def record(args: dict[str, Any]) -> dict[str, Any]:
        seen.append(args)
        return {}

    class Counting(codemode.Tool):
        def validate(self, args: Any) -> Any:
            validated.append(args)
            return super().validate(args)

    tool = Counting.from_schema("check", "records its input", schema, None, record)
    assert tool.precheck_schema is not None
    cm = codemode.create_code_mode([tool], driver=driver)
    code = (
        "const out = await Promise.allSettled(["
        + ", ".join(f"external_check({text})" for text in INPUTS)
        + "])\nreturn out.map(o => o.status === 'fulfilled' ? 'ok' : o.reason.name + ': ' + o.reason.message)"
    )
    result = await cm.execute(code)
    assert result.success, result.error
    as_json = await cm.execute("return [" + ", ".join(INPUTS) + "]")
    host = codemode.Tool.from_schema("check", "", schema, None, record)
    invalid = 0
    for text, value, outcome in zip(INPUTS, as_json.result, result.result, strict=True):
        try:
            host.validate(value)
        except codemode.InvalidArguments as e:
            invalid += 1
            assert outcome == f"InvalidArgumentsError: {e}", text
        else:
            assert outcome == "ok", text
    # QuickJS checks each input first: only the invalid ones reach the host's validator
    assert len(validated) == (len(INPUTS) if runs_on_v8(driver) else invalid)
