"""Skills inside the sandbox: ``skill_<name>(input)`` as plain in-sandbox async functions.

A :class:`SkillRuntime` runs a model's program with a set of skills callable in it. No engine
change and no host round trip per call: the skills are appended to the program as hoisted
``async function skill_<name>(input)`` declarations *after* the model's code, so the model's
lines keep their numbers. The program as run is::

    try {<the model's code, its first line shifted right by 5 columns>
    } finally { __cm_flush(); }
    <runtime helpers, one wrapper and one body function per skill>

Each ``skill_<name>`` wrapper validates its input against the skill's ``input_schema`` (a small
JSON Schema interpreter in JavaScript), awaits the body (the skill's code, unchanged, as the body
of its own async function), validates the output against ``output_schema`` and counts the run.
When the program ends (returning or throwing) the ``finally`` writes the counted runs as one
``console.debug`` line with a marker; the host takes that line out of the logs and the console
events, records the runs in the store (``store.record_runs``: one write per skill, its runs in
call order, which updates the skill's stats and trust) and emits ``code_mode:skill_call`` /
``skill_result`` / ``skill_error`` events, before ``code_mode:execution_finished``. The skill
events are therefore not live: they come in one batch at the end of the execution, with the
times measured inside the sandbox.

Errors keep pointing at the source the model can act on: a position in the model's code is
reported as is (line 1's column corrected); a position inside a skill's code is reported as that
skill's line and column (``line``/``column``/``frame`` point into the skill, the message ends with
``(in skill <name> line N, column C)``, the stack names ``skill:<name>:N:C``).

Runs cut off: when the execution is stopped by its timeout, its memory limit or cancellation,
the ``finally`` does not run. So that such runs still count, the wrappers also mark each call
and each return as it happens, one short ``console.debug`` line each (another marker, taken out
the same way), for the first :data:`MAX_LIVE_LINES` lines of an execution (fewer with small
console limits). Without the final line, the host records the runs those lines saw end, and
each call they saw start and not return counts as a failed run (with a ``skill_error`` event
saying it was cut off). Past the budget of live lines, a cut-off execution records only what
ended before it ran out, and blames no call. A cancellation that lands while a step runs in a
worker thread loses that step's lines.

Limits: runs of a program that already filled the console limits are not recorded (the marker
lines are cut). A program can write a forged marker line itself: it only changes the stats of
skills it can call anyway.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import re
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import anyio

from .. import _core
from ..code_mode import compile_typescript
from ..driver import IsolateContext, Program
from ..events import Event, EventCallback, EventName, now_ms
from ..execute_tool import ModelTool, execute_typescript_tool
from ..results import ExecutionError, ExecutionResult
from .models import Skill, SkillNotFoundError
from .trust import TrustStrategy

if TYPE_CHECKING:
    from ..code_mode import CodeMode
    from .store import SkillStore

logger = logging.getLogger("codemode.skills")

SKILL_CALL: EventName = "code_mode:skill_call"
SKILL_RESULT: EventName = "code_mode:skill_result"
SKILL_ERROR: EventName = "code_mode:skill_error"

MARKER = "@@codemode:skill-runs@@"
LIVE_MARKER = "@@codemode:skill-live@@"
_LOG_PREFIX = "DEBUG: " + MARKER
_LIVE_PREFIX = "DEBUG: " + LIVE_MARKER
_CUT_OFF = frozenset({"timeout", "memory", "cancelled"})
_PREFIX = "try {"
_DENIED = "not approved to run"
_MISSING = "there is no such skill"
_PROGRAM_FRAME = re.compile(r"^(\s*at )(\S+) \(program\.ts:(\d+):(\d+)\)$")
_SKILL_REFERENCE = re.compile(r"\bskill_([a-z][a-z0-9]*(?:_[a-z0-9]+)*)\b")

MAX_SKILL_EVENTS = 1000
"""At most this many skill calls per execution are reported as events (all are recorded)."""

MAX_LIVE_LINES = 200
"""At most this many console lines per execution mark skill calls and returns as they happen
(so a run cut off by a limit is known); fewer when the console limits are small."""

_CONTEXTS: weakref.WeakKeyDictionary[CodeMode, IsolateContext] = weakref.WeakKeyDictionary()

Approve = Callable[[Skill], bool | Awaitable[bool]]
"""Consulted before an untrusted skill runs: return (or resolve to) True to let it run."""

_RUNTIME_JS = r"""
var __cm_S;
function __cm_st() {
  if (__cm_S === undefined)
    __cm_S = { r: [], e: [], d: __CM_DETAIL__, m: __CM_MAX__, v: __CM_SCHEMAS__,
               log: console.debug, b: __CM_LIVE__ };
  return __cm_S;
}
function __cm_live(s, t) {
  s.b--;
  try { s.log(__CM_LIVE_MARKER__ + (s.b > 0 ? t : "x")); } catch (x) {}
}
var __cm_C;
function __cm_check(s, v, p, root) {
  if (__cm_C === undefined) __cm_C = (0, eval)(__CM_VALIDATOR__);
  return __cm_C(s, v, p, root);
}
function __cm_error(name, message) {
  const e = new Error(message);
  Object.defineProperty(e, "name", { value: name, writable: true, configurable: true });
  return e;
}
function __cm_in(i, name, input) {
  const s = __cm_st();
  const schema = s.v[i][0];
  const e = __cm_check(schema, input, "input", schema);
  const t = s.d ? Date.now() : 0;
  if (s.d && s.e.length < s.m) s.e.push([0, i, input, t]);
  if (e !== null) {
    if (s.d && s.e.length < s.m) s.e.push([2, i, "skill_" + name + ": invalid input: " + e, t]);
    throw __cm_error("InvalidArgumentsError", "skill_" + name + ": invalid input: " + e);
  }
  if (s.b > 0) __cm_live(s, "c" + i);
  return t;
}
function __cm_out(i, name, out, t) {
  const s = __cm_st();
  const schema = s.v[i][1];
  const e = schema === null ? null : __cm_check(schema, out, "output", schema);
  if (e !== null) {
    const message = "skill_" + name + " returned an invalid result: " + e;
    s.r.push(i * 2);
    if (s.b > 0) __cm_live(s, "" + i * 2);
    if (s.d && s.e.length < s.m) s.e.push([2, i, message, Date.now() - t]);
    throw __cm_error("SkillError", message);
  }
  s.r.push(i * 2 + 1);
  if (s.b > 0) __cm_live(s, "" + (i * 2 + 1));
  if (s.d && s.e.length < s.m) s.e.push([1, i, out, Date.now() - t]);
  return out;
}
function __cm_fail(i, err, t) {
  const s = __cm_st();
  s.r.push(i * 2);
  if (s.b > 0) __cm_live(s, "" + i * 2);
  if (s.d && s.e.length < s.m) {
    let message;
    try { message = err instanceof Error ? err.name + ": " + err.message : String(err); }
    catch (x) { message = "error"; }
    s.e.push([2, i, message, Date.now() - t]);
  }
}
function __cm_refuse(name, message) {
  return Promise.reject(__cm_error("SkillError", "skill_" + name + ": " + message));
}
function __cm_flush() {
  const s = __cm_S;
  if (s === undefined || (s.r.length === 0 && s.e.length === 0)) return;
  let text;
  try { text = JSON.stringify({ r: s.r, e: s.e }); } catch (x) { text = JSON.stringify({ r: s.r, e: [] }); }
  try { s.log(__CM_MARKER__ + text); } catch (x) {}
}
"""

_VALIDATOR_JS = r"""(function () {
"use strict";
function __cm_is(t, v) {
  switch (t) {
    case "object": return v !== null && typeof v === "object" && !Array.isArray(v);
    case "array": return Array.isArray(v);
    case "string": return typeof v === "string";
    case "integer": return Number.isInteger(v);
    case "number": return typeof v === "number" && isFinite(v);
    case "boolean": return typeof v === "boolean";
    case "null": return v === null;
  }
  return true;
}
function __cm_eq(a, b) {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  return JSON.stringify(a) === JSON.stringify(b);
}
function __cm_ref(root, ref) {
  if (typeof ref !== "string" || ref[0] !== "#") return undefined;
  let node = root;
  const parts = ref.slice(1).split("/");
  for (let i = 1; i < parts.length; i++) {
    if (node === undefined || node === null) return undefined;
    node = node[decodeURIComponent(parts[i]).replace(/~1/g, "/").replace(/~0/g, "~")];
  }
  return node;
}
function check(s, v, p, root) {
  if (s === true || s === undefined || s === null) return null;
  if (s === false) return p + " is not allowed";
  let e;
  if (s.$ref !== undefined) {
    const target = __cm_ref(root, s.$ref);
    if (target !== undefined && (e = check(target, v, p, root))) return e;
  }
  const t = s.type;
  if (t !== undefined) {
    let ok = false;
    if (typeof t === "string") ok = __cm_is(t, v);
    else for (let i = 0; i < t.length && !ok; i++) ok = __cm_is(t[i], v);
    if (!ok && !(s.nullable === true && v === null))
      return p + " must be " + (typeof t === "string" ? t : t.join(" or "));
  }
  if (s.enum !== undefined) {
    let ok = false;
    for (let i = 0; i < s.enum.length && !ok; i++) ok = __cm_eq(s.enum[i], v);
    if (!ok) return p + " must be one of " + JSON.stringify(s.enum);
  }
  if (s.const !== undefined && !__cm_eq(s.const, v)) return p + " must be " + JSON.stringify(s.const);
  if (typeof v === "number") {
    if (s.minimum !== undefined && v < s.minimum) return p + " must be >= " + s.minimum;
    if (s.maximum !== undefined && v > s.maximum) return p + " must be <= " + s.maximum;
    if (typeof s.exclusiveMinimum === "number" && v <= s.exclusiveMinimum)
      return p + " must be > " + s.exclusiveMinimum;
    if (typeof s.exclusiveMaximum === "number" && v >= s.exclusiveMaximum)
      return p + " must be < " + s.exclusiveMaximum;
    if (s.multipleOf !== undefined && !Number.isInteger(v / s.multipleOf))
      return p + " must be a multiple of " + s.multipleOf;
  } else if (typeof v === "string") {
    if (s.minLength !== undefined && v.length < s.minLength)
      return p + " must be at least " + s.minLength + " characters";
    if (s.maxLength !== undefined && v.length > s.maxLength)
      return p + " must be at most " + s.maxLength + " characters";
    if (s.pattern !== undefined && !new RegExp(s.pattern, "u").test(v))
      return p + " must match " + JSON.stringify(s.pattern);
  } else if (Array.isArray(v)) {
    if (s.minItems !== undefined && v.length < s.minItems)
      return p + " must have at least " + s.minItems + " items";
    if (s.maxItems !== undefined && v.length > s.maxItems)
      return p + " must have at most " + s.maxItems + " items";
    const prefix = s.prefixItems;
    for (let i = 0; i < v.length; i++) {
      const item = prefix !== undefined && i < prefix.length ? prefix[i] : s.items;
      if (item !== undefined && (e = check(item, v[i], p + "[" + i + "]", root))) return e;
    }
  } else if (v !== null && typeof v === "object") {
    const req = s.required;
    if (req !== undefined)
      for (let i = 0; i < req.length; i++)
        if (!(req[i] in v)) return p + " must have property " + JSON.stringify(req[i]);
    const props = s.properties, extra = s.additionalProperties;
    if (props !== undefined || extra !== undefined) {
      for (const k in v) {
        const sub = props !== undefined && Object.prototype.hasOwnProperty.call(props, k) ? props[k] : extra;
        if (sub !== undefined && (e = check(sub, v[k], p + "." + k, root))) return e;
      }
    }
  }
  if (s.allOf !== undefined)
    for (let i = 0; i < s.allOf.length; i++) if ((e = check(s.allOf[i], v, p, root))) return e;
  if (s.anyOf !== undefined) {
    let ok = false;
    for (let i = 0; i < s.anyOf.length && !ok; i++) ok = check(s.anyOf[i], v, p, root) === null;
    if (!ok) return p + " must match one of the allowed shapes";
  }
  if (s.oneOf !== undefined) {
    let n = 0;
    for (let i = 0; i < s.oneOf.length; i++) if (check(s.oneOf[i], v, p, root) === null) n++;
    if (n !== 1) return p + " must match exactly one of the allowed shapes";
  }
  if (s.not !== undefined && check(s.not, v, p, root) === null)
    return p + " must not match the excluded shape";
  return null;
}
return check;
})()"""
"""The JSON Schema interpreter, compiled only when a program first calls a skill (by an
indirect ``eval`` of its source), so programs that call none do not pay for parsing it."""

_VALIDATOR_LITERAL = json.dumps(_VALIDATOR_JS)

_WRAPPER_JS = (
    "async function skill_{name}(input) {{\n"
    "  if (input === undefined) input = {{}};\n"
    '  const t = __cm_in({i}, "{name}", input);\n'
    "  let out;\n"
    "  try {{ out = await __cm_b{i}(input); }} catch (e) {{ __cm_fail({i}, e, t); throw e; }}\n"
    '  return __cm_out({i}, "{name}", out, t);\n'
    "}}\n"
    "async function __cm_b{i}(input) {{\n"
)


@dataclass(frozen=True)
class _Layout:
    """The program as run: its text and where each part's lines are."""

    text: str
    model_lines: int
    model_strip: Any  # the model code's StripResult when positions were not preserved
    bodies: tuple[_Body, ...]

    def locate(self, line: int, column: int) -> tuple[str | None, int, int] | None:
        """``(None, line, column)`` in the model's code, ``(name, line, column)`` in a skill's
        code, ``None`` in the runtime (positions in the TypeScript each part was written in)."""
        if line <= self.model_lines:
            column = column - len(_PREFIX) if line == 1 else column
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


