"""OpenAI Agents SDK integration (``pip install codemode[openai-agents]``).

``execute_typescript`` as an ``agents.FunctionTool``, and the SDK's own function tools (made
with ``@function_tool``) as tools the program calls::

    from agents import Agent, Runner, function_tool
    from codemode.integrations.openai_agents import as_function_tool, codemode_instructions

    @function_tool
    def get_order(order_id: str) -> dict: ...

    tools = [get_order, get_customer]
    agent = Agent(
        name="support",
        instructions=codemode_instructions(tools, "You answer questions about orders."),
        tools=[as_function_tool(tools)],
    )
    result = await Runner.run(agent, "What did Ada order?")

The TypeScript declarations of the tools go in the agent's instructions
(:func:`codemode_instructions`), and the tool description stays short: some OpenAI deployments
still limit function descriptions to 1024 characters. ``include_declarations=True`` puts the
whole prompt in the tool description instead, for an agent whose instructions you do not own.

Function tools called from a program are invoked through their ``on_invoke_tool`` with an
``agents.tool_context.ToolContext`` derived from the ``execute_typescript`` call (same run
context, usage, agent and run config; call id ``<execute call id>:<n>``). A tool that needs
approval or has tool guardrails is refused (a program call would bypass them); ``is_enabled``
is not consulted. ``@function_tool`` turns a tool's exceptions into a generic message string by
default, which the program then gets as the result: create the tool with
``failure_error_function=None`` to have the program see a ``ToolError`` instead.

With skills: give :func:`as_function_tools` and :func:`codemode_instructions` a
request's :class:`~codemode.skills.SkillContext` (from :func:`codemode.skills.with_skills`).
The tools are the context's (``execute_typescript`` whose programs call ``skill_*``, the
management tools, each selected skill as a tool of its own), in a list kept up to date: a
skill registered during the run is added to it, and the SDK reads an agent's ``tools`` at
every turn, so the model can call the new skill directly from its next turn. The
instructions are then a function the SDK calls at every turn (the prompt declares the new
skills)::

    skills = await with_skills(cm, store=store, messages=[question])
    # or let the agent's model choose the skills (an agents.Model, or its name):
    # with_skills(cm, store=store, messages=[question], selector="llm", model="gpt-4o-mini")
    agent = Agent(
        name="support",
        instructions=codemode_instructions(skills, "You answer questions about orders."),
        tools=as_function_tools(skills),
    )
"""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from agents import FunctionTool, ModelBehaviorError, ToolOutputText
from agents.run_context import RunContextWrapper
from agents.tool_context import ToolContext
from openai.types.responses import ResponseFunctionToolCall
from pydantic_core import to_jsonable_python

from ..approvals import Decision, approve
from ..code_mode import CodeMode, create_code_mode
from ..errors import InvalidArgumentsError
from ..events import EventCallback
from ..execute_tool import ModelTool
from ..results import ExecutionResult
from ..tools import Tool, ToolBinding
from ._sources import (
    Source,
    code_mode_of,
    execute_tool_of,
    executor_of,
    is_skill_context,
    prompt_of,
    tools_of,
)
from .providers import strict_compatible

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ..skills import SkillContext

__all__ = [
    "as_function_tool",
    "as_function_tools",
    "codemode_instructions",
    "from_function_tool",
    "from_function_tools",
]

ToolSource = Source | Sequence[ToolBinding | FunctionTool]
"""What the helpers take: a code mode, a skill context, or tools (codemode tools and Agents SDK
function tools)."""


# -- execute_typescript as an Agents SDK tool ----------------------------------------------


def as_function_tool(
    tools: ToolSource,
    *,
    include_declarations: bool = False,
    on_event: EventCallback | None = None,
    **code_mode_options: Any,
) -> FunctionTool:
    """``execute_typescript`` as an ``agents.FunctionTool`` for an ``Agent``'s ``tools``.

    ``tools`` is a :class:`~codemode.CodeMode` (or a :class:`~codemode.skills.SkillContext`,
    whose programs then call the skills), or tools to build one from (with
    ``code_mode_options`` such as ``timeout=``): codemode tools and ``agents.FunctionTool``\\ s,
    converted with :func:`from_function_tools`. The tool takes ``{typescriptCode: string}`` (a
    strict-mode schema) and returns the execution's JSON output as a string, errors included
    (``{"success": false, "error": ...}``): it never fails the run. ``on_event`` receives the
    execution's live events (their ``toolCallId`` is the Agents SDK call id).

    Put the declarations in the agent's instructions with :func:`codemode_instructions`, or
    set ``include_declarations`` to put the whole system prompt in the tool description.
    """
    source = _code_mode(tools, code_mode_options)
    execute_tool = execute_tool_of(source)
    description = prompt_of(source) if include_declarations else execute_tool.description
    cm = code_mode_of(source)
    if cm.approvals is not None:
        return _approving_function_tool(cm, executor_of(source), execute_tool, description, on_event)
    return _function_tool_of(execute_tool, description, on_event)


