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

This module holds the code mode's side (:class:`Approvals`: running, pausing and resuming a
run); the deterministic prelude is :mod:`.prelude`, the calls through a :class:`Replay`
:mod:`.replayed_calls`, and the events of a replayed execution :mod:`.replayed_events`.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ..drivers import Program
from ..engine import RUN_LOGS
from ..errors import CodemodeError, TypeScriptSyntaxError
from ..events import Event, EventCallback, emit, finished_value, now_ms, started_value
from ..results import ExecutionError, ExecutionResult, Paused, PendingCall
from .decisions import Approved, Decision, Overridden, Rejected
from .models import RunRecord, SkillPlan
from .prelude import DETERMINISTIC_JS, MAX_CLOCK_VALUES, deterministic, deterministic_prelude
from .replayed_calls import (
    HIJACKED,
    TIMER_SLACK_MS,
    ApprovalUnavailable,
    NewCall,
    Replay,
    current_replay,
    intercepted,
    jsonable,
)
from .replayed_events import ReplayedEvents
from .store import ExecutionStore
from .tokens import InvalidResumeToken, make_token, read_token

if TYPE_CHECKING:
    from ..code_mode import CodeMode
    from ..skills.sandbox import SkillRuntime
    from ..skills.store import SkillStore
    from ..skills.trust import TrustStrategy

DEFAULT_TOKEN_TTL = 24 * 3600.0


class ResumeError(CodemodeError, ValueError):
    """A resume that cannot go on: the run is unknown, already resumed, or the decisions do
    not match its pending calls."""


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
        """Execute ``record``'s program with ``decisions`` applied: its result, paused (saved
        with its token), or finished (saved when the run is kept); ``replaying``: a finished
        run, every call answered from its log, nothing saved."""
        from ..code_mode import _syntax_failure, compile_typescript

        started = time.perf_counter()
        replay = Replay(record, decisions, log_only=replaying)
        events = ReplayedEvents(record, replay, on_event)
        logs: list[str] = []  # the execution's console lines (it runs from the start: all of them)
        try:
            program = compile_typescript(record.code)
        except TypeScriptSyntaxError as e:
            return await _syntax_failure(e, started, record.tool_call_id, on_event, len(record.code))
        # events cost a few microseconds a call: only for a watched execution
        watcher = events.watch if on_event is not None else None
        result = await self._execute(cm, record, program, replay, logs, watcher, runtime)
        duration_ms = (time.perf_counter() - started) * 1000
        if replay.diverged is not None:
            result = await _diverged(record, replay.diverged, replay.made, logs, duration_ms, on_event)
        elif replay.paused:
            record.calls = replay.calls()
            record.timers = replay.timers()
            pending = [_pending(call) for call in replay.waiting]
            paused = await self._pause(record, pending, events.events, on_event)
            return ExecutionResult(
                success=False, logs=logs, duration_ms=duration_ms, tool_calls=replay.made, paused=paused
            )
        assert result is not None
        if replaying:
            return result
        if self.record_all or record.version > 1 or record.status != "running":
            record.status = "finished"
            record.events = events.events
            record.calls = replay.calls()
            record.timers = replay.timers()
            record.result = result.to_tool_output()
            await self.store.save(record)
        return result

    async def _execute(
        self,
        cm: CodeMode,
        record: RunRecord,
        program: Program,
        replay: Replay,
        logs: list[str],
        watcher: EventCallback | None,
        runtime: SkillRuntime | None,
    ) -> ExecutionResult | None:
        """Run ``record``'s program (made deterministic) with ``replay`` current and its console
        lines going to ``logs``; ``None`` when the replay stopped it (paused or diverged)."""
        result: ExecutionResult | None = None
        token = current_replay.set(replay)
        logs_token = RUN_LOGS.set(logs)
        try:
            with anyio.CancelScope() as scope:
                replay.scope = scope
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
            current_replay.reset(token)
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


async def _diverged(
    record: RunRecord,
    message: str,
    tool_calls: int,
    logs: list[str],
    duration_ms: float,
    on_event: EventCallback | None,
) -> ExecutionResult:
    """The result of an execution whose program took another path than the run's log: a
    ``ReplayDivergenceError`` saying where (and its ``execution_finished`` event)."""
    error = ExecutionError(kind="runtime", name="ReplayDivergenceError", message=message)
    result = ExecutionResult(
        success=False, error=error, logs=logs, duration_ms=duration_ms, tool_calls=tool_calls
    )
    if on_event is not None:
        dump = error.model_dump(exclude_none=True)
        value = finished_value(False, duration_ms, error=dump, log_count=len(logs))
        await emit(on_event, Event("code_mode:execution_finished", _stamped(value, record)))
    return result


def _stamped(value: dict[str, Any], record: RunRecord) -> dict[str, Any]:
    return {**value, "toolCallId": record.tool_call_id, "timestamp": now_ms()}


def _pending(call: NewCall) -> PendingCall:
    return PendingCall(
        call_id=call.index, tool=call.tool, function=f"external_{call.tool}", args=jsonable(call.args)
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


__all__ = [
    "DEFAULT_TOKEN_TTL",
    "DETERMINISTIC_JS",
    "HIJACKED",
    "MAX_CLOCK_VALUES",
    "TIMER_SLACK_MS",
    "ApprovalUnavailable",
    "Approvals",
    "InvalidResumeToken",
    "Replay",
    "ResumeError",
    "deterministic",
    "deterministic_prelude",
    "intercepted",
]
