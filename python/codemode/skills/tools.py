"""The management tools a model uses to find, read, register and update skills.

:func:`management_tools` gives four :class:`codemode.Tool` objects (add them to a code mode, so
a program calls ``external_register_skill(...)``, or give them to the model directly):

* ``search_skills({query, limit})``: the best matches, without their code;
* ``get_skill({name})``: one skill with its code (``null`` when there is none);
* ``register_skill({name, description, code, input_schema, output_schema, usage_hints,
  example_input})``: store a new skill;
* ``update_skill({name, ...})``: store a new version of an existing skill (fields left out keep
  the current version's values); the previous versions stay in the store and the new version's
  stats start again (the store does this).

A skill's ``code`` is the **body** of ``async function (input) { ... }``: it reads ``input``,
may ``await`` ``external_*`` tools and other ``skill_*`` skills, and ``return``s a JSON value.
:func:`skill_program` turns a skill and an input into the program that runs it that way.

Registration refuses, raising :class:`SkillRegistrationError` (an
:class:`codemode.InvalidArgumentsError`, so a program sees an ``InvalidArgumentsError``) with a message
saying what to change, and stores nothing, when:

* the name is not snake_case, is taken (register) or unknown (update), or starts with
  ``external_`` / ``skill_``;
* a schema is not valid JSON Schema (compiled by :func:`codemode.tools.compile_schema`, the
  validator of tool inputs and outputs, which checks it against its draft's meta-schema: 2020-12
  unless its ``$schema`` names another);
* the code does not parse (:func:`codemode.compile_typescript` of the code wrapped as the function
  body it runs as);
* the code calls an ``external_*`` function that is not one of ``known_tools`` or a ``skill_*``
  that is not in the store;
* the new skill would close a cycle between skills (itself included);
* ``example_input`` is given and does not match the input schema, or running the skill on it
  (with ``run_example``) fails or returns a value that does not match the output schema.

``depends_on`` is derived from the code (:func:`find_calls`), never taken from the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ..code_mode import compile_typescript
from ..errors import InvalidArgumentsError, InvalidSchemaError, TypeScriptSyntaxError
from ..events import Event, EventCallback, emit, now_ms
from ..results import ExecutionResult
from ..tools import Tool, ToolBinding, compile_schema
from .models import InvalidSkillName, Skill, SkillSummary, validate_skill_name
from .sandbox import body_problem
from .store import SkillStore
from .trust import TrustStrategy

SKILL_REGISTERED: Final = "code_mode:skill_registered"
"""The event emitted when a skill (or a new version of one) is stored."""

RunExample = Callable[[Skill, Any], Awaitable[ExecutionResult]]
"""Runs ``skill`` (not stored yet) on an input and returns the execution's result."""

FUNCTION_HEADER = "async function __skill(input: any) {\n"
"""How a skill's code is wrapped to be parsed: the body of this function (one line before it)."""


class SkillRegistrationError(InvalidArgumentsError):
    """A registration refused; the message says what to change. Nothing was stored."""


# -- deriving what a skill calls

_CALL = re.compile(r"(?<![\w$.])(external|skill)_([A-Za-z0-9_$]+)\s*\(")


def strip_comments_and_strings(code: str) -> str:
    """``code`` with comments and the text of string literals blanked (replaced by spaces).

    Handles ``//`` and ``/* */`` comments, ``'...'`` and ``"..."`` strings and template literals,
    whose ``${...}`` expressions are kept (they are code, nested templates included). Regular
    expression literals are not recognised: ``/skill_x(/`` in one counts as a call.
    """
    out: list[str] = []
    i, n = 0, len(code)
    braces: list[int] = []  # per open ${ in a template: the brace depth inside it
    while i < n:
        char = code[i]
        nxt = code[i + 1] if i + 1 < n else ""
        if char == "/" and nxt == "/":
            end = code.find("\n", i)
            end = n if end == -1 else end
            out.append(" " * (end - i))
            i = end
        elif char == "/" and nxt == "*":
            end = code.find("*/", i + 2)
            end = n if end == -1 else end + 2
            out.append(_blank(code[i:end]))
            i = end
        elif char in "'\"":
            end = _string_end(code, i + 1, char)
            out.append(char + _blank(code[i + 1 : end - 1]) + (code[end - 1] if end <= n else ""))
            i = end
        elif char == "`" or (char == "}" and braces and braces[-1] == 0):
            if char == "}":
                braces.pop()
            out.append(char)
            i = _template_part(code, i + 1, out, braces)
        else:
            if braces and char == "{":
                braces[-1] += 1
            elif braces and char == "}":
                braces[-1] -= 1
            out.append(char)
            i += 1
    return "".join(out)


