"""The skills runtime's reports (see ``runtime.js``), read as the runs the execution made and
the events they stand for."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..events import Event, EventName, now_ms

if TYPE_CHECKING:
    from ..tracing import SkillSpans

SKILL_CALL: EventName = "code_mode:skill_call"
SKILL_RESULT: EventName = "code_mode:skill_result"
SKILL_ERROR: EventName = "code_mode:skill_error"


class Tally:
    """One execution's reports from the skills runtime: the runs so far (``index * 2 +
    success``, in order), the calls still running, and the events they stand for."""

    __slots__ = ("names", "running", "runs", "spans", "started", "tool_call_id")

    def __init__(
        self, names: Sequence[str], tool_call_id: str | None, spans: SkillSpans | None = None
    ) -> None:
        self.names = names
        self.tool_call_id = tool_call_id
        self.spans = spans
        self.started = False
        self.runs: list[int] = []
        self.running: dict[int, int] = {}

    def report(self, text: str) -> Event | None:
        """Take one report (see ``runtime.js``); the event it stands for, if it has details."""
        head, _, rest = text.partition(" ")
        kind = head[:1]
        if kind == "h":
            self.started = True
            return None
        try:
            number, _, call_text = head[1:].partition(":")
            index, call = int(number), int(call_text)
            name = self.names[index]
        except (ValueError, IndexError):
            return None
        if kind == "c":
            self.running[index] = self.running.get(index, 0) + 1
            if self.spans is not None:
                self.spans.start(name, call)
            if not rest:
                return None
            return self._event(SKILL_CALL, name, input=_loads(rest))
        if self.running.get(index):
            self.running[index] -= 1
        if kind == "x":  # the input was refused: not a run of the skill
            if self.spans is not None:
                self.spans.end(call, "invalid input")
            return self._event(SKILL_ERROR, name, error=rest, duration_ms=0) if rest else None
        if kind not in ("r", "f"):
            return None
        self.runs.append(index * 2 + (kind == "r"))
        ms, _, value = rest.partition(" ")
        if self.spans is not None:
            self.spans.end(call, None if kind == "r" else (value or "failed"))
        if not rest:
            return None
        try:
            duration: float = int(ms)
        except ValueError:
            duration = 0
        if kind == "r":
            return self._event(SKILL_RESULT, name, result=_loads(value), duration_ms=duration)
        return self._event(SKILL_ERROR, name, error=value, duration_ms=duration)

    def _event(self, event_name: EventName, skill: str, **fields: Any) -> Event:
        return Event(
            event_name, {"toolCallId": self.tool_call_id, "timestamp": now_ms(), "skill": skill, **fields}
        )


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
