"""MCP: serve ``execute_typescript`` to any MCP client, and code mode over MCP servers.

Needs the ``mcp`` extra (the official MCP Python SDK, 2.x)::

    pip install 'codemode[mcp]'

Serve a code mode (the tool's description carries the system prompt, so every MCP client
shows the model the rules and the TypeScript declarations)::

    cm = codemode.create_code_mode(tools)
    await serve_stdio(cm)                            # or serve_streamable_http(cm, port=8000)

Code mode over MCP servers: their tools become ``external_*`` functions of one
``execute_typescript`` tool::

    servers = {"time": StdioServerParameters(command="mcp-server-time")}
    async with McpProxy.connect(servers) as proxy:
        cm = proxy.code_mode()
        result = await cm.execute("return await external_get_current_time({timezone: 'UTC'})")

The same from the command line: ``codemode mcp serve --tools my_tools`` and
``codemode mcp proxy -- mcp-server-time``.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import shlex
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError, NoBackChannelError
from starlette.applications import Starlette

from ..approvals import Decision, approve, reject
from ..code_mode import CodeMode, create_code_mode
from ..execute_tool import ModelTool
from ..prompt import TOOL_NAME
from ..results import PendingCall
from ..tools import InvalidArguments, Tool

__all__ = [
    "DECLARATIONS_URI",
    "McpConnectError",
    "McpProxy",
    "McpToolError",
    "ServerSpec",
    "Upstream",
    "build_server",
    "list_all_tools",
    "load_servers_config",
    "serve",
    "serve_proxy",
    "serve_stdio",
    "serve_streamable_http",
    "server_spec",
    "streamable_http_app",
    "tool_result_value",
    "tools_from_session",
]

logger = logging.getLogger(__name__)

DECLARATIONS_URI = "codemode://declarations.d.ts"
"""The MCP resource holding the TypeScript declarations of the code mode's tools."""

ServerSpec = StdioServerParameters | str
"""An upstream MCP server: a command to run (stdio) or a streamable HTTP URL."""

_MAX_PAGES = 1000


# --- serving a code mode --------------------------------------------------------------------


def build_server(
    cm: CodeMode, *, name: str = "codemode", version: str | None = None, instructions: str | None = None
) -> Server[Any]:
    """An MCP server (SDK low-level ``Server``) offering ``cm.model_tools``.

    ``execute_typescript``'s description is the code mode's system prompt (rules and the
    declarations of every function). Each call returns the model-facing JSON output as text
    content and as ``structuredContent``, with ``isError`` when ``success`` is false. The
    declarations are also the resource :data:`DECLARATIONS_URI` (``text/typescript``).
    """
    by_name = {tool.name: tool for tool in cm.model_tools}
    listed = [_mcp_tool(tool, cm) for tool in cm.model_tools]
    declarations = types.Resource(
        uri=DECLARATIONS_URI,
        name="declarations",
        title="TypeScript declarations",
        description="Declarations of the functions execute_typescript programs can call.",
        mime_type="text/typescript",
    )

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = by_name.get(params.name)
        if tool is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
        call_id = None if ctx.request_id is None else str(ctx.request_id)
        code = (params.arguments or {}).get("typescriptCode")
        if tool is cm.tool and cm.approvals is not None and isinstance(code, str):
            return await _execute_with_approvals(cm, code, call_id, ctx, params)
        output = await tool.call(params.arguments or {}, tool_call_id=call_id)
        return _call_result(output)

    async def list_resources(
        ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[declarations])

    async def read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        if params.uri != DECLARATIONS_URI:
            raise MCPError(types.INVALID_PARAMS, f"Unknown resource: {params.uri}")
        text = cm.declarations
        contents = types.TextResourceContents(uri=DECLARATIONS_URI, mime_type="text/typescript", text=text)
        return types.ReadResourceResult(contents=[contents])

    return Server(
        name,
        version=_codemode_version() if version is None else version,
        instructions=instructions,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
    )


APPROVAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "approve": {"type": "boolean", "title": "Approve", "description": "Run this call"},
        "reason": {"type": "string", "title": "Reason", "description": "Why not (the program sees it)"},
    },
    "required": ["approve"],
}
"""What an approval elicitation asks the client's user for."""


