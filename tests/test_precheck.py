"""The engine's pre-check of tool input: it may only ever say "valid" where the host's
validator (fastjsonschema) says so too, and the host still writes every error."""

from __future__ import annotations

import json
from typing import Any

import fastjsonschema
import pytest

import codemode
from codemode.tools import prechecks_agree

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
]


def test_which_schemas_the_engine_may_check() -> None:
    assert all(prechecks_agree(schema) for schema in SCHEMAS)
    for schema in [
        {"type": "object", "properties": {"n": {"type": "integer", "default": 1}}},
        {"type": "string", "format": "email"},
        {"type": "string", "pattern": "^a"},
        {"type": "number", "multipleOf": 0.1},
        {"type": "array", "items": [{"type": "string"}]},
        {"type": "array", "uniqueItems": True},
        {"$ref": "https://example.com/schema.json"},
        {"type": "object", "propertyNames": {"maxLength": 3}},
        {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"},
        {"type": "number", "exclusiveMinimum": True},
    ]:
        assert not prechecks_agree(schema), schema


@pytest.mark.parametrize("schema", SCHEMAS, ids=range(len(SCHEMAS)))
async def test_the_engine_accepts_only_what_the_host_validator_accepts(
    driver: codemode.IsolateDriver, schema: dict[str, Any]
) -> None:
    seen: list[Any] = []

    async def record(args: dict[str, Any]) -> dict[str, Any]:
        seen.append(args)
        return {}

    tool = codemode.Tool.from_schema("check", "records its input", schema, None, record)
    assert tool.precheck_schema is not None
    cm = codemode.create_code_mode([tool], driver=driver)
    code = (
        "const out = await Promise.allSettled(["
        + ", ".join(f"external_check({text})" for text in INPUTS)
        + "])\nreturn out.map(o => o.status === 'fulfilled' ? 'ok' : o.reason.name + ': ' + o.reason.message)"
    )
    result = await cm.execute(code)
    assert result.success, result.error
    host = fastjsonschema.compile(schema)
    as_json = await cm.execute("return [" + ", ".join(INPUTS) + "]")
    for text, value, outcome in zip(INPUTS, as_json.result, result.result, strict=True):
        try:
            host(json.loads(json.dumps(value)))
        except fastjsonschema.JsonSchemaValueException as e:
            expected = "InvalidArgumentsError: external_check: invalid arguments: " + e.message.replace(
                "data", "input", 1
            )
            assert outcome == expected, text
        else:
            assert outcome == "ok", text
