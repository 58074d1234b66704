"""The events are a superset of TanStack AI Code Mode's, so its UI components (which read
``code_mode:*`` custom events) work against a codemode backend: golden shapes taken from
``@tanstack/ai-code-mode`` (``src/create-code-mode-tool.ts``, ``src/bindings/tool-to-binding.ts``),
checked on every engine beside codemode's own keys."""

from __future__ import annotations

from typing import Any

import pytest

import codemode
from codemode.events import Event

pytestmark = pytest.mark.anyio

NUMBER = (int, float)
TANSTACK: dict[str, dict[str, Any]] = {
    "code_mode:execution_started": {"timestamp": NUMBER, "codeLength": int},
    "code_mode:console": {"level": str, "message": str, "timestamp": NUMBER},
    "code_mode:external_call": {"function": str, "args": object, "timestamp": NUMBER},
    "code_mode:external_result": {"function": str, "result": object, "duration": NUMBER},
    "code_mode:external_error": {"function": str, "error": str, "duration": NUMBER},
    "code_mode:execution_finished": {
        "timestamp": NUMBER,
        "durationMs": NUMBER,
        "phase": str,
        "success": bool,
        "logCount": int,
    },
}
"""Each TanStack event's fields and their types (``error`` of a finished execution: below)."""

OURS: dict[str, set[str]] = {
    "code_mode:execution_started": {"toolCallId"},
    "code_mode:console": {"toolCallId", "text"},
    "code_mode:external_call": {"toolCallId", "callId"},
    "code_mode:external_result": {"toolCallId", "callId", "duration_ms"},
    "code_mode:external_error": {"toolCallId", "callId", "duration_ms"},
    "code_mode:execution_finished": {"toolCallId", "duration_ms"},
}
"""codemode's own keys, kept beside TanStack's."""


@codemode.tool
async def lookup(key: str) -> dict[str, str]:
    """Look a key up."""
    if key == "missing":
        raise KeyError("no such key")
    return {"key": key, "value": key.upper()}


PROGRAM = """
console.log("looking up", 2)
console.warn("careful")
console.error("bad")
console.info("fyi")
const found = await external_lookup({ key: "a" })
try { await external_lookup({ key: "missing" }) } catch (e) {}
return found
"""


def _check(event: Event) -> None:
    shape = TANSTACK[event.name]
    for key, kind in shape.items():
        assert key in event.value, (event.name, key, event.value)
        assert isinstance(event.value[key], kind), (event.name, key, event.value[key])
    assert OURS[event.name] <= event.value.keys(), (event.name, event.value)


async def test_every_event_carries_tanstacks_fields(driver: codemode.drivers.IsolateDriver) -> None:
    cm = codemode.create_code_mode([lookup], driver=driver)
    events: list[Event] = []
    result = await cm.execute(PROGRAM, tool_call_id="call_1", on_event=events.append)
    assert result.success
    for event in events:
        _check(event)
    by_name = {name: [e.value for e in events if e.name == name] for name in TANSTACK}
    assert by_name["code_mode:execution_started"][0]["codeLength"] == len(PROGRAM)
    consoles = by_name["code_mode:console"]
    assert [(c["level"], c["message"]) for c in consoles] == [
        ("log", "looking up 2"),
        ("warn", "careful"),
        ("error", "bad"),
        ("info", "fyi"),
    ]
    assert [c["text"] for c in consoles] == ["looking up 2", "WARN: careful", "ERROR: bad", "INFO: fyi"]
    assert by_name["code_mode:external_result"][0]["function"] == "external_lookup"
    assert "no such key" in by_name["code_mode:external_error"][0]["error"]
    (finished,) = by_name["code_mode:execution_finished"]
    assert (finished["phase"], finished["success"], finished["logCount"]) == ("execute", True, 4)
    assert finished["durationMs"] == finished["duration_ms"] and "error" not in finished


async def test_a_failed_execution_carries_tanstacks_error(driver: codemode.drivers.IsolateDriver) -> None:
    cm = codemode.create_code_mode([lookup], driver=driver)
    events: list[Event] = []
    code = 'console.log("x")\nthrow new TypeError("wrong")'
    await cm.execute(code, on_event=events.append)
    (finished,) = [e for e in events if e.name == "code_mode:execution_finished"]
    _check(finished)
    error = finished.value["error"]
    assert (error["name"], error["message"], error["line"]) == ("TypeError", "wrong", 2)
    assert isinstance(error.get("stack", ""), str) and error["kind"] == "runtime"
    assert (finished.value["phase"], finished.value["logCount"]) == ("execute", 1)


async def test_a_syntax_error_finishes_in_the_transpile_phase(driver: codemode.drivers.IsolateDriver) -> None:
    cm = codemode.create_code_mode([lookup], driver=driver)
    events: list[Event] = []
    await cm.execute("return (", on_event=events.append)
    started, finished = events
    _check(started)
    _check(finished)
    assert started.value["codeLength"] == len("return (")
    assert (finished.value["phase"], finished.value["error"]["name"]) == ("transpile", "SyntaxError")
