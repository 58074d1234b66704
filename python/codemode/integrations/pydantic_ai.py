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

Any other toolset is *live* (see :data:`ToolSource`): dynamic toolsets (``@agent.toolset``),
prefixed or filtered ones, MCP servers. Each agent run gets its own copy of the toolset over the
run's own instances of them (``for_run``), each step lists them once (``get_tools``), and the
program's calls go to the tools of that listing, the ones the model was offered. pydantic-ai's
``MCPToolset`` needs the fastmcp client (``pip install "pydantic-ai-slim[mcp]"``); without it,
codemode's own MCP client gives a server's tools as codemode tools
(``async with McpProxy.connect([...]) as proxy: CodeModeToolset.from_tools(proxy.tools)``). A
listed tool whose JSON Schema cannot be declared in the sandbox is skipped with a warning.

Execution events (``code_mode:external_call``, ...) are forwarded into the run's event stream
as :class:`CodeModeEvent` custom events (see ``Agent.run(event_stream_handler=...)``). UI
adapters pass them on: pydantic-ai's ``AGUIAdapter`` sends each as the AG-UI ``CUSTOM`` event
that :func:`codemode.integrations.ag_ui.ag_ui_events` sends for it (same ``name``, same
``value``), inside the adapter's own tool-call events, so a frontend handles one shape.
"""

from __future__ import annotations

import contextvars
import copy
import dataclasses
import inspect
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

import pydantic_core
from pydantic import TypeAdapter, ValidationError

if sys.version_info < (3, 11):
    raise ImportError(
        "codemode.integrations.pydantic_ai needs Python 3.11 or newer: the pydantic-ai extra "
        "(pydantic-ai-slim 2.68) does not install on Python "
        f"{sys.version_info[0]}.{sys.version_info[1]}"
    )

try:
    import pydantic_ai  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "codemode.integrations.pydantic_ai needs pydantic-ai: pip install 'codemode[pydantic-ai]'"
    ) from e
from pydantic_ai import CustomEvent, FunctionToolset, RunContext, ToolDefinition, ToolReturn
from pydantic_ai import Tool as PydanticAITool
from pydantic_ai.capabilities import AbstractCapability, CapabilityOrdering
from pydantic_ai.exceptions import ApprovalRequired, CallDeferred, ModelRetry, ToolFailed
from pydantic_ai.messages import InstructionPart
from pydantic_ai.tools import AgentDepsT, ToolSelector, matches_tool_selector
from pydantic_ai.toolsets import AbstractToolset, ToolsetTool
from typing_extensions import Self

from ..code_mode import CodeMode, create_code_mode
from ..drivers import IsolateDriver
from ..events import Event, EventCallback, EventName
from ..execute_tool import ModelTool
from ..tools import InvalidArguments, Tool, ToolBinding, js_identifier

if TYPE_CHECKING:
    from ..skills import SkillContext

__all__ = [
    "CodeModeCapability",
    "CodeModeEvent",
    "CodeModeToolset",
    "PromptPlacement",
    "ToolSource",
    "from_pydantic_ai_tools",
]

logger = logging.getLogger(__name__)

ToolSource = ToolBinding | PydanticAITool[Any] | AbstractToolset[Any] | Callable[..., Any]
"""What :meth:`CodeModeToolset.from_tools` accepts: a native codemode tool, a
``pydantic_ai.Tool``, any pydantic-ai toolset (all its tools), or a plain function (with or
without a ``RunContext`` first parameter, as ``FunctionToolset`` accepts it).

