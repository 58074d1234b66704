"""Pause and resume by deterministic replay.

A run whose tools may need approval goes through :class:`Approvals`. Every tool is wrapped
(:func:`intercepted`): while a run is current (a context variable), each call goes through
its :class:`Replay`, which

* knows each call by its ``callId``, the program's numbering of its calls;
* answers a call the run's log already holds from the log (after the calls that settled
  before it in the recorded run, so the program sees the same order), checking that the
  program made the same call (tool and arguments): a program that does anything else fails
  with ``ReplayDivergenceError``, never silently;
* applies the decision taken on a call that was waiting (run it, reject it, or answer it
  with the given value);
* runs a new call live and records its outcome; a new call that needs approval waits, and
  once nothing else is running (the calls of one step have all arrived) the execution stops:
  the run is saved in the :class:`~.store.ExecutionStore` and a signed token returned.

The program runs with ``Math.random`` seeded by the run and ``Date.now()`` / ``new Date()``
giving, on replay, the values they gave before (recorded through the report channel), so
a replay takes the same path. Timers keep real time, and their firings are logged in the
settle order of the calls: on replay an answer from the log that came after a timer fired waits
for that timer to fire again, so a race between a timer and a call (``Promise.race`` with a
timeout) ends the same way. A timer that fires out of its logged place (before what preceded
it) fails the run with ``ReplayDivergenceError``.
"""

from __future__ import annotations

import contextvars
import dataclasses
import inspect
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio
from pydantic_core import to_jsonable_python

from ..drivers import Program
from ..engine import CALL_ID, RUN_LOGS
from ..errors import CodemodeError, TypeScriptSyntaxError
from ..events import Event, EventCallback, emit, finished_value, now_ms, started_value
from ..results import ExecutionError, ExecutionResult, Paused, PendingCall
from ..tools import ToolBinding
from .decisions import Approved, Decision, Overridden, Rejected, rejection_message
from .models import CallRecord, RunRecord, SkillPlan
from .store import ExecutionStore
from .tokens import InvalidResumeToken, make_token, read_token

if TYPE_CHECKING:
    from ..code_mode import CodeMode
    from ..skills.sandbox import SkillRuntime
    from ..skills.store import SkillStore
    from ..skills.trust import TrustStrategy

MAX_CLOCK_VALUES = 100_000
"""``Date`` readings recorded per run; later ones are not replayed."""
DEFAULT_TOKEN_TTL = 24 * 3600.0
_perf_counter = time.perf_counter
HIJACKED = (
    "__codemode_channel is reserved: the program declares it, so the run could not be made "
    "deterministic and cannot pause or resume (rename that declaration)"
)
TIMER_SLACK_MS = 2000
"""How long past its logged time a replay waits for a timer before it calls the run diverged."""

_current: contextvars.ContextVar[Replay | None] = contextvars.ContextVar("codemode_replay", default=None)


class ApprovalUnavailable(CodemodeError, RuntimeError):
    """A call that needs approval, in an execution that cannot pause: the program gets a
    ``ToolError`` with this message."""


class ResumeError(CodemodeError, ValueError):
    """A resume that cannot go on: the run is unknown, already resumed, or the decisions do
    not match its pending calls."""


# -- the program, made deterministic ------------------------------------------------------

