"""pydantic-ai tools as codemode tools: :data:`ToolSource` (what
:meth:`CodeModeToolset.from_tools` accepts), its sorting into converted tools and live toolsets,
and :func:`from_pydantic_ai_tools`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydantic_ai import FunctionToolset
from pydantic_ai import Tool as PydanticAITool
from pydantic_ai.toolsets import AbstractToolset

from ...tools import Tool, ToolBinding, js_identifier
from .calls import _handler

ToolSource = ToolBinding | PydanticAITool[Any] | AbstractToolset[Any] | Callable[..., Any]
"""What :meth:`CodeModeToolset.from_tools` accepts: a native codemode tool, a
``pydantic_ai.Tool``, any pydantic-ai toolset (all its tools), or a plain function (with or
without a ``RunContext`` first parameter, as ``FunctionToolset`` accepts it).

A ``FunctionToolset`` whose tools are plain (no ``prepare``, no approval) is converted when the
toolset is built. Every other toolset -- prefixed, filtered, renamed, dynamic
(``@agent.toolset``), MCP servers, function toolsets with ``prepare`` or approval tools -- is
*live*: its tools are listed at each step of a run, and the program's ``external_`` functions
(and the declarations in the prompt) are the ones listed for that step of that run."""


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
