"""AG-UI: the event translation (golden files), the SSE encoding, and the example ASGI endpoint.

Real programs through the real engine, on asyncio and trio and every driver. Regenerate the
golden files with ``UPDATE_GOLDEN=1 pytest tests/integrations/test_ag_ui.py`` (then review the
diff); timestamps, durations and result message ids are normalised in them.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

pytest.importorskip("ag_ui")

from ag_ui.core import BaseEvent, CustomEvent, EventType

import codemode
from codemode.integrations.ag_ui import SSE_CONTENT_TYPE, ag_ui_events, sse_stream, to_ag_ui
from tests.conftest import runs_on_v8

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "ag_ui"
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"

# A console line, two tool calls (the second one failing, caught) and a result.
TIMELINE = """console.log("checking stock for", "sku-1")
const total = await external_add({ a: 2, b: 3 })
let failure: string | null = null
try {
  await external_fail({ sku: "sku-1" })
} catch (e) {
  failure = `${e.name}: ${e.message}`
}
return { sum: total.sum, failure }"""

# A program that fails: the run still finishes, the failure is the tool's result.
RUNTIME_ERROR = """const total = await external_add({ a: 1, b: 1 })
throw new Error(`stock mismatch: ${total.sum}`)"""

TIMELINE_TYPES = [
    "RUN_STARTED",
    "TOOL_CALL_START",
    "TOOL_CALL_ARGS",
    "TOOL_CALL_END",
    *["CUSTOM"] * 7,
    "TOOL_CALL_RESULT",
    "RUN_FINISHED",
]
TIMELINE_CUSTOM_NAMES = [
    "code_mode:execution_started",
    "code_mode:console",
    "code_mode:external_call",
    "code_mode:external_result",
    "code_mode:external_call",
    "code_mode:external_error",
    "code_mode:execution_finished",
]


# --- helpers ------------------------------------------------------------------------------


def _dump(event: BaseEvent) -> dict[str, Any]:
    """An event as it goes on the wire (camelCase, no absent optional fields)."""
    return event.model_dump(mode="json", by_alias=True)


def _normalise(value: Any) -> Any:
    """Timestamps and durations to 0, result message ids to a placeholder."""
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in ("timestamp", "duration_ms", "durationMs", "duration"):
            out[key] = 0
        elif key == "messageId":
            out[key] = "<message-id>"
        else:
            out[key] = _normalise(item)
    return out


def _normalise_sse(text: str) -> str:
    text = re.sub(r'"(timestamp|duration_ms|durationMs|duration)":[0-9.eE+-]+', r'"\1":0', text)
    return re.sub(r'"messageId":"[^"]*"', '"messageId":"<message-id>"', text)


def _check_golden(name: str, actual: str) -> None:
    expected_file = GOLDEN / name
    if UPDATE_GOLDEN:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        expected_file.write_text(actual, encoding="utf-8")
    assert expected_file.exists(), f"no golden file: run UPDATE_GOLDEN=1 pytest {Path(__file__).name}"
    assert actual == expected_file.read_text(encoding="utf-8")


def _golden_json(events: list[dict[str, Any]]) -> str:
    return json.dumps(_normalise(events), indent=2, ensure_ascii=False) + "\n"


def _parse_sse(text: str) -> list[dict[str, Any]]:
    """Server-Sent Events back to JSON: every event is one ``data: {...}`` line and a blank line."""
    assert text.endswith("\n\n")
    events = []
    for block in text[:-2].split("\n\n"):
        assert block.startswith("data: ") and "\n" not in block, block
        events.append(json.loads(block.removeprefix("data: ")))
    return events


async def _collect(events: AsyncIterator[BaseEvent]) -> list[BaseEvent]:
    return [event async for event in events]


async def _run(cm: codemode.CodeMode, code: str) -> list[BaseEvent]:
    return await _collect(ag_ui_events(cm, code, tool_call_id="call_1", run_id="run_1", thread_id="thread_1"))


# --- to_ag_ui -----------------------------------------------------------------------------


def test_to_ag_ui_keeps_name_and_value_and_maps_the_timestamp() -> None:
    event = codemode.Event(
        "code_mode:external_result",
        {
            "function": "external_echo",
            "result": {"pair": (1, 2), "ratio": math.nan, "tags": ["a"]},
            "toolCallId": "call_9",
            "timestamp": 1700000000123.6,
        },
    )
    custom = to_ag_ui(event)
    assert isinstance(custom, CustomEvent) and custom.type == EventType.CUSTOM
    assert custom.name == "code_mode:external_result"
    assert custom.timestamp == 1700000000124  # integer milliseconds, as AG-UI defines it
    assert custom.value == {
        "function": "external_echo",
        "result": {"pair": [1, 2], "ratio": None, "tags": ["a"]},
        "toolCallId": "call_9",
        "timestamp": 1700000000123.6,
    }
    assert json.loads(json.dumps(custom.value, allow_nan=False)) == custom.value
    assert _dump(custom) == {
        "type": "CUSTOM",
        "timestamp": 1700000000124,
        "name": "code_mode:external_result",
        "value": custom.value,
    }


async def test_golden_custom_events(cm: codemode.CodeMode) -> None:
    items = [item async for item in cm.stream(TIMELINE, tool_call_id="call_1")]
    events = [item for item in items if isinstance(item, codemode.Event)]
    customs = [to_ag_ui(e) for e in events]
    assert [c.name for c in customs] == TIMELINE_CUSTOM_NAMES
    for event, custom in zip(events, customs, strict=True):
        assert custom.value == event.value
        assert custom.timestamp == round(event.value["timestamp"])
    _check_golden("timeline.custom.json", _golden_json([_dump(c) for c in customs]))


# --- ag_ui_events -------------------------------------------------------------------------


async def test_golden_run(cm: codemode.CodeMode) -> None:
    events = await _run(cm, TIMELINE)
    assert [e.type.value for e in events] == TIMELINE_TYPES
    stamps = [e.timestamp for e in events]
    assert all(isinstance(s, int) for s in stamps) and stamps == sorted(stamps)
    _check_golden("timeline.run.json", _golden_json([_dump(e) for e in events]))


async def test_the_tool_call_carries_the_code_and_the_model_facing_output(cm: codemode.CodeMode) -> None:
    events = await _run(cm, TIMELINE)
    by_type = {e.type.value: e for e in events}
    start = by_type["TOOL_CALL_START"]
    assert (start.tool_call_id, start.tool_call_name) == ("call_1", "execute_typescript")
    assert json.loads(by_type["TOOL_CALL_ARGS"].delta) == {"typescriptCode": TIMELINE}
    output = json.loads(by_type["TOOL_CALL_RESULT"].content)
    assert output == await cm.tool.call({"typescriptCode": TIMELINE})
    assert output == {
        "success": True,
        "result": {"sum": 5, "failure": "ToolError: inventory service unavailable for sku-1"},
        "logs": ["checking stock for sku-1"],
    }
    assert {e.value["toolCallId"] for e in events if isinstance(e, CustomEvent)} == {"call_1"}


async def test_golden_failing_program_still_finishes_the_run(cm: codemode.CodeMode) -> None:
    events = await _run(cm, RUNTIME_ERROR)
    assert [e.type.value for e in events][-2:] == ["TOOL_CALL_RESULT", "RUN_FINISHED"]
    output = json.loads(events[-2].content)
    assert output["success"] is False and output["error"]["kind"] == "runtime"
    assert output["error"]["line"] == 2
    # error columns are engine-specific (docs/engines.md): one golden file per engine
    name = "runtime_error.v8.run.json" if runs_on_v8(cm.driver) else "runtime_error.run.json"
    _check_golden(name, _golden_json([_dump(e) for e in events]))


async def test_without_run_or_lifecycle_only_custom_events(cm: codemode.CodeMode) -> None:
    bare = await _collect(ag_ui_events(cm, TIMELINE, tool_call_id="c", lifecycle=False))
    assert [e.type.value for e in bare] == ["CUSTOM"] * 7
    no_run = await _collect(ag_ui_events(cm, TIMELINE, tool_call_id="c", parent_message_id="m1"))
    assert [e.type.value for e in no_run] == TIMELINE_TYPES[1:-1]
    assert no_run[0].parent_message_id == "m1"


async def test_a_thread_id_alone_opens_a_run_with_a_new_run_id(cm: codemode.CodeMode) -> None:
    events = await _collect(ag_ui_events(cm, "return 1", tool_call_id="c", thread_id="t"))
    first, last = events[0], events[-1]
    assert first.type == EventType.RUN_STARTED and last.type == EventType.RUN_FINISHED
    assert first.thread_id == last.thread_id == "t"
    assert first.run_id == last.run_id and len(first.run_id) == 36


async def test_events_are_live(driver: codemode.drivers.IsolateDriver) -> None:
    """Each event arrives while the program runs: the tool waits for the test to see its call."""
    released = anyio.Event()

    async def gate(args: dict[str, Any]) -> dict[str, Any]:
        await released.wait()
        return {"ok": True}

    tool = codemode.Tool.from_schema("gate", "Wait for the test", {"type": "object"}, None, gate)
    cm = codemode.create_code_mode([tool], driver=driver, timeout=10.0)
    seen: list[str] = []
    with anyio.fail_after(5):
        async for event in ag_ui_events(
            cm, "console.log('before')\nreturn await external_gate({})", tool_call_id="c"
        ):
            seen.append(event.name if isinstance(event, CustomEvent) else event.type.value)
            if seen[-1] == "code_mode:external_call":
                assert "TOOL_CALL_RESULT" not in seen
                released.set()
    assert seen[-2:] == ["code_mode:execution_finished", "TOOL_CALL_RESULT"]


async def test_a_host_exception_ends_the_run_with_run_error(
    cm: codemode.CodeMode, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(code: str, *, on_event: Any, **kwargs: Any) -> Any:
        on_event(codemode.Event("code_mode:execution_started", {"toolCallId": "c", "timestamp": 1.0}))
        await anyio.sleep(0)
        raise RuntimeError("driver crashed")

    monkeypatch.setattr(cm, "execute", broken)
    events: list[BaseEvent] = []
    with pytest.raises(RuntimeError, match="driver crashed"):
        async for event in ag_ui_events(cm, "return 1", tool_call_id="c", run_id="r", thread_id="t"):
            events.append(event)
    assert [e.type.value for e in events][-2:] == ["CUSTOM", "RUN_ERROR"]
    assert (events[-1].message, events[-1].code) == ("driver crashed", "RuntimeError")


# --- sse_stream ---------------------------------------------------------------------------


async def test_golden_sse(cm: codemode.CodeMode) -> None:
    chunks = [
        chunk
        async for chunk in sse_stream(
            cm, TIMELINE, tool_call_id="call_1", run_id="run_1", thread_id="thread_1"
        )
    ]
    assert all(c.startswith("data: {") and c.endswith("}\n\n") and c.count("\n") == 2 for c in chunks)
    text = "".join(chunks)
    parsed = _parse_sse(text)
    assert [e["type"] for e in parsed] == TIMELINE_TYPES
    assert [e["name"] for e in parsed if e["type"] == "CUSTOM"] == TIMELINE_CUSTOM_NAMES
    assert parsed[1] == {
        "type": "TOOL_CALL_START",
        "timestamp": parsed[1]["timestamp"],
        "toolCallId": "call_1",
        "toolCallName": "execute_typescript",
    }
    assert parsed[-1]["runId"] == "run_1" and parsed[-1]["threadId"] == "thread_1"
    assert SSE_CONTENT_TYPE == "text/event-stream"
    _check_golden("timeline.sse", _normalise_sse(text))


# --- the example ASGI endpoint ------------------------------------------------------------


def _load_example() -> ModuleType:
    name = "codemode_example_ag_ui_server"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / "ag_ui_server.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


class Response:
    """What an ASGI app sent back."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.complete = False

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    async def send(self, message: dict[str, Any]) -> None:
        assert not self.complete, "sent after the end of the body"
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        else:
            assert message["type"] == "http.response.body" and self.status
            self.chunks.append(message.get("body", b""))
            self.complete = not message.get("more_body", False)


