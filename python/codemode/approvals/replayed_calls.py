"""Each tool call of a run through its :class:`Replay`: answered from the run's log, decided
(run, rejected or answered with a value), or run live and recorded; a new call that needs
approval pauses the execution. :func:`intercepted` wraps every tool so."""

from __future__ import annotations

import contextvars
import dataclasses
import inspect
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
from pydantic_core import to_jsonable_python

from ..engine import CALL_ID
from ..errors import CodemodeError
from ..events import Event
from ..tools import ToolBinding
from .decisions import Decision, Overridden, Rejected, rejection_message
from .models import CallRecord, RunRecord
from .prelude import MAX_CLOCK_VALUES

_perf_counter = time.perf_counter
HIJACKED = (
    "__codemode_channel is reserved: the program declares it, so the run could not be made "
    "deterministic and cannot pause or resume (rename that declaration)"
)
TIMER_SLACK_MS = 2000
"""How long past its logged time a replay waits for a timer before it calls the run diverged."""

current_replay: contextvars.ContextVar[Replay | None] = contextvars.ContextVar(
    "codemode_replay", default=None
)
"""The replay of the run executing in this context, if any (what :func:`intercepted` calls go through)."""


class ApprovalUnavailable(CodemodeError, RuntimeError):
    """A call that needs approval, in an execution that cannot pause: the program gets a
    ``ToolError`` with this message."""


def jsonable(value: Any) -> Any:
    """``value`` as JSON data (what a run's log keeps)."""
    return to_jsonable_python(value, fallback=str)