DETERMINISTIC_JS = (
    "(function (channel) { return function deterministic(seed, clock, max) { channel('s');"
    " let a = seed >>> 0, b = Math.floor(seed / 4294967296) ^ 0x9e3779b9, c = 0x243f6a88, d = 0xb7e15162;"
    " const next = () => { a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0; let t = (a + b) | 0;"
    " a = b ^ (b >>> 9); b = (c + (c << 3)) | 0; c = (c << 21) | (c >>> 11); d = (d + 1) | 0;"
    " t = (t + d) | 0; c = (c + t) | 0; return (t >>> 0) / 4294967296; };"
    " for (let k = 0; k < 15; k++) next();"
    " Math.random = function random() { return next(); };"
    " const RealDate = Date, realNow = Date.now; let i = 0;"
    " const now = () => { if (i < clock.length) return clock[i++]; i++; const t = realNow();"
    " if (i <= max) channel('d ' + t); return t; };"
    " const CodemodeDate = function Date(...args) {"
    " if (new.target === undefined) return new RealDate(now()).toString();"
    " return Reflect.construct(RealDate, args.length ? args : [now()], new.target); };"
    " CodemodeDate.prototype = RealDate.prototype; CodemodeDate.now = function now_() { return now(); };"
    " CodemodeDate.parse = RealDate.parse; CodemodeDate.UTC = RealDate.UTC; globalThis.Date = CodemodeDate;"
    " const realSetTimeout = setTimeout; let timers = 0;"
    " globalThis.setTimeout = function setTimeout(callback, ms, ...args) {"
    " if (typeof callback !== 'function') return realSetTimeout(callback, ms, ...args);"
    " const k = timers++; return realSetTimeout(() => { channel('t ' + k); callback(...args); }, ms); };"
    " }; })"
)
"""What makes a run's program deterministic, as a host library (compiled once per process):
called with the report channel, it returns ``deterministic(seed, clock, max)``, which line 1 of
the program calls: ``Math.random`` seeded, ``Date`` replaying ``clock`` first (readings past it
reported as ``d <ms>``), timers reported as they fire (``t <k>``)."""


@dataclasses.dataclass(frozen=True)
class _Shifted(Program):
    """A program behind one line of host code: positions map one line up, then as before."""

    inner: Program | None = None

    def original_position(self, line: int, column: int) -> tuple[int, int]:
        assert self.inner is not None
        return self.inner.original_position(max(1, line - 1), column if line > 1 else 1)


def deterministic_prelude(seed: int, clock: Sequence[float], function: str = "__codemode_channel") -> str:
    """The JavaScript, on line 1, that calls ``function`` (:data:`DETERMINISTIC_JS`'s) with the run's
    seed and clock."""
    return f"{function}({seed}, {json.dumps(list(clock))}, {MAX_CLOCK_VALUES});"


def deterministic(program: Program, seed: int, clock: Sequence[float]) -> Program:
    """``program`` with ``Math.random`` seeded and ``Date`` replaying ``clock`` first (run it
    with ``library=DETERMINISTIC_JS``)."""
    prelude = deterministic_prelude(seed, clock) + " __codemode_channel = undefined;"
    return _Shifted(prelude + "\n" + program.javascript, program.source, None, program)


# -- one run ------------------------------------------------------------------------------


def _json(value: Any) -> Any:
    return to_jsonable_python(value, fallback=str)


class _Stop(Exception):
    """Internal: the run stops (paused or diverged); the execution is cancelled."""


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
        self.new: list[_Call] = []  # calls past the log, made by this execution
        self.from_log: set[int] = set()  # calls answered from the log
        self.waiting: list[_Call] = []  # new calls that wait for a decision
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
            sent = _json(args)
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
                f"external_{binding.name}({json.dumps(_json(args))}), is not in the run's log"
            )
        # Kept as they are and made JSON when the run is saved (most runs never are).
        record = _Call(index, binding.name, args)
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
            self._settle(record, {"result": _json(decision.value)}, 0.0)
            return decision.value
        record.approval = "approved"
        return await self._live(record, args, run)

    async def _live(self, record: CallRecord | _Call, args: Any, run: Callable[[Any], Awaitable[Any]]) -> Any:
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

    def _settle(self, record: CallRecord | _Call, outcome: dict[str, Any], duration_ms: float) -> None:
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


class _Call:
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
            args=_json(self.args),
            outcome=_json(self.outcome),
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
        replay = _current.get()
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
        record = _Call(index, name, args)
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


# -- the code mode's side -----------------------------------------------------------------