def skill_references(code: str) -> set[str]:
    """The skill names ``code`` mentions as ``skill_<name>``."""
    return set(_SKILL_REFERENCE.findall(code))


async def load_closure(store: SkillStore, skills: Iterable[Skill]) -> dict[str, Skill]:
    """``skills`` and every skill they depend on (``depends_on`` and ``skill_*`` references in
    their code), fetched from ``store``; missing dependencies are left out."""
    loaded: dict[str, Skill] = {}
    pending = list(skills)
    missing: set[str] = set()
    while pending:
        skill = pending.pop()
        if skill.name in loaded:
            continue
        loaded[skill.name] = skill
        for name in sorted(set(skill.depends_on) | skill_references(skill.code)):
            if name in loaded or name in missing:
                continue
            dependency = await store.get(name)
            if dependency is None:
                missing.add(name)
            else:
                pending.append(dependency)
    return loaded


_STRIPPED: dict[str, tuple[str, Any] | None] = {}


def strip_body(code: str) -> tuple[str, Any] | None:
    """A skill's code as JavaScript, with its StripResult when positions moved (``None`` when
    it does not parse as the body of an async function); cached by code."""
    if code in _STRIPPED:
        return _STRIPPED[code]
    stripped: tuple[str, Any] | None
    try:
        compile_typescript(f"async function __cm_check(input: any) {{\n{code}\n}}")
        result = _core.strip_types(code)
        stripped = result.javascript, None if result.positions_preserved else result
    except _core.TypeScriptSyntaxError:
        stripped = None
    if len(_STRIPPED) > 4096:
        _STRIPPED.clear()
    _STRIPPED[code] = stripped
    return stripped