class Replay:
    """The state of one execution of a run: the log it replays, the decisions it applies,
    what it records."""

    def __init__(
        self, record: RunRecord, decisions: Mapping[int, Decision], *, log_only: bool = False
    ) -> None:
        self.record = record
        self.log_only = log_only  # a replay of a finished run: no call past the log runs
        self.logged = {call.index: call for call in record.calls}
        self.decisions = dict(decisions)
        self.made = 0  # calls made by this execution
        self.released = 0  # logged outcomes given back so far
        self.logged_timers = {timer: settled for timer, settled, *_ in record.timers}
        # the logged firings by their place: (timer, when it fired, ms after the start)
        self.timer_at = {settled: (timer, at[0] if at else 0) for timer, settled, *at in record.timers}
        self.new_timers: list[list[int]] = []  # [timer, settled, ms] of the firings past the log
        self.started = time.monotonic()
        self.logged_outcomes = sum(1 for call in record.calls if call.outcome is not None) + len(
            record.timers
        )
        self.settles = self.logged_outcomes  # settle order of the next live outcome
        self.live = 0  # calls running now
        self.new: list[NewCall] = []  # calls past the log, made by this execution
        self.from_log: set[int] = set()  # calls answered from the log
        self.waiting: list[NewCall] = []  # new calls that wait for a decision
        self.diverged: str | None = None
        self.seeded = False  # the deterministic prelude ran (a program can take its name first)
        self.paused = False
        self.scope: anyio.CancelScope | None = None
        self._changed: anyio.Event | None = None  # made when something waits for a change
        record.pending = []

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def _changes(self) -> None:
        """Wait for the next call to settle or be given back."""
        if self._changed is None:
            self._changed = anyio.Event()
        await self._changed.wait()

    async def _after(self, settled: int) -> None:
        """Wait until the logged outcomes that settled before ``settled`` were given back. A
        timer that fired there before and has not fired again well past the time it did (a
        replay is never slower: its answers come from the log) means another path."""
        while self.released < settled - 1:
            timer = self.timer_at.get(self.released + 1)
            if timer is None:
                await self._changes()
                continue
            due = self.started + (timer[1] + TIMER_SLACK_MS) / 1000
            with anyio.move_on_after(max(0.0, due - time.monotonic())):
                await self._changes()
                continue
            await self._diverge(
                f"the program took another path on {'replay' if self.log_only else 'resume'}: its "
                f"timer {timer[0] + 1} did not fire where the run's log has it"
            )

    def calls(self) -> list[CallRecord]:
        """Every call of the run so far: the logged ones, then this execution's new ones."""
        made = [call.to_record() for call in self.new]
        return sorted([*self.record.calls, *made], key=lambda call: call.index)

    def _stop(self) -> None:
        if self.scope is not None:
            self.scope.cancel()

    async def _diverge(self, message: str) -> None:
        self.diverged = message
        # Stopped from a later turn of the loop: a call's first step may run inside the
        # engine's own step, where the execution's task cannot take the cancellation yet.
        await anyio.sleep(0)
        self._stop()
        await anyio.sleep_forever()

    def on_report(self, line: str) -> Event | None:
        """The program's report channel: the ``Date`` readings it makes past the log
        (``d <ms>``), and its timers as they fire (``t <k>``, ``k`` counting its timers)."""
        if line == "s":
            self.seeded = True
        elif line.startswith("t "):
            try:
                self._fired(int(line[2:]))
            except ValueError:
                pass
        elif line.startswith("d ") and len(self.record.clock) < MAX_CLOCK_VALUES:
            try:
                self.record.clock.append(float(line[2:]))
            except ValueError:
                pass
        return None

    def _fired(self, timer: int) -> None:
        """Timer ``timer`` fired (its callback runs next). Firings take their place in the
        settle order with the calls: a logged call that settled after a logged firing is given
        back only once that timer fired again, so a race between a timer and a call ends the
        same way on replay. A firing out of its logged place fails the run."""
        logged = self.logged_timers.get(timer)
        if logged is None and self.released >= self.logged_outcomes and not self.log_only:
            self.settles += 1
            self.new_timers.append([timer, self.settles, round((time.monotonic() - self.started) * 1000)])
            return
        if logged is not None and self.released == logged - 1:
            self.released += 1
            self._notify()
            return
        self.diverged = (
            f"the program took another path on {'replay' if self.log_only else 'resume'}: its timer "
            f"{timer + 1} fired before what came before it in the run's log (timers keep real time; "
            "the order of a timer and the calls around it changed)"
        )
        self._stop()

    def timers(self) -> list[list[int]]:
        """Every timer firing of the run so far: ``[timer, settled, ms after the start]``."""
        return [*self.record.timers, *self.new_timers]

    async def call(self, binding: ToolBinding, args: Any, run: Callable[[Any], Awaitable[Any]]) -> Any:
        if not self.seeded:
            await self._diverge(HIJACKED)
        self.made += 1
        index = CALL_ID.get()  # the program's numbering of its calls, whatever order they start in
        logged = self.logged.get(index)
        if logged is not None:
            sent = jsonable(args)
            if logged.tool != binding.name or logged.args != sent:
                await self._diverge(
                    f"the program took another path on resume: its call {index} was "
                    f"external_{logged.tool}({json.dumps(logged.args)}) when it paused, and is "
                    f"external_{binding.name}({json.dumps(sent)}) now"
                )
            if logged.outcome is not None:
                assert logged.settled is not None
                await self._after(logged.settled)
                self.from_log.add(index)
                self.released += 1
                self._notify()
                if "error" in logged.outcome:
                    raise _Recorded(str(logged.outcome["error"]))
                return logged.outcome.get("result")
            await self._after(self.logged_outcomes + 1)
            return await self._decided(binding, args, logged, run)
        if self.log_only:
            await self._diverge(
                f"the program took another path on replay: its call {index}, "
                f"external_{binding.name}({json.dumps(jsonable(args))}), is not in the run's log"
            )
        # Kept as they are and made JSON when the run is saved (most runs never are).
        record = NewCall(index, binding.name, args)
        self.new.append(record)
        if binding.requires_approval and binding.needs_approval(args):
            self.waiting.append(record)
            await self._pause_when_idle()
        return await self._live(record, args, run)

    async def _decided(
        self, binding: ToolBinding, args: Any, record: CallRecord, run: Callable[[Any], Awaitable[Any]]
    ) -> Any:
        decision = self.decisions[record.index]
        if isinstance(decision, Rejected):
            record.approval = "rejected"
            message = rejection_message(binding.sandbox_name, decision)
            self._settle(record, {"error": message}, 0.0)
            raise _Recorded(message)
        if isinstance(decision, Overridden):
            record.approval = "overridden"
            self._settle(record, {"result": jsonable(decision.value)}, 0.0)
            return decision.value
        record.approval = "approved"
        return await self._live(record, args, run)

    async def _live(
        self, record: CallRecord | NewCall, args: Any, run: Callable[[Any], Awaitable[Any]]
    ) -> Any:
        self.live += 1
        started = time.perf_counter()
        try:
            result = await run(args)
        except BaseException as e:
            if not isinstance(e, anyio.get_cancelled_exc_class()):
                self._settle(record, {"error": str(e)}, (time.perf_counter() - started) * 1000)
            raise
        else:
            self._settle(record, {"result": result}, (time.perf_counter() - started) * 1000)
            return result
        finally:
            self.live -= 1
            self._notify()

    def _settle(self, record: CallRecord | NewCall, outcome: dict[str, Any], duration_ms: float) -> None:
        self.settles += 1
        record.outcome = outcome
        record.settled = self.settles
        record.duration_ms = duration_ms

    async def _pause_when_idle(self) -> None:
        """Stop the execution once no call is running and the engine has handed over every
        call of its step (a few turns of the event loop); never returns."""
        while True:
            while self.live > 0:
                await self._changes()
            for _ in range(5):
                await anyio.sleep(0)
            if self.live == 0:
                break
        self.paused = True
        self.waiting.sort(key=lambda call: call.index)
        self.record.pending = [call.index for call in self.waiting]
        self._stop()
        await anyio.sleep_forever()