async def _execute_with_approvals(
    cm: CodeMode, code: str, call_id: str | None, ctx: Any, params: types.CallToolRequestParams
) -> types.CallToolResult | types.InputRequiredResult:
    """Run ``code``; a pause for approval asks the client's user, one elicitation form per
    pending call, then resumes. On a connection with a back-channel the forms are sent within
    the call; otherwise (the stateless protocol) the call answers ``input_required`` with the
    forms and the resume token as its ``requestState``, and the client's next call brings the
    answers. A client that cannot elicit gets the paused output."""
    if params.request_state and params.input_responses:
        answers = {key: response for key, response in params.input_responses.items()}
        decisions = _decisions_from(answers)
        result = await cm.resume(params.request_state, decisions)
    else:
        result = await cm.execute(code, tool_call_id=call_id)
    elicitation = types.ClientCapabilities(elicitation=types.ElicitationCapability())
    while result.paused is not None and ctx.session.check_client_capability(elicitation):
        forms = {str(call.call_id): _approval_form(call) for call in result.paused.pending}
        try:
            answers = {
                key: await ctx.session.elicit_form(form.message, form.requested_schema, ctx.request_id)
                for key, form in forms.items()
            }
        except NoBackChannelError:
            requests = {key: types.ElicitRequest(params=form) for key, form in forms.items()}
            return types.InputRequiredResult(input_requests=requests, request_state=result.paused.token)
        result = await cm.resume(result.paused.token, _decisions_from(answers))
    return _call_result(result.to_tool_output())


def _approval_form(call: PendingCall) -> types.ElicitRequestFormParams:
    arguments = json.dumps(call.args, ensure_ascii=False)
    message = f"The program calls {call.function}({arguments}). Approve this call?"
    return types.ElicitRequestFormParams(message=message, requested_schema=APPROVAL_SCHEMA)


def _decisions_from(answers: Mapping[str, Any]) -> dict[int | str, Decision]:
    """A decision per call from the user's answers to the approval forms (keyed by call id)."""
    decisions: dict[int | str, Decision] = {}
    for key, answer in answers.items():
        action = getattr(answer, "action", None)
        content = getattr(answer, "content", None) or {}
        if action == "accept" and content.get("approve") is True:
            decisions[key] = approve()
        else:
            reason = content.get("reason") if action == "accept" else action
            decisions[key] = reject(str(reason or ""))
    return decisions


def _codemode_version() -> str:
    try:
        return importlib.metadata.version("codemode")
    except importlib.metadata.PackageNotFoundError:
        return ""


def _mcp_tool(tool: ModelTool, cm: CodeMode) -> types.Tool:
    description = cm.system_prompt if tool.name == TOOL_NAME else tool.description
    return types.Tool(name=tool.name, description=description, input_schema=dict(tool.input_schema))


def _call_result(output: dict[str, Any]) -> types.CallToolResult:
    text = json.dumps(output, ensure_ascii=False)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content=output,
        is_error=output.get("success") is False,
    )


async def serve_stdio(cm: CodeMode, **server_options: Any) -> None:
    """Serve ``cm`` over this process's stdin/stdout until the client disconnects.

    ``server_options`` go to :func:`build_server` (``name``, ``version``, ``instructions``).
    While serving, anything the tools print goes to stderr, not to the protocol stream.
    """
    server = build_server(cm, **server_options)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def streamable_http_app(
    cm: CodeMode, *, path: str = "/mcp", host: str = "127.0.0.1", **server_options: Any
) -> Starlette:
    """An ASGI app serving ``cm`` over streamable HTTP at ``path`` (mount it or run it).

    ``host`` is the host the app is served on: for a loopback host the SDK turns on its
    DNS-rebinding protection.
    """
    server = build_server(cm, **server_options)
    return server.streamable_http_app(streamable_http_path=path, host=host)


async def serve_streamable_http(
    cm: CodeMode,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    path: str = "/mcp",
    log_level: str = "warning",
    **server_options: Any,
) -> None:
    """Serve ``cm`` over streamable HTTP at ``http://host:port/path`` with uvicorn (asyncio only)."""
    import uvicorn

    app = streamable_http_app(cm, path=path, host=host, **server_options)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level)
    await uvicorn.Server(config).serve()


# --- code mode over MCP servers -------------------------------------------------------------


class McpToolError(Exception):
    """An upstream tool answered with an ``isError`` result (the program sees a ToolError)."""


