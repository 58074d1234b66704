"""Code mode for pydantic-ai as a toolset: :class:`CodeModeToolset`, one ``execute_typescript``
tool over codemode tools, converted pydantic-ai tools and live toolsets (listed at each step,
each run over its own copies of them), and :data:`PromptPlacement`."""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

import pydantic_core
from pydantic import TypeAdapter
from pydantic_ai import FunctionToolset, RunContext, ToolDefinition
from pydantic_ai.exceptions import ApprovalRequired
from pydantic_ai.messages import InstructionPart
from pydantic_ai.tools import AgentDepsT, ToolSelector, matches_tool_selector
from pydantic_ai.toolsets import AbstractToolset, ToolsetTool
from typing_extensions import Self

from ...code_mode import CodeMode, create_code_mode
from ...drivers import IsolateDriver
from ...events import Event, EventCallback
from ...execute_tool import ModelTool
from .calls import _current_run, _RunScope
from .conversion import ToolSource, _convert
from .events import CodeModeEvent
from .live import _CodeModes, _Step, _StepKey

if TYPE_CHECKING:
    from ...skills import SkillContext

PromptPlacement = Literal["instructions", "description", "none"]
"""Where the codemode system prompt (rules and declarations) goes: the agent's instructions,
the ``execute_typescript`` description, or nowhere (the application places it)."""

# a SchemaValidator (pydantic types it as that or a plugin's wrapper, which pydantic-ai does not take)
_ANY_ARGUMENTS = cast(pydantic_core.SchemaValidator, TypeAdapter(dict[str, Any]).validator)
"""The tools' own ``call`` checks their arguments and answers the model with a codemode
``invalid_args`` error, the same reply every integration gives."""


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


def _decisions(metadata: dict[str, Any]) -> dict[int | str, Any]:
    """The decisions an application passed back with an approval (default: approve all)."""
    from ...approvals.decisions import decisions_from_json

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