def _blank(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)


def _string_end(code: str, i: int, quote: str) -> int:
    """The index after the closing ``quote`` of a string starting at ``i`` (or the line's end)."""
    n = len(code)
    while i < n:
        if code[i] == "\\":
            i += 2
        elif code[i] == quote:
            return i + 1
        elif code[i] == "\n":
            return i + 1
        else:
            i += 1
    return n + 1


def _template_part(code: str, i: int, out: list[str], braces: list[int]) -> int:
    """Blank a template's text from ``i`` up to its closing backtick or ``${``; return the index after."""
    n = len(code)
    start = i
    while i < n:
        if code[i] == "\\":
            i += 2
        elif code[i] == "`":
            out.append(_blank(code[start:i]) + "`")
            return i + 1
        elif code[i] == "$" and i + 1 < n and code[i + 1] == "{":
            out.append(_blank(code[start:i]) + "${")
            braces.append(0)
            return i + 2
        else:
            i += 1
    out.append(_blank(code[start:n]))
    return n


@dataclass(frozen=True)
class Calls:
    """What a skill's code calls: tool names (without ``external_``) and skill names (without ``skill_``)."""

    externals: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()


def find_calls(code: str) -> Calls:
    """The ``external_*`` and ``skill_*`` functions ``code`` calls, each sorted and once.

    A call is the identifier followed by ``(`` (spaces allowed), not after a ``.`` (a method of
    the same name), outside comments and string literals. A function passed around without
    being called by its name (``items.map(skill_x)``) is not seen.
    """
    externals: set[str] = set()
    skills: set[str] = set()
    for kind, name in _CALL.findall(strip_comments_and_strings(code)):
        (externals if kind == "external" else skills).add(name)
    return Calls(tuple(sorted(externals)), tuple(sorted(skills)))


# -- running a skill


def skill_program(code: str, input: Any) -> str:
    """The TypeScript program that runs a skill's ``code`` (a function body) on ``input``.

    ``return await (async function (input: any) {\\n<code>\\n})(<input as JSON>);`` -- the code's
    line N is the program's line N + 1.
    """
    return f"return await (async function (input: any) {{\n{code}\n}})({json.dumps(input)});"


def code_mode_runner(cm: Any) -> RunExample:
    """A ``run_example`` that runs the skill in ``cm`` (a :class:`codemode.CodeMode`) with
    :func:`skill_program`. ``skill_*`` calls inside it are not provided: a skill that calls
    other skills needs the runner of the in-sandbox skills layer."""

    async def run(skill: Skill, input: Any) -> ExecutionResult:
        result: ExecutionResult = await cm.execute(
            skill_program(skill.code, input), tool_call_id=f"example_{skill.name}"
        )
        return result

    return run


# -- checks


def check_schema(schema: Any, field_name: str) -> None:
    """Raise :class:`SkillRegistrationError` unless ``schema`` is a valid JSON Schema object."""
    if not isinstance(schema, dict):
        raise SkillRegistrationError(f"{field_name} must be a JSON Schema object, e.g. {{'type': 'object'}}")
    try:
        compile_schema(schema)
    except InvalidSchemaError as e:
        raise SkillRegistrationError(
            f"{field_name}{e.path} is not valid JSON Schema: {e.message}. "
            "Fix the schema (JSON Schema draft 2020-12) and register again."
        ) from None
    except (TypeError, ValueError) as e:
        raise SkillRegistrationError(f"{field_name} is not valid JSON Schema: {e}") from None


