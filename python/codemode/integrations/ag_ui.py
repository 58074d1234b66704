"""AG-UI: an execution's live timeline as AG-UI protocol events, and as a Server-Sent Events stream.

Needs the extra ``pip install codemode[ag-ui]`` (the ``ag-ui-protocol`` package, module ``ag_ui``)::

    from codemode.integrations.ag_ui import ag_ui_events, sse_stream

    async for event in ag_ui_events(cm, code, tool_call_id="call_1"):
        ...  # TOOL_CALL_START, TOOL_CALL_ARGS, TOOL_CALL_END, CUSTOM..., TOOL_CALL_RESULT

    # in an HTTP handler, with Content-Type: text/event-stream (SSE_CONTENT_TYPE)
    async for chunk in sse_stream(cm, code, tool_call_id="call_1", run_id="run_1", thread_id="t_1"):
        ...  # "data: {...}\\n\\n"

Each codemode event (``code_mode:console``, ``code_mode:external_call``, ...) becomes an AG-UI
``CUSTOM`` event with the same ``name`` and ``value``. By default they are wrapped in the standard
tool-call lifecycle of the ``execute_typescript`` call itself, because that is what AG-UI
frontends render (a tool call with its arguments and its result); the custom events come between
``TOOL_CALL_END`` (the arguments are complete, the program starts) and ``TOOL_CALL_RESULT`` (the
JSON output the model sees). Pass ``lifecycle=False`` when the caller's agent already streams the
model's tool call (its own START/ARGS/END) and reports the result itself.

Given a ``run_id`` or a ``thread_id``, the events are also wrapped in ``RUN_STARTED`` ...
``RUN_FINISHED``, so that the stream is a complete AG-UI run on its own (as an HTTP endpoint
serving only this execution needs); without either, no run events are emitted and the events can
be embedded in the caller's own run. A program that fails (syntax, runtime, tool, timeout ...)
still ends the run with ``RUN_FINISHED``: the failure is the tool's result, which the model reads.
``RUN_ERROR`` is only for an exception on the host, which is then re-raised.

With skills, pass a request's :class:`~codemode.skills.SkillContext` instead of the code mode:
programs then call ``skill_<name>``, and :func:`ag_ui_tool_events` runs any other tool the
context offers (``register_skill`` and the other management tools, a skill as a tool of its
own) with the same lifecycle, its events (``code_mode:skill_registered``, ...) passing through
as ``CUSTOM`` events.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from datetime import datetime, timezone
from typing import Any

import anyio
from pydantic_core import to_jsonable_python

try:
    from ag_ui.core import (
        BaseEvent,
        CustomEvent,
        Interrupt,
        ResumeEntry,
        RunErrorEvent,
        RunFinishedEvent,
        RunFinishedInterruptOutcome,
        RunStartedEvent,
        ToolCallArgsEvent,
        ToolCallEndEvent,
        ToolCallResultEvent,
        ToolCallStartEvent,
    )
    from ag_ui.encoder import EventEncoder
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "codemode.integrations.ag_ui needs the ag-ui-protocol package: pip install 'codemode[ag-ui]'"
    ) from e

from ..approvals import Decision, ResumeError, approve, override, reject
from ..events import Event, EventCallback, now_ms
from ..prompt import TOOL_NAME
from ..results import ExecutionResult, Paused
from ._sources import Source, code_mode_of, executor_of, is_skill_context, tools_of

__all__ = [
    "DECISION_SCHEMA",
    "SSE_CONTENT_TYPE",
    "ag_ui_events",
    "ag_ui_resume",
    "ag_ui_tool_events",
    "sse_stream",
    "to_ag_ui",
]

SSE_CONTENT_TYPE: str = EventEncoder().get_content_type()
"""The ``Content-Type`` of :func:`sse_stream`'s output (``text/event-stream``)."""


def to_ag_ui(event: Event) -> CustomEvent:
    """One codemode event as an AG-UI ``CUSTOM`` event: the same ``name`` and (JSON-safe) ``value``.

    The event's ``timestamp`` (milliseconds since the Unix epoch, a float) also becomes the AG-UI
    event's ``timestamp``, which the protocol defines as an integer in milliseconds.
    """
    value = _json_safe(event.value)
    stamp = event.value.get("timestamp")
    timestamp = round(stamp) if isinstance(stamp, int | float) and math.isfinite(stamp) else _now()
    return CustomEvent(name=event.name, value=value, timestamp=timestamp)