A ``FunctionToolset`` whose tools are plain (no ``prepare``, no approval) is converted when the
toolset is built. Every other toolset -- prefixed, filtered, renamed, dynamic
(``@agent.toolset``), MCP servers, function toolsets with ``prepare`` or approval tools -- is
*live*: its tools are listed at each step of a run, and the program's ``external_`` functions
(and the declarations in the prompt) are the ones listed for that step of that run."""

PromptPlacement = Literal["instructions", "description", "none"]
"""Where the codemode system prompt (rules and declarations) goes: the agent's instructions,
the ``execute_typescript`` description, or nowhere (the application places it)."""

# a SchemaValidator (pydantic types it as that or a plugin's wrapper, which pydantic-ai does not take)
_ANY_ARGUMENTS = cast(pydantic_core.SchemaValidator, TypeAdapter(dict[str, Any]).validator)
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

    def to_payload(self) -> Any:
        """What UI adapters send to a frontend: the AG-UI ``CUSTOM`` event that
        :func:`codemode.integrations.ag_ui.to_ag_ui` makes of this codemode event (``name`` the
        codemode event name, ``value`` its payload), so pydantic-ai's ``AGUIAdapter`` and
        codemode's own ``ag_ui_events`` reach a frontend in one shape. Without the AG-UI package:
        ``{"name": ..., "value": ...}``."""
        try:
            from .ag_ui import to_ag_ui
        except ImportError:
            return {"name": self.event_name, "value": pydantic_core.to_jsonable_python(self.value)}
        return to_ag_ui(Event(cast(EventName, self.event_name), self.value))


# -- calling pydantic-ai tools from a program -------------------------------------------------


@dataclass
class _RunScope:
    """The agent run an ``execute_typescript`` call belongs to, seen by the program's tool calls."""

    ctx: RunContext[Any]
    sandboxed: Mapping[str, tuple[AbstractToolset[Any], ToolsetTool[Any]]] = field(default_factory=dict)
    """The live tools of this step, as the step's ``get_tools`` listed them (with their toolsets)."""
    listed: dict[int, dict[str, ToolsetTool[Any]]] = field(default_factory=dict)

    async def tool(self, toolset: AbstractToolset[Any], name: str) -> ToolsetTool[Any]:
        """The toolset's tool ``name`` as pydantic-ai lists it for this run (listed once per call)."""
        tools = self.listed.get(id(toolset))
        if tools is None:
            tools = self.listed[id(toolset)] = await toolset.get_tools(self.ctx)
        return tools[name]

    def live_tool(self, name: str, sandbox_name: str) -> tuple[AbstractToolset[Any], ToolsetTool[Any]]:
        """The live toolset that listed ``name`` in this step, and its tool."""
        try:
            return self.sandboxed[name]
        except KeyError:
            raise _ToolCallFailed(f"{sandbox_name} is not offered in this step of the run") from None


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


def _scope(sandbox_name: str) -> _RunScope:
    scope = _current_run.get()
    if scope is None:
        raise RuntimeError(
            f"{sandbox_name} is a pydantic-ai tool: it runs inside an agent run, when the model "
            "calls the CodeModeToolset's execute_typescript"
        )
    return scope


async def _run_tool(
    toolset: AbstractToolset[Any], tool: ToolsetTool[Any], name: str, sandbox_name: str, args: Any
) -> Any:
    """Validate ``args`` the pydantic-ai way and call the tool through its toolset."""
    scope = _scope(sandbox_name)
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


def _handler(toolset: FunctionToolset[Any], name: str, sandbox_name: str) -> Callable[[Any], Awaitable[Any]]:
    """The codemode handler that runs the pydantic-ai tool ``name`` of ``toolset``."""

    async def call(args: Any) -> Any:
        tool = await _scope(sandbox_name).tool(toolset, name)
        return await _run_tool(toolset, tool, name, sandbox_name, args)

    return call


def _live_handler(name: str, sandbox_name: str) -> Callable[[Any], Awaitable[Any]]:
    """The codemode handler of a live toolset's tool ``name``: the toolset that listed it in the
    current step of the calling run runs it (so one code mode serves every run whose tools look
    the same, and each run calls its own toolsets)."""

    async def call(args: Any) -> Any:
        toolset, tool = _scope(sandbox_name).live_tool(name, sandbox_name)
        return await _run_tool(toolset, tool, name, sandbox_name, args)

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


