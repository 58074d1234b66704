"""LangChain and LangGraph: ``execute_typescript`` as a LangChain tool, over LangChain tools.

Install with ``pip install codemode[langchain]`` (``langchain-core``; add ``langgraph`` for
its agents). Existing LangChain tools (``@tool`` functions, ``StructuredTool`` objects, any
``BaseTool``) become functions ``external_<name>(input)`` of the program, and the result is
one LangChain tool to give an agent::

    from langgraph.prebuilt import create_react_agent
    from codemode.integrations.langchain import as_langchain_tool

    execute = as_langchain_tool([get_weather, search_flights], timeout=10)
    agent = create_react_agent(model, [execute])
    await agent.ainvoke({"messages": [("user", "Cheapest flight to the warmest city?")]})

By default the tool's description carries the whole code mode prompt (rules and the
TypeScript declarations of every function), so the tool works wherever LangChain tools do.
With ``instructions="system_prompt"`` its description is short and ``tool.system_prompt``
goes into the agent's system message instead (``create_react_agent(..., prompt=...)``).

The tool returns the model-facing JSON (``{"success": true, "result": ..., "logs": [...]}``
or ``{"success": false, "error": {"kind": ..., ...}, "logs": [...]}``) as a string. Called
with a model's tool call (as agents do), it returns a ``ToolMessage`` whose ``artifact`` is
the :class:`codemode.ExecutionResult` and whose ``status`` is ``"error"`` when the program
failed. Live execution events are dispatched as LangChain custom events (visible in
``astream_events`` as ``on_custom_event``, named ``code_mode:...``).

With skills: give :func:`as_langchain_tools` a request's :class:`~codemode.skills.SkillContext`
as ``code_mode``; the tools are then the context's (``execute_typescript`` whose programs
call ``skill_*``, ``search_skills``/``get_skill``/``register_skill``/``update_skill``, each
selected skill as a tool of its own). LangGraph's ReAct agent binds its tools when it is
built, so build the tools and the agent again for each turn (both are cheap), and pass
:func:`codemode_prompt` as its ``prompt``, read at every step: a skill registered in a turn
is callable as ``skill_<name>`` from the next program on, and a tool of its own from the next
turn::

    skills = await with_skills(cm, store=store, messages=messages)
    # or let the agent's chat model choose the skills:
    # with_skills(cm, store=store, messages=messages, selector="llm", model=model)
    for user_message in conversation:
        tools = as_langchain_tools(code_mode=skills, instructions="system_prompt")
        agent = create_react_agent(model, tools, prompt=codemode_prompt(skills))
        state = await agent.ainvoke({"messages": [*state["messages"], user_message]})
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import anyio
import orjson
from langchain_core.callbacks import (
    AsyncCallbackManagerForToolRun,
    CallbackManagerForToolRun,
    adispatch_custom_event,
)
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, ToolException
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import PrivateAttr, ValidationError

from ..code_mode import CodeMode, create_code_mode
from ..errors import InvalidArgumentsError
from ..events import Event, EventCallback
from ..execute_tool import EXECUTE_DESCRIPTION, ModelTool
from ..pydantic_io import describe_errors, to_json_data
from ..results import ExecutionResult
from ..tools import Tool, ToolBinding, js_identifier
from ._sources import (
    Source,
    code_mode_of,
    execute_tool_of,
    executor_of,
    is_skill_context,
    prompt_of,
    tools_of,
)

__all__ = [
    "CodeModeTool",
    "as_langchain_tool",
    "as_langchain_tools",
    "codemode_prompt",
    "from_langchain_tool",
    "from_langchain_tools",
]

Instructions = Literal["description", "system_prompt"]

_EMPTY_SCHEMA: Mapping[str, Any] = {"type": "object", "properties": {}}

# The id of the model's tool call being run (set by CodeModeTool.run / .arun, which receive it).
_tool_call_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "codemode_langchain_tool_call_id", default=None
)


# -- LangChain tools inside the program --------------------------------------------------


def from_langchain_tool(tool: BaseTool) -> Tool:
    """A codemode tool that calls the LangChain ``tool`` (with ``ainvoke``).

    Its name, description and input JSON Schema are those the tool has when bound to a chat
    model (``convert_to_openai_tool``: injected arguments left out); the name is converted to
    a JavaScript identifier when it is not one (``get-weather`` -> ``external_get_weather``).
    The tool's result goes back to the program as JSON data (a string stays a string).

    A ``ToolException`` or any other exception the tool raises rejects the call in the program
    with a ``ToolError`` carrying its message, whatever the tool's ``handle_tool_error``
    says; arguments its schema rejects give an ``InvalidArgumentsError``.
    """
    spec = convert_to_openai_tool(tool)["function"]
    name: str = spec["name"]
    sandbox_name = f"external_{js_identifier(name)}"
    # errors must reach the program as errors, not as a result string
    runner = tool.model_copy(update={"handle_tool_error": False, "handle_validation_error": False})

    async def handler(args: dict[str, Any]) -> Any:
        try:
            output = await runner.ainvoke(args)
        except ValidationError as e:
            raise InvalidArgumentsError(f"{sandbox_name}: invalid arguments: {describe_errors(e)}") from None
        return _json_output(output)

    return Tool.from_schema(
        name, spec.get("description", ""), spec.get("parameters", _EMPTY_SCHEMA), None, handler
    )


def from_langchain_tools(tools: Sequence[BaseTool | ToolBinding]) -> list[ToolBinding]:
    """``tools`` for a code mode: LangChain tools converted (:func:`from_langchain_tool`),
    codemode tools unchanged."""
    converted: list[ToolBinding] = []
    for tool in tools:
        if isinstance(tool, BaseTool):
            converted.append(from_langchain_tool(tool))
        elif isinstance(tool, ToolBinding):
            converted.append(tool)
        else:
            raise TypeError(f"expected a LangChain BaseTool or a codemode Tool, got {tool!r}")
    return converted


def _json_output(output: Any) -> Any:
    """A LangChain tool's output as the JSON value the program receives."""
    if isinstance(output, ToolMessage):
        if output.status == "error":
            raise ToolException(output.text)
        output = output.content
    return to_json_data(output)