def as_function_tools(
    cm: Source, *, include_declarations: bool = False, on_event: EventCallback | None = None
) -> list[FunctionTool]:
    """Every tool of ``cm.model_tools`` as an ``agents.FunctionTool``: ``execute_typescript``,
    and ``get_tool_declarations`` for a code mode made with ``prompt="compact"``.

    For a :class:`~codemode.skills.SkillContext`: its tools, in a list that follows the
    context (a skill registered or updated during the run is added or replaced in it, a new
    version below the context's ``min_trust`` removed); give this very list to the agent.
    Tools whose schema does not meet strict mode's rules are not strict."""
    first = as_function_tool(cm, include_declarations=include_declarations, on_event=on_event)
    tools = [first, *(_function_tool_of(t, t.description, on_event) for t in tools_of(cm)[1:])]
    if is_skill_context(cm):
        _follow(cm, tools, on_event)
    return tools


def _follow(context: SkillContext, tools: list[FunctionTool], on_event: EventCallback | None) -> None:
    """Keep ``tools`` (execute_typescript first) the function tools of ``context.tools``."""
    made = list(zip(tools_of(context)[1:], tools[1:], strict=True))

    def included(skill: Any) -> None:  # the context's own listener ran first: its tools are new
        known = made[:]
        made.clear()
        for spec in tools_of(context)[1:]:
            tool = next((tool for old, tool in known if old is spec), None)
            made.append((spec, tool or _function_tool_of(spec, spec.description, on_event)))
        tools[1:] = [tool for _, tool in made]

    context.runtime.listeners.append(included)


def codemode_instructions(
    tools: ToolSource, instructions: str | None = None, **code_mode_options: Any
) -> Any:
    """The agent's instructions: ``instructions`` (if any) followed by the code mode's system
    prompt (how to use ``execute_typescript`` and the TypeScript declarations of the tools).

    Give it the same tools (or :class:`~codemode.CodeMode`) and options as
    :func:`as_function_tool`; the same tools always give the same prompt (a string).
    For a :class:`~codemode.skills.SkillContext`, the instructions are a function of
    ``(run_context, agent)`` the SDK calls at every turn: the context's prompt then, which
    declares the skills registered since.
    """
    source = _code_mode(tools, code_mode_options)
    if is_skill_context(source):
        return _dynamic_instructions(source, instructions)
    return _with_instructions(prompt_of(source), instructions)


def _with_instructions(prompt: str, instructions: str | None) -> str:
    return f"{instructions.rstrip()}\n\n{prompt}" if instructions else prompt


def _dynamic_instructions(
    source: Source, instructions: str | None
) -> Callable[[RunContextWrapper[Any], Any], Awaitable[str]]:
    async def current(run_context: RunContextWrapper[Any], agent: Any) -> str:
        return _with_instructions(prompt_of(source), instructions)

    return current


def _code_mode(tools: ToolSource, options: Mapping[str, Any]) -> Source:
    if isinstance(tools, CodeMode) or is_skill_context(tools):
        if options:
            raise TypeError(f"options {sorted(options)} apply to tools, not to an existing CodeMode")
        return tools
    return create_code_mode(from_function_tools(tools), **options)


def _function_tool_of(
    model_tool: ModelTool, description: str, on_event: EventCallback | None
) -> FunctionTool:
    async def on_invoke_tool(ctx: ToolContext[Any], input: str) -> str:
        try:
            arguments = json.loads(input) if input.strip() else {}
        except ValueError as e:
            return _json(_invalid_arguments(f"{model_tool.name}: the arguments are not valid JSON: {e}"))
        if not isinstance(arguments, dict):
            return _json(_invalid_arguments(f"{model_tool.name}: the arguments must be a JSON object"))
        call_id = getattr(ctx, "tool_call_id", None)
        token = _CURRENT_CALL.set(_OuterCall(ctx, itertools.count(1)))
        try:
            output = await model_tool.call(arguments, tool_call_id=call_id, on_event=on_event)
        finally:
            _CURRENT_CALL.reset(token)
        return _json(output)

    schema = copy.deepcopy(dict(model_tool.input_schema))
    return FunctionTool(
        name=model_tool.name,
        description=description,
        params_json_schema=schema,
        on_invoke_tool=on_invoke_tool,
        # the SDK would make every property of a non-strict schema required
        strict_json_schema=strict_compatible(schema),
    )