async def _request(
    app: Any,
    body: bytes,
    *,
    method: str = "POST",
    path: str = "/execute",
    disconnect_after_chunks: int | None = None,
) -> Response:
    """Drive the app with one HTTP request, in two body parts; optionally disconnect mid-stream."""
    response = Response()
    parts = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.request", "body": body[10:], "more_body": False},
    ]

    async def receive() -> dict[str, Any]:
        if parts:
            return parts.pop(0)
        while disconnect_after_chunks is None or len(response.chunks) < disconnect_after_chunks:
            await anyio.sleep(0.01)
        return {"type": "http.disconnect"}

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method}
    scope |= {"scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "headers": []}
    with anyio.fail_after(10):
        await app(scope, receive, response.send)
    return response


async def test_example_endpoint_streams_the_timeline(cm: codemode.CodeMode) -> None:
    app = _load_example().create_app(cm)
    request = {"typescriptCode": TIMELINE, "toolCallId": "call_7", "threadId": "thread_7"}
    response = await _request(app, json.dumps(request).encode())
    assert response.status == 200 and response.complete
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["cache-control"] == "no-cache"
    events = _parse_sse(response.body.decode())
    assert [e["type"] for e in events] == TIMELINE_TYPES
    assert events[0]["threadId"] == "thread_7" and events[0]["runId"] == events[-1]["runId"]
    assert {e.get("toolCallId") or e["value"]["toolCallId"] for e in events[1:-1]} == {"call_7"}
    assert json.loads(events[-2]["content"])["result"]["sum"] == 5


async def test_example_endpoint_with_the_demo_tools() -> None:
    example = _load_example()
    code = (ROOT / "examples" / "top_products.ts").read_text(encoding="utf-8")
    response = await _request(example.app, json.dumps({"typescriptCode": code}).encode())
    events = _parse_sse(response.body.decode())
    assert events[0]["type"] == "RUN_STARTED" and events[-1]["type"] == "RUN_FINISHED"
    calls = [e["value"]["function"] for e in events if e.get("name") == "code_mode:external_call"]
    assert calls == ["external_getTopProducts"] + ["external_getProductRatings"] * 5
    output = json.loads(events[-2]["content"])
    assert output["success"] and output["result"][0]["name"] == "Wireless Earbuds"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/execute", b"", 405),
        ("POST", "/nowhere", b"{}", 404),
        ("POST", "/execute", b"not json at all", 400),
        ("POST", "/execute", b'{"code": "return 1"}', 422),
        ("POST", "/execute", b'{"typescriptCode": "return 1", "runId": 5}', 422),
    ],
)
async def test_example_endpoint_refuses_bad_requests(
    cm: codemode.CodeMode, method: str, path: str, body: bytes, status: int
) -> None:
    response = await _request(_load_example().create_app(cm), body, method=method, path=path)
    assert response.status == status and response.complete
    assert response.headers["content-type"] == "application/json"
    assert "error" in json.loads(response.body)