def _is_static(toolset: FunctionToolset[Any]) -> bool:
    """Whether a function toolset's tools can be converted once (no per-step ``prepare``, no approval)."""
    return all(tool.prepare is None and not tool.requires_approval for tool in toolset.tools.values())


def _convert(
    sources: Iterable[ToolSource],
) -> tuple[list[ToolBinding], list[FunctionToolset[Any]], list[AbstractToolset[Any]]]:
    """The codemode tools for ``sources``, the function toolsets that run the converted
    pydantic-ai ones, and the live toolsets (listed at each step)."""
    items: list[ToolBinding | FunctionToolset[Any]] = []
    loose: list[PydanticAITool[Any] | Callable[..., Any]] = []
    live: list[AbstractToolset[Any]] = []
    for source in sources:
        if isinstance(source, ToolBinding) or (isinstance(source, FunctionToolset) and _is_static(source)):
            items.append(source)
        elif isinstance(source, AbstractToolset):
            live.append(source)
        elif isinstance(source, PydanticAITool) or callable(source):
            loose.append(source)
        else:
            raise TypeError(f"not a tool: {source!r}")
    if loose:  # one function toolset for the loose tools, like an agent's own tools
        toolset = FunctionToolset(loose)
        (items if _is_static(toolset) else live).append(toolset)
    tools: list[ToolBinding] = []
    toolsets: list[FunctionToolset[Any]] = []
    for item in items:
        if isinstance(item, FunctionToolset):
            tools.extend(_convert_toolset(item))
            toolsets.append(item)
        else:
            tools.append(item)
    return tools, toolsets, live


def from_pydantic_ai_tools(sources: Iterable[ToolSource]) -> list[ToolBinding]:
    """Codemode tools (``external_<name>``) for pydantic-ai tools, functions and function toolsets.

    Native codemode tools pass through unchanged. The pydantic-ai ones keep their JSON schemas
    and run only while a :class:`CodeModeToolset` handles an ``execute_typescript`` call of an
    agent run (they need its ``RunContext``). Tools with a ``prepare`` function or that require
    approval, and toolsets other than ``FunctionToolset``, list their tools during a run, so they
    have no fixed codemode tools: they are rejected here (``ValueError`` / ``TypeError``); give
    them to :meth:`CodeModeToolset.from_tools`, which lists them at each step.
    """
    tools, _, live = _convert(sources)
    for toolset in live:
        if isinstance(toolset, FunctionToolset):
            for tool in toolset.tools.values():
                _check_convertible(tool)
        raise TypeError(
            f"{toolset.label} lists its tools during a run, so it has no fixed codemode tools; "
            "give it to CodeModeToolset.from_tools (or use CodeModeCapability), which lists it at each step"
        )
    return tools


# -- live toolsets: tools listed at each step ---------------------------------------------------


def _signature(tool_def: ToolDefinition) -> tuple[str, ...]:
    return (
        tool_def.name,
        tool_def.description or "",
        json.dumps(tool_def.parameters_json_schema, sort_keys=True, default=str),
        json.dumps(tool_def.return_schema, sort_keys=True, default=str),
        tool_def.kind,
    )