def _approving_function_tool(
    cm: CodeMode,
    execute: Callable[..., Awaitable[ExecutionResult]],
    execute_tool: ModelTool,
    description: str,
    on_event: EventCallback | None,
) -> FunctionTool:
    """``execute_typescript`` for a code mode whose tools may need approval.

    The SDK decides on approval before a tool runs, so the program runs in the tool's
    ``needs_approval`` policy: a program that pauses makes the call need approval (a
    ``ToolApprovalItem`` in ``result.interruptions``); ``state.approve(item)`` resumes it with
    every pending call approved, ``state.reject(item, rejection_message=...)`` leaves it
    (the model gets the message). A program that finishes without pausing needs no approval,
    and the tool returns its result without running it again. A program that pauses again
    after an approval returns its paused output (the model reads that it waits; the run stays
    in the store, resumable with ``cm.resume`` and the token of the ``execution_paused`` event):
    an approval covers only the calls the person was shown.
    """
    outcomes: dict[str, ExecutionResult] = {}

    async def policy(ctx: RunContextWrapper[Any], params: dict[str, Any], call_id: str) -> bool:
        code = params.get("typescriptCode")
        if call_id in outcomes or not isinstance(code, str):
            return call_id in outcomes and outcomes[call_id].paused is not None
        token = _CURRENT_CALL.set(_OuterCall(ctx, itertools.count(1)))
        try:
            outcomes[call_id] = await execute(code, tool_call_id=call_id, on_event=on_event)
        finally:
            _CURRENT_CALL.reset(token)
        return outcomes[call_id].paused is not None

    async def on_invoke_tool(ctx: ToolContext[Any], input: str) -> str:
        call_id = getattr(ctx, "tool_call_id", None) or ""
        result = outcomes.pop(call_id, None)
        if result is None:  # the policy did not run it (arguments it could not read)
            answer: str = await plain.on_invoke_tool(ctx, input)
            return answer
        token = _CURRENT_CALL.set(_OuterCall(ctx, itertools.count(1)))
        try:
            if result.paused is not None:  # approved: the calls the person saw, no later ones
                decisions: dict[int | str, Decision] = {
                    call.call_id: approve() for call in result.paused.pending
                }
                result = await cm.resume(result.paused.token, decisions, on_event=on_event)
        finally:
            _CURRENT_CALL.reset(token)
        return _json(result.to_tool_output())

    plain = _function_tool_of(execute_tool, description, on_event)
    return FunctionTool(
        name=plain.name,
        description=description,
        params_json_schema=plain.params_json_schema,
        on_invoke_tool=on_invoke_tool,
        strict_json_schema=True,
        needs_approval=policy,
    )


def _invalid_arguments(message: str) -> dict[str, Any]:
    error = {"kind": "invalid_args", "name": "InvalidArgumentsError", "message": message}
    return {"success": False, "error": error, "logs": []}


def _json(output: Any) -> str:
    return json.dumps(output, ensure_ascii=False, separators=(",", ":"))


# -- Agents SDK function tools as codemode tools -------------------------------------------


@dataclass(frozen=True)
class _OuterCall:
    """The ``execute_typescript`` call a program runs in: the context its tool calls get."""

    context: RunContextWrapper[Any]
    ids: Iterator[int]


_CURRENT_CALL: ContextVar[_OuterCall | None] = ContextVar("codemode_openai_agents_call", default=None)


def from_function_tools(
    tools: Iterable[ToolBinding | FunctionTool], *, context: Any = None
) -> list[ToolBinding]:
    """The tools for :func:`codemode.create_code_mode`: each ``agents.FunctionTool`` converted
    with :func:`from_function_tool`, codemode tools as they are. Other Agents SDK tools (hosted
    ones such as ``WebSearchTool``) cannot be called from a program: ``TypeError``."""
    converted: list[ToolBinding] = []
    for tool in tools:
        if isinstance(tool, FunctionTool):
            converted.append(from_function_tool(tool, context=context))
        elif isinstance(tool, ToolBinding):
            converted.append(tool)
        else:
            raise TypeError(f"{type(tool).__name__} is not a function tool: a program cannot call it")
    return converted