@dataclasses.dataclass
class Approvals:
    """How a code mode pauses and resumes: its store, its signing key, its tokens' lifetime."""

    store: ExecutionStore
    key: bytes
    token_ttl: float = DEFAULT_TOKEN_TTL
    record_all: bool = False
    """Keep every finished run in the store (the execution log), not only paused ones."""
    skill_store: tuple[SkillStore, TrustStrategy | None] | None = None
    """Where the runs of skills (and the decisions on them) are recorded when a run started by
    a skills runtime resumes: the store last given to a ``SkillRuntime`` of this code mode."""

    async def execute(
        self,
        cm: CodeMode,
        code: str,
        *,
        tool_call_id: str | None,
        on_event: EventCallback | None,
        limit_overrides: Mapping[str, Any],
        skills: tuple[SkillPlan, SkillRuntime] | None = None,
    ) -> ExecutionResult:
        """Run ``code`` as a new run that may pause; ``skills``: the plan of the skills the
        program can call, and the runtime that made it (a run started by a skills runtime)."""
        record = RunRecord(
            run_id=str(uuid.uuid4()),
            code=code,
            tool_call_id=tool_call_id,
            limits=dict(limit_overrides),  # the model's field is a dict (pydantic copies it anyway)
            seed=secrets.randbits(53),
            skills=skills[0] if skills is not None else None,
        )
        if record.skills is not None and record.skills.asked:
            return await self._ask(record, on_event)
        return await self._run(cm, record, {}, on_event, runtime=skills[1] if skills is not None else None)

    async def resume(
        self,
        cm: CodeMode,
        token: str,
        decisions: Mapping[int | str, Decision],
        *,
        on_event: EventCallback | None,
    ) -> ExecutionResult:
        """Continue the paused run ``token`` names, with a decision for each pending call."""
        claims = read_token(self.key, token)
        record = await self.store.claim(claims.run_id, claims.version)
        if record is None:
            raise ResumeError("this run is unknown here, or was already resumed with this token")
        try:
            chosen = _decisions(record, decisions)
        except ResumeError:
            await self.store.release(claims.run_id, claims.version)
            raise
        await self._decide_skills(record, chosen)
        return await self._run(cm, record, chosen, on_event)

    async def replay(
        self, cm: CodeMode, run_id: str, *, on_event: EventCallback | None = None
    ) -> ExecutionResult:
        """Run a finished run's program again with every call answered from its log (no tool
        runs, nothing is saved): the same program and log give the same result, or a
        ``ReplayDivergenceError`` says where they part."""
        record = await self.store.load(run_id)
        if record is None:
            raise ResumeError(f"no run {run_id!r} in this store")
        if record.status != "finished":
            raise ResumeError(f"run {run_id!r} is {record.status}: only a finished run is replayed")
        return await self._run(cm, record, {}, on_event, replaying=True)

    async def _run(
        self,
        cm: CodeMode,
        record: RunRecord,
        decisions: Mapping[int, Decision],
        on_event: EventCallback | None,
        *,
        replaying: bool = False,
        runtime: SkillRuntime | None = None,
    ) -> ExecutionResult:
        from ..code_mode import _syntax_failure, compile_typescript

        started = time.perf_counter()
        replay = Replay(record, decisions, log_only=replaying)
        events: list[dict[str, Any]] = [e for e in record.events if e["name"] != "code_mode:execution_paused"]
        # The replayed part of the execution repeats the recorded events (an answer from the
        # log may come a little earlier among them than it did): each is matched to one
        # recorded event, looked for near the first not yet matched, and is not passed on.
        unmatched: list[dict[str, Any] | None] = list(events)
        head = 0
        logs: list[str] = []  # the execution's console lines (it runs from the start: all of them)

        async def watch(event: Event) -> None:
            nonlocal head
            if event.name == "code_mode:execution_finished" and (replay.paused or replay.diverged):
                return  # the run did not finish: it paused (or diverged), said below
            if unmatched:
                while head < len(unmatched) and unmatched[head] is None:
                    head += 1
                for at in range(head, min(head + _MATCH_WINDOW, len(unmatched))):
                    candidate = unmatched[at]
                    if candidate is not None and _same(candidate, event):
                        unmatched[at] = None
                        return
            elif replay.logged and _replayed_call(event, replay):
                return  # the execution before the pause was not watched: its calls are known
            events.append({"name": event.name, "value": event.value})
            if on_event is not None:
                await emit(on_event, event)

        try:
            program = compile_typescript(record.code)
        except TypeScriptSyntaxError as e:
            return await _syntax_failure(e, started, record.tool_call_id, on_event, len(record.code))
        result: ExecutionResult | None = None
        token = _current.set(replay)
        logs_token = RUN_LOGS.set(logs)
        try:
            with anyio.CancelScope() as scope:
                replay.scope = scope
                # events cost a few microseconds a call: only for a watched execution
                watcher = watch if on_event is not None else None
                if record.skills is not None:
                    runtime = runtime if runtime is not None else self._skill_runtime(cm, record.skills)
                    result = await runtime.run_program(
                        record.code,
                        frozenset(record.skills.denied),
                        tool_call_id=record.tool_call_id,
                        on_event=watcher,
                        prelude=deterministic_prelude(
                            record.seed, record.clock, "__codemode_channel.deterministic"
                        ),
                        on_clock=replay.on_report,
                        interrupted=lambda: replay.paused or replay.diverged is not None,
                        limit_overrides=record.limits,
                    )
                else:
                    result = await cm.execute_program(
                        deterministic(program, record.seed, record.clock),
                        tool_call_id=record.tool_call_id,
                        on_event=watcher,
                        on_report=replay.on_report,
                        library=DETERMINISTIC_JS,
                        **record.limits,
                    )
        finally:
            RUN_LOGS.reset(logs_token)
            _current.reset(token)
        duration_ms = (time.perf_counter() - started) * 1000
        if replay.diverged is not None:
            error = ExecutionError(kind="runtime", name="ReplayDivergenceError", message=replay.diverged)
            result = ExecutionResult(
                success=False, error=error, logs=logs, duration_ms=duration_ms, tool_calls=replay.made
            )
            if on_event is not None:
                dump = error.model_dump(exclude_none=True)
                value = finished_value(False, duration_ms, error=dump, log_count=len(logs))
                await emit(on_event, Event("code_mode:execution_finished", _stamped(value, record)))
        elif replay.paused:
            record.calls = replay.calls()
            record.timers = replay.timers()
            pending = [_pending(call) for call in replay.waiting]
            paused = await self._pause(record, pending, events, on_event)
            return ExecutionResult(
                success=False, logs=logs, duration_ms=duration_ms, tool_calls=replay.made, paused=paused
            )
        assert result is not None
        if replaying:
            return result
        if self.record_all or record.version > 1 or record.status != "running":
            record.status = "finished"
            record.events = events
            record.calls = replay.calls()
            record.timers = replay.timers()
            record.result = result.to_tool_output()
            await self.store.save(record)
        return result

    async def _pause(
        self,
        record: RunRecord,
        pending: list[PendingCall],
        events: list[dict[str, Any]],
        on_event: EventCallback | None,
    ) -> Paused:
        """Save ``record`` as paused on ``pending`` and make its token."""
        record.version += 1
        record.status = "paused"
        record.pending = [call.call_id for call in pending]
        value = _stamped({"pending": [call.model_dump() for call in pending]}, record)
        paused_event = Event("code_mode:execution_paused", value)
        record.events = [*events, {"name": paused_event.name, "value": paused_event.value}]
        await self.store.save(record)
        if on_event is not None:
            await emit(on_event, paused_event)
        text, expires_at = make_token(self.key, record.run_id, record.version, self.token_ttl)
        return Paused(
            token=text, run_id=record.run_id, pending=pending, expires_at=expires_at, events=record.events
        )

    async def _ask(self, record: RunRecord, on_event: EventCallback | None) -> ExecutionResult:
        """Pause a new run before it starts, on the untrusted skills its program would call
        (``approve="ask"``): one pending call per skill, with negative call ids."""
        assert record.skills is not None
        started = time.perf_counter()
        saved = {skill["name"]: skill for skill in record.skills.skills}
        pending = [
            PendingCall(
                call_id=-(at + 1),
                tool=f"skill_{name}",
                function=f"skill_{name}",
                kind="skill",
                args={key: saved[name].get(key) for key in ("name", "version", "description", "code")},
            )
            for at, name in enumerate(record.skills.asked)
        ]
        first = Event("code_mode:execution_started", _stamped(started_value(len(record.code)), record))
        if on_event is not None:
            await emit(on_event, first)
        paused = await self._pause(record, pending, [{"name": first.name, "value": first.value}], on_event)
        duration_ms = (time.perf_counter() - started) * 1000
        return ExecutionResult(success=False, duration_ms=duration_ms, paused=paused)

    async def _decide_skills(self, record: RunRecord, chosen: dict[int, Decision]) -> None:
        """Apply the decisions on a run's asked skills (negative call ids, taken out of
        ``chosen``): approved ones run, rejected ones are refused; each decision is recorded in
        the skill's stats as a person's evidence."""
        plan = record.skills
        gates = sorted(index for index in chosen if index < 0)
        if plan is None or not gates:
            return
        names = list(plan.asked)
        versions = {skill["name"]: skill.get("version") for skill in plan.skills}
        for index in gates:
            decision = chosen.pop(index)
            name = names[-index - 1]
            approved = isinstance(decision, Approved)
            plan.asked.remove(name)
            if not approved:
                plan.denied = sorted({*plan.denied, name})
            if self.skill_store is not None:
                store, _ = self.skill_store
                try:
                    await store.record_decision(name, approved, version=versions.get(name))
                except LookupError:
                    pass  # the skill (or this version) was deleted meanwhile: nothing to count
        record.pending = [index for index in record.pending if index >= 0]

    def _skill_runtime(self, cm: CodeMode, plan: SkillPlan) -> SkillRuntime:
        """The skills runtime a resumed run's program runs with: its skills as they were."""
        from ..skills.models import Skill
        from ..skills.sandbox import SkillRuntime

        store, trust = self.skill_store if self.skill_store is not None else (None, None)
        skills = [Skill.model_validate(skill) for skill in plan.skills]
        return SkillRuntime(cm, skills, store=store, trust=trust, max_events=plan.max_events)