class McpConnectError(Exception):
    """An upstream MCP server could not be started or did not complete the handshake."""


@dataclass
class Upstream:
    """One connected upstream MCP server."""

    name: str
    """Its name here: the key it was given, else the name the server reports."""
    session: ClientSession
    server_info: types.Implementation | None
    tools: list[types.Tool] = field(default_factory=list)
    connected: bool = True
    """False once the connection closed (for example, the server process exited)."""


async def list_all_tools(session: ClientSession) -> list[types.Tool]:
    """Every tool of an initialized session, following ``nextCursor`` through all pages."""
    tools: list[types.Tool] = []
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(_MAX_PAGES):
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor or cursor in seen:
            break
        seen.add(cursor)
    return tools


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
        if not upstream.connected:
            raise ConnectionError(
                f"MCP server {upstream.name!r} is disconnected (its connection closed earlier); "
                f"{tool.name} is unavailable"
            )
        try:
            result = await upstream.session.call_tool(tool.name, args)
        except MCPError as e:
            if e.code == types.CONNECTION_CLOSED:
                upstream.connected = False
                raise ConnectionError(
                    f"MCP server {upstream.name!r} closed the connection while running {tool.name} "
                    "(its process may have exited); its tools are unavailable from now on"
                ) from None
            if e.code == types.INVALID_PARAMS:
                raise InvalidArguments(f"{tool.name}: {e.message}") from None
            raise RuntimeError(f"{tool.name}: {e.message}") from None
        if result.is_error:
            raise McpToolError(_error_text(result, tool.name))
        return tool_result_value(result)

    description = tool.description or tool.title or ""
    return Tool.from_schema(name, description, tool.input_schema, tool.output_schema, handler)


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


class McpProxy:
    """Upstream MCP servers' tools as codemode tools; build a code mode with :meth:`code_mode`.

    Open it with :meth:`connect`. Each tool calls its upstream server: the program gets the
    result's ``structuredContent``, else its text (JSON-parsed when it is JSON). An upstream
    ``isError`` result, protocol error or closed connection makes the call fail with a
    ``ToolError`` in the program (an invalid-params error: ``InvalidArgumentsError``). When an
    upstream's connection closes, its tools fail fast from then on; the other upstreams'
    tools keep working.
    """

    def __init__(self, upstreams: Sequence[Upstream], tools: Sequence[Tool]) -> None:
        self.upstreams: list[Upstream] = list(upstreams)
        self.tools: list[Tool] = list(tools)

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        servers: Sequence[ServerSpec] | Mapping[str, ServerSpec],
        *,
        prefix: bool | None = None,
        timeout: float = 30.0,
    ) -> AsyncIterator[McpProxy]:
        """Start/connect every server, list all their tools; disconnect (and stop them) on exit.

        ``servers`` holds :class:`mcp.StdioServerParameters` (a command to run) or streamable
        HTTP URLs, as a sequence (each named by the name its server reports) or a mapping from
        names. Tool names get their server's name as a prefix when ``prefix`` is true, by
        default when there are several servers. ``timeout`` bounds each server's start,
        handshake and tool listing; raises :class:`McpConnectError` when one fails.
        """
        named = list(servers.items()) if isinstance(servers, Mapping) else [(None, s) for s in servers]
        use_prefix = len(named) > 1 if prefix is None else prefix
        async with AsyncExitStack() as stack:
            upstreams: list[Upstream] = []
            taken: set[str] = set()
            for label, spec in named:
                try:
                    upstream = await _connect_upstream(stack, spec, label, timeout)
                except McpConnectError:
                    await stack.aclose()  # stop the servers started so far, cleanly (no exception group)
                    raise
                upstream.name = _unique(upstream.name, taken)
                upstreams.append(upstream)
            tools = [tool for u in upstreams for tool in _tools_of(u, u.name if use_prefix else None)]
            yield cls(upstreams, tools)

    def code_mode(self, **options: Any) -> CodeMode:
        """A code mode over the upstream tools; ``options`` go to :func:`codemode.create_code_mode`."""
        return create_code_mode(self.tools, **options)


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _describe(spec: ServerSpec) -> str:
    if isinstance(spec, str):
        return spec
    return shlex.join([spec.command, *spec.args])


