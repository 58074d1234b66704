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
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from pydantic_core import to_jsonable_python

try:
    from ag_ui.core import (
        BaseEvent,
        CustomEvent,
        RunErrorEvent,
        RunFinishedEvent,
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

from ..code_mode import CodeMode
from ..events import Event, now_ms
from ..prompt import TOOL_NAME
from ..results import ExecutionResult

__all__ = ["SSE_CONTENT_TYPE", "ag_ui_events", "sse_stream", "to_ag_ui"]

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
    cm: CodeMode,
    code: str,
    *,
    tool_call_id: str,
    run_id: str | None = None,
    thread_id: str | None = None,
    lifecycle: bool = True,
    parent_message_id: str | None = None,
    **limit_overrides: Any,
) -> AsyncIterator[BaseEvent]:
    """Run ``code`` and yield its live events as AG-UI events, as they happen.

    With ``lifecycle`` (the default) the ``CUSTOM`` events are wrapped in ``TOOL_CALL_START``
    (``execute_typescript``, ``tool_call_id``, ``parent_message_id``), one ``TOOL_CALL_ARGS``
    (``{"typescriptCode": code}``), ``TOOL_CALL_END`` and, after them, ``TOOL_CALL_RESULT`` (the
    tool output as a JSON string). Given ``run_id`` or ``thread_id`` (the other is then a new
    UUID), everything is wrapped in ``RUN_STARTED`` ... ``RUN_FINISHED`` (``RUN_ERROR`` if the host
    raises, before the exception propagates). ``limit_overrides`` (``timeout=``,
    ``memory_limit_mb=``, ...) apply to this execution, as in ``cm.execute``.
    """
    in_run = run_id is not None or thread_id is not None
    run_id = run_id or str(uuid.uuid4())
    thread_id = thread_id or str(uuid.uuid4())
    if in_run:
        yield RunStartedEvent(thread_id=thread_id, run_id=run_id, timestamp=_now())
    try:
        events = _execution_events(cm, code, tool_call_id, lifecycle, parent_message_id, limit_overrides)
        async for event in events:
            yield event
    except Exception as e:
        if in_run:
            yield RunErrorEvent(message=str(e) or type(e).__name__, code=type(e).__name__, timestamp=_now())
        raise
    if in_run:
        yield RunFinishedEvent(thread_id=thread_id, run_id=run_id, timestamp=_now())


async def sse_stream(
    cm: CodeMode,
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
    cm: CodeMode,
    code: str,
    tool_call_id: str,
    lifecycle: bool,
    parent_message_id: str | None,
    limit_overrides: dict[str, Any],
) -> AsyncIterator[BaseEvent]:
    """The tool-call lifecycle (when asked) around the execution's custom events."""
    if lifecycle:
        for event in _tool_call_opening(code, tool_call_id, parent_message_id):
            yield event
    stream = cm.stream(code, tool_call_id=tool_call_id, **limit_overrides)
    async with aclosing(stream):
        async for item in stream:
            if isinstance(item, ExecutionResult):
                if lifecycle:
                    yield _tool_call_result(item, tool_call_id)
            else:
                yield to_ag_ui(item)


def _tool_call_opening(code: str, tool_call_id: str, parent_message_id: str | None) -> list[BaseEvent]:
    """``TOOL_CALL_START``, the arguments in one ``TOOL_CALL_ARGS``, and ``TOOL_CALL_END``."""
    timestamp = _now()
    return [
        ToolCallStartEvent(
            tool_call_id=tool_call_id,
            tool_call_name=TOOL_NAME,
            parent_message_id=parent_message_id,
            timestamp=timestamp,
        ),
        ToolCallArgsEvent(
            tool_call_id=tool_call_id,
            delta=json.dumps({"typescriptCode": code}, ensure_ascii=False),
            timestamp=timestamp,
        ),
        ToolCallEndEvent(tool_call_id=tool_call_id, timestamp=timestamp),
    ]


def _tool_call_result(result: ExecutionResult, tool_call_id: str) -> ToolCallResultEvent:
    """The model-facing output of the execution, as a new tool message."""
    content = json.dumps(_json_safe(result.to_tool_output()), ensure_ascii=False)
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
