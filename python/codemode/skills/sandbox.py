"""Skills inside the sandbox: ``skill_<name>(input)`` as plain in-sandbox async functions.

A :class:`SkillRuntime` runs a model's program with a set of skills callable in it, with no
host round trip per call. The skills runtime (``runtime.js`` beside this module) is a host
library (``IsolateContext.execute(library=...)``, compiled once per process): the engine calls
it with the execution's report channel and hands what it returns to the program as
``__codemode_channel``. The program as run is::

    const {skill_a, ...} = __codemode_channel([__cm_b0_T, ...], ...); __codemode_channel = undefined; <line 1>
    <the model's other lines, unchanged>
    <one body function per skill: async function __cm_b<i>_T(input) {<the skill's code>}>

Line 1 runs first: it gets one ``skill_<name>`` wrapper per skill, closures over the channel,
and clears the parameter, so the model's code never reaches the channel. Each wrapper
validates its input against the skill's ``input_schema`` (with the engine's JSON Schema
validator, the one tools are checked with: ``library_checks``, no host round trip on QuickJS),
fills in the ``default`` of each missing top-level property (as tools do), awaits the body
(the skill's code, unchanged, as the body of its own async function, named with a token ``T``
drawn per execution so the model's code cannot replace it), validates the output against
``output_schema`` (the same validator) and reports the call and its outcome as they
happen. The host turns the reports (read by ``reports.py``) into ``code_mode:skill_call`` /
``skill_result`` / ``skill_error`` events, live and in order with the execution's other events,
and records the runs in the store once the execution is over (``store.record_runs``: one run
per skill the execution called, failed if any of its calls failed, which updates the skill's
stats and trust: one execution is one piece of evidence, however many calls it makes). A call
still running when the execution is cut off by its timeout, its memory limit or cancellation
counts as a failed run.

Nothing the program writes can pass for a report: the channel is outside the console, and the
model's code cannot reach it. A program that declares ``__codemode_channel`` itself (the only
way to take it first) fails before it runs.

Errors keep pointing at the source the model can act on: a position in the model's code is
reported as is (line 1's column corrected); a position inside a skill's code is reported as that
skill's line and column (``line``/``column``/``frame`` point into the skill, the message ends with
``(in skill <name> line N, column C)``, the stack names ``skill:<name>:N:C``).
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal, cast

import anyio

from .. import _core
from ..approvals.models import SkillPlan
from ..approvals.replay import DETERMINISTIC_JS
from ..code_mode import unfence
from ..drivers import Program
from ..events import Event, EventCallback, emit, now_ms
from ..execute_tool import ModelTool, execute_typescript_tool
from ..results import PROGRAM_FILE, ExecutionError, ExecutionResult, Frame, format_stack
from ..tools import _top_level_defaults, schema_text
from .bodies import body_problem, code_compiles, load_closure, skill_references, strip_body
from .models import Skill, SkillNotFoundError
from .reports import SKILL_CALL, SKILL_ERROR, SKILL_RESULT, Tally
from .trust import TrustStrategy

if TYPE_CHECKING:
    from ..code_mode import CodeMode
    from ..tracing import SkillSpans
    from .store import SkillStore

__all__ = [
    "MAX_SKILL_EVENTS",
    "SKILL_CALL",
    "SKILL_ERROR",
    "SKILL_RESULT",
    "Approve",
    "SkillRuntime",
    "body_problem",
    "code_compiles",
    "load_closure",
    "skill_references",
    "strip_body",
]

logger = logging.getLogger("codemode.skills")

_CUT_OFF = frozenset({"timeout", "memory", "cancelled"})
_NOT_STARTED = frozenset({"syntax", "timeout", "memory", "cancelled"})  # may end before line 1 ran
_DENIED = "not approved to run"
_MISSING = "there is no such skill"

MAX_SKILL_EVENTS = 1000
"""At most this many skill calls per execution are reported as events (all are recorded)."""

Approve = Callable[[Skill], bool | Awaitable[bool]] | Literal["ask"]
"""Consulted before an untrusted skill runs: return (or resolve to) True to let it run. Or
``"ask"``: the execution pauses before it starts, with the skill as a pending call for a person
to approve or reject (the code mode must be able to pause: see ``create_code_mode``)."""


@functools.cache
def _library() -> str:
    """The skills runtime (``runtime.js`` beside this module, with the replay prelude in place):
    a host library (see ``IsolateContext.execute(library=...)``), compiled once per process.
    The engine calls it with the report channel; line 1 calls what it returns with the body
    functions, ``[name, why refused or null]`` per skill, their schemas, whether to report
    details and how many calls may carry them, and gets the ``skill_*`` functions. The reports
    it makes are described in ``runtime.js`` (and read by :class:`Tally`).

    Its comment lines and indentation are left out (V8 and Workers get the text with every
    execution), unless a template literal could span lines; the lines stay lines."""
    text = resources.files(__package__).joinpath("runtime.js").read_text(encoding="utf-8")
    code = [line.strip() for line in text.splitlines() if not line.lstrip().startswith("//")]
    if not any("`" in line for line in code):
        text = "\n".join(line for line in code if line)
    return text.replace("__CM_DETERMINISTIC__", DETERMINISTIC_JS)


_BODY_JS = "async function __cm_b{i}_@@TOKEN@@(input) {{\n"
_TOKEN = "@@TOKEN@@"
_CHANNEL = "__codemode_channel"
_HIJACKED = (
    "__codemode_channel is reserved: the program declares it, so the skills cannot run "
    "(rename that declaration)"
)


@dataclass(frozen=True)
class _Layout:
    """The program as run: its text and where each part's lines are."""

    text: str
    skills: tuple[str, ...]  # the runtime's skill indexes: the names its reports refer to
    checks: tuple[str, ...]  # the schemas the runtime checks with (``library_checks``)
    prefix: int  # the runtime's characters on line 1, before the model's code
    model_lines: int
    model_strip: Any  # the model code's StripResult when positions were not preserved
    bodies: tuple[_Body, ...]

    def locate(self, line: int, column: int) -> tuple[str | None, int, int] | None:
        """``(None, line, column)`` in the model's code, ``(name, line, column)`` in a skill's
        code, ``None`` in the runtime (positions in the TypeScript each part was written in)."""
        if line <= self.model_lines:
            if line == 1:
                if column <= self.prefix:
                    return None
                column -= self.prefix
            if self.model_strip is not None:
                line, column = self.model_strip.original_position(line, column)
            return None, line, column
        for body in self.bodies:
            if body.first <= line <= body.last:
                line, column = line - body.first + 1, column
                if body.strip is not None:
                    line, column = body.strip.original_position(line, column)
                return body.name, line, column
        return None