def from_function_tool(tool: FunctionTool, *, context: Any = None) -> Tool:
    """An ``agents.FunctionTool`` as a codemode tool ``external_<name>``.

    Its input schema is the tool's ``params_json_schema``, with strict mode's "every property
    required" relaxed: properties with a default, or that accept ``null``, are optional in the
    program (the tool then gets the default, or ``null``). Its ``output_json_schema``, if set,
    types the result. The tool runs through its ``on_invoke_tool`` (so its own argument
    parsing, context injection and failure handling apply) and its ``timeout_seconds`` is
    honoured; its result (a pydantic model, dataclass, ``ToolOutputText``...) is converted to
    JSON data.

    Inside an Agents SDK run the tool gets a ``ToolContext`` carrying the run's context; called
    outside one (e.g. ``cm.execute`` directly), a fresh ``ToolContext`` with ``context``.
    Raises ``ValueError`` for a tool that needs approval or has tool guardrails.
    """
    _check_callable_from_program(tool)
    schema, nullable = _program_schema(tool)
    return Tool.from_schema(
        tool.name,
        tool.description,
        schema,
        tool.output_json_schema,
        _handler(tool, nullable, context),
    )


def _check_callable_from_program(tool: FunctionTool) -> None:
    if tool.needs_approval is not False:
        raise ValueError(f"function tool {tool.name!r} needs approval, which a program call would bypass")
    if tool.tool_input_guardrails or tool.tool_output_guardrails:
        raise ValueError(
            f"function tool {tool.name!r} has tool guardrails, which a program call would bypass"
        )


def _program_schema(tool: FunctionTool) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The input schema for the program, and the properties to fill with ``null`` when missing."""
    schema = copy.deepcopy(tool.params_json_schema)
    properties, required = schema.get("properties"), schema.get("required")
    if not tool.strict_json_schema or not isinstance(properties, dict) or not isinstance(required, list):
        return schema, ()
    with_default = {name for name, p in properties.items() if isinstance(p, dict) and "default" in p}
    nullable = tuple(
        name
        for name in required
        if name not in with_default
        and isinstance(properties.get(name), dict)
        and _accepts_null(properties[name])
    )
    schema["required"] = [name for name in required if name not in with_default and name not in nullable]
    return schema, nullable


def _accepts_null(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    variants = schema.get("anyOf", schema.get("oneOf"))
    return isinstance(variants, list) and any(isinstance(v, dict) and _accepts_null(v) for v in variants)


def _handler(tool: FunctionTool, nullable: tuple[str, ...], default_context: Any) -> Any:
    async def handler(args: dict[str, Any]) -> Any:
        arguments = {**dict.fromkeys(nullable), **args}
        text = json.dumps(arguments, ensure_ascii=False)
        ctx = _tool_context(tool.name, text, default_context)
        try:
            result = await _invoke(tool, ctx, text)
        except ModelBehaviorError as e:  # the tool rejected its arguments
            raise InvalidArgumentsError(str(e)) from e
        return _to_json(result)

    return handler


async def _invoke(tool: FunctionTool, ctx: ToolContext[Any], arguments: str) -> Any:
    if tool.timeout_seconds is None:
        return await tool.on_invoke_tool(ctx, arguments)
    with anyio.move_on_after(tool.timeout_seconds):
        return await tool.on_invoke_tool(ctx, arguments)
    raise TimeoutError(f"{tool.name} timed out after {tool.timeout_seconds:g} s")


def _tool_context(name: str, arguments: str, default_context: Any) -> ToolContext[Any]:
    """The SDK's own context for one call from a program: derived from the ``execute_typescript``
    call when there is one, else fresh (with ``default_context``)."""
    outer = _CURRENT_CALL.get()
    if outer is None:
        call_id = f"codemode_{uuid.uuid4().hex}"
        return ToolContext(
            default_context,
            tool_name=name,
            tool_call_id=call_id,
            tool_arguments=arguments,
            tool_call=_tool_call(call_id, name, arguments),
        )
    run = outer.context
    call_id = f"{getattr(run, 'tool_call_id', 'codemode')}:{next(outer.ids)}"
    return ToolContext(
        run.context,
        run.usage,
        tool_name=name,
        tool_call_id=call_id,
        tool_arguments=arguments,
        tool_call=_tool_call(call_id, name, arguments),
        agent=getattr(run, "agent", None),
        run_config=getattr(run, "run_config", None),
        turn_input=list(run.turn_input),
    )


def _tool_call(call_id: str, name: str, arguments: str) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(type="function_call", call_id=call_id, name=name, arguments=arguments)


def _to_json(value: Any) -> Any:
    """A function tool's result as JSON data for the program."""
    if isinstance(value, ToolOutputText):
        return value.text
    return to_jsonable_python(value, fallback=str)
