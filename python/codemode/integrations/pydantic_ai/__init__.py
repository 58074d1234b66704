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

import sys

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

from .capability import CodeModeCapability
from .conversion import ToolSource, from_pydantic_ai_tools
from .events import CodeModeEvent
from .toolset import CodeModeToolset, PromptPlacement

__all__ = [
    "CodeModeCapability",
    "CodeModeEvent",
    "CodeModeToolset",
    "PromptPlacement",
    "ToolSource",
    "from_pydantic_ai_tools",
]