def _problem(schema: Any, value: Any, root: str) -> str | None:
    """What is wrong with ``value`` for ``schema`` (``"input.n must be number"``), or ``None``."""
    problem = compile_schema(schema).validate(value)
    return None if problem is None else f"{root}{problem[0]} {problem[1]}"


def check_code(code: str) -> None:
    """Raise :class:`SkillRegistrationError` unless ``code`` parses as an async function body."""
    try:
        compile_typescript(f"{FUNCTION_HEADER}{code}\n}}")
    except TypeScriptSyntaxError as e:
        raise SkillRegistrationError(
            f"code does not parse: {e.message} at line {e.line - 1}, column {e.column} of the code. "
            "The code is the body of `async function (input) { ... }`: fix it and register again."
        ) from None
    problem = body_problem(code)
    if problem is not None:
        raise SkillRegistrationError(
            f"code is refused: {problem}. The code is the body of `async function (input) {{ ... }}` "
            "and must stay inside it: fix it and register again."
        )


# -- the registry


def _binding_names(known: Mapping[str, ToolBinding] | Sequence[ToolBinding]) -> frozenset[str]:
    bindings = known.values() if isinstance(known, Mapping) else known
    return frozenset(binding.name for binding in bindings)


@dataclass
class SkillRegistry:
    """Searches, reads, registers and updates skills in ``store`` with every check applied.

    ``known_tools``: the tools a skill may call as ``external_<name>`` (a code mode's
    ``cm.tools`` or a list of tools). ``run_example``: runs a skill on ``example_input`` before
    it is saved (without it, ``example_input`` is ignored). ``trust``: the strategy the
    application gates skills with; when given, search and get report each skill's level as this
    strategy evaluates its stats (else the level stored). ``on_event``: receives a
    ``code_mode:skill_registered`` :class:`codemode.Event` for every skill stored.
    """

    store: SkillStore
    known_tools: Mapping[str, ToolBinding] | Sequence[ToolBinding] = ()
    run_example: RunExample | None = None
    trust: TrustStrategy | None = None
    on_event: EventCallback | None = None
    _known: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._known = _binding_names(self.known_tools)

    # -- reading

    async def search(self, query: str, limit: int = 5) -> list[dict[str, Any]]:
        """The ``limit`` best matches for ``query`` as JSON summaries (no code)."""
        return [self.describe(summary) for summary in await self.store.search(query, limit)]

    async def get(self, name: str) -> dict[str, Any] | None:
        """Skill ``name`` as JSON (with its code), ``None`` when there is none."""
        skill = await self.store.get(name)
        if skill is None:
            return None
        return {**self.describe(skill), "code": skill.code}

    def describe(self, summary: SkillSummary) -> dict[str, Any]:
        """What the model sees of a skill (without code)."""
        level = summary.trust_level
        if self.trust is not None:
            level = self.trust.evaluate(summary.stats, level)
        stats = summary.stats
        return {
            "name": summary.name,
            "description": summary.description,
            "usage_hints": list(summary.usage_hints),
            "input_schema": summary.input_schema,
            "output_schema": summary.output_schema,
            "depends_on": list(summary.depends_on),
            "trust_level": level,
            "version": summary.version,
            "stats": {
                "executions": stats.executions,
                "successes": stats.successes,
                "success_rate": stats.success_rate,
            },
        }

    # -- writing

    async def register(
        self,
        name: str,
        description: str,
        code: str,
        input_schema: dict[str, Any],
        output_schema: dict[str, Any] | None,
        usage_hints: Sequence[str] = (),
        *,
        example_input: Any = None,
        has_example: bool | None = None,
        update: bool = False,
    ) -> Skill:
        """Check and store a skill (a new version of an existing one with ``update``).

        ``example_input`` is run when ``has_example`` is true (default: when it is not ``None``).
        Raises :class:`SkillRegistrationError` and stores nothing when a check fails.
        """
        skill = await self.check(
            name, description, code, input_schema, output_schema, usage_hints, update=update
        )
        if has_example is None:
            has_example = example_input is not None
        if has_example and self.run_example is not None:
            await self._run_example(skill, example_input)
        stored = await self.store.save(skill)
        await self._emit(stored, update)
        return stored

    async def check(
        self,
        name: str,
        description: str,
        code: str,
        input_schema: dict[str, Any],
        output_schema: dict[str, Any] | None,
        usage_hints: Sequence[str] = (),
        *,
        update: bool = False,
    ) -> Skill:
        """Every check but the example run; returns the skill to save (``depends_on`` derived)."""
        try:
            validate_skill_name(name)
        except InvalidSkillName as e:
            raise SkillRegistrationError(str(e)) from None
        exists = bool(await self.store.versions(name))
        if exists and not update:
            raise SkillRegistrationError(
                f"a skill named {name!r} already exists: choose another name, or call update_skill "
                "to store a new version of it"
            )
        if update and not exists:
            raise SkillRegistrationError(
                f"there is no skill named {name!r} to update: call register_skill to create it"
            )
        if not description.strip():
            raise SkillRegistrationError("description is empty: say what the skill does and returns")
        check_schema(input_schema, "input_schema")
        if output_schema is not None:
            check_schema(output_schema, "output_schema")
        check_code(code)
        calls = find_calls(code)
        unknown = [f"external_{tool}" for tool in calls.externals if tool not in self._known]
        if unknown:
            available = ", ".join(f"external_{tool}" for tool in sorted(self._known)) or "none"
            raise SkillRegistrationError(
                f"the code calls {', '.join(unknown)}, which is not an available tool "
                f"(available: {available})"
            )
        await self._check_skills(name, calls.skills)
        return Skill(
            name=name,
            description=description,
            code=code,
            input_schema=input_schema,
            output_schema=output_schema,
            usage_hints=list(usage_hints),
            depends_on=list(calls.skills),
        )

    async def _check_skills(self, name: str, dependencies: Sequence[str]) -> None:
        """Every called skill exists, and none of them leads back to ``name``."""
        if name in dependencies:
            raise SkillRegistrationError(
                f"the code calls skill_{name}, the skill itself: skills cannot call themselves "
                "(directly or through other skills); write the loop inside the code"
            )
        graph: dict[str, list[str]] = {}
        missing = []
        for dependency in dependencies:
            skill = await self.store.get(dependency)
            if skill is None:
                missing.append(f"skill_{dependency}")
            else:
                graph[dependency] = list(skill.depends_on)
        if missing:
            raise SkillRegistrationError(
                f"the code calls {', '.join(missing)}, which is not a stored skill: register it first "
                "or use search_skills to find the right name"
            )
        for dependency in dependencies:
            path = await self._path_to(name, dependency, graph, [])
            if path is not None:
                chain = " -> ".join(f"skill_{step}" for step in [name, *path])
                raise SkillRegistrationError(
                    f"calling skill_{dependency} would make a cycle between skills ({chain}): "
                    "skills cannot call each other in a circle"
                )

    async def _path_to(
        self, target: str, node: str, graph: dict[str, list[str]], seen: list[str]
    ) -> list[str] | None:
        """A path of stored dependencies from ``node`` to ``target`` (depth first), or ``None``."""
        if node == target:
            return [node]
        if node in seen:
            return None
        seen.append(node)
        if node not in graph:
            skill = await self.store.get(node)
            graph[node] = list(skill.depends_on) if skill is not None else []
        for child in graph[node]:
            path = await self._path_to(target, child, graph, seen)
            if path is not None:
                return [node, *path]
        return None

    async def _run_example(self, skill: Skill, example_input: Any) -> None:
        assert self.run_example is not None
        problem = _problem(skill.input_schema, example_input, "input")
        if problem is not None:
            raise SkillRegistrationError(f"example_input does not match input_schema: {problem}")
        result = await self.run_example(skill, example_input)
        if not result.success:
            error = result.error
            kind, what = (error.kind, f"{error.name}: {error.message}") if error else ("unknown", "")
            where = f" at line {error.line - 1} of the code" if error and error.line else ""
            logs = f"; logs: {result.logs[-5:]}" if result.logs else ""
            raise SkillRegistrationError(
                f"running the skill on example_input failed ({kind} error{where}): {what}{logs}. "
                "Fix the code and register again."
            )
        if skill.output_schema is not None:
            problem = _problem(skill.output_schema, result.result, "result")
            if problem is not None:
                raise SkillRegistrationError(
                    "running the skill on example_input returned a value that does not match "
                    f"output_schema: {problem} (returned {json.dumps(result.result)[:200]})"
                )

    async def _emit(self, skill: Skill, update: bool) -> None:
        if self.on_event is None:
            return
        event = Event(
            SKILL_REGISTERED,
            {
                "toolCallId": None,
                "timestamp": now_ms(),
                "name": skill.name,
                "version": skill.version,
                "update": update,
                "trust_level": skill.trust_level,
                "depends_on": list(skill.depends_on),
            },
        )
        await emit(self.on_event, event)

    # -- the tools

    def tools(self) -> list[Tool]:
        """``search_skills``, ``get_skill``, ``register_skill`` and ``update_skill`` as tools."""
        return [
            Tool.from_schema(
                "search_skills", SEARCH_DESCRIPTION, SEARCH_INPUT, SEARCH_OUTPUT, self._search_handler
            ),
            Tool.from_schema("get_skill", GET_DESCRIPTION, GET_INPUT, GET_OUTPUT, self._get_handler),
            Tool.from_schema(
                "register_skill",
                REGISTER_DESCRIPTION,
                REGISTER_INPUT,
                REGISTERED_OUTPUT,
                self._register_handler,
            ),
            Tool.from_schema(
                "update_skill", UPDATE_DESCRIPTION, UPDATE_INPUT, REGISTERED_OUTPUT, self._update_handler
            ),
        ]

    async def _search_handler(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"skills": await self.search(args["query"], args.get("limit", 5))}

    async def _get_handler(self, args: dict[str, Any]) -> dict[str, Any] | None:
        return await self.get(args["name"])

    async def _register_handler(self, args: dict[str, Any]) -> dict[str, Any]:
        stored = await self.register(
            args["name"],
            args["description"],
            args["code"],
            args["input_schema"],
            args["output_schema"],
            args.get("usage_hints", []),
            example_input=args.get("example_input"),
            has_example="example_input" in args,
        )
        return _registered(stored)

    async def _update_handler(self, args: dict[str, Any]) -> dict[str, Any]:
        current = await self.store.get(args["name"])
        if current is None:
            raise SkillRegistrationError(
                f"there is no skill named {args['name']!r} to update: call register_skill to create it"
            )
        stored = await self.register(
            current.name,
            args.get("description", current.description),
            args.get("code", current.code),
            args.get("input_schema", current.input_schema),
            args.get("output_schema", current.output_schema),
            args.get("usage_hints", current.usage_hints),
            example_input=args.get("example_input"),
            has_example="example_input" in args,
            update=True,
        )
        return _registered(stored)


