"""pydantic-ai integration: one ``execute_typescript`` tool for an agent, over its own tools.

:class:`CodeModeToolset` is a pydantic-ai toolset. Give it to an agent instead of the tools
it wraps; the model then sees a single tool, ``execute_typescript``, and writes a program
that calls those tools as ``external_<name>(input)``::

    from pydantic_ai import Agent, RunContext

    from codemode.integrations.pydantic_ai import CodeModeToolset

    async def get_price(sku: str) -> float:
        '''Price of one unit of a product.'''
        ...

    async def get_stock(ctx: RunContext[Shop], sku: str) -> int:
        '''Units in stock.'''
        return await ctx.deps.stock(sku)

    toolset = CodeModeToolset.from_tools([get_price, get_stock], timeout=10)
    agent = Agent("openai:gpt-5", deps_type=Shop, toolsets=[toolset])

Where the prompt goes: by default the toolset contributes codemode's system prompt (the rules
and the TypeScript declarations of every wrapped tool) to the agent's instructions, through
pydantic-ai's toolset instructions (:meth:`CodeModeToolset.get_instructions`), so nothing else
is needed. ``prompt_placement="description"`` puts that text in the tool's description
instead (for setups that rewrite or drop instructions); ``"none"`` leaves it out, for
applications that place :attr:`CodeModeToolset.instructions` themselves.

Wrapped pydantic-ai tools keep their JSON schemas (pydantic-ai computes them) and their
behaviour: arguments are validated by pydantic-ai's own validator (and ``args_validator``),
tools run through their ``FunctionToolset`` (so its timeouts apply), and tools that take a
``RunContext`` get the context of the run that called ``execute_typescript`` (with
``tool_name`` set to their own name). Those tools therefore only run inside an agent run.
Capability hooks and per-tool tracing of the agent's tool manager do not apply to calls made
from a program: the ``execute_typescript`` call itself is the traced tool call.

Execution events (``code_mode:external_call``, ...) are forwarded into the run's event stream
as :class:`CodeModeEvent` custom events (see ``Agent.run(event_stream_handler=...)``).
"""

from __future__ import annotations

import contextvars
import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pydantic_core
from pydantic import TypeAdapter, ValidationError

try:
    import pydantic_ai  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "codemode.integrations.pydantic_ai needs pydantic-ai: pip install 'codemode[pydantic-ai]'"
    ) from e
from pydantic_ai import CustomEvent, FunctionToolset, RunContext, ToolDefinition, ToolReturn
from pydantic_ai import Tool as PydanticAITool
from pydantic_ai.exceptions import ApprovalRequired, CallDeferred, ModelRetry, ToolFailed
from pydantic_ai.messages import InstructionPart
from pydantic_ai.tools import AgentDepsT
from pydantic_ai.toolsets import AbstractToolset, ToolsetTool
from typing_extensions import Self

from ..code_mode import CodeMode, create_code_mode
from ..driver import IsolateDriver
from ..events import Event, EventCallback
from ..execute_tool import ModelTool
from ..tools import InvalidArguments, Tool, ToolBinding, js_identifier

if TYPE_CHECKING:
    from ..skills import SkillContext

__all__ = ["CodeModeEvent", "CodeModeToolset", "PromptPlacement", "ToolSource", "to_codemode_tools"]

ToolSource = ToolBinding | PydanticAITool[Any] | FunctionToolset[Any] | Callable[..., Any]
"""What :meth:`CodeModeToolset.from_tools` accepts: a native codemode tool, a
``pydantic_ai.Tool``, a ``FunctionToolset`` (all its tools), or a plain function (with or
without a ``RunContext`` first parameter, as ``FunctionToolset`` accepts it)."""

PromptPlacement = Literal["instructions", "description", "none"]
"""Where the codemode system prompt (rules and declarations) goes: the agent's instructions,
the ``execute_typescript`` description, or nowhere (the application places it)."""

_ANY_ARGUMENTS = TypeAdapter(dict[str, Any]).validator
"""The tools' own ``call`` checks their arguments and answers the model with a codemode
``invalid_args`` error, the same reply every integration gives."""