# -- the tool the model calls ------------------------------------------------------------


class CodeModeTool(BaseTool):
    """A code mode's model tool (``execute_typescript``, or ``get_tool_declarations`` with a
    compact prompt) as a LangChain tool. Make it with :func:`as_langchain_tool`.

    It takes ``{"typescriptCode": string}`` and returns the model-facing output as a JSON
    string; called with a tool call, a ``ToolMessage`` with the :class:`ExecutionResult` as
    its ``artifact`` and ``status="error"`` when the program failed. ``ainvoke`` is the way
    to run it; ``invoke`` runs the program in an event loop of its own (so not from a thread
    that is running one).
    """

    code_mode: CodeMode
    """The code mode that runs the programs."""
    spec: ModelTool
    """The codemode model tool this tool is (``code_mode.tool`` for execute_typescript)."""
    on_event: EventCallback | None = None
    """Receives each live event of an execution (sync or async)."""
    dispatch_events: bool = True
    """Dispatch the live events as LangChain custom events too."""
    skills: Any = None
    """The :class:`~codemode.skills.SkillContext` this tool belongs to, if any: its
    ``execute_typescript`` runs programs with the skills, and ``system_prompt`` is its prompt."""
    _pauses: dict[str, list[ExecutionResult]] = PrivateAttr(default_factory=dict)
    """The results of each tool call paused for approval (see ``_execute``)."""

    @property
    def system_prompt(self) -> str:
        """The code mode's prompt (rules and declarations), for the agent's system message;
        with ``skills``, the context's prompt as it is now (it declares the skills registered since)."""
        return prompt_of(self._source)

    @property
    def _source(self) -> Source:
        return self.skills if self.skills is not None else self.code_mode

    async def arun(
        self, tool_input: str | dict[str, Any], *args: Any, tool_call_id: str | None = None, **kwargs: Any
    ) -> Any:
        """``BaseTool.arun``, remembering the model's tool call id for the execution."""
        token = _tool_call_id.set(tool_call_id)
        try:
            return await super().arun(tool_input, *args, tool_call_id=tool_call_id, **kwargs)
        finally:
            _tool_call_id.reset(token)

    def run(
        self, tool_input: str | dict[str, Any], *args: Any, tool_call_id: str | None = None, **kwargs: Any
    ) -> Any:
        """``BaseTool.run``, remembering the model's tool call id for the execution."""
        token = _tool_call_id.set(tool_call_id)
        try:
            return super().run(tool_input, *args, tool_call_id=tool_call_id, **kwargs)
        finally:
            _tool_call_id.reset(token)

    async def _arun(
        self, run_manager: AsyncCallbackManagerForToolRun | None = None, **arguments: Any
    ) -> str | ToolMessage:
        return await self._call(arguments)

    def _run(
        self, run_manager: CallbackManagerForToolRun | None = None, **arguments: Any
    ) -> str | ToolMessage:
        return anyio.run(functools.partial(self._call, arguments))

    async def _call(self, arguments: dict[str, Any]) -> str | ToolMessage:
        tool_call_id = _tool_call_id.get()
        artifact: ExecutionResult | dict[str, Any]
        code = arguments.get("typescriptCode")
        if self.spec is execute_tool_of(self._source) and isinstance(code, str):
            on_event = self._emit if self.on_event is not None or self.dispatch_events else None
            artifact = await self._execute(code, tool_call_id, on_event)
            output = artifact.to_tool_output()
        else:  # the discovery tool, or arguments the tool answers with an error
            output = artifact = await self.spec.call(arguments, tool_call_id=tool_call_id)
        content = orjson.dumps(output).decode()
        if tool_call_id is None:
            return content
        status = "success" if output.get("success") else "error"
        return ToolMessage(
            content, artifact=artifact, tool_call_id=tool_call_id, name=self.name, status=status
        )

    async def _execute(
        self, code: str, tool_call_id: str | None, on_event: EventCallback | None
    ) -> ExecutionResult:
        """Run the program; in a LangGraph graph, a pause for approval is LangGraph's
        ``interrupt()`` (its value: ``{"resume_token", "pending"}``), and the graph resumed with
        ``Command(resume={"<call_id>": "approve" | {"reject": reason} | {"override": value}})``
        (or ``None``: approve all) resumes the program.

        LangGraph runs the tool again from its start on resume: the pauses of each tool call
        are kept here (in this process), so the program runs once and each ``interrupt()``
        gets its answer in order.
        """
        steps = self._pauses.get(tool_call_id) if tool_call_id is not None else None
        if steps is None:
            execute = executor_of(self._source)  # with skills, the program runs with them
            result = await execute(code, tool_call_id=tool_call_id, on_event=on_event)
            if result.paused is None or tool_call_id is None:
                return result
            steps = self._pauses[tool_call_id] = [result]
        from langgraph.types import interrupt

        from ..approvals.decisions import decisions_from_json

        result, taken = steps[0], 1
        while result.paused is not None:
            paused = result.paused
            pending = [call.model_dump() for call in paused.pending]
            answer = interrupt({"resume_token": paused.token, "pending": pending})
            if taken < len(steps):  # answered in an earlier run of this tool call
                result = steps[taken]
            else:
                decisions = decisions_from_json(answer, [call["call_id"] for call in pending])
                result = await self.code_mode.resume(paused.token, decisions, on_event=on_event)
                steps.append(result)
            taken += 1
        if tool_call_id is not None:  # (else nothing was kept)
            self._pauses.pop(tool_call_id, None)
        return result

    async def _emit(self, event: Event) -> None:
        if self.on_event is not None:
            outcome = self.on_event(event)
            if outcome is not None:
                await outcome
        if self.dispatch_events:
            await adispatch_custom_event(event.name, event.value)