def _registered(skill: Skill) -> dict[str, Any]:
    return {
        "name": skill.name,
        "version": skill.version,
        "trust_level": skill.trust_level,
        "depends_on": list(skill.depends_on),
        "message": (
            f"stored {skill.name} version {skill.version}: call it as skill_{skill.name}(input) "
            "in programs where it is available"
        ),
    }


def management_tools(
    store: SkillStore,
    *,
    known_tools: Mapping[str, ToolBinding] | Sequence[ToolBinding],
    run_example: RunExample | None = None,
    trust: TrustStrategy | None = None,
    on_event: EventCallback | None = None,
) -> list[Tool]:
    """The four skill management tools over ``store`` (see the module doc and :class:`SkillRegistry`)."""
    return SkillRegistry(
        store, known_tools=known_tools, run_example=run_example, trust=trust, on_event=on_event
    ).tools()


# -- schemas and descriptions

_SUMMARY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "usage_hints": {"type": "array", "items": {"type": "string"}},
        "input_schema": {"type": "object"},
        "output_schema": {"type": ["object", "null"]},
        "depends_on": {"type": "array", "items": {"type": "string"}},
        "trust_level": {"type": "string", "enum": ["untrusted", "provisional", "trusted"]},
        "version": {"type": "integer"},
        "stats": {
            "type": "object",
            "properties": {
                "executions": {"type": "integer"},
                "successes": {"type": "integer"},
                "success_rate": {"type": "number"},
            },
            "required": ["executions", "successes", "success_rate"],
        },
    },
    "required": [
        "name",
        "description",
        "usage_hints",
        "input_schema",
        "output_schema",
        "depends_on",
        "trust_level",
        "version",
        "stats",
    ],
}

