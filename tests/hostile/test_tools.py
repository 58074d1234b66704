"""Tool handlers that misbehave: whatever they raise or do to their input, the call settles as
data the program can catch, and events show what the program sent."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import codemode

from ..conftest import make_tools

pytestmark = pytest.mark.anyio


def _raising(exc: BaseException) -> codemode.Tool:
    async def handler(args: dict[str, Any]) -> None:
        raise exc

    return codemode.Tool.from_schema("boom", "Raises", {"type": "object"}, None, handler)


def _raising_later(exc: BaseException) -> codemode.Tool:
    async def handler(args: dict[str, Any]) -> None:
        import anyio

        await anyio.sleep(0.01)
        raise exc

    return codemode.Tool.from_schema("boom", "Raises after a while", {"type": "object"}, None, handler)


def _raising_sync(exc: BaseException) -> codemode.Tool:
    def handler(args: dict[str, Any]) -> None:
        raise exc

    return codemode.Tool.from_schema("boom", "Raises (sync)", {"type": "object"}, None, handler)


@pytest.mark.parametrize("make", [_raising, _raising_later, _raising_sync], ids=["at-once", "later", "sync"])
@pytest.mark.parametrize(
    "exc",
    [asyncio.CancelledError(), GeneratorExit(), StopAsyncIteration(), ValueError("plain")],
    ids=["CancelledError", "GeneratorExit", "StopAsyncIteration", "ValueError"],
)
async def test_what_a_handler_raises_is_a_tool_error(
    driver: codemode.drivers.IsolateDriver, make: Any, exc: BaseException
) -> None:
    cm = codemode.create_code_mode([*make_tools(), make(exc)], driver=driver, timeout=5.0)
    code = "try { await external_boom({}) } catch (e) { return [e.name, 'caught'] }"
    result = await cm.execute(code)
    assert result.success, result.error
    assert result.result == ["ToolError", "caught"]
    uncaught = await cm.execute("return await external_boom({})")
    assert uncaught.error is not None and uncaught.error.kind == "tool"
    assert uncaught.duration_ms < 4000  # settled, not left to the timeout


async def test_events_carry_what_the_program_sent(driver: codemode.drivers.IsolateDriver) -> None:
    async def mutate(args: dict[str, Any]) -> dict[str, Any]:
        args["secret"] = "hunter2"
        args["nested"]["x"] = 99
        return {"ok": True}

    tool = codemode.Tool.from_schema("mutate", "Mutates its input", {"type": "object"}, None, mutate)
    cm = codemode.create_code_mode([tool], driver=driver, timeout=5.0)
    events: list[codemode.Event] = []
    result = await cm.execute("return await external_mutate({ nested: { x: 1 } })", on_event=events.append)
    assert result.success, result.error
    (call,) = [e for e in events if e.name == "code_mode:external_call"]
    assert call.value["args"] == {"nested": {"x": 1}}
