"""Live events of an execution (AG-UI style custom events)."""

from __future__ import annotations

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


def now_ms() -> float:
    return time.time() * 1000.0