class _CodeModes:
    """The code modes of a base code mode plus the live tools of a step, one per distinct tool
    list (so a step whose tools look like an earlier one's reuses its sandbox context and its
    paused runs)."""

    def __init__(self, base: CodeMode) -> None:
        self.base = base
        self.approvals = base.approvals
        self.cache: dict[tuple[tuple[str, ...], ...], CodeMode] = {}

    def for_tools(self, tool_defs: Sequence[ToolDefinition]) -> CodeMode:
        if not tool_defs:
            return self.base
        key = tuple(_signature(tool_def) for tool_def in tool_defs)
        code_mode = self.cache.get(key)
        if code_mode is None:
            code_mode = self.cache[key] = self._build(tool_defs)
        return code_mode

    def _build(self, tool_defs: Sequence[ToolDefinition]) -> CodeMode:
        base = self.base
        bindings: list[ToolBinding] = []
        for tool_def in tool_defs:
            try:
                binding = Tool.from_schema(
                    tool_def.name,
                    tool_def.description or "",
                    tool_def.parameters_json_schema,
                    tool_def.return_schema or None,
                    _live_handler(tool_def.name, "external_" + js_identifier(tool_def.name)),
                    requires_approval=tool_def.kind == "unapproved",
                )
            except ValueError as e:  # an invalid schema: one unusable tool must not take the others down
                logger.warning("skipping tool %r: it cannot be declared in the sandbox: %s", tool_def.name, e)
                continue
            bindings.append(binding)
        if self.approvals is None and any(binding.requires_approval for binding in bindings):
            from ..approvals import Approvals, MemoryExecutionStore, signing_key

            self.approvals = Approvals(MemoryExecutionStore(), signing_key(None))
        if self.approvals is not None:
            from ..approvals import intercepted

            bindings = [intercepted(binding) for binding in bindings]
        if base.tracer is not None:
            from ..tracing import traced

            bindings = [traced(binding, base.tracer) for binding in bindings]
        return CodeMode(
            [*base.tools.values(), *bindings],
            base.driver,
            base.limits,
            prompt=base.prompt_mode,
            approvals=self.approvals,
            tracer=base.tracer,
        )

    async def aclose(self) -> None:
        for code_mode in self.cache.values():
            await code_mode.aclose()
        await self.base.aclose()


@dataclass
class _Step:
    """What one step of a run offers: its code mode, the live tools its programs call (with the
    toolsets that listed them) and the live tools left as direct tools."""

    code_mode: CodeMode
    sandboxed: dict[str, tuple[AbstractToolset[Any], ToolsetTool[Any]]] = field(default_factory=dict)
    passthrough: dict[str, tuple[AbstractToolset[Any], ToolsetTool[Any]]] = field(default_factory=dict)