async def ag_ui_events(
    cm: Source,
    code: str,
    *,
    tool_call_id: str,
    run_id: str | None = None,
    thread_id: str | None = None,
    lifecycle: bool = True,
    parent_message_id: str | None = None,
    **limit_overrides: Any,
) -> AsyncGenerator[BaseEvent, None]:
    """Run ``code`` and yield its live events as AG-UI events, as they happen.

    With ``lifecycle`` (the default) the ``CUSTOM`` events are wrapped in ``TOOL_CALL_START``
    (``execute_typescript``, ``tool_call_id``, ``parent_message_id``), one ``TOOL_CALL_ARGS``
    (``{"typescriptCode": code}``), ``TOOL_CALL_END`` and, after them, ``TOOL_CALL_RESULT`` (the
    tool output as a JSON string). Given ``run_id`` or ``thread_id`` (the other is then a new
    UUID), everything is wrapped in ``RUN_STARTED`` ... ``RUN_FINISHED`` (``RUN_ERROR`` if the host
    raises, before the exception propagates). ``limit_overrides`` (``timeout=``,
    ``memory_limit_mb=``, ...) apply to this execution, as in ``cm.execute``. ``cm`` may be a
    :class:`~codemode.skills.SkillContext`: the program then runs with its skills (no limit
    overrides there: the code mode's limits apply).
    """
    if limit_overrides and is_skill_context(cm):
        raise TypeError("limit overrides apply to a CodeMode's execute, not to a SkillContext's")
    execute = executor_of(cm)

    def start(on_event: EventCallback) -> Awaitable[ExecutionResult]:
        return execute(code, tool_call_id=tool_call_id, on_event=on_event, **limit_overrides)

    def opening() -> list[BaseEvent]:
        return _tool_call_opening(code, tool_call_id, parent_message_id) if lifecycle else []

    async for event in _run(start, opening, tool_call_id, lifecycle, run_id, thread_id):
        yield event


async def ag_ui_tool_events(
    source: Source,
    name: str,
    arguments: Mapping[str, Any],
    *,
    tool_call_id: str,
    run_id: str | None = None,
    thread_id: str | None = None,
    lifecycle: bool = True,
    parent_message_id: str | None = None,
) -> AsyncGenerator[BaseEvent, None]:
    """Run the model's call of the tool ``name`` of ``source`` (a code mode's
    ``model_tools``, or a skill context's ``tools``: ``register_skill``, a skill as a tool...)
    and yield its events as :func:`ag_ui_events` does: the tool call (named ``name``, its
    arguments as JSON), the ``CUSTOM`` events of what it runs, ``TOOL_CALL_RESULT`` (the tool's
    output). ``execute_typescript`` with its code is :func:`ag_ui_events`. A name ``source``
    does not offer raises ``KeyError`` (``RUN_ERROR`` first, in a run)."""
    code = arguments.get("typescriptCode")
    if name == TOOL_NAME and isinstance(code, str):
        events = ag_ui_events(
            source,
            code,
            tool_call_id=tool_call_id,
            run_id=run_id,
            thread_id=thread_id,
            lifecycle=lifecycle,
            parent_message_id=parent_message_id,
        )
        async with aclosing(events):
            async for event in events:
                yield event
        return

    async def start(on_event: EventCallback) -> dict[str, Any]:
        tool = next((tool for tool in tools_of(source) if tool.name == name), None)
        if tool is None:
            raise KeyError(
                f"there is no tool {name!r}; the tools are: {', '.join(t.name for t in tools_of(source))}"
            )
        return await tool.call(dict(arguments), tool_call_id=tool_call_id, on_event=on_event)

    def opening() -> list[BaseEvent]:
        if not lifecycle:
            return []
        return _tool_call_opening(dict(arguments), tool_call_id, parent_message_id, name)

    async for event in _run(start, opening, tool_call_id, lifecycle, run_id, thread_id):
        yield event


