"""Work a program leaves behind when its body has settled is dropped at once: the result does
not wait for it, and nothing of it runs on."""

from __future__ import annotations

from typing import Any

import pytest

import codemode

from ..conftest import LOCAL_WORKERD, engine_gap, make_tools

pytestmark = pytest.mark.anyio


@engine_gap(
    "cloudflare",
    reason=LOCAL_WORKERD + " (a microtask loop never lets the outcome leave)",
    only=("while (true) await", "again"),
    run=False,
)
@pytest.mark.parametrize(
    "leftover",
    [
        "(async () => { while (true) await null })()",
        "setTimeout(() => { while (true) {} }, 0)",
        "(async () => { for (;;) await new Promise(r => setTimeout(r, 0)) })()",
        "Promise.resolve().then(function again() { return Promise.resolve().then(again) })",
        "external_sleep({ ms: 5000 })",
    ],
)
async def test_the_result_returns_at_once_when_the_body_settles(
    driver: codemode.drivers.IsolateDriver, leftover: str
) -> None:
    cm = codemode.create_code_mode(make_tools(), driver=driver, timeout=3.0)
    result = await cm.execute(f"{leftover}\nreturn 'early'")
    assert result.success, result.error
    assert result.result == "early"
    assert result.duration_ms < 2000
    assert (await cm.execute("return 1 + 1")).result == 2


async def test_a_pending_tool_call_is_cancelled_when_the_body_settles(
    driver: codemode.drivers.IsolateDriver,
) -> None:
    import anyio

    finished: list[Any] = []

    async def slow(args: dict[str, Any]) -> dict[str, Any]:
        await anyio.sleep(1.0)
        finished.append(args)
        return args

    tool = codemode.Tool.from_schema("slow", "Slow", {"type": "object"}, None, slow)
    cm = codemode.create_code_mode([tool], driver=driver, timeout=5.0)
    code = "const p = external_slow({ n: 1 })\nawait new Promise(r => setTimeout(r, 10))\nreturn 'done'"
    result = await cm.execute(code)
    assert result.result == "done"
    assert finished == []  # the result did not wait for the call
    await anyio.sleep(1.2)
    assert finished == []  # and the call was cancelled, not left to run
