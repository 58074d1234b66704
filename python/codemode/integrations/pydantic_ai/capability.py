"""Code mode for pydantic-ai as a capability: :class:`CodeModeCapability` wraps the agent's
assembled toolset in a :class:`CodeModeToolset` for each run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic_ai.capabilities import AbstractCapability, CapabilityOrdering
from pydantic_ai.tools import AgentDepsT, ToolSelector
from pydantic_ai.toolsets import AbstractToolset

from ...code_mode import CodeMode, create_code_mode
from ...drivers import IsolateDriver
from ...events import EventCallback
from ...tools import ToolBinding
from .live import _CodeModes
from .toolset import CodeModeToolset, PromptPlacement


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
    on_event: EventCallback | None  # type: ignore[assignment]
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
