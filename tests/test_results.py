"""Results follow JSON.stringify rules and the documented shape."""

from __future__ import annotations

from typing import Any

import pytest

import codemode

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("return 1 + 1", 2),
        ("return 'text'", "text"),
        ("return null", None),
        ("return", None),
        ("const x = 5", None),
        ("return undefined", None),
        ("return [1, 'a', true, null, { b: [2] }]", [1, "a", True, None, {"b": [2]}]),
        ("return NaN", None),
        ("return [Infinity, -Infinity, NaN]", [None, None, None]),
        ("return { f() {}, u: undefined, s: Symbol('x'), n: 1 }", {"n": 1}),
        ("return [() => 1, undefined]", [None, None]),
        ("return new Date(0)", "1970-01-01T00:00:00.000Z"),
        ("return new Map([[1, 2]])", {}),
        ("return { toJSON() { return 'custom' } }", "custom"),
        ("return 0.1 + 0.2", 0.30000000000000004),
        ("return 2 ** 53 + 2", 9007199254740994),
        ("return 'ünïcødé ✓ 😀'", "ünïcødé ✓ 😀"),
        ("return await Promise.resolve(7)", 7),
        ("await null; return [1, 2].map(async x => x)", [{}, {}]),
    ],
)
async def test_values_follow_json_stringify(cm: codemode.CodeMode, code: str, expected: Any) -> None:
    result = await cm.execute(code)
    assert result.success, result.error
    assert result.result == expected


async def test_tool_output_shape(cm: codemode.CodeMode) -> None:
    ok = await cm.execute("console.log('hi'); return { a: 1 }")
    assert ok.to_tool_output() == {"success": True, "result": {"a": 1}, "logs": ["hi"]}
    bad = (await cm.execute("console.log('before')\nthrow new TypeError('nope')")).to_tool_output()
    assert bad["success"] is False
    assert bad["logs"] == ["before"]
    assert bad["error"]["kind"] == "runtime"
    assert bad["error"]["name"] == "TypeError"
    assert bad["error"]["message"] == "nope"
    # the column of `new` (V8) or of `TypeError` (QuickJS): both inside `new TypeError`
    line, column = bad["error"]["line"], bad["error"]["column"]
    assert line == 2 and column in (7, 11)
    assert "throw new TypeError" in bad["error"]["frame"]
    assert f"program.ts:2:{column}" in bad["error"]["stack"]


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("return 10n", "BigInt"),
        ("const a: any = {}; a.self = a; return a", "circular"),
        ("return { get boom() { throw new Error('getter') } }", "getter"),
    ],
)
async def test_unserialisable_results(cm: codemode.CodeMode, code: str, fragment: str) -> None:
    result = await cm.execute(code)
    assert not result.success
    assert result.error is not None
    assert result.error.kind == "result"
    assert fragment.lower() in result.error.message.lower()


async def test_large_result_round_trips(cm: codemode.CodeMode) -> None:
    result = await cm.execute("return Array.from({ length: 20000 }, (_, i) => ({ i, s: 'x'.repeat(10) }))")
    assert result.success
    assert len(result.result) == 20000
    assert result.result[-1] == {"i": 19999, "s": "x" * 10}


async def test_logs_keep_order_and_levels(cm: codemode.CodeMode) -> None:
    code = """
    console.log('one', 2, { three: 3 }, [4])
    console.info('info')
    console.warn('warn')
    console.error('error', new RangeError('bad'))
    console.debug('debug')
    console.log(undefined, null, 5n)
    """
    result = await cm.execute(code)
    assert result.logs == [
        'one 2 {"three":3} [4]',
        "INFO: info",
        "WARN: warn",
        "ERROR: error RangeError: bad",
        "DEBUG: debug",
        "undefined null 5n",
    ]


async def test_execute_returns_duration_and_call_count(cm: codemode.CodeMode) -> None:
    result = await cm.execute("await external_echo({ i: 1 }); await external_echo({ i: 2 }); return 0")
    assert result.tool_calls == 2
    assert result.duration_ms > 0
