"""A small MCP server for the proxy tests (stdio): paginated tool listing, structured, JSON-text
and plain-text results, an ``isError`` result, an invalid-params protocol error, a slow tool,
one with an invalid input schema, and one that kills the process.

    python fixture_server.py [NAME]
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

PAGE_SIZE = 2

TOOLS = [
    types.Tool(
        name="get-stats",
        description="Structured statistics of a list of numbers",
        input_schema={
            "type": "object",
            "properties": {"values": {"type": "array", "items": {"type": "number"}}},
            "required": ["values"],
        },
        output_schema={
            "type": "object",
            "properties": {"count": {"type": "integer"}, "total": {"type": "number"}},
            "required": ["count", "total"],
        },
    ),
    types.Tool(
        name="json.text",
        description="Returns its input as JSON text (no structured content)",
        input_schema={"type": "object", "properties": {"value": {}}},
    ),
    types.Tool(
        name="greet",
        description="Plain text greeting",
        input_schema={"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    ),
    types.Tool(
        name="fail",
        description="Always answers with an isError result",
        input_schema={"type": "object", "properties": {"reason": {"type": "string"}}},
    ),
    types.Tool(
        name="sleep",
        description="Sleeps, then answers",
        input_schema={"type": "object", "properties": {"ms": {"type": "number"}}, "required": ["ms"]},
    ),
    types.Tool(
        name="even",
        description="Rejects odd numbers with an invalid-params protocol error",
        input_schema={"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
    ),
    types.Tool(
        name="broken",
        description="A tool whose input schema is not valid JSON Schema (the proxy skips it)",
        input_schema={"type": "object", "properties": {"x": {"type": "nonsense"}}},
    ),
    types.Tool(
        name="crash",
        description="Kills the server process while handling the call",
        input_schema={"type": "object"},
    ),
]


def _text(text: str) -> list[types.ContentBlock]:
    return [types.TextContent(type="text", text=text)]


async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    start = int(params.cursor) if params is not None and params.cursor else 0
    end = start + PAGE_SIZE
    next_cursor = str(end) if end < len(TOOLS) else None
    return types.ListToolsResult(tools=TOOLS[start:end], next_cursor=next_cursor)


async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    args = params.arguments or {}
    if params.name == "get-stats":
        stats = {"count": len(args["values"]), "total": sum(args["values"])}
        return types.CallToolResult(content=_text(json.dumps(stats)), structured_content=stats)
    if params.name == "json.text":
        return types.CallToolResult(content=_text(json.dumps(args.get("value"))))
    if params.name == "greet":
        return types.CallToolResult(content=_text(f"Hello, {args['name']}!"))
    if params.name == "fail":
        return types.CallToolResult(
            content=_text(f"refused: {args.get('reason', 'no reason')}"), is_error=True
        )
    if params.name == "sleep":
        await anyio.sleep(args["ms"] / 1000)
        return types.CallToolResult(content=_text(f"slept {args['ms']} ms"))
    if params.name == "even":
        if args["n"] % 2:
            raise MCPError(types.INVALID_PARAMS, f"{args['n']} is odd")
        return types.CallToolResult(content=_text(json.dumps(args["n"] // 2)))
    if params.name == "crash":
        os._exit(1)
    return types.CallToolResult(content=_text(f"unknown tool {params.name}"), is_error=True)


async def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "fixture"
    server = Server(name, version="1.0", on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
