"""Tools between MCP and codemode: MCP tools as codemode tools (:func:`tools_from_session`,
the tool that calls an upstream, reporting its progress and failing with
:class:`McpToolError` or a lost connection, and :func:`tool_result_value`, the value a program
gets for an upstream result), and a code mode's tools and their outputs as MCP tools and
results."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError

from ...errors import CodemodeError, InvalidArgumentsError
from ...execute_tool import ModelTool
from ...prompt import TOOL_NAME
from ...tools import Tool
from .._sources import Source, prompt_of
from .progress import _PROGRESS
from .upstreams import Upstream, list_all_tools

logger = logging.getLogger("codemode.integrations.mcp")


class McpToolError(CodemodeError):
    """An upstream tool answered with an ``isError`` result (the program sees a ToolError)."""


def tool_result_value(result: types.CallToolResult) -> Any:
    """The JSON value a program gets for an upstream result.

    ``structuredContent`` when present; else the text content (blocks joined by newlines),
    JSON-parsed when it is JSON text; ``None`` for no content; the content blocks as JSON
    objects when some are not text (images, audio, resources).
    """
    if result.structured_content is not None:
        return result.structured_content
    if not result.content:
        return None
    if not all(isinstance(block, types.TextContent) for block in result.content):
        return [block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in result.content]
    text = "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity: keep such a text as text


def _error_text(result: types.CallToolResult, tool: str) -> str:
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    return "\n".join(texts).strip() or f"{tool} failed (the server gave no message)"


def _codemode_tool(upstream: Upstream, tool: types.Tool, name: str) -> Tool:
    """The codemode tool named ``name`` that calls ``tool`` on ``upstream``."""

    async def handler(args: dict[str, Any]) -> Any:
        sink = _PROGRESS.get()

        async def progress(progress: float, total: float | None, message: str | None) -> None:
            if sink is not None:
                await sink(name, progress, total, message)

        for attempt in (1, 2):
            session = upstream.session
            if not upstream.connected or session is None:
                raise ConnectionError(upstream.unavailable())
            try:
                result = await session.call_tool(tool.name, args, progress_callback=progress)
            except MCPError as e:
                if e.code == types.CONNECTION_CLOSED:
                    upstream.lose(f"the connection closed while running {tool.name} (did its process exit?)")
                    await upstream._await_teardown()
                    raise ConnectionError(upstream.unavailable()) from None
                if _session_gone(e):  # the server restarted: the call did not run; once more, reconnected
                    upstream.lose("the server ended the session (did it restart?)")
                    if attempt == 1 and await upstream._await_connected(5.0):
                        continue
                    raise ConnectionError(upstream.unavailable()) from None
                if e.code == types.INVALID_PARAMS:
                    raise InvalidArgumentsError(f"{tool.name}: {e.message}") from None
                raise RuntimeError(f"{tool.name}: {e.message}") from None
            except (anyio.ClosedResourceError, anyio.BrokenResourceError) as e:
                upstream.lose(f"the connection closed while running {tool.name} ({type(e).__name__})")
                raise ConnectionError(upstream.unavailable()) from None
            if result.is_error:
                raise McpToolError(_error_text(result, tool.name))
            return tool_result_value(result)
        raise AssertionError("unreachable")

    description = tool.description or tool.title or ""
    return Tool.from_schema(name, description, tool.input_schema, tool.output_schema, handler)


def _session_gone(error: MCPError) -> bool:
    """The streamable HTTP transport's answer to a session the server does not know (404)."""
    return error.code == types.INVALID_REQUEST and "session" in error.message.lower()


async def tools_from_session(
    session: ClientSession, *, prefix: str | None = None, name: str | None = None
) -> list[Tool]:
    """Codemode tools for every tool of an initialized ``session`` you manage yourself.

    Each tool calls the session. ``prefix`` (e.g. the server's name) is put before each tool
    name as ``<prefix>_<tool>``; names are made JavaScript identifiers (``get-sum`` ->
    ``get_sum``), the MCP name staying in ``original_name``. ``name`` names the server in
    error messages.
    """
    info = session.server_info
    server_name = name or (info.name if info is not None else "mcp")
    upstream = Upstream(server_name, session, info, await list_all_tools(session))
    return _tools_of(upstream, prefix)


def _tools_of(upstream: Upstream, prefix: str | None) -> list[Tool]:
    tools: list[Tool] = []
    for tool in upstream.tools:
        try:
            tools.append(_codemode_tool(upstream, tool, f"{prefix}_{tool.name}" if prefix else tool.name))
        except ValueError as e:  # one unusable tool must not take the others down
            logger.warning("MCP server %r: skipping tool %r: %s", upstream.name, tool.name, e)
    return tools


def _mcp_tool(tool: ModelTool, source: Source) -> types.Tool:
    description = prompt_of(source) if tool.name == TOOL_NAME else tool.description
    return types.Tool(name=tool.name, description=description, input_schema=dict(tool.input_schema))


def _call_result(output: dict[str, Any]) -> types.CallToolResult:
    text = json.dumps(output, ensure_ascii=False)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content=output,
        is_error=output.get("success") is False,
    )