def _replayed_call(event: Event, replay: Replay) -> bool:
    """Whether ``event`` repeats what the unwatched execution before the pause did: its start,
    its calls, and the answers the log gives back (a decided call's answer is new)."""
    if event.name == "code_mode:execution_started":
        return True
    if not event.name.startswith("code_mode:external_"):
        return False
    index = event.value.get("callId", 0)
    return index in replay.logged if event.name == "code_mode:external_call" else index in replay.from_log


def _stamped(value: dict[str, Any], record: RunRecord) -> dict[str, Any]:
    return {**value, "toolCallId": record.tool_call_id, "timestamp": now_ms()}


_VOLATILE = frozenset({"timestamp", "duration_ms", "callId", "toolCallId"})
_MATCH_WINDOW = 256
"""How far past the first unmatched recorded event a replayed one is looked for."""


def _same(recorded: dict[str, Any], event: Event) -> bool:
    """Whether ``event`` repeats ``recorded`` (the same event of the replayed part of a run)."""
    if recorded["name"] != event.name:
        return False
    value = recorded["value"]
    keys = (value.keys() | event.value.keys()) - _VOLATILE
    return all(value.get(key) == event.value.get(key) for key in keys)


def _pending(call: _Call) -> PendingCall:
    return PendingCall(
        call_id=call.index, tool=call.tool, function=f"external_{call.tool}", args=_json(call.args)
    )


def _decisions(record: RunRecord, decisions: Mapping[int | str, Decision]) -> dict[int, Decision]:
    chosen: dict[int, Decision] = {}
    for key, decision in decisions.items():
        try:
            index = int(key)
        except (TypeError, ValueError):
            raise ResumeError(f"a decision's key must be a pending call's id, not {key!r}") from None
        if not isinstance(decision, Approved | Rejected | Overridden):
            raise ResumeError(f"the decision on call {index} is not approve(), reject() or override()")
        if index < 0 and isinstance(decision, Overridden):
            raise ResumeError(f"call {index} asks to run a skill: the decision is approve() or reject()")
        chosen[index] = decision
    pending = set(record.pending)
    if set(chosen) != pending:
        missing = sorted(pending - set(chosen))
        extra = sorted(set(chosen) - pending)
        parts = [f"no decision on call {', '.join(map(str, missing))}"] if missing else []
        parts += [f"call {', '.join(map(str, extra))} is not waiting"] if extra else []
        raise ResumeError(f"the decisions do not match the pending calls: {'; '.join(parts)}")
    return chosen


__all__ = ["Approvals", "InvalidResumeToken", "Replay", "ResumeError", "deterministic", "intercepted"]