@dataclass(kw_only=True)
class CodeModeEvent(CustomEvent):
    """A codemode execution event, forwarded into the agent run's event stream.

    ``event_name`` is the codemode event name (``code_mode:execution_started``,
    ``code_mode:external_call``, ...) and ``value`` its payload (with ``toolCallId``, the
    ``execute_typescript`` call's id, and ``timestamp``). pydantic-ai registers it as the
    custom event ``code_mode``.
    """

    event_name: str
    value: dict[str, Any] = field(default_factory=dict)


# -- calling pydantic-ai tools from a program -------------------------------------------------


@dataclass
class _RunScope:
    """The agent run an ``execute_typescript`` call belongs to, seen by the program's tool calls."""

    ctx: RunContext[Any]
    listed: dict[int, dict[str, ToolsetTool[Any]]] = field(default_factory=dict)

    async def tool(self, toolset: FunctionToolset[Any], name: str) -> ToolsetTool[Any]:
        """The toolset's tool ``name`` as pydantic-ai lists it for this run (listed once per call)."""
        tools = self.listed.get(id(toolset))
        if tools is None:
            tools = self.listed[id(toolset)] = await toolset.get_tools(self.ctx)
        return tools[name]


_current_run: contextvars.ContextVar[_RunScope | None] = contextvars.ContextVar(
    "codemode_pydantic_ai_run", default=None
)
"""Set while ``execute_typescript`` runs; tool handlers run in copies of that context."""


class _ToolCallFailed(Exception):
    """A wrapped tool failed the pydantic-ai way (ModelRetry, ToolFailed, a deferral): the
    program gets a ToolError with the message."""