async def test_example_endpoint_stops_the_program_when_the_client_leaves(cm: codemode.CodeMode) -> None:
    app = _load_example().create_app(cm)
    body = json.dumps({"typescriptCode": "return await external_sleep({ ms: 20000 })"}).encode()
    response = await _request(app, body, disconnect_after_chunks=4)  # RUN_STARTED + the tool call
    assert response.status == 200 and not response.complete
    assert len(_parse_sse(response.body.decode())) < len(TIMELINE_TYPES)
    assert (await cm.execute("return 1 + 1")).result == 2


async def test_example_lifespan_closes_the_code_mode(cm: codemode.CodeMode) -> None:
    app = _load_example().create_app(cm)
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


# --- approvals ------------------------------------------------------------------------------


async def test_a_paused_program_ends_the_run_with_interrupts_that_resume_it(
    driver: codemode.drivers.IsolateDriver,
) -> None:
    """A program that pauses for approval finishes the AG-UI run with an ``interrupt``
    outcome (one interrupt per pending call, with its response schema); answering them in the
    next run (``RunAgentInput.resume``) resumes the program to its ``TOOL_CALL_RESULT``."""
    from ag_ui.core import ResumeEntry

    from codemode.integrations.ag_ui import DECISION_SCHEMA, ag_ui_resume
    from tests.approvals import shop

    shop.REFUNDED.clear()
    cm = codemode.create_code_mode(shop.TOOLS, driver=driver, approval_key=shop.KEY)
    first = await _collect(ag_ui_events(cm, shop.REFUND_ALL, tool_call_id="tc1", run_id="r1", thread_id="t"))
    types = [e.type.value for e in first]
    assert "TOOL_CALL_RESULT" not in types and types[-1] == "RUN_FINISHED"
    outcome = first[-1].outcome
    assert outcome is not None and outcome.type == "interrupt"
    interrupts = outcome.interrupts
    assert [(i.metadata["callId"], i.metadata["args"]["order_id"]) for i in interrupts] == [
        (5, "o-2"),
        (6, "o-3"),
    ]
    assert all(i.tool_call_id == "tc1" and i.response_schema == DECISION_SCHEMA for i in interrupts)
    assert "external_refund" in interrupts[0].message and interrupts[0].expires_at
    paused_event = [e for e in first if e.type.value == "CUSTOM" and e.name == "code_mode:execution_paused"]
    assert len(paused_event) == 1

    answers = [
        ResumeEntry(interrupt_id=interrupts[0].id, status="resolved", payload={"approved": True}),
        ResumeEntry(
            interrupt_id=interrupts[1].id, status="resolved", payload={"approved": False, "reason": "no"}
        ),
    ]
    second = await _collect(ag_ui_resume(cm, answers, tool_call_id="tc1", run_id="r2", thread_id="t"))
    assert second[0].type.value == "RUN_STARTED" and second[-1].outcome is None
    (result,) = [e for e in second if e.type.value == "TOOL_CALL_RESULT"]
    output = json.loads(result.content)
    assert output["result"] == [
        "refunded o-1",
        "refunded o-2",
        "failed: external_refund was rejected by a person: no",
    ]
    assert shop.REFUNDED == ["o-1", "o-2"]
    with pytest.raises(codemode.ResumeError):  # the same answers again: the pause was spent
        await _collect(ag_ui_resume(cm, answers, tool_call_id="tc1"))