SEARCH_DESCRIPTION = (
    "Search the saved skills (reusable programs) by words of their name, description and usage "
    "hints; returns the best matches without their code."
)
SEARCH_INPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "words describing the task"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5},
    },
    "required": ["query"],
    "additionalProperties": False,
}
SEARCH_OUTPUT: dict[str, Any] = {
    "type": "object",
    "properties": {"skills": {"type": "array", "items": _SUMMARY}},
    "required": ["skills"],
}

GET_DESCRIPTION = "Get one saved skill with its code; null when there is no skill of that name."
GET_INPUT: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "required": ["name"],
    "additionalProperties": False,
}
GET_OUTPUT: dict[str, Any] = {
    "anyOf": [
        {
            **_SUMMARY,
            "properties": {**_SUMMARY["properties"], "code": {"type": "string"}},
            "required": [*_SUMMARY["required"], "code"],
        },
        {"type": "null"},
    ]
}

_FIELDS: dict[str, Any] = {
    "name": {
        "type": "string",
        "description": "snake_case, e.g. 'fetch_weather' (no external_/skill_ prefix)",
    },
    "description": {"type": "string", "description": "what the skill does and returns"},
    "code": {
        "type": "string",
        "description": (
            "TypeScript: the BODY of `async function (input) { ... }`; may await external_* tools "
            "and skill_* skills; returns a JSON value"
        ),
    },
    "input_schema": {"type": "object", "description": "JSON Schema of input"},
    "output_schema": {"type": "object", "description": "JSON Schema of the returned value"},
    "usage_hints": {"type": "array", "items": {"type": "string"}, "description": "when and how to use it"},
    "example_input": {"description": "an input to run the skill on before saving it; a failure refuses it"},
}

REGISTER_DESCRIPTION = (
    "Save a program that worked as a named, typed skill, callable later as skill_<name>(input). "
    "Refused (nothing saved) when the name is taken or invalid, a schema is invalid, the code "
    "does not parse or calls unknown functions, or example_input fails."
)
REGISTER_INPUT: dict[str, Any] = {
    "type": "object",
    "properties": _FIELDS,
    "required": ["name", "description", "code", "input_schema", "output_schema"],
    "additionalProperties": False,
}
UPDATE_DESCRIPTION = (
    "Save a new version of an existing skill (fields left out keep their current value); the "
    "previous versions are kept and the new version's stats start again."
)
UPDATE_INPUT: dict[str, Any] = {
    "type": "object",
    "properties": _FIELDS,
    "required": ["name"],
    "additionalProperties": False,
}
REGISTERED_OUTPUT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "integer"},
        "trust_level": {"type": "string", "enum": ["untrusted", "provisional", "trusted"]},
        "depends_on": {"type": "array", "items": {"type": "string"}},
        "message": {"type": "string"},
    },
    "required": ["name", "version", "trust_level", "depends_on", "message"],
}