def _validation_message(error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or "input"
        problems.append(f"{location}: {item['msg']}")
    return "; ".join(problems)


async def _validate(
    tool: ToolsetTool[Any], ctx: RunContext[Any], sandbox_name: str, args: Any
) -> dict[str, Any]:
    """pydantic-ai's own argument validation: the tool's validator, then its ``args_validator``."""
    try:
        validated: dict[str, Any] = tool.args_validator.validate_python(args, context=ctx.validation_context)
        if tool.args_validator_func is not None:
            outcome = tool.args_validator_func(ctx, **validated)
            if inspect.isawaitable(outcome):
                await outcome
    except ValidationError as e:
        raise InvalidArguments(f"{sandbox_name}: invalid arguments: {_validation_message(e)}") from None
    except (ModelRetry, ToolFailed) as e:
        raise InvalidArguments(f"{sandbox_name}: invalid arguments: {e.message}") from None
    return validated


def _json_result(result: Any) -> Any:
    """A tool's return value as JSON data for the program (``ToolReturn`` gives its ``return_value``)."""
    if isinstance(result, ToolReturn):
        result = result.return_value
    return pydantic_core.to_jsonable_python(result)


def _handler(toolset: FunctionToolset[Any], name: str, sandbox_name: str) -> Callable[[Any], Awaitable[Any]]:
    """The codemode handler that runs the pydantic-ai tool ``name`` of ``toolset``."""

    async def call(args: Any) -> Any:
        scope = _current_run.get()
        if scope is None:
            raise RuntimeError(
                f"{sandbox_name} is a pydantic-ai tool: it runs inside an agent run, when the model "
                "calls the CodeModeToolset's execute_typescript"
            )
        tool = await scope.tool(toolset, name)
        ctx = dataclasses.replace(scope.ctx, tool_name=name, retry=0, max_retries=tool.max_retries)
        validated = await _validate(tool, ctx, sandbox_name, args)
        try:
            result = await toolset.call_tool(name, validated, ctx, tool)
        except (ModelRetry, ToolFailed) as e:
            raise _ToolCallFailed(e.message) from None
        except (ApprovalRequired, CallDeferred):
            raise _ToolCallFailed(
                f"{sandbox_name} asked for approval or deferral, which a program cannot wait for"
            ) from None
        return _json_result(result)

    return call


def _check_convertible(tool: PydanticAITool[Any]) -> None:
    if tool.prepare is not None:
        raise ValueError(
            f"pydantic-ai tool {tool.name!r} has a prepare function: codemode's TypeScript "
            "declarations are fixed when the toolset is built, so per-step tool definitions "
            "cannot be honoured; drop `prepare` or keep this tool outside the CodeModeToolset"
        )
    if tool.requires_approval:
        raise ValueError(
            f"pydantic-ai tool {tool.name!r} requires approval: a running program cannot pause "
            "for human approval; keep this tool outside the CodeModeToolset"
        )


def _convert_toolset(toolset: FunctionToolset[Any]) -> list[ToolBinding]:
    converted: list[ToolBinding] = []
    for name, tool in toolset.tools.items():
        _check_convertible(tool)
        tool_def = tool.tool_def
        converted.append(
            Tool.from_schema(
                name,
                tool_def.description or "",
                tool_def.parameters_json_schema,
                tool_def.return_schema or None,  # pydantic-ai gives {} when the return type is unknown
                _handler(toolset, name, "external_" + js_identifier(name)),
            )
        )
    return converted


def _convert(sources: Iterable[ToolSource]) -> tuple[list[ToolBinding], list[FunctionToolset[Any]]]:
    """The codemode tools for ``sources`` and the function toolsets that run the pydantic-ai ones."""
    items: list[ToolBinding | FunctionToolset[Any]] = []
    loose: list[PydanticAITool[Any] | Callable[..., Any]] = []
    for source in sources:
        if isinstance(source, ToolBinding | FunctionToolset):
            items.append(source)
        elif isinstance(source, AbstractToolset):
            raise TypeError(
                f"{source.label} cannot be converted: only FunctionToolsets (whose tools are known "
                "when the CodeModeToolset is built) can be; toolsets that list their tools during a "
                "run (MCP servers, dynamic or wrapper toolsets) are not supported"
            )
        elif isinstance(source, PydanticAITool) or callable(source):
            loose.append(source)
        else:
            raise TypeError(f"not a tool: {source!r}")
    if loose:  # one function toolset for the loose tools, like an agent's own tools
        items.append(FunctionToolset(loose))
    tools: list[ToolBinding] = []
    toolsets: list[FunctionToolset[Any]] = []
    for item in items:
        if isinstance(item, FunctionToolset):
            tools.extend(_convert_toolset(item))
            toolsets.append(item)
        else:
            tools.append(item)
    return tools, toolsets


def to_codemode_tools(sources: Iterable[ToolSource]) -> list[ToolBinding]:
    """Codemode tools (``external_<name>``) for pydantic-ai tools, functions and function toolsets.

    Native codemode tools pass through unchanged. The pydantic-ai ones keep their JSON schemas
    and run only while a :class:`CodeModeToolset` handles an ``execute_typescript`` call of an
    agent run (they need its ``RunContext``). Tools with a ``prepare`` function or that require
    approval, and toolsets other than ``FunctionToolset``, are rejected (``ValueError`` /
    ``TypeError``).
    """
    return _convert(sources)[0]


# -- the toolset --------------------------------------------------------------------------------


class CodeModeToolset(AbstractToolset[AgentDepsT]):
    """A pydantic-ai toolset with one tool, ``execute_typescript``, that runs model-written
    TypeScript in codemode (two tools with ``prompt="compact"``: also ``get_tool_declarations``).

    Build it with :meth:`from_tools`, or over an existing :class:`codemode.CodeMode`. The tool
    returns codemode's model-facing output (``{success, result | error, logs}``); a failed
    program is a normal tool return, not a retry.
    """

    def __init__(
        self,
        code_mode: CodeMode,
        *,
        id: str | None = None,
        prompt_placement: PromptPlacement = "instructions",
        emit_events: bool = True,
        on_event: EventCallback | None = None,
        max_retries: int | None = None,
        wrapped_toolsets: Sequence[FunctionToolset[Any]] = (),
        skills: SkillContext | None = None,
    ) -> None:
        """Expose ``code_mode`` to a pydantic-ai agent.

        Args:
        code_mode: The code mode that runs the programs (its tools are the ``external_`` functions).
        id: The toolset's id (pydantic-ai needs one for durable execution).
        prompt_placement: Where the system prompt goes (see :data:`PromptPlacement`).
        emit_events: Forward execution events into the run's event stream as :class:`CodeModeEvent`.
        on_event: Also called with each :class:`codemode.Event` (may be async).
        max_retries: Retries for malformed ``execute_typescript`` calls (default: the agent's).
        wrapped_toolsets: Function toolsets whose tools ``code_mode`` calls: their instructions
            are added to this toolset's and their lifecycle follows it (:meth:`from_tools` sets it).
        skills: A request's skills (:func:`codemode.skills.with_skills` over ``code_mode``): the
            tools are then its tools (``execute_typescript`` with ``skill_*``, the management
            tools, the skills as direct tools), read again at each step, so a skill registered
            in this run is offered in the next step, and the prompt is its system prompt.
        """
        if prompt_placement not in ("instructions", "description", "none"):
            raise ValueError(
                f"prompt_placement must be 'instructions', 'description' or 'none', not {prompt_placement!r}"
            )
        self.code_mode = code_mode
        self.prompt_placement: PromptPlacement = prompt_placement
        self.emit_events = emit_events
        self.on_event = on_event
        self.max_retries = max_retries
        self.wrapped_toolsets: tuple[FunctionToolset[Any], ...] = tuple(wrapped_toolsets)
        self._id = id
        self.skills = skills

    @classmethod
    def from_tools(
        cls,
        tools: Iterable[ToolSource],
        *,
        driver: IsolateDriver | None = None,
        timeout: float = 30.0,
        memory_limit_mb: float = 128,
        prompt: Literal["full", "compact"] = "full",
        id: str | None = None,
        prompt_placement: PromptPlacement = "instructions",
        emit_events: bool = True,
        on_event: EventCallback | None = None,
        max_retries: int | None = None,
        **limits: Any,
    ) -> CodeModeToolset[Any]:
        """A code mode toolset over pydantic-ai tools and native codemode tools.

        ``tools`` mixes plain functions, ``pydantic_ai.Tool`` objects, ``FunctionToolset`` s and
        codemode tools (see :func:`to_codemode_tools`). ``driver``, ``timeout``,
        ``memory_limit_mb``, ``prompt`` and further ``limits`` configure the code mode (as
        :func:`codemode.create_code_mode`); the other options are the constructor's.
        """
        bindings, toolsets = _convert(tools)
        code_mode = create_code_mode(
            bindings, driver=driver, timeout=timeout, memory_limit_mb=memory_limit_mb, prompt=prompt, **limits
        )
        return cls(
            code_mode,
            id=id,
            prompt_placement=prompt_placement,
            emit_events=emit_events,
            on_event=on_event,
            max_retries=max_retries,
            wrapped_toolsets=toolsets,
        )

    @property
    def id(self) -> str | None:
        return self._id

    @property
    def instructions(self) -> str:
        """The codemode system prompt: the rules and the TypeScript declarations of every tool
        (and of the skills, with ``skills``)."""
        return self.skills.system_prompt if self.skills is not None else self.code_mode.system_prompt

    def _model_tools(self) -> dict[str, ModelTool]:
        tools = self.skills.tools if self.skills is not None else self.code_mode.model_tools
        return {tool.name: tool for tool in tools}

    def _tool_def(self, tool: ModelTool) -> ToolDefinition:
        description = tool.description
        if self.prompt_placement == "description" and tool.name == self.code_mode.tool.name:
            description = self.instructions
        return ToolDefinition(
            name=tool.name, description=description, parameters_json_schema=dict(tool.input_schema)
        )

    async def __aenter__(self) -> Self:
        for toolset in self.wrapped_toolsets:
            await toolset.__aenter__()
        return self

    async def __aexit__(self, *args: Any) -> bool | None:
        for toolset in reversed(self.wrapped_toolsets):
            await toolset.__aexit__(*args)
        return None

    async def get_instructions(self, ctx: RunContext[AgentDepsT]) -> list[str | InstructionPart] | None:
        """The codemode system prompt (a static part, cache-friendly) when ``prompt_placement``
        is ``"instructions"``, then the wrapped toolsets' own instructions."""
        parts: list[str | InstructionPart] = []
        if self.prompt_placement == "instructions":
            parts.append(InstructionPart(content=self.instructions, dynamic=self.skills is not None))
        for toolset in self.wrapped_toolsets:
            parts.extend(_instruction_list(await toolset.get_instructions(ctx)))
        return parts or None

    async def get_tools(self, ctx: RunContext[AgentDepsT]) -> dict[str, ToolsetTool[AgentDepsT]]:
        max_retries = self.max_retries if self.max_retries is not None else ctx.max_retries
        return {
            name: ToolsetTool(
                toolset=self,
                tool_def=self._tool_def(tool),
                max_retries=max_retries,
                args_validator=_ANY_ARGUMENTS,
            )
            for name, tool in self._model_tools().items()
        }

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[AgentDepsT], tool: ToolsetTool[AgentDepsT]
    ) -> dict[str, Any]:
        """Run ``execute_typescript`` (or ``get_tool_declarations``); returns the output for the model.

        A program that pauses for approval (a tool with ``requires_approval``) becomes
        pydantic-ai's deferred approval: the run ends with ``DeferredToolRequests`` whose
        ``metadata[tool_call_id]`` holds ``resume_token`` and the ``pending`` calls. Resume
        the agent with ``DeferredToolResults(approvals={tool_call_id: True},
        metadata={tool_call_id: {**that_metadata, "decisions": {call_id: "approve" |
        {"reject": reason} | {"override": value}}}})``: without ``decisions`` every pending
        call is approved. A ``ToolDenied`` abandons the paused program.
        """
        model_tool = self._model_tools()[name]
        token = _current_run.set(_RunScope(ctx))
        try:
            metadata = ctx.tool_call_metadata if isinstance(ctx.tool_call_metadata, dict) else {}
            code = tool_args.get("typescriptCode")
            on_event = self._events_to(ctx)
            if ctx.tool_call_approved and "resume_token" in metadata:
                decisions = _decisions(metadata)
                result = await self.code_mode.resume(
                    str(metadata["resume_token"]), decisions, on_event=on_event
                )
            elif name == self.code_mode.tool.name and isinstance(code, str):
                # with skills, the program runs with them (and may pause inside one)
                run = self.code_mode.execute if self.skills is None else self.skills.runtime.execute
                result = await run(code, tool_call_id=ctx.tool_call_id, on_event=on_event)
            else:
                return await model_tool.call(tool_args, tool_call_id=ctx.tool_call_id, on_event=on_event)
            if result.paused is not None:
                pending = [call.model_dump() for call in result.paused.pending]
                raise ApprovalRequired(metadata={"resume_token": result.paused.token, "pending": pending})
            return result.to_tool_output()
        finally:
            _current_run.reset(token)

    def _events_to(self, ctx: RunContext[Any]) -> EventCallback | None:
        """The event callback for one call: the user's ``on_event``, then the run's event stream."""
        if not self.emit_events and self.on_event is None:
            return None
        on_event = self.on_event

        async def forward(event: Event) -> None:
            if on_event is not None:
                outcome = on_event(event)
                if inspect.isawaitable(outcome):
                    await outcome
            if self.emit_events:
                await ctx.emit(CodeModeEvent(event_name=event.name, value=event.value))

        return forward

    async def aclose(self) -> None:
        """Dispose the code mode's sandbox context (the toolset stays usable across runs until then)."""
        await self.code_mode.aclose()


def _decisions(metadata: dict[str, Any]) -> dict[int | str, Any]:
    """The decisions an application passed back with an approval (default: approve all)."""
    from ..approvals.decisions import decisions_from_json

    return decisions_from_json(
        metadata.get("decisions"), [call["call_id"] for call in metadata.get("pending", [])]
    )


def _instruction_list(
    instructions: str | InstructionPart | Sequence[str | InstructionPart] | None,
) -> list[str | InstructionPart]:
    if instructions is None:
        return []
    if isinstance(instructions, str | InstructionPart):
        return [instructions]
    return list(instructions)