_StepKey = tuple[str | None, int]
"""A step of a run: the run's id and its step number."""


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
        live_toolsets: Sequence[AbstractToolset[Any]] = (),
        select: ToolSelector[Any] = "all",
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
        live_toolsets: Toolsets (any kind) listed at each step: their tools that ``select``
            matches become ``external_`` functions next to ``code_mode``'s tools, declared in
            that step's prompt; the others (and deferred ``external`` tools, which a program
            cannot wait for) stay direct tools of the agent. Their lifecycle follows this toolset.
        select: Which live tools go into the sandbox (a pydantic-ai ``ToolSelector``: ``"all"``,
            names, metadata, or a function of the context and the tool definition).
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
        self.live_toolsets: tuple[AbstractToolset[Any], ...] = tuple(live_toolsets)
        self.select: ToolSelector[Any] = select
        self._code_modes = _CodeModes(code_mode)
        self._listing: tuple[_StepKey, _Step] | None = None

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

        ``tools`` mixes plain functions, ``pydantic_ai.Tool`` objects, toolsets of any kind
        (function toolsets are converted once, the others are live: see :data:`ToolSource`) and
        codemode tools. ``driver``, ``timeout``,
        ``memory_limit_mb``, ``prompt`` and further ``limits`` configure the code mode (as
        :func:`codemode.create_code_mode`); the other options are the constructor's.
        """
        bindings, toolsets, live = _convert(tools)
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
            live_toolsets=live,
        )

    @property
    def id(self) -> str | None:
        return self._id

    @property
    def instructions(self) -> str:
        """The codemode system prompt: the rules and the TypeScript declarations of every tool
        (and of the skills, with ``skills``)."""
        return self.skills.system_prompt if self.skills is not None else self.code_mode.system_prompt

    async def for_run(self, ctx: RunContext[AgentDepsT]) -> AbstractToolset[AgentDepsT]:
        """This toolset for one agent run: with live toolsets, a copy over the run's own copies of
        them (a dynamic toolset's per-run instance, an MCP server connected as the run's user)
        that remembers its steps' listings for itself, so concurrent runs never see each
        other's tools. The code modes (and their sandbox contexts) stay shared."""
        if not self.live_toolsets:
            return self
        run = copy.copy(self)
        run.live_toolsets = tuple([await toolset.for_run(ctx) for toolset in self.live_toolsets])
        run._listing = None
        return run

    async def for_run_step(self, ctx: RunContext[AgentDepsT]) -> AbstractToolset[AgentDepsT]:
        """Pass the step on to the live toolsets (a dynamic toolset builds its toolset here)."""
        live = tuple([await toolset.for_run_step(ctx) for toolset in self.live_toolsets])
        if all(new is old for new, old in zip(live, self.live_toolsets, strict=True)):
            return self
        step = copy.copy(self)
        step.live_toolsets = live
        return step

    async def _list(self, ctx: RunContext[Any]) -> _Step:
        """List the live toolsets for this step of the run: the step's code mode (the selected
        tools added) and the live tools that stay direct tools; remembered for the step."""
        if not self.live_toolsets or self.skills is not None:
            return _Step(self.code_mode)
        sandboxed: dict[str, tuple[AbstractToolset[Any], ToolsetTool[Any]]] = {}
        passthrough: dict[str, tuple[AbstractToolset[Any], ToolsetTool[Any]]] = {}
        for toolset in self.live_toolsets:
            for name, tool in (await toolset.get_tools(ctx)).items():
                runnable = tool.tool_def.kind in ("function", "unapproved")
                if runnable and await matches_tool_selector(self.select, ctx, tool.tool_def):
                    sandboxed[name] = (toolset, tool)
                else:
                    passthrough[name] = (toolset, tool)
        code_mode = self._code_modes.for_tools([tool.tool_def for _, tool in sandboxed.values()])
        step = _Step(code_mode, sandboxed, passthrough)
        self._listing = ((ctx.run_id, ctx.run_step), step)
        return step

    async def _step(self, ctx: RunContext[Any]) -> _Step:
        """This step's listing: the one ``get_tools`` made for this step of this run (what the
        model was offered), else a new one (always, for a context without a run id)."""
        listing = self._listing
        if listing is not None and ctx.run_id is not None and listing[0] == (ctx.run_id, ctx.run_step):
            return listing[1]
        return await self._list(ctx)

    def _prompt(self, code_mode: CodeMode) -> str:
        return self.skills.system_prompt if self.skills is not None else code_mode.system_prompt

    def _model_tools(self, code_mode: CodeMode) -> dict[str, ModelTool]:
        tools = self.skills.tools if self.skills is not None else code_mode.model_tools
        return {tool.name: tool for tool in tools}

    def _tool_def(self, tool: ModelTool, code_mode: CodeMode) -> ToolDefinition:
        description = tool.description
        if self.prompt_placement == "description" and tool.name == code_mode.tool.name:
            description = self._prompt(code_mode)
        return ToolDefinition(
            name=tool.name, description=description, parameters_json_schema=dict(tool.input_schema)
        )

    async def __aenter__(self) -> Self:
        for toolset in (*self.wrapped_toolsets, *self.live_toolsets):
            await toolset.__aenter__()
        return self

    async def __aexit__(self, *args: Any) -> bool | None:
        for toolset in reversed((*self.wrapped_toolsets, *self.live_toolsets)):
            await toolset.__aexit__(*args)
        return None

    async def get_instructions(self, ctx: RunContext[AgentDepsT]) -> list[str | InstructionPart] | None:
        """The codemode system prompt (a static part, cache-friendly) when ``prompt_placement``
        is ``"instructions"``, then the wrapped toolsets' own instructions."""
        parts: list[str | InstructionPart] = []
        if self.prompt_placement == "instructions":
            step = await self._step(ctx)
            dynamic = self.skills is not None or bool(self.live_toolsets)
            parts.append(InstructionPart(content=self._prompt(step.code_mode), dynamic=dynamic))
        for toolset in (*self.wrapped_toolsets, *self.live_toolsets):
            parts.extend(_instruction_list(await toolset.get_instructions(ctx)))
        return parts or None

    async def get_tools(self, ctx: RunContext[AgentDepsT]) -> dict[str, ToolsetTool[AgentDepsT]]:
        max_retries = self.max_retries if self.max_retries is not None else ctx.max_retries
        step = await self._list(ctx)  # pydantic-ai lists again within a step when it needs to
        tools: dict[str, ToolsetTool[AgentDepsT]] = {
            name: dataclasses.replace(tool, toolset=self) for name, (_, tool) in step.passthrough.items()
        }
        for name, tool in self._model_tools(step.code_mode).items():
            tools[name] = ToolsetTool(
                toolset=self,
                tool_def=self._tool_def(tool, step.code_mode),
                max_retries=max_retries,
                args_validator=_ANY_ARGUMENTS,
            )
        return tools

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[AgentDepsT], tool: ToolsetTool[AgentDepsT]
    ) -> Any:
        """Run ``execute_typescript`` (or ``get_tool_declarations``); returns the output for the model.

        A program that pauses for approval (a tool with ``requires_approval``) becomes
        pydantic-ai's deferred approval: the run ends with ``DeferredToolRequests`` whose
        ``metadata[tool_call_id]`` holds ``resume_token`` and the ``pending`` calls. Resume
        the agent with ``DeferredToolResults(approvals={tool_call_id: True},
        metadata={tool_call_id: {**that_metadata, "decisions": {call_id: "approve" |
        {"reject": reason} | {"override": value}}}})``: without ``decisions`` every pending
        call is approved. A ``ToolDenied`` abandons the paused program.
        """
        step = await self._step(ctx)
        model_tools = self._model_tools(step.code_mode)
        if name not in model_tools and name in step.passthrough:  # a live tool left as a direct tool
            owner, listed = step.passthrough[name]
            inner = dataclasses.replace(tool, toolset=listed.toolset)
            return await owner.call_tool(name, tool_args, ctx, inner)
        model_tool = model_tools[name]
        code_mode = step.code_mode
        token = _current_run.set(_RunScope(ctx, step.sandboxed))
        try:
            metadata = ctx.tool_call_metadata if isinstance(ctx.tool_call_metadata, dict) else {}
            code = tool_args.get("typescriptCode")
            on_event = self._events_to(ctx)
            if ctx.tool_call_approved and "resume_token" in metadata:
                decisions = _decisions(metadata)
                result = await code_mode.resume(str(metadata["resume_token"]), decisions, on_event=on_event)
            elif name == code_mode.tool.name and isinstance(code, str):
                # with skills, the program runs with them (and may pause inside one)
                run = code_mode.execute if self.skills is None else self.skills.runtime.execute
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
        """Dispose the code modes' sandbox contexts (the toolset stays usable across runs until then)."""
        await self._code_modes.aclose()