@dataclass(frozen=True)
class _Body:
    """Where a skill's code is in the program as run (lines of the JavaScript)."""

    first: int
    last: int
    name: str
    strip: Any = None  # its StripResult when positions were not preserved


@dataclass(frozen=True)
class _Parts:
    """What every program with these skills (and these refusals) is built of; only the token
    (``_TOKEN`` in the text) changes from one execution to the next."""

    names: tuple[str, ...]  # the runtime's skill indexes
    references: str  # the body functions as the runtime gets them (with the token placeholder)
    data: str  # the entries and schemas the runtime gets, JSON
    checks: tuple[str, ...]  # the skills' input and output schemas, JSON text
    bodies_js: str  # the body functions, after the model's code
    bodies: tuple[_Body, ...]  # their lines, counted from the first line after the model's code


@dataclass(frozen=True)
class _SkillBinding:
    """What :func:`codemode.declarations.render_declarations` reads of a tool, for a skill."""

    name: str
    description: str
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any] | None
    sandbox_name: str


class SkillRuntime:
    """Runs programs in ``cm`` with ``skills`` callable as ``skill_<name>``.

    ``store`` records every run (with ``trust`` overriding the store's strategy); ``approve`` is
    consulted, once per execution, for every untrusted skill the program mentions (or reaches
    through its dependencies) — a skill not approved rejects with ``SkillError`` when called.
    With ``approve="ask"`` a person decides instead: the execution pauses before it starts,
    with one pending call (``kind="skill"``, a negative ``call_id``) per such skill, and
    :meth:`codemode.CodeMode.resume` runs it with the approved ones; each decision is counted
    in the skill's stats (``approvals`` / ``rejections``).

    In a code mode that can pause (``cm.approvals``), programs run as runs that may pause:
    a call (in the program or in a skill's code) that needs approval pauses the execution, and
    ``cm.resume`` replays it with the skills as they were when it started (their runs are
    recorded once, when it finishes). ``pausing=False`` runs programs outside that path: a call
    that needs approval is then refused (as in a skill's example run).
    ``declared`` names the skills declared in the prompt (default: all). ``listeners`` are
    called with each skill :meth:`include` makes callable while it is declared (a new skill or
    a new version), e.g. to rebuild a prompt.
    """

    def __init__(
        self,
        cm: CodeMode,
        skills: Mapping[str, Skill] | Iterable[Skill],
        *,
        store: SkillStore | None = None,
        trust: TrustStrategy | None = None,
        approve: Approve | None = None,
        declared: Sequence[str] | None = None,
        max_events: int = MAX_SKILL_EVENTS,
        pausing: bool = True,
    ) -> None:
        if approve == "ask" and not (pausing and cm.approvals is not None):
            raise ValueError(
                'approve="ask" pauses the execution for a person\'s decision: the code mode must be '
                "able to pause (create_code_mode(..., execution_store=MemoryExecutionStore()) or another "
                "store)"
            )
        self.cm = cm
        self.store = store
        self.trust = trust
        self.approve = approve
        self.pausing = pausing
        if cm.approvals is not None and store is not None:
            # A paused run resumes through the code mode alone: its skills' runs (and the
            # decisions on them) are recorded in the skill store last given to this code mode.
            cm.approvals.skill_store = (store, trust)
        self.max_events = max_events
        values = skills.values() if isinstance(skills, Mapping) else skills
        self.skills: dict[str, Skill] = {}
        self.declared: list[str] = []
        for skill in values:
            self._add(skill)
        self.declared = list(declared) if declared is not None else sorted(self.skills)
        self.listeners: list[Callable[[Skill], None]] = []
        self._built: dict[frozenset[str], _Parts] = {}

    # -- the skills

    def _add(self, skill: Skill) -> None:
        if code_compiles(skill):
            self.skills[skill.name] = skill
        else:
            logger.warning("skill %s version %s does not parse: left out", skill.name, skill.version)

    def include(self, skill: Skill, *, declare: bool = True) -> None:
        """Make ``skill`` callable (replacing an older version) from the next execution on."""
        self._add(skill)
        if declare and skill.name in self.skills and skill.name not in self.declared:
            self.declared.append(skill.name)
        self._built.clear()
        if skill.name in self.skills and skill.name in self.declared:
            for listener in list(self.listeners):
                listener(self.skills[skill.name])

    @property
    def declarations(self) -> str:
        """TypeScript declarations of the declared skills (``skill_<name>``), with the same
        generator as the tools; type names are ``Skill<Name>Input`` / ``Skill<Name>Output``."""
        from ..declarations import render_declarations

        bindings = [
            _SkillBinding(
                f"skill_{name}",
                self.skills[name].description,
                self.skills[name].input_schema,
                self.skills[name].output_schema,
                f"skill_{name}",
            )
            for name in self.declared
            if name in self.skills
        ]
        return render_declarations(cast(Any, bindings)) if bindings else ""

    # -- building the program

    def _parts(self, denied: frozenset[str]) -> _Parts:
        """What the program is built of for these refusals (cached): the body functions (named
        with the token placeholder), and the runtime's data: ``[name, why refused or None]``
        per skill (the runtime's indexes) and their schemas."""
        cached = self._built.get(denied)
        if cached is not None:
            return cached
        names = sorted(self.skills)
        entries: list[list[Any]] = [[n, _DENIED if n in denied else None] for n in names]
        entries += [[n, _MISSING] for n in sorted(self._missing())]
        checks: list[str] = []
        shapes: list[list[Any]] = []  # [input check, output check or None, defaults or None]
        for n in names:
            skill = self.skills[n]
            shape: list[Any] = [len(checks), None, None]
            checks.append(schema_text(skill.input_schema))
            if skill.output_schema is not None:
                shape[1] = len(checks)
                checks.append(schema_text(skill.output_schema))
            defaults = _top_level_defaults(skill.input_schema)
            if defaults:
                shape[2] = [list(pair) for pair in defaults]
            shapes.append(shape)
        schemas = json.dumps(shapes)
        parts: list[str] = []
        line = 1
        bodies: list[_Body] = []
        for index, name in enumerate(names):
            if name in denied:
                continue
            stripped = strip_body(self.skills[name].code)
            assert stripped is not None
            code, strip = stripped
            body_lines = code.count("\n") + 1
            bodies.append(_Body(line + 1, line + body_lines, name, strip))
            parts.append(_BODY_JS.format(i=index) + code + "\n}\n")
            line += body_lines + 2
        references = ",".join(
            "null" if name in denied else f"__cm_b{index}_{_TOKEN}" for index, name in enumerate(names)
        )
        data = f"{json.dumps(entries)}, {schemas}"
        built = _Parts(
            tuple(n for n, _ in entries),
            f"[{references}]",
            data,
            tuple(checks),
            "".join(parts),
            tuple(bodies),
        )
        self._built[denied] = built
        return built

    def _missing(self) -> set[str]:
        referenced: set[str] = set()
        for skill in self.skills.values():
            referenced |= skill_references(skill.code) | set(skill.depends_on)
        return referenced - set(self.skills)

    def layout(
        self,
        code: str,
        *,
        detail: bool = False,
        denied: frozenset[str] = frozenset(),
        token: str = "0",
        prelude: str = "",
    ) -> _Layout:
        """The JavaScript program that runs ``code`` with the skills (see the module doc).

        ``detail`` makes the runtime report inputs, results and times (for the events);
        ``token`` names the body functions. Each part is stripped of its types on its own (the
        skills' once, cached), so the runtime's JavaScript is never parsed by the TypeScript
        stripper. Raises ``codemode._core.TypeScriptSyntaxError`` when ``code`` does not
        parse."""
        parts = self._parts(denied)
        stripped = _core.strip_types(code)
        javascript = stripped.javascript
        prefix = prelude + (
            f"const {{{', '.join('skill_' + n for n in parts.names)}}} = {_CHANNEL}("
            f"{parts.references.replace(_TOKEN, token)}, {parts.data}, "
            f"{'true' if detail else 'false'}, {self.max_events}); {_CHANNEL} = undefined; "
        )
        model_lines = javascript.count("\n") + 1
        shifted = tuple(  # the bodies start on the line after the model's code
            _Body(body.first + model_lines, body.last + model_lines, body.name, body.strip)
            for body in parts.bodies
        )
        model_strip = None if stripped.positions_preserved else stripped
        text = prefix + javascript + "\n" + parts.bodies_js.replace(_TOKEN, token)
        return _Layout(text, parts.names, parts.checks, len(prefix), model_lines, model_strip, shifted)

    async def _decide(self, code: str) -> tuple[frozenset[str], frozenset[str]]:
        """The untrusted skills that may not run, and those waiting for a person's decision
        (``approve="ask"``), for a program with this ``code``."""
        if self.approve is None:
            return frozenset(), frozenset()
        reached: set[str] = set()
        pending = [name for name in skill_references(code) if name in self.skills]
        while pending:
            name = pending.pop()
            if name in reached:
                continue
            reached.add(name)
            pending.extend(n for n in skill_references(self.skills[name].code) if n in self.skills)
        denied: set[str] = set()
        asked: set[str] = set()
        for name, skill in self.skills.items():
            if skill.trust_level != "untrusted":
                continue
            if name not in reached:
                denied.add(name)  # not mentioned: not approved, so not callable indirectly either
                continue
            if self.approve == "ask":
                asked.add(name)
                continue
            answer = self.approve(skill)
            if inspect.isawaitable(answer):
                answer = await answer
            if not answer:
                denied.add(name)
        return frozenset(denied), frozenset(asked)

    # -- running

    async def execute(
        self, code: str, *, tool_call_id: str | None = None, on_event: EventCallback | None = None
    ) -> ExecutionResult:
        """Run a program (the model's TypeScript) with the skills; records every skill run,
        a run cut off by the timeout, the memory limit or cancellation as a failure.

        In a code mode that can pause (``cm.approvals``), the program runs as a run that may
        pause (a tool that needs approval, or ``approve="ask"``) and resume with the same
        skills (:meth:`codemode.CodeMode.resume`)."""
        code = unfence(code)
        if not self.skills or "skill_" not in code:
            # The skills are consts of the program's function: code that never names one
            # cannot reach any, so it runs as it is.
            return await self.cm.execute(code, tool_call_id=tool_call_id, on_event=on_event)
        if self.cm.tracer is not None:
            from ..tracing import traced_execution

            run = functools.partial(self._execute, code, tool_call_id, on_event)
            return await traced_execution(self.cm.tracer, "codemode.execution", tool_call_id, run)
        return await self._execute(code, tool_call_id, on_event)

    async def _execute(
        self, code: str, tool_call_id: str | None, on_event: EventCallback | None
    ) -> ExecutionResult:
        denied, asked = await self._decide(code)
        approvals = self.cm.approvals
        if approvals is not None and self.pausing:
            plan = SkillPlan(
                skills=[skill.model_dump(mode="json") for skill in self.skills.values()],
                denied=sorted(denied),
                asked=sorted(asked),
                max_events=self.max_events,
            )
            return await approvals.execute(
                self.cm,
                code,
                tool_call_id=tool_call_id,
                on_event=on_event,
                limit_overrides={},
                skills=(plan, self),
            )
        return await self.run_program(code, denied, tool_call_id=tool_call_id, on_event=on_event)

    async def run_program(
        self,
        code: str,
        denied: frozenset[str],
        *,
        tool_call_id: str | None = None,
        on_event: EventCallback | None = None,
        prelude: str = "",
        on_clock: Callable[[str], Event | None] | None = None,
        interrupted: Callable[[], bool] = lambda: False,
        limit_overrides: Mapping[str, Any] | None = None,
    ) -> ExecutionResult:
        """Run ``code`` with the skills, ``denied`` refused (see :meth:`execute`).

        For a run that may pause: ``prelude`` (JavaScript, on line 1 before the skills) calls
        ``__codemode_channel.deterministic``, whose ``d <ms>`` / ``t <k>`` reports go to
        ``on_clock``; an execution stopped while ``interrupted()`` (paused, or diverged from
        its log) records no skill run: its resume will."""
        spans: SkillSpans | None = None
        if self.cm.tracer is not None:
            from ..tracing import skill_spans

            spans = skill_spans(self.cm.tracer, tool_call_id)
        watched = on_event is not None or self.store is not None or on_clock is not None or spans is not None
        try:
            layout = self.layout(
                code, detail=on_event is not None, denied=denied, token=secrets.token_hex(8), prelude=prelude
            )
        except _core.TypeScriptSyntaxError:  # the code mode reports it, with its events
            return await self.cm.execute(code, tool_call_id=tool_call_id, on_event=on_event)
        tally = Tally(layout.skills, tool_call_id, spans)
        held: list[Event] = []

        async def relay(event: Event) -> None:
            assert on_event is not None
            if event.name == "code_mode:execution_finished":
                held.append(event)  # after the runs are recorded and any cut-off reported
                return
            await emit(on_event, event)

        def report(line: str) -> Event | None:
            if line == "s" or line.startswith(("d ", "t ")):
                return on_clock(line) if on_clock is not None else None
            return tally.report(line)

        try:
            result = await self.cm.execute_program(
                Program(layout.text, layout.text),
                tool_call_id=tool_call_id,
                on_event=relay if on_event is not None else None,
                on_report=report if watched else None,
                library=_library(),
                library_checks=layout.checks,
                **(limit_overrides or {}),
            )
        except anyio.get_cancelled_exc_class():
            if spans is not None and interrupted():
                spans.cut_off("the run paused", error=False)
            if not interrupted():
                with anyio.CancelScope(shield=True):
                    await self._settle(tally, "cancelled", None, held, tool_call_id, on_event, swallow=True)
            raise
        error = result.error
        if error is not None:
            error = self._map_error(error, layout, code)
        if watched and not tally.started and (error is None or error.kind not in _NOT_STARTED):
            # The model's code declared the channel's name, so it took the channel first.
            error = ExecutionError(kind="runtime", name="SyntaxError", message=_HIJACKED)
            result = result.model_copy(update={"success": False, "result": None})
        result = result.model_copy(update={"error": error})
        await self._settle(
            tally, error.kind if error is not None else None, error, held, tool_call_id, on_event
        )
        return result

    async def _settle(
        self,
        tally: Tally,
        kind: str | None,
        error: ExecutionError | None,
        held: list[Event],
        tool_call_id: str | None,
        on_event: EventCallback | None,
        *,
        swallow: bool = False,
    ) -> None:
        """Record the runs the runtime reported, then emit the held ``execution_finished``.
        When the execution was cut off by a limit (``kind``), each call still running counts
        as a failed run, with a ``skill_error`` event."""
        cut: list[int] = []
        if kind in _CUT_OFF and tally.spans is not None:
            tally.spans.cut_off(kind or "cut off")
        if kind in _CUT_OFF:
            cut = [index for index, count in sorted(tally.running.items()) for _ in range(count)]
            tally.runs.extend(index * 2 for index in cut)
        try:
            await self._record(tally.runs, tally.names)
            if on_event is None:
                return
            why = f"{error.name}: {error.message}" if error is not None else "CancelledError: cancelled"
            for index in cut:
                event = Event(
                    SKILL_ERROR,
                    {
                        "toolCallId": tool_call_id,
                        "timestamp": now_ms(),
                        "skill": tally.names[index],
                        "error": f"cut off while running ({why})",
                        "duration_ms": 0,
                    },
                )
                await emit(on_event, event)
            for event in held:
                value = dict(event.value)
                if error is not None:
                    value["success"] = False
                    value["error"] = error.model_dump(exclude_none=True)
                await emit(on_event, Event(event.name, value))
        except Exception:
            if not swallow:
                raise
            logger.warning("recording the runs of a cancelled execution failed", exc_info=True)

    async def _record(self, runs: Sequence[int], names: Sequence[str]) -> None:
        """Record ``runs`` (``index * 2 + success`` each, in call order, ``index`` into
        ``names``) in the store: one run per skill the execution called, however many times it
        called it, successful only if every call succeeded. One execution is one piece of
        evidence: a program that calls a skill a hundred times does not make it trusted."""
        if self.store is None or not runs:
            return
        outcomes: dict[str, bool] = {}
        for run in runs:
            index, success = divmod(run, 2)
            if 0 <= index < len(names):
                name = names[index]
                outcomes[name] = outcomes.get(name, True) and bool(success)
        for name, succeeded in outcomes.items():
            try:
                updated = await self.store.record_runs(name, [succeeded], trust=self.trust)
            except SkillNotFoundError:
                continue
            current = self.skills.get(name)
            if current is not None and current.version == updated.version:
                self.skills[name] = current.model_copy(
                    update={"stats": updated.stats, "trust_level": updated.trust_level}
                )

    # -- errors

    def _map_error(self, error: ExecutionError, layout: _Layout, code: str) -> ExecutionError:
        """``error`` positioned in the code its frames are in: the model's program, or a skill's
        code (file ``skill:<name>``); the runtime's own frames are left out."""
        frames: list[Frame] = []
        for frame in error.frames:
            where = layout.locate(frame.line, frame.column)
            if where is None:
                continue  # the runtime's own frames
            skill, line, column = where
            if skill is None:
                frames.append(Frame(function=frame.function, line=line, column=column))
            else:
                frames.append(
                    Frame(file=f"skill:{skill}", function=f"skill_{skill}", line=line, column=column)
                )
        update: dict[str, Any] = {"frames": frames}
        skill_input = error.name == "InvalidArgumentsError" and error.message.startswith("skill_")
        if error.kind == "runtime" and skill_input:
            update["kind"] = "invalid_args"
        if error.kind == "runtime" and error.name == "SkillError":
            update["kind"] = "tool"
        message = error.message
        if frames:
            top = frames[0]
            skill = top.file.removeprefix("skill:") if top.file != PROGRAM_FILE else None
            source = code if skill is None else self.skills[skill].code
            text = _core.code_frame(source, top.line, top.column)
            if skill is not None:
                text = f"skill {skill}:\n{text}"
                message = f"{error.message} (in skill {skill} line {top.line}, column {top.column})"
            update.update(message=message, line=top.line, column=top.column, frame=text)
        elif error.line is not None:
            update.update(line=None, column=None, frame=None)
        if error.stack is not None:
            update["stack"] = format_stack(error.name, message, frames)
        return error.model_copy(update=update)

    # -- the tools

    @property
    def tool(self) -> ModelTool:
        """``execute_typescript`` whose programs can call the skills."""
        return execute_typescript_tool(self.execute)

    async def run(
        self, name: str, input: Any, *, tool_call_id: str | None = None, on_event: EventCallback | None = None
    ) -> ExecutionResult:
        """Run skill ``name`` on ``input`` in a fresh execution (and record the run)."""
        if name not in self.skills:
            raise SkillNotFoundError(f"no skill {name!r} in this runtime")
        program = f"return await skill_{name}({json.dumps(input)});"
        return await self.execute(program, tool_call_id=tool_call_id, on_event=on_event)

    def skill_tool(self, name: str) -> ModelTool:
        """Skill ``name`` as a direct tool: its name, description and input schema; each call
        runs it in a fresh execution. The output is ``{success, result, logs}`` or
        ``{success: false, error, logs}`` like ``execute_typescript``'s."""
        skill = self.skills[name]

        async def call(
            arguments: Mapping[str, Any],
            *,
            tool_call_id: str | None = None,
            on_event: EventCallback | None = None,
        ) -> dict[str, Any]:
            result = await self.run(name, dict(arguments), tool_call_id=tool_call_id, on_event=on_event)
            return result.to_tool_output()

        description = skill.description
        if skill.usage_hints:
            description += "\n" + "\n".join(f"- {hint}" for hint in skill.usage_hints)
        return ModelTool(name, description, skill.input_schema, call)