def as_langchain_tool(
    tools: Sequence[BaseTool | ToolBinding] = (),
    *,
    code_mode: Source | None = None,
    instructions: Instructions = "description",
    on_event: EventCallback | None = None,
    dispatch_events: bool = True,
    **options: Any,
) -> CodeModeTool:
    """The ``execute_typescript`` LangChain tool over ``tools`` (LangChain tools and codemode
    tools, mixed freely), or over an existing ``code_mode`` (a :class:`~codemode.CodeMode`,
    or a :class:`~codemode.skills.SkillContext`: its programs then call the skills; use
    :func:`as_langchain_tools` to get the context's other tools too).

    - ``instructions="description"``: the tool's description is the code mode prompt (rules
      and TypeScript declarations), so nothing else is needed. ``"system_prompt"``: a short
      description; put ``tool.system_prompt`` in the agent's system message.
    - ``on_event``: receives each live :class:`codemode.Event`; ``dispatch_events``
      dispatches them as LangChain custom events too (``astream_events``).
    - ``options``: for :func:`codemode.create_code_mode` (``timeout``, ``memory_limit_mb``,
      ``driver``, other limits). For large tool sets use :func:`as_langchain_tools` with
      ``prompt="compact"``.
    """
    built = _code_mode(tools, code_mode, options)
    if code_mode_of(built).prompt_mode == "compact":
        raise ValueError("a compact prompt needs the discovery tool too: use as_langchain_tools()")
    return _langchain_tool(built, execute_tool_of(built), instructions, on_event, dispatch_events)


