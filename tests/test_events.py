"""Live events, in order, each with the execute call's id and a timestamp."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import codemode

pytestmark = pytest.mark.anyio


async def test_event_order_for_a_program_with_tools_and_logs(cm: codemode.CodeMode) -> None:
    events: list[codemode.Event] = []
    code = """
    console.log('start')
    const a = await external_echo({ i: 1 })
    try { await external_fail({ sku: 'Z' }) } catch (e) { console.warn('caught') }
    return a.i
    """
    result = await cm.execute(code, tool_call_id="call_7", on_event=events.append)
    assert result.result == 1
    assert [e.name for e in events] == [
        "code_mode:execution_started",
        "code_mode:console",
        "code_mode:external_call",
        "code_mode:external_result",
        "code_mode:external_call",
        "code_mode:external_error",
        "code_mode:console",
        "code_mode:execution_finished",
    ]
    assert all(e.value["toolCallId"] == "call_7" for e in events)
    stamps = [e.value["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    by_name: dict[str, dict[str, Any]] = {}
    for e in events:
        by_name.setdefault(e.name, e.value)
    assert by_name["code_mode:external_call"]["function"] == "external_echo"
    assert by_name["code_mode:external_call"]["args"] == {"i": 1}
    assert by_name["code_mode:external_result"]["result"] == {"i": 1}
    assert by_name["code_mode:external_result"]["duration_ms"] >= 0
    assert by_name["code_mode:external_error"]["error"] == "inventory service unavailable for Z"
    assert by_name["code_mode:console"]["text"] == "start"
    assert by_name["code_mode:execution_finished"]["success"] is True
    assert events[-1].to_dict()["type"] == "CUSTOM"


async def test_console_events_arrive_while_the_program_runs(driver: codemode.drivers.IsolateDriver) -> None:
    delivered: list[str] = []
    seen_by_tool: list[list[str]] = []

    async def wait(args: dict[str, Any]) -> dict[str, Any]:
        seen_by_tool.append(list(delivered))  # what had reached the application by then
        await anyio.sleep(0.05)
        seen_by_tool.append(list(delivered))
        return {}

    def on_event(event: codemode.Event) -> None:
        if event.name == "code_mode:console":
            delivered.append(event.value["text"])

    tool = codemode.Tool.from_schema("wait", "waits", {"type": "object"}, None, wait)
    cm = codemode.create_code_mode([tool], driver=driver, timeout=10.0)
    result = await cm.execute(
        "console.log('early')\nawait external_wait({})\nconsole.log('late')", on_event=on_event
    )
    assert result.success, result.error
    # 'early' was delivered while the tool call was still running (on asyncio its first step
    # runs before the step's events are given out), 'late' only after it ended
    assert seen_by_tool[1] == ["early"]
    assert delivered == ["early", "late"]


async def test_async_event_callbacks_are_awaited_in_order(cm: codemode.CodeMode) -> None:
    seen: list[str] = []

    async def on_event(event: codemode.Event) -> None:
        await anyio.sleep(0)
        seen.append(event.name)

    await cm.execute("console.log(1); return await external_echo({ i: 2 })", on_event=on_event)
    assert seen[0] == "code_mode:execution_started" and seen[-1] == "code_mode:execution_finished"
    assert len(seen) == 5


async def test_failure_events_carry_the_error(cm: codemode.CodeMode) -> None:
    events: list[codemode.Event] = []
    await cm.execute("const x: number = ;", on_event=events.append)
    assert [e.name for e in events] == ["code_mode:execution_started", "code_mode:execution_finished"]
    assert events[-1].value["error"]["kind"] == "syntax"
    events.clear()
    await cm.execute("while (true) {}", timeout=0.1, on_event=events.append)
    assert events[-1].value["success"] is False and events[-1].value["error"]["kind"] == "timeout"


async def test_console_lines_and_calls_of_one_step_keep_their_order(cm: codemode.CodeMode) -> None:
    events: list[codemode.Event] = []
    code = "console.log('a')\nconst p = external_echo({ i: 1 })\nconsole.log('b')\nconst q = external_echo({ i: 2 })\nconsole.log('c')\nawait Promise.all([p, q])"
    await cm.execute(code, on_event=events.append)
    names = [
        (e.name.removeprefix("code_mode:"), e.value.get("text") or e.value.get("args"))
        for e in events
        if e.name in ("code_mode:console", "code_mode:external_call")
    ]
    assert names == [
        ("console", "a"),
        ("external_call", {"i": 1}),
        ("console", "b"),
        ("external_call", {"i": 2}),
        ("console", "c"),
    ]


async def test_logs_of_a_restarted_first_step_are_not_repeated(cm: codemode.CodeMode) -> None:
    events: list[codemode.Event] = []
    code = "console.log('once')\nlet s = 0\nfor (let i = 0; i < 3e6; i++) s += i\nreturn s"
    result = await cm.execute(code, on_event=events.append)
    assert result.success and result.logs == ["once"]
    assert [e.value["text"] for e in events if e.name == "code_mode:console"] == ["once"]
