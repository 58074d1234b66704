"""A small MCP server over streamable HTTP for the resilience tests: ``ping``, ``count`` (which
reports progress), and with ``--extra`` one more tool, ``extra`` (so a restart can change the
tool list).

    python http_server.py PORT [--extra]
"""

from __future__ import annotations

import sys
from typing import Any

import anyio
import mcp_types as types
import uvicorn
from mcp.server.lowlevel import Server

OBJECT: dict[str, Any] = {"type": "object"}
TOOLS = [
    types.Tool(name="ping", description="Answers pong", input_schema=OBJECT),
    types.Tool(
        name="count",
        description="Counts to n, reporting progress at each step",
        input_schema={"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
    ),
]
EXTRA = types.Tool(name="extra", description="Only there when started with --extra", input_schema=OBJECT)


def _text(text: str) -> list[types.ContentBlock]:
    return [types.TextContent(type="text", text=text)]


def main() -> None:
    port, extra = int(sys.argv[1]), "--extra" in sys.argv
    tools = [*TOOLS, EXTRA] if extra else TOOLS

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        args = params.arguments or {}
        if params.name == "count":
            for step in range(1, args["n"] + 1):
                await ctx.session.report_progress(step, args["n"], f"step {step}")
                await anyio.sleep(0.01)
            return types.CallToolResult(content=_text(f"counted to {args['n']}"))
        if params.name in ("ping", "extra") and any(t.name == params.name for t in tools):
            return types.CallToolResult(content=_text("pong" if params.name == "ping" else "extra"))
        return types.CallToolResult(content=_text(f"unknown tool {params.name}"), is_error=True)

    server = Server("http-fixture", version="1.0", on_list_tools=list_tools, on_call_tool=call_tool)
    app = server.streamable_http_app(streamable_http_path="/mcp", host="127.0.0.1")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