async def _connect_upstream(
    stack: AsyncExitStack, spec: ServerSpec, label: str | None, timeout: float
) -> Upstream:
    # Its own exit stack, closed before raising: a failure then leaves no task group behind
    # (and reaches the caller as itself, not inside an exception group).
    own = await stack.enter_async_context(AsyncExitStack())
    try:
        if isinstance(spec, str):
            read_stream, write_stream = await own.enter_async_context(streamable_http_client(spec))
        else:
            read_stream, write_stream = await own.enter_async_context(stdio_client(spec))
        session = await own.enter_async_context(ClientSession(read_stream, write_stream))
        with anyio.fail_after(timeout):  # around the requests only: a scope must not hold entered contexts
            init = await session.initialize()
            tools = await list_all_tools(session)
    except TimeoutError:
        failure = McpConnectError(f"MCP server {_describe(spec)} did not answer within {timeout:g} s")
    except (MCPError, OSError) as e:
        failure = McpConnectError(f"cannot connect to MCP server {_describe(spec)}: {e}")
        failure.__cause__ = e
    else:
        name = label or init.server_info.name or "mcp"
        return Upstream(name, session, init.server_info, tools)
    await own.aclose()
    raise failure


def server_spec(command: str | Sequence[str]) -> ServerSpec:
    """An upstream server from a command line (a shell-quoted string or its words) or an
    ``http(s)://`` URL (streamable HTTP)."""
    words = shlex.split(command) if isinstance(command, str) else list(command)
    if not words:
        raise ValueError("empty MCP server command")
    if len(words) == 1 and words[0].startswith(("http://", "https://")):
        return words[0]
    return StdioServerParameters(command=words[0], args=words[1:])


def load_servers_config(path: str | Path) -> dict[str, ServerSpec]:
    """Servers from a JSON file in the usual MCP client format::

    {"mcpServers": {"time": {"command": "mcp-server-time", "args": [], "env": {}, "cwd": "."},
                    "remote": {"url": "http://127.0.0.1:8000/mcp"}}}

    Raises ``FileNotFoundError``, ``json.JSONDecodeError`` (a ``ValueError``) for a file that
    is not JSON, and ``ValueError`` naming the server whose entry has the wrong shape.
    """
    config = json.loads(Path(path).read_text(encoding="utf-8"))
    entries = config.get("mcpServers", config) if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: expected an object mapping server names to servers")
    servers: dict[str, ServerSpec] = {}
    for name, entry in entries.items():
        shape = f'{path}: server {name!r} must be {{"command": ..., "args": [...]}} or {{"url": ...}}'
        if not isinstance(entry, dict):
            raise ValueError(shape)
        if "url" in entry:
            servers[name] = str(entry["url"])
        elif isinstance(entry.get("command"), str) and isinstance(entry.get("args", []), list):
            servers[name] = StdioServerParameters(
                command=entry["command"],
                args=[str(arg) for arg in entry.get("args", [])],
                env=entry.get("env"),
                cwd=entry.get("cwd"),
            )
        else:
            raise ValueError(shape)
    return servers


async def serve(
    cm: CodeMode,
    *,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    path: str = "/mcp",
    **server_options: Any,
) -> None:
    """Serve ``cm`` over ``transport``: ``"stdio"`` or ``"streamable-http"`` (on ``host``,
    ``port`` and ``path``); ``server_options`` go to :func:`build_server`."""
    if transport == "stdio":
        await serve_stdio(cm, **server_options)
    elif transport == "streamable-http":
        await serve_streamable_http(cm, host=host, port=port, path=path, **server_options)
    else:
        raise ValueError(f"unknown transport {transport!r} (stdio or streamable-http)")


async def serve_proxy(
    servers: Sequence[ServerSpec] | Mapping[str, ServerSpec],
    *,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    path: str = "/mcp",
    name: str = "codemode-proxy",
    prefix: bool | None = None,
    **code_mode_options: Any,
) -> None:
    """Connect to ``servers`` and serve one ``execute_typescript`` tool over all their tools.

    ``transport``, ``host``, ``port`` and ``path`` are as for :func:`serve`;
    ``code_mode_options`` go to :func:`codemode.create_code_mode`.
    """
    async with McpProxy.connect(servers, prefix=prefix) as proxy:
        cm = proxy.code_mode(**code_mode_options)
        try:
            await serve(cm, transport=transport, host=host, port=port, path=path, name=name)
        finally:
            await cm.aclose()