def code_compiles(skill: Skill) -> bool:
    """True when the skill's code parses as the body of an async function (cached by code)."""
    return strip_body(skill.code) is not None


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
    ) -> None:
        self.cm = cm
        self.store = store
        self.trust = trust
        self.approve = approve
        self.max_events = max_events
        values = skills.values() if isinstance(skills, Mapping) else skills
        self.skills: dict[str, Skill] = {}
        self.declared: list[str] = []
        for skill in values:
            self._add(skill)
        self.declared = list(declared) if declared is not None else sorted(self.skills)
        self.listeners: list[Callable[[Skill], None]] = []
        self._suffixes: dict[tuple[bool, frozenset[str], int], tuple[str, tuple[_Body, ...]]] = {}

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
        self._suffixes.clear()
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

    def _suffix(self, detail: bool, denied: frozenset[str], live: int) -> tuple[str, tuple[_Body, ...]]:
        key = (detail, denied, live)
        cached = self._suffixes.get(key)
        if cached is not None:
            return cached
        names = sorted(self.skills)
        schemas = [[self.skills[n].input_schema, self.skills[n].output_schema] for n in names]
        runtime = (
            _RUNTIME_JS.replace("__CM_DETAIL__", "true" if detail else "false")
            .replace("__CM_MAX__", str(self.max_events))
            .replace("__CM_SCHEMAS__", json.dumps(schemas))
            .replace("__CM_MARKER__", json.dumps(MARKER))
            .replace("__CM_LIVE_MARKER__", json.dumps(LIVE_MARKER))
            .replace("__CM_LIVE__", str(live))
            .replace("__CM_VALIDATOR__", _VALIDATOR_LITERAL)
        )
        parts = [runtime]
        line = runtime.count("\n") + 1  # lines of the suffix so far (relative, 1-based next line)
        bodies: list[_Body] = []
        for index, name in enumerate(names):
            if name in denied:
                parts.append(
                    f'function skill_{name}(input) {{ return __cm_refuse("{name}", "{_DENIED}"); }}\n'
                )
                line += 1
                continue
            wrapper = _WRAPPER_JS.format(name=name, i=index)
            parts.append(wrapper)
            line += wrapper.count("\n")
            stripped = strip_body(self.skills[name].code)
            assert stripped is not None
            code, strip = stripped
            body_lines = code.count("\n") + 1
            bodies.append(_Body(line, line + body_lines - 1, name, strip))
            parts.append(code + "\n}\n")
            line += body_lines + 1
        for name in sorted(self._missing()):
            parts.append(f'function skill_{name}(input) {{ return __cm_refuse("{name}", "{_MISSING}"); }}\n')
            line += 1
        result = "".join(parts), tuple(bodies)
        self._suffixes[key] = result
        return result

    def _missing(self) -> set[str]:
        referenced: set[str] = set()
        for skill in self.skills.values():
            referenced |= skill_references(skill.code) | set(skill.depends_on)
        return referenced - set(self.skills)

    def layout(
        self, code: str, *, detail: bool = False, denied: frozenset[str] = frozenset(), live: int = 0
    ) -> _Layout:
        """The JavaScript program that runs ``code`` with the skills (see the module doc).

        ``detail`` collects what the skill events carry; ``live`` is how many console lines may
        mark skill calls and returns as they happen. Each part is stripped of its types on its
        own (the skills' once, cached), so the runtime's JavaScript is never parsed by the
        TypeScript stripper. Raises ``codemode._core.TypeScriptSyntaxError`` when ``code`` does
        not parse."""
        suffix, bodies = self._suffix(detail, denied, live)
        stripped = _core.strip_types(code)
        javascript = stripped.javascript
        head = f"{_PREFIX}{javascript}\n}} finally {{ __cm_flush(); }}\n"
        offset = head.count("\n")  # the suffix's first line is offset + 1
        shifted = tuple(
            _Body(body.first + offset, body.last + offset, body.name, body.strip) for body in bodies
        )
        model_strip = None if stripped.positions_preserved else stripped
        return _Layout(head + suffix, javascript.count("\n") + 1, model_strip, shifted)

    async def _context(self) -> IsolateContext:
        """A sandbox context over ``cm``'s tools and limits (one per code mode, shared)."""
        context = _CONTEXTS.get(self.cm)
        if context is None:
            cm = self.cm
            context = await cm.driver.create_context(bindings=cm.tools, **dataclasses.asdict(cm.limits))
            _CONTEXTS[cm] = context
        return context

    async def _denied(self, code: str) -> frozenset[str]:
        if self.approve is None:
            return frozenset()
        reached: set[str] = set()
        pending = [name for name in skill_references(code) if name in self.skills]
        while pending:
            name = pending.pop()
            if name in reached:
                continue
            reached.add(name)
            pending.extend(n for n in skill_references(self.skills[name].code) if n in self.skills)
        denied = set()
        for name, skill in self.skills.items():
            if skill.trust_level != "untrusted":
                continue
            if name not in reached:
                denied.add(name)  # not mentioned: not approved, so not callable indirectly either
                continue
            answer = self.approve(skill)
            if inspect.isawaitable(answer):
                answer = await answer
            if not answer:
                denied.add(name)
        return frozenset(denied)

    # -- running

    async def execute(
        self, code: str, *, tool_call_id: str | None = None, on_event: EventCallback | None = None
    ) -> ExecutionResult:
        """Run a program (the model's TypeScript) with the skills; records every skill run,
        a run cut off by the timeout, the memory limit or cancellation as a failure."""
        if not self.skills:
            return await self.cm.execute(code, tool_call_id=tool_call_id, on_event=on_event)
        watched = on_event is not None or self.store is not None
        try:
            layout = self.layout(
                code,
                detail=on_event is not None,
                denied=await self._denied(code),
                live=self._live_lines() if watched else 0,
            )
        except _core.TypeScriptSyntaxError:  # the code mode reports it, with its events
            return await self.cm.execute(code, tool_call_id=tool_call_id, on_event=on_event)
        seen: list[str] = []  # the runtime's lines, as they arrive (all there is if cancelled)
        held: list[Event] = []

        async def relay(event: Event) -> None:
            if event.name == "code_mode:console":
                text = str(event.value.get("text", ""))
                if text.startswith((_LOG_PREFIX, _LIVE_PREFIX)):
                    seen.append(text)
                    return
            if on_event is None:
                return
            if event.name == "code_mode:execution_finished":
                held.append(event)
                return
            outcome = on_event(event)
            if inspect.isawaitable(outcome):
                await outcome

        context = await self._context()
        program = Program(layout.text, layout.text)
        try:
            result = await context.execute(
                program, tool_call_id=tool_call_id, on_event=relay if watched else None
            )
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._settle(seen, "cancelled", None, held, tool_call_id, on_event, swallow=True)
            raise
        logs = []
        lines = []
        for line in result.logs:
            if line.startswith((_LOG_PREFIX, _LIVE_PREFIX)):
                lines.append(line)
            else:
                logs.append(line)
        error = result.error
        if error is not None:
            error = self._map_error(error, layout, code)
        result = result.model_copy(update={"logs": logs, "error": error})
        await self._settle(
            lines, error.kind if error is not None else None, error, held, tool_call_id, on_event
        )
        return result

    def _live_lines(self) -> int:
        """How many console lines an execution may spend marking skill calls as they happen:
        :data:`MAX_LIVE_LINES`, at most a twentieth of the console limits."""
        limits = self.cm.limits
        return max(0, min(MAX_LIVE_LINES, limits.max_log_lines // 20, limits.max_log_bytes // (20 * 40)))

    async def _settle(
        self,
        lines: list[str],
        kind: str | None,
        error: ExecutionError | None,
        held: list[Event],
        tool_call_id: str | None,
        on_event: EventCallback | None,
        *,
        swallow: bool = False,
    ) -> None:
        """Record the runs the runtime's ``lines`` report and emit the skill events, then the
        held ``execution_finished``. Without the final line (the program was cut off), the live
        lines tell which runs ended and which calls were still running: when the execution
        was cut off by a limit (``kind``), each of those counts as a failed run."""
        payloads = [line[len(_LOG_PREFIX) :] for line in lines if line.startswith(_LOG_PREFIX)]
        cut: list[int] = []
        if payloads:
            runs, details = _parse_payloads(payloads)
        else:
            live = [line[len(_LIVE_PREFIX) :] for line in lines if line.startswith(_LIVE_PREFIX)]
            runs, running = _parse_live(live)
            details = []
            if kind in _CUT_OFF:
                cut = running
                runs.extend(index * 2 for index in cut)
        try:
            await self._record(runs)
            if on_event is None:
                return
            await self._emit(details, tool_call_id, on_event)
            names = sorted(self.skills)
            why = f"{error.name}: {error.message}" if error is not None else "CancelledError: cancelled"
            for index in cut:
                event = Event(
                    SKILL_ERROR,
                    {
                        "toolCallId": tool_call_id,
                        "timestamp": now_ms(),
                        "skill": names[index],
                        "error": f"cut off while running ({why})",
                        "duration_ms": 0,
                    },
                )
                outcome = on_event(event)
                if inspect.isawaitable(outcome):
                    await outcome
            for event in held:
                value = dict(event.value)
                if error is not None:
                    value["error"] = error.model_dump(exclude_none=True)
                outcome = on_event(Event(event.name, value))
                if inspect.isawaitable(outcome):
                    await outcome
        except Exception:
            if not swallow:
                raise
            logger.warning("recording the runs of a cancelled execution failed", exc_info=True)

    async def _record(self, runs: Sequence[int]) -> None:
        """Record ``runs`` (``index * 2 + success`` each, in call order) in the store: one
        ``record_runs`` per skill, however many times the program called it."""
        if self.store is None or not runs:
            return
        names = sorted(self.skills)
        outcomes: dict[str, list[bool]] = {}
        for run in runs:
            index, success = divmod(run, 2)
            if 0 <= index < len(names):
                outcomes.setdefault(names[index], []).append(bool(success))
        for name, batch in outcomes.items():
            try:
                updated = await self.store.record_runs(name, batch, trust=self.trust)
            except SkillNotFoundError:
                continue
            current = self.skills.get(name)
            if current is not None and current.version == updated.version:
                self.skills[name] = current.model_copy(
                    update={"stats": updated.stats, "trust_level": updated.trust_level}
                )

    async def _emit(
        self, details: list[list[Any]], tool_call_id: str | None, on_event: EventCallback
    ) -> None:
        names = sorted(self.skills)
        for detail in details:
            try:
                kind, index, value, number = detail
                name = names[index]
            except (ValueError, IndexError, TypeError):
                continue
            if kind == 0:
                event = Event(
                    SKILL_CALL,
                    {"toolCallId": tool_call_id, "timestamp": number, "skill": name, "input": value},
                )
            elif kind == 1:
                event = Event(
                    SKILL_RESULT,
                    {
                        "toolCallId": tool_call_id,
                        "timestamp": now_ms(),
                        "skill": name,
                        "result": value,
                        "duration_ms": number,
                    },
                )
            else:
                event = Event(
                    SKILL_ERROR,
                    {
                        "toolCallId": tool_call_id,
                        "timestamp": now_ms(),
                        "skill": name,
                        "error": value,
                        "duration_ms": number if kind == 2 and isinstance(number, int | float) else 0,
                    },
                )
            outcome = on_event(event)
            if inspect.isawaitable(outcome):
                await outcome

    # -- errors

    def _map_error(self, error: ExecutionError, layout: _Layout, code: str) -> ExecutionError:
        located: list[tuple[str | None, int, int]] = []
        stack_lines: list[str] = []
        for text in (error.stack or "").splitlines():
            match = _PROGRAM_FRAME.match(text)
            if match is None:
                if not (text.lstrip().startswith("at ") and "__cm_" in text):  # the lazy validator's
                    stack_lines.append(text)
                continue
            where = layout.locate(int(match.group(3)), int(match.group(4)))
            if where is None:
                continue  # the runtime's own frames
            located.append(where)
            skill, line, column = where
            if skill is None:
                stack_lines.append(f"{match.group(1)}{match.group(2)} (program.ts:{line}:{column})")
            else:
                stack_lines.append(f"{match.group(1)}skill_{skill} (skill:{skill}:{line}:{column})")
        update: dict[str, Any] = {"stack": "\n".join(stack_lines) if error.stack is not None else None}
        skill_input = error.name == "InvalidArgumentsError" and error.message.startswith("skill_")
        if error.kind == "runtime" and skill_input:
            update["kind"] = "invalid_args"
        if error.kind == "runtime" and error.name == "SkillError":
            update["kind"] = "tool"
        if located:
            skill, line, column = located[0]
            source = code if skill is None else self.skills[skill].code
            frame = _core.code_frame(source, line, column)
            if skill is not None:
                frame = f"skill {skill}:\n{frame}"
                update["message"] = f"{error.message} (in skill {skill} line {line}, column {column})"
            update.update(line=line, column=column, frame=frame)
        elif error.line is not None:
            update.update(line=None, column=None, frame=None)
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


def _parse_live(lines: list[str]) -> tuple[list[int], list[int]]:
    """The runs the live lines report as ended (run codes, in order) and the skill indexes of
    the calls still running, one per call (none known once the runtime stopped marking)."""
    runs: list[int] = []
    running: dict[int, int] = {}
    for text in lines:
        if text == "x":  # the budget of live lines is spent: what runs after is unknown
            return runs, []
        try:
            if text.startswith("c"):
                index = int(text[1:])
                running[index] = running.get(index, 0) + 1
                continue
            run = int(text)
        except ValueError:
            continue
        runs.append(run)
        index = run // 2
        if running.get(index):
            running[index] -= 1
    return runs, [index for index, count in sorted(running.items()) for _ in range(count)]


def _parse_payloads(payloads: list[str]) -> tuple[list[int], list[list[Any]]]:
    runs: list[int] = []
    details: list[list[Any]] = []
    for payload in payloads:
        try:
            data = json.loads(payload)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        runs.extend(r for r in data.get("r", []) if isinstance(r, int))
        details.extend(d for d in data.get("e", []) if isinstance(d, list))
    return runs, details