def as_langchain_tools(
    tools: Sequence[BaseTool | ToolBinding] = (),
    *,
    code_mode: Source | None = None,
    instructions: Instructions = "description",
    on_event: EventCallback | None = None,
    dispatch_events: bool = True,
    **options: Any,
) -> list[CodeModeTool]:
    """Every tool to give the agent (see :func:`as_langchain_tool` for the arguments):
    ``execute_typescript``, plus ``get_tool_declarations`` with ``prompt="compact"``, which
    keeps only names and one-line descriptions in the prompt for large tool sets.

    With a :class:`~codemode.skills.SkillContext` as ``code_mode``: the context's tools as they
    are now (the management tools, the skills as tools); call it again after a skill is
    registered to get the new one (see the module's doc)."""
    built = _code_mode(tools, code_mode, options)
    return [_langchain_tool(built, spec, instructions, on_event, dispatch_events) for spec in tools_of(built)]


def codemode_prompt(source: Source | CodeModeTool, instructions: str | None = None) -> Any:
    """A ``prompt`` for LangGraph's ``create_react_agent`` read at every step: the system
    message is ``instructions`` (if any) and the prompt of ``source`` (a code mode, a skill
    context or one of these tools) as it is then, so a skill registered during the run is
    declared in the next step's prompt."""
    from langchain_core.messages import SystemMessage

    def prompt(state: Any) -> list[Any]:
        text = source.system_prompt
        if instructions:
            text = f"{instructions.rstrip()}\n\n{text}"
        messages = state["messages"] if isinstance(state, Mapping) else state.messages
        return [SystemMessage(text), *messages]

    return prompt


def _code_mode(
    tools: Sequence[BaseTool | ToolBinding], code_mode: Source | None, options: dict[str, Any]
) -> Source:
    if code_mode is None:
        return create_code_mode(from_langchain_tools(tools), **options)
    if tools or options:
        raise ValueError("pass either tools (and options) or code_mode, not both")
    return code_mode


def _langchain_tool(
    source: Source,
    spec: ModelTool,
    instructions: Instructions,
    on_event: EventCallback | None,
    dispatch_events: bool,
) -> CodeModeTool:
    if instructions not in ("description", "system_prompt"):
        raise ValueError(f"instructions must be 'description' or 'system_prompt', not {instructions!r}")
    description = spec.description
    if spec is execute_tool_of(source):
        description = prompt_of(source) if instructions == "description" else EXECUTE_DESCRIPTION
    return CodeModeTool(
        name=spec.name,
        description=description,
        args_schema=dict(spec.input_schema),
        code_mode=code_mode_of(source),
        spec=spec,
        on_event=on_event,
        dispatch_events=dispatch_events,
        skills=source if is_skill_context(source) else None,
    )
