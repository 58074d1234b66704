"""The events of a run's execution that repeat what it did before (the part of the run it
replays) told from the new ones, which alone are recorded and passed on."""

from __future__ import annotations

from typing import Any

from ..events import Event, EventCallback, emit
from .models import RunRecord
from .replayed_calls import Replay

_VOLATILE = frozenset({"timestamp", "duration_ms", "callId", "toolCallId"})
_MATCH_WINDOW = 256
"""How far past the first unmatched recorded event a replayed one is looked for."""


class ReplayedEvents:
    """The events of one execution of a run: ``events``, the run's recorded ones (but its pause)
    and then the new ones, which :meth:`watch` passes on to ``on_event``.

    The replayed part of the execution repeats the recorded events (an answer from the log may
    come a little earlier among them than it did): each is matched to one recorded event,
    looked for near the first not yet matched, and is not passed on."""

    def __init__(self, record: RunRecord, replay: Replay, on_event: EventCallback | None) -> None:
        self.replay = replay
        self.on_event = on_event
        self.events: list[dict[str, Any]] = [
            e for e in record.events if e["name"] != "code_mode:execution_paused"
        ]
        self._unmatched: list[dict[str, Any] | None] = list(self.events)
        self._head = 0

    async def watch(self, event: Event) -> None:
        """The execution's event: matched to a recorded one, or recorded and passed on."""
        replay, unmatched = self.replay, self._unmatched
        if event.name == "code_mode:execution_finished" and (replay.paused or replay.diverged):
            return  # the run did not finish: it paused (or diverged), said by the caller
        if unmatched:
            while self._head < len(unmatched) and unmatched[self._head] is None:
                self._head += 1
            for at in range(self._head, min(self._head + _MATCH_WINDOW, len(unmatched))):
                candidate = unmatched[at]
                if candidate is not None and _same(candidate, event):
                    unmatched[at] = None
                    return
        elif replay.logged and _replayed_call(event, replay):
            return  # the execution before the pause was not watched: its calls are known
        self.events.append({"name": event.name, "value": event.value})
        if self.on_event is not None:
            await emit(self.on_event, event)


def _replayed_call(event: Event, replay: Replay) -> bool:
    """Whether ``event`` repeats what the unwatched execution before the pause did: its start,
    its calls, and the answers the log gives back (a decided call's answer is new)."""
    if event.name == "code_mode:execution_started":
        return True
    if not event.name.startswith("code_mode:external_"):
        return False
    index = event.value.get("callId", 0)
    return index in replay.logged if event.name == "code_mode:external_call" else index in replay.from_log


def _same(recorded: dict[str, Any], event: Event) -> bool:
    """Whether ``event`` repeats ``recorded`` (the same event of the replayed part of a run)."""
    if recorded["name"] != event.name:
        return False
    value = recorded["value"]
    keys = (value.keys() | event.value.keys()) - _VOLATILE
    return all(value.get(key) == event.value.get(key) for key in keys)