# -- the capability -------------------------------------------------------------------------------


@dataclass(init=False)
class CodeModeCapability(AbstractCapability[AgentDepsT]):
    """Code mode as a pydantic-ai capability: the agent's own tools become ``external_<name>``
    functions of one ``execute_typescript`` tool, with codemode's prompt in the instructions::

        agent = Agent(
            "openai:gpt-5",
            tools=[get_price],
            toolsets=[MCPServerStdio("python", ["server.py"])],
            capabilities=[CodeModeCapability(timeout=10)],
        )

    Like pydantic-ai-harness's ``CodeMode``, it wraps the agent's assembled toolset (through
    ``get_wrapper_toolset``, outermost): every tool the agent has at a step -- function tools,
    prefixed, filtered or dynamic toolsets, MCP servers, other capabilities' tools -- that
    ``tools`` selects is listed at that step and declared in that step's prompt; the rest stay
    direct tool calls. It is named ``CodeModeCapability`` so it does not shadow
    :class:`codemode.CodeMode`.
    """

    tools: ToolSelector[AgentDepsT]
    """Which of the agent's tools go into the sandbox (``"all"``, names, metadata, or a function
    of the context and the tool definition); the others stay direct tools."""

    code_mode: CodeMode
    """The code mode the programs run in (its own tools, ``native_tools``, are always offered)."""

    prompt_placement: PromptPlacement
    emit_events: bool
    # The callback given to __init__ (an instance attribute): AbstractCapability's on_event hook is a
    # method of that name, which pydantic-ai calls only for capabilities whose class overrides it.
    # (unused-ignore: checked for Python 3.10, this module stops at its version check)
    on_event: EventCallback | None  # type: ignore[assignment,unused-ignore]
    max_retries: int | None

    def __init__(
        self,
        tools: ToolSelector[AgentDepsT] = "all",
        *,
        native_tools: Iterable[ToolBinding] = (),
        code_mode: CodeMode | None = None,
        driver: IsolateDriver | None = None,
        timeout: float = 30.0,
        memory_limit_mb: float = 128,
        prompt: Literal["full", "compact"] = "full",
        prompt_placement: PromptPlacement = "instructions",
        emit_events: bool = True,
        on_event: EventCallback | None = None,
        max_retries: int | None = None,
        id: str | None = None,
        description: str | None = None,
        **limits: Any,
    ) -> None:
        """Wrap the agent's tools selected by ``tools`` in code mode.

        ``native_tools`` are codemode tools offered too; ``code_mode`` replaces the code mode the
        other options (as :func:`codemode.create_code_mode`) would build. ``prompt_placement``,
        ``emit_events``, ``on_event`` and ``max_retries`` are :class:`CodeModeToolset`'s.
        """
        self.id = id
        self.description = description
        self.defer_loading = False
        self.tools = tools
        if code_mode is None:
            code_mode = create_code_mode(
                list(native_tools),
                driver=driver,
                timeout=timeout,
                memory_limit_mb=memory_limit_mb,
                prompt=prompt,
                **limits,
            )
        elif native_tools:
            raise ValueError("pass native_tools or code_mode, not both")
        self.code_mode = code_mode
        self.prompt_placement = prompt_placement
        self.emit_events = emit_events
        self.on_event = on_event
        self.max_retries = max_retries
        self._code_modes = _CodeModes(code_mode)

    @classmethod
    def get_serialization_name(cls) -> str | None:
        return None  # holds a code mode and callables: not spec-serializable

    def get_ordering(self) -> CapabilityOrdering:
        """Outermost, so the sandbox sees the tools every other capability contributes or wraps."""
        return CapabilityOrdering(position="outermost")

    def get_wrapper_toolset(self, toolset: AbstractToolset[AgentDepsT]) -> AbstractToolset[AgentDepsT]:
        """The run's toolset: ``execute_typescript`` over the selected tools, the rest as they are."""
        wrapper: CodeModeToolset[AgentDepsT] = CodeModeToolset(
            self.code_mode,
            prompt_placement=self.prompt_placement,
            emit_events=self.emit_events,
            on_event=self.on_event,
            max_retries=self.max_retries,
            live_toolsets=[toolset],
            select=self.tools,
        )
        wrapper._code_modes = self._code_modes  # one sandbox context per tool list, across runs
        return wrapper

    async def aclose(self) -> None:
        """Dispose the sandbox contexts of every run's code mode."""
        await self._code_modes.aclose()


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