# --- skills ---------------------------------------------------------------------------------


async def test_example_endpoint_over_a_skill_context_registers_then_calls_a_skill() -> None:
    """Turn 1 posts the model's ``register_skill`` call: the stream is the tool call with the
    ``code_mode:skill_registered`` event passing through. Turn 2 posts the new skill's direct
    call, then a program calling ``skill_two_units``; the store records both runs."""
    from .skill_turns import REGISTRATION, SKILL_ARGUMENTS, executions, make_context

    context, store = await make_context()
    app = _load_example().create_app(context)
    turns = [
        {"toolName": "register_skill", "arguments": REGISTRATION, "toolCallId": "c1"},
        {"toolName": "two_units", "arguments": SKILL_ARGUMENTS, "toolCallId": "c2"},
        {"typescriptCode": "return await skill_two_units({ sku: 'A-1' })", "toolCallId": "c3"},
    ]
    streams = []
    for body in turns:
        response = await _request(app, json.dumps(body).encode())
        assert response.status == 200 and response.complete
        streams.append(_parse_sse(response.body.decode()))
    registered, direct, program = streams
    assert [e["type"] for e in registered[:4]] == [
        "RUN_STARTED",
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
    ]
    assert registered[1]["toolCallName"] == "register_skill"
    assert json.loads(registered[2]["delta"]) == REGISTRATION
    custom = [e for e in registered if e["type"] == "CUSTOM"]
    assert "code_mode:skill_registered" in [e["name"] for e in custom]
    assert {e["value"]["toolCallId"] for e in custom} == {"c1"}
    assert json.loads(registered[-2]["content"])["success"] is True
    assert direct[1]["toolCallName"] == "two_units"
    assert json.loads(direct[-2]["content"]) == {"success": True, "result": 8, "logs": []}
    assert json.loads(program[-2]["content"])["result"] == 5
    assert await executions(store) == 2


async def test_ag_ui_tool_events_name_the_tool_and_report_errors() -> None:
    from codemode.integrations.ag_ui import ag_ui_events, ag_ui_tool_events

    from .skill_turns import make_context

    context, _ = await make_context()
    events = [e async for e in ag_ui_tool_events(context, "register_skill", {"name": "x"}, tool_call_id="c1")]
    output = json.loads(events[-1].content)
    assert output["success"] is False and output["error"]["message"].startswith("register_skill: ")
    with pytest.raises(KeyError, match="two_units"):
        [e async for e in ag_ui_tool_events(context, "two_units", {}, tool_call_id="c2", run_id="r")]
    with pytest.raises(TypeError, match="limit overrides"):
        [e async for e in ag_ui_events(context, "return 1", tool_call_id="c3", timeout=1)]
