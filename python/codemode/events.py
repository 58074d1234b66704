"""Live events of an execution (AG-UI style custom events)."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

EventName = Literal[
    "code_mode:execution_started",
    "code_mode:console",
    "code_mode:external_call",
    "code_mode:external_result",
    "code_mode:external_error",
    "code_mode:execution_finished",
    "code_mode:execution_paused",
    "code_mode:skill_call",
    "code_mode:skill_result",
    "code_mode:skill_error",
    "code_mode:skill_registered",
]


@dataclass(frozen=True)
class Event:
    """One custom event: ``name`` and a ``value`` that carries ``toolCallId`` and ``timestamp``
    (milliseconds since the Unix epoch) besides its own fields. The ``external_call``,
    ``external_result`` and ``external_error`` of one tool call share its ``callId`` (a number,
    unique in the execution): calls made in parallel settle in any order."""

    name: EventName
    value: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "CUSTOM", "name": self.name, "value": self.value}


EventCallback = Callable[[Event], Awaitable[None] | None]
"""Receives each event as it happens, in order. If it returns an awaitable, the execution
awaits it before going on."""


async def emit(on_event: EventCallback | None, event: Event) -> None:
    """Give ``event`` to ``on_event`` and await what it returns, if anything (a callback may be
    sync or async); nothing without a callback. Every event of codemode is given this way."""
    if on_event is None:
        return
    outcome = on_event(event)
    if inspect.isawaitable(outcome):
        await outcome


def now_ms() -> float:
    return time.time() * 1000.0


# The payloads are a superset of TanStack AI Code Mode's (``@tanstack/ai-code-mode``), so its
# UI components read a codemode backend's events: its keys beside codemode's own.

Phase = Literal["transpile", "execute"]
"""Where an execution ended: stripping the types (a syntax error) or running."""

_LEVEL_PREFIX = {"warn": "WARN: ", "error": "ERROR: ", "info": "INFO: "}


def started_value(code_length: int) -> dict[str, Any]:
    """``execution_started``'s own fields: ``codeLength`` (characters of the program)."""
    return {"codeLength": code_length}


def console_value(level: str, text: str, timestamp: float) -> dict[str, Any]:
    """``console``'s own fields: ``text`` as in the result's logs (``WARN: ...``), and
    ``level`` with ``message``, the text without its level prefix."""
    prefix = _LEVEL_PREFIX.get(level)
    message = text[len(prefix) :] if prefix is not None and text.startswith(prefix) else text
    return {"timestamp": timestamp, "level": level, "text": text, "message": message}


def settled_value(call: dict[str, Any], duration_ms: float, **outcome: Any) -> dict[str, Any]:
    """``external_result`` / ``external_error``'s fields: the call's, its ``result`` or
    ``error``, and its duration as ``duration_ms`` and ``duration``."""
    return {**call, **outcome, "duration_ms": duration_ms, "duration": duration_ms}


def finished_value(
    success: bool,
    duration_ms: float,
    *,
    error: dict[str, Any] | None = None,
    log_count: int = 0,
    phase: Phase = "execute",
) -> dict[str, Any]:
    """``execution_finished``'s own fields: ``success``, ``error`` (when it failed: ``kind``,
    ``name``, ``message`` and where), the duration as ``duration_ms`` and ``durationMs``,
    ``logCount`` and ``phase``."""
    value: dict[str, Any] = {
        "success": success,
        "duration_ms": duration_ms,
        "durationMs": duration_ms,
        "logCount": log_count,
        "phase": phase,
    }
    if error is not None:
        value["error"] = error
    return value