async def ag_ui_resume(
    cm: Source,
    resume: Sequence[ResumeEntry],
    *,
    tool_call_id: str,
    run_id: str | None = None,
    thread_id: str | None = None,
    lifecycle: bool = True,
) -> AsyncGenerator[BaseEvent, None]:
    """Resume a program paused for approval with the frontend's answers to its interrupts.

    ``resume`` is ``RunAgentInput.resume``: one ``ResumeEntry`` per interrupt of the paused
    run's ``RUN_FINISHED`` (``status="resolved"`` with ``payload={"approved": true}``, or
    ``{"approved": false, "reason": ...}``, or ``{"override": value}``; ``"cancelled"``
    rejects). The events are those of :func:`ag_ui_events` for the rest of the program (no
    ``TOOL_CALL_START`` again: it is the same tool call), ending with its ``TOOL_CALL_RESULT``,
    or with new interrupts. Raises ``codemode.InvalidResumeToken`` / ``codemode.ResumeError``
    (as ``RUN_ERROR`` first, in a run) for answers that do not resume a pause.
    """
    token, decisions = _decisions_of(resume)
    code_mode = code_mode_of(cm)  # a paused run of a skill context resumes with its skills

    def start(on_event: EventCallback) -> Awaitable[ExecutionResult]:
        return code_mode.resume(token, decisions, on_event=on_event)

    async for event in _run(start, list, tool_call_id, lifecycle, run_id, thread_id):
        yield event


async def _run(
    start: Callable[[EventCallback], Awaitable[ExecutionResult | dict[str, Any]]],
    opening: Callable[[], list[BaseEvent]],
    tool_call_id: str,
    lifecycle: bool,
    run_id: str | None,
    thread_id: str | None,
) -> AsyncGenerator[BaseEvent, None]:
    """The run's events around the execution's: ``RUN_STARTED`` ... ``RUN_FINISHED`` (with the
    interrupts of a paused program as its outcome) when in a run."""
    in_run = run_id is not None or thread_id is not None
    run_id = run_id or str(uuid.uuid4())
    thread_id = thread_id or str(uuid.uuid4())
    if in_run:
        yield RunStartedEvent(thread_id=thread_id, run_id=run_id, timestamp=_now())
    paused: list[Paused] = []
    try:
        for event in opening():
            yield event
        async for event in _execution_events(start, tool_call_id, lifecycle, paused):
            yield event
    except Exception as e:
        if in_run:
            yield RunErrorEvent(message=str(e) or type(e).__name__, code=type(e).__name__, timestamp=_now())
        raise
    if in_run:
        outcome = (
            RunFinishedInterruptOutcome(type="interrupt", interrupts=_interrupts(paused[0], tool_call_id))
            if paused
            else None
        )
        yield RunFinishedEvent(thread_id=thread_id, run_id=run_id, timestamp=_now(), outcome=outcome)


async def sse_stream(
    cm: Source,
    code: str,
    *,
    tool_call_id: str,
    run_id: str | None = None,
    thread_id: str | None = None,
    lifecycle: bool = True,
    parent_message_id: str | None = None,
    encoder: EventEncoder | None = None,
    **limit_overrides: Any,
) -> AsyncIterator[str]:
    """:func:`ag_ui_events` encoded as Server-Sent Events by ag_ui's ``EventEncoder``.

    Yields one ``data: {...}\\n\\n`` string per event; serve it as :data:`SSE_CONTENT_TYPE`.
    """
    encoder = encoder or EventEncoder()
    events = ag_ui_events(
        cm,
        code,
        tool_call_id=tool_call_id,
        run_id=run_id,
        thread_id=thread_id,
        lifecycle=lifecycle,
        parent_message_id=parent_message_id,
        **limit_overrides,
    )
    async with aclosing(events):
        async for event in events:
            yield encoder.encode(event)


async def _execution_events(
    start: Callable[[EventCallback], Awaitable[ExecutionResult | dict[str, Any]]],
    tool_call_id: str,
    lifecycle: bool,
    paused: list[Paused],
) -> AsyncGenerator[BaseEvent, None]:
    """The execution's custom events as they happen, then its ``TOOL_CALL_RESULT`` (when asked
    and the program did not pause: a paused one is appended to ``paused``). ``start`` gives an
    execution's result, or a tool's output (a dict)."""
    send, receive = anyio.create_memory_object_stream[
        Event | ExecutionResult | dict[str, Any] | BaseException
    ](math.inf)

    async def run() -> None:
        async with send:
            try:
                send.send_nowait(await start(send.send_nowait))
            except Exception as e:  # raised below as it is, not in an exception group
                send.send_nowait(e)

    failure: BaseException | None = None
    async with anyio.create_task_group() as tg, receive:
        tg.start_soon(run)
        async for item in receive:
            if isinstance(item, BaseException):
                failure = item
                break
            if isinstance(item, Event):
                yield to_ag_ui(item)
            elif isinstance(item, dict):
                if lifecycle:
                    yield _tool_call_result(item, tool_call_id)
            elif item.paused is not None:
                paused.append(item.paused)
            elif lifecycle:
                yield _tool_call_result(item.to_tool_output(), tool_call_id)
    if failure is not None:
        raise failure


DECISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean", "description": "run the call as the program made it"},
        "reason": {"type": "string", "description": "why it is rejected (the program sees it)"},
        "override": {"description": "answer the call with this value instead of running it"},
    },
}
"""The ``response_schema`` of an approval interrupt: the payload its ``ResumeEntry`` carries."""


def _interrupts(paused: Paused, tool_call_id: str) -> list[Interrupt]:
    """One interrupt per pending call; its id carries the call's id and the resume token."""
    expires = datetime.fromtimestamp(paused.expires_at, timezone.utc).isoformat()
    return [
        Interrupt(
            id=f"{call.call_id}.{paused.token}",
            reason="tool_call_approval",
            message=f"{call.function}({json.dumps(call.args, ensure_ascii=False)}) waits for approval",
            tool_call_id=tool_call_id,
            response_schema=DECISION_SCHEMA,
            expires_at=expires,
            metadata={
                "callId": call.call_id,
                "function": call.function,
                "args": call.args,
                "runId": paused.run_id,
            },
        )
        for call in paused.pending
    ]


def _decisions_of(resume: Sequence[ResumeEntry]) -> tuple[str, dict[int | str, Decision]]:
    """The resume token and a decision per call, from the answers to approval interrupts."""
    token: str | None = None
    decisions: dict[int | str, Decision] = {}
    for entry in resume:
        call_id, _, entry_token = entry.interrupt_id.partition(".")
        if not entry_token or (token is not None and entry_token != token):
            raise ResumeError("the answers are not all to the interrupts of one paused program")
        token = entry_token
        payload = entry.payload if isinstance(entry.payload, dict) else {}
        if entry.status == "cancelled":
            decisions[call_id] = reject("cancelled")
        elif "override" in payload:
            decisions[call_id] = override(payload["override"])
        elif payload.get("approved") is True:
            decisions[call_id] = approve()
        else:
            decisions[call_id] = reject(str(payload.get("reason") or ""))
    if token is None:
        raise ResumeError("no answer to resume with")
    return token, decisions


def _tool_call_opening(
    code: str | dict[str, Any], tool_call_id: str, parent_message_id: str | None, name: str = TOOL_NAME
) -> list[BaseEvent]:
    """``TOOL_CALL_START``, the arguments (``code`` for execute_typescript, else the tool's
    arguments) in one ``TOOL_CALL_ARGS``, and ``TOOL_CALL_END``."""
    timestamp = _now()
    arguments = {"typescriptCode": code} if isinstance(code, str) else code
    return [
        ToolCallStartEvent(
            tool_call_id=tool_call_id,
            tool_call_name=name,
            parent_message_id=parent_message_id,
            timestamp=timestamp,
        ),
        ToolCallArgsEvent(
            tool_call_id=tool_call_id,
            delta=json.dumps(_json_safe(arguments), ensure_ascii=False),
            timestamp=timestamp,
        ),
        ToolCallEndEvent(tool_call_id=tool_call_id, timestamp=timestamp),
    ]


def _tool_call_result(output: dict[str, Any], tool_call_id: str) -> ToolCallResultEvent:
    """The model-facing output of the execution (or tool), as a new tool message."""
    content = json.dumps(_json_safe(output), ensure_ascii=False)
    return ToolCallResultEvent(
        message_id=str(uuid.uuid4()),
        tool_call_id=tool_call_id,
        content=content,
        role="tool",
        timestamp=_now(),
    )


def _json_safe(value: Any) -> Any:
    """Plain JSON types only: tuples/sets become lists, NaN and infinities ``None``, unknown
    objects their ``str``."""
    return to_jsonable_python(value, inf_nan_mode="null", fallback=str)


def _now() -> int:
    return round(now_ms())