class NewCall:
    """A call past the log, while the execution runs (a :class:`CallRecord` when saved)."""

    __slots__ = ("args", "duration_ms", "index", "outcome", "settled", "tool")

    def __init__(self, index: int, tool: str, args: Any) -> None:
        self.index = index
        self.tool = tool
        self.args = args
        self.outcome: dict[str, Any] | None = None
        self.settled: int | None = None
        self.duration_ms = 0.0

    def to_record(self) -> CallRecord:
        return CallRecord(
            index=self.index,
            tool=self.tool,
            args=jsonable(self.args),
            outcome=jsonable(self.outcome),
            settled=self.settled,
            duration_ms=self.duration_ms,
        )


class _Recorded(Exception):
    """A tool call's recorded failure (or a rejection), given back to the program as its ToolError."""


def intercepted(binding: ToolBinding) -> ToolBinding:
    """``binding`` with its calls going through the current run's :class:`Replay` (if any)."""
    handler = binding.handler
    is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        type(handler).__dict__.get("__call__")
    )

    async def in_thread(args: Any) -> Any:
        return await anyio.to_thread.run_sync(handler, args)

    run: Callable[[Any], Awaitable[Any]] = handler if is_async else in_thread
    name, needs_approval = binding.name, binding.requires_approval

    async def through_replay(args: Any) -> Any:
        replay = current_replay.get()
        if replay is None:
            # Outside a run that can pause (a skill's example run, or a context used
            # directly): a call that needs a person's decision is refused, never made.
            if binding.requires_approval and binding.needs_approval(args):
                raise ApprovalUnavailable(
                    f"{binding.sandbox_name} needs a person's approval, which this execution cannot "
                    "ask for (it is not a run that can pause, like a skill's example run)"
                )
            return await run(args)
        # The common case inline (this runs for every call): a call past the log that needs
        # no decision runs now, its outcome recorded; anything else goes through ``call``.
        index = CALL_ID.get()
        slow = replay.log_only or not replay.seeded or index in replay.logged
        if slow or (needs_approval and binding.needs_approval(args)):
            return await replay.call(binding, args, run)
        replay.made += 1
        record = NewCall(index, name, args)
        replay.new.append(record)
        replay.live += 1
        started = _perf_counter()
        try:
            result = await run(args)
        except BaseException as e:
            replay.live -= 1
            if not isinstance(e, anyio.get_cancelled_exc_class()):
                replay._settle(record, {"error": str(e)}, (_perf_counter() - started) * 1000)
            replay._notify()
            raise
        replay.live -= 1
        replay.settles += 1
        record.outcome = {"result": result}
        record.settled = replay.settles
        record.duration_ms = (_perf_counter() - started) * 1000
        if replay._changed is not None:
            replay._notify()
        return result

    through_replay.wants_call_id = True  # type: ignore[attr-defined]  # see engine.CALL_ID
    return dataclasses.replace(binding, handler=through_replay)
