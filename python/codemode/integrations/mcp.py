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

With a skill store (``serve(cm, skills_store=store)``, ``codemode mcp serve --skills-store
URL``), the server also lists the skill management tools (``search_skills``, ``get_skill``,
``register_skill``, ``update_skill``) and the store's skills as tools of their own, and
programs call them as ``skill_<name>``. A skill registered through the server joins the list:
the clients that listed the tools get ``notifications/tools/list_changed``. ``build_server``
and the other ``serve_*`` functions take a :class:`~codemode.skills.SkillContext` the same way.
"""

from __future__ import annotations

import errno
import importlib.metadata
import json
import logging
import os
import queue
import re
import shlex
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import urlsplit

import anyio
import anyio.abc
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError, NoBackChannelError
from starlette.applications import Starlette

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # anyio's dependency there

from ..approvals import Decision, approve, reject
from ..code_mode import CodeMode, create_code_mode
from ..errors import CodemodeError
from ..execute_tool import ModelTool
from ..prompt import TOOL_NAME
from ..results import ExecutionResult, PendingCall
from ..tools import InvalidArguments, Tool
from ._sources import (
    Source,
    code_mode_of,
    execute_tool_of,
    executor_of,
    is_skill_context,
    listing,
    prompt_of,
    tools_of,
)

if TYPE_CHECKING:
    from ..skills import SkillStore

__all__ = [
    "BACKOFF",
    "DECLARATIONS_URI",
    "McpConnectError",
    "McpProxy",
    "McpToolError",
    "ServerSpec",
    "Upstream",
    "build_server",
    "check_upstream_name",
    "default_name",
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
    cm: Source, *, name: str = "codemode", version: str | None = None, instructions: str | None = None
) -> Server[Any]:
    """An MCP server (SDK low-level ``Server``) offering ``cm.model_tools`` (for a
    :class:`~codemode.skills.SkillContext`: its tools, with its prompt; the server then
    declares ``tools.listChanged`` and tells the clients when a registration changed them).

    ``execute_typescript``'s description is the code mode's system prompt (rules and the
    declarations of every function). Each call returns the model-facing JSON output as text
    content and as ``structuredContent``, with ``isError`` when ``success`` is false. The
    declarations are also the resource :data:`DECLARATIONS_URI` (``text/typescript``).
    Progress that upstream MCP tools report during a call (see :class:`McpProxy`) reaches the
    client as progress of that call, when the client sent a progress token.
    """
    connections: weakref.WeakSet[Any] | None = weakref.WeakSet() if is_skill_context(cm) else None
    return _build_server(
        lambda: cm, name=name, version=version, instructions=instructions, connections=connections
    )


def _build_server(
    current: Callable[[], Source],
    *,
    name: str,
    version: str | None,
    instructions: str | None,
    connections: weakref.WeakSet[Any] | None = None,
) -> Server[Any]:
    """:func:`build_server` over the code mode ``current()`` returns at each request (the
    proxy's is rebuilt when an upstream's tools change). The connections that listed the
    tools are added to ``connections``, when given, to be told of changes; a tool call that
    changes a skill context's tools (a skill registered) tells them."""
    listed: list[tuple[Source, tuple[Any, ...], list[types.Tool]]] = []
    declarations = types.Resource(
        uri=DECLARATIONS_URI,
        name="declarations",
        title="TypeScript declarations",
        description="Declarations of the functions execute_typescript programs can call.",
        mime_type="text/typescript",
    )

    def mcp_tools(source: Source) -> list[types.Tool]:
        key = (*listing(source), prompt_of(source))
        if not listed or listed[0][0] is not source or listed[0][1] != key:
            listed[:] = [(source, key, [_mcp_tool(tool, source) for tool in tools_of(source)])]
        return listed[0][2]

    async def tools_changed(ctx: Any) -> None:
        """Tell the calling client within its call (a stateless connection has no other way),
        and the other clients that listed the tools on their connection."""
        caller = getattr(ctx.session, "_connection", None)
        try:
            notification = types.ToolListChangedNotification()
            await ctx.session.send_notification(notification, related_request_id=ctx.request_id)
        except Exception as e:  # a client gone
            logger.debug("could not send tools/list_changed: %s", e)
        for connection in list(connections or ()):
            if connection is caller:
                continue
            try:
                await connection.send_tool_list_changed()
            except Exception as e:  # a client gone
                logger.debug("could not send tools/list_changed: %s", e)

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        # the connection outlives this request's session
        connection = getattr(ctx.session, "_connection", None)
        if connections is not None and hasattr(connection, "send_tool_list_changed"):
            connections.add(connection)
        return types.ListToolsResult(tools=mcp_tools(current()))

    async def call_tool(
        ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        source = current()
        tool = next((t for t in tools_of(source) if t.name == params.name), None)
        if tool is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
        call_id = None if ctx.request_id is None else str(ctx.request_id)
        code = (params.arguments or {}).get("typescriptCode")
        cm = code_mode_of(source)
        before = listing(source)
        token = _PROGRESS.set(_ProgressSink(ctx.session.report_progress))
        try:
            if tool is execute_tool_of(source) and cm.approvals is not None and isinstance(code, str):
                return await _execute_with_approvals(cm, executor_of(source), code, call_id, ctx, params)
            output = await tool.call(params.arguments or {}, tool_call_id=call_id)
        finally:
            _PROGRESS.reset(token)
            if listing(source) != before:  # a skill registered (or a new version)
                await tools_changed(ctx)
        return _call_result(output)

    async def list_resources(
        ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[declarations])

    async def read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        if params.uri != DECLARATIONS_URI:
            raise MCPError(types.INVALID_PARAMS, f"Unknown resource: {params.uri}")
        text = _declarations(current())
        contents = types.TextResourceContents(uri=DECLARATIONS_URI, mime_type="text/typescript", text=text)
        return types.ReadResourceResult(contents=[contents])

    server_class = Server if connections is None else _ToolsChangeServer
    return server_class(
        name,
        version=_codemode_version() if version is None else version,
        instructions=instructions,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
    )


class _ToolsChangeServer(Server[Any]):
    """A server that declares ``tools.listChanged``: its tool list can change while it runs."""

    def create_initialization_options(
        self, notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        options = notification_options or NotificationOptions(tools_changed=True)
        return super().create_initialization_options(options, *args, **kwargs)


class _ProgressSink:
    """Sends the progress of upstream tool calls as progress of one ``execute_typescript`` call.

    Several calls of a program can report progress at once, and a progress token's values
    must increase: the value sent is the count of notifications so far (no total), and the
    message says which function reported what (``external_slow: 2/5 copying``)."""

    def __init__(self, report: Callable[[float, float | None, str | None], Awaitable[None]]) -> None:
        self._report = report
        self._count = 0

    async def __call__(
        self, function: str, progress: float, total: float | None, message: str | None
    ) -> None:
        self._count += 1
        detail = f"{progress:g}" if total is None else f"{progress:g}/{total:g}"
        text = f"external_{function}: {detail}" + (f" {message}" if message else "")
        try:
            await self._report(float(self._count), None, text)
        except Exception as e:  # a client gone or a closed stream must not fail the tool call
            logger.debug("could not forward progress: %s", e)


_PROGRESS: ContextVar[_ProgressSink | None] = ContextVar("codemode_mcp_progress", default=None)
"""Where the upstream tool calls of the running ``execute_typescript`` call send progress."""


APPROVAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "approve": {"type": "boolean", "title": "Approve", "description": "Run this call"},
        "reason": {"type": "string", "title": "Reason", "description": "Why not (the program sees it)"},
    },
    "required": ["approve"],
}
"""What an approval elicitation asks the client's user for."""


def _declarations(source: Source) -> str:
    """The declarations of the functions programs call: a skill context's skills included."""
    declarations = code_mode_of(source).declarations
    if is_skill_context(source):
        skills = source.runtime.declarations
        if skills:
            declarations = f"{declarations.rstrip()}\n\n{skills}"
    return declarations


async def _execute_with_approvals(
    cm: CodeMode,
    execute: Callable[..., Awaitable[ExecutionResult]],
    code: str,
    call_id: str | None,
    ctx: Any,
    params: types.CallToolRequestParams,
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
        result = await execute(code, tool_call_id=call_id)
    elicitation = types.ClientCapabilities(elicitation=types.ElicitationCapability())
    while result.paused is not None and ctx.session.check_client_capability(elicitation):
        forms = {str(call.call_id): _approval_form(call) for call in result.paused.pending}
        try:
            answers = {
                key: await ctx.session.elicit_form(form.message, form.requested_schema, ctx.request_id)
                for key, form in forms.items()
            }
        except NoBackChannelError:
            requests: types.InputRequests = {
                key: types.ElicitRequest(params=form) for key, form in forms.items()
            }
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


async def serve_stdio(cm: Source, **server_options: Any) -> None:
    """Serve ``cm`` over this process's stdin/stdout until the client disconnects.

    ``server_options`` go to :func:`build_server` (``name``, ``version``, ``instructions``).
    While serving, anything the tools print goes to stderr, not to the protocol stream, and a
    cancellation (Ctrl-C) ends it at once, without waiting for stdin to close.
    """
    await _run_stdio(build_server(cm, **server_options))


async def _run_stdio(server: Server[Any]) -> None:
    with _claimed_stdin() as stdin:
        async with stdio_server(stdin=cast(Any, _lines(stdin))) as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())


@contextmanager
def _claimed_stdin() -> Iterator[BinaryIO]:
    """The protocol's input, with fd 0 pointing at the null device meanwhile (a tool or a
    child process that reads stdin gets end-of-file, not protocol messages)."""
    try:
        private = os.dup(sys.stdin.fileno())  # not inheritable
    except (AttributeError, OSError, ValueError):  # stdin replaced (tests), or closed
        yield sys.stdin.buffer
        return
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    try:
        # closefd=False: the reading thread may still block on it after serving ends
        yield os.fdopen(private, "rb", closefd=False)
    finally:
        os.dup2(private, 0)


async def _lines(stream: BinaryIO) -> AsyncIterator[str]:
    """The lines of ``stream``, read by a daemon thread: a cancelled read (Ctrl-C) neither
    waits for the next line nor keeps the process alive at exit, as an anyio worker would."""
    lines: queue.Queue[str | None] = queue.Queue(maxsize=64)

    def read() -> None:
        try:
            for raw in stream:
                lines.put(raw.decode("utf-8", errors="replace"))
        except (OSError, ValueError):
            pass
        finally:
            lines.put(None)

    threading.Thread(target=read, name="codemode-mcp-stdin", daemon=True).start()
    try:
        while (line := await anyio.to_thread.run_sync(lines.get, abandon_on_cancel=True)) is not None:
            yield line
    finally:
        with suppress(queue.Full):
            lines.put_nowait(None)  # wakes a get() that a cancellation abandoned


def streamable_http_app(
    cm: Source, *, path: str = "/mcp", host: str = "127.0.0.1", **server_options: Any
) -> Starlette:
    """An ASGI app serving ``cm`` over streamable HTTP at ``path`` (mount it or run it).

    ``host`` is the host the app is served on: for a loopback host the SDK turns on its
    DNS-rebinding protection.
    """
    server = build_server(cm, **server_options)
    return server.streamable_http_app(streamable_http_path=path, host=host)


async def serve_streamable_http(
    cm: Source,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    path: str = "/mcp",
    log_level: str = "warning",
    **server_options: Any,
) -> None:
    """Serve ``cm`` over streamable HTTP at ``http://host:port/path`` with uvicorn (asyncio only)."""
    await _run_http(build_server(cm, **server_options), host=host, port=port, path=path, log_level=log_level)


async def _run_http(
    server: Server[Any], *, host: str, port: int, path: str, log_level: str = "warning"
) -> None:
    import uvicorn

    app = server.streamable_http_app(streamable_http_path=path, host=host)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level)
    await uvicorn.Server(config).serve()


# --- code mode over MCP servers -------------------------------------------------------------


class McpToolError(CodemodeError):
    """An upstream tool answered with an ``isError`` result (the program sees a ToolError)."""


class McpConnectError(CodemodeError):
    """An upstream MCP server could not be started or did not complete the handshake."""


BACKOFF = (0.5, 30.0)
"""Seconds before the first attempt to reconnect an upstream that went away, and the cap of
the delay, which doubles after each failed attempt."""


@dataclass(eq=False)
class Upstream:
    """One upstream MCP server: its session while connected, the tools it listed last."""

    name: str
    """Its name here: the key it was given, else one derived from its command or URL."""
    session: ClientSession | None
    server_info: types.Implementation | None
    tools: list[types.Tool] = field(default_factory=list)
    connected: bool = True
    """False while its connection is down (for example, the server process exited)."""
    spec: ServerSpec | None = None
    """How to reach it; ``None`` for a session managed elsewhere (never reconnected)."""
    error: str | None = None
    """Why it is unavailable, while it is not connected."""
    _lost: anyio.Event | None = field(default=None, repr=False)
    _down: anyio.Event | None = field(default=None, repr=False)

    def unavailable(self) -> str:
        """The message a call gets while the upstream is not connected."""
        retrying = "; retrying" if self.spec is not None else ""
        return f"upstream {self.name!r} is unavailable: {self.error or 'not connected'}{retrying}"

    def lose(self, reason: str) -> None:
        """Mark the connection lost for ``reason``: the supervisor (if any) reconnects."""
        if self.connected:
            self.connected = False
            self.error = reason
        if self._lost is not None:
            self._lost.set()

    async def _await_teardown(self, seconds: float = 2.0) -> None:
        """Wait a little for the supervisor to close the lost connection (it then knows the
        cause, such as ``connection refused``, better than a call that saw it close)."""
        if self._down is not None:
            with anyio.move_on_after(seconds):
                await self._down.wait()

    async def _await_connected(self, seconds: float) -> bool:
        if self.spec is None:
            return False
        with anyio.move_on_after(seconds):
            while not self.connected:
                await anyio.sleep(0.05)
        return self.connected

    async def _supervise(
        self,
        timeout: float,
        backoff: tuple[float, float],
        changed: Callable[[Upstream], Awaitable[None]],
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Connect, list the tools, wait until the connection is lost; again, after a delay
        that doubles from ``backoff[0]`` to ``backoff[1]``, for as long as the proxy runs. The
        first failure raises :class:`McpConnectError` (before ``task_status.started``)."""
        assert self.spec is not None
        delay, started = backoff[0], False
        while True:
            self._lost, self._down = anyio.Event(), anyio.Event()
            opened = False
            try:
                async with AsyncExitStack() as stack:
                    session, info, tools = await _open(stack, self.spec, timeout, self.lose)
                    self.session, self.server_info, self.tools = session, info, tools
                    self.connected, self.error, delay, opened = True, None, backoff[0], True
                    if started:
                        logger.warning("upstream %r is back (%d tools)", self.name, len(tools))
                        await changed(self)
                    else:
                        started = True
                        task_status.started()
                    await self._lost.wait()
            except Exception as e:
                if not started:
                    raise _connect_error(self.spec, e, timeout) from e
                if not opened or self.connected or self.error is None or "closed" in self.error:
                    self.error = _reason(e, timeout)  # the transport's cause beats "the connection closed"
            self.connected, self.session = False, None
            self._down.set()
            logger.warning("upstream %r is unavailable: %s; retrying in %g s", self.name, self.error, delay)
            await anyio.sleep(delay)
            delay = min(delay * 2, backoff[1])


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
                    raise InvalidArguments(f"{tool.name}: {e.message}") from None
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


class McpProxy:
    """Upstream MCP servers' tools as codemode tools; build a code mode with :meth:`code_mode`.

    Open it with :meth:`connect`. Each tool calls its upstream server: the program gets the
    result's ``structuredContent``, else its text (JSON-parsed when it is JSON). An upstream
    ``isError`` result, protocol error or lost connection makes the call fail with a
    ``ToolError`` in the program (an invalid-params error: ``InvalidArgumentsError``).

    An upstream that goes away (an HTTP server that stops, a command that exits) fails only
    its own calls (``upstream 'time' is unavailable: connection refused; retrying``) while the
    proxy reconnects it (restarts the command) with exponential backoff (:data:`BACKOFF`);
    when it is back its tools are listed again, and :attr:`tools` and the listeners of
    :meth:`on_tools_changed` follow when they changed. Progress an upstream reports during a
    call goes to the ``execute_typescript`` call that made it (see :func:`build_server`).
    """

    def __init__(
        self, upstreams: Sequence[Upstream], tools: Sequence[Tool] | None = None, *, prefix: bool = False
    ) -> None:
        self.upstreams: list[Upstream] = list(upstreams)
        self.prefix = prefix
        """Whether tool names start with their upstream's name (``time_get_current_time``)."""
        self.tools: list[Tool] = self._collect() if tools is None else list(tools)
        self._listed = self._listing()
        self._listeners: list[Callable[[], Awaitable[None]]] = []

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        servers: Sequence[ServerSpec] | Mapping[str, ServerSpec],
        *,
        prefix: bool | None = None,
        timeout: float = 30.0,
        backoff: tuple[float, float] = BACKOFF,
    ) -> AsyncIterator[McpProxy]:
        """Start/connect every server, list all their tools; disconnect (and stop them) on exit.

        ``servers`` holds :class:`mcp.StdioServerParameters` (a command to run) or streamable
        HTTP URLs, as a sequence (each named by :func:`default_name`: its program's or host's
        name) or a mapping from names, which must be identifiers (``ValueError`` otherwise).
        Tool names get their server's name as a prefix when ``prefix`` is true, by default when
        there are several servers. ``timeout`` bounds each server's start, handshake and tool
        listing; a server that cannot be reached at first raises :class:`McpConnectError`.
        Later, one that goes away is reconnected after ``backoff[0]`` seconds, doubling up to
        ``backoff[1]``.
        """
        if isinstance(servers, Mapping):
            for key in servers:
                check_upstream_name(key)
            named = list(servers.items())
        else:
            named = [(default_name(spec), spec) for spec in servers]
        proxy = cls([], [], prefix=len(named) > 1 if prefix is None else prefix)
        try:
            async with anyio.create_task_group() as tg:
                try:
                    taken: set[str] = set()
                    for label, spec in named:
                        upstream = Upstream(_unique(label, taken), None, None, connected=False, spec=spec)
                        await tg.start(upstream._supervise, timeout, backoff, proxy._upstream_back)
                        proxy.upstreams.append(upstream)
                    proxy.tools = proxy._collect()
                    proxy._listed = proxy._listing()
                    yield proxy
                finally:
                    tg.cancel_scope.cancel()  # stop the supervisors, which close the connections
        except BaseExceptionGroup as group:  # the task group wraps even the body's own exception
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise

    def code_mode(self, **options: Any) -> CodeMode:
        """A code mode over the upstream tools; ``options`` go to :func:`codemode.create_code_mode`."""
        return create_code_mode(self.tools, **options)

    def on_tools_changed(self, listener: Callable[[], Awaitable[None]]) -> None:
        """Call ``listener`` when an upstream came back with tools different from before
        (:attr:`tools` is already updated then)."""
        self._listeners.append(listener)

    def _collect(self) -> list[Tool]:
        return [tool for u in self.upstreams for tool in _tools_of(u, u.name if self.prefix else None)]

    def _listing(self) -> list[tuple[str, str]]:
        return [(u.name, t.model_dump_json()) for u in self.upstreams for t in u.tools]

    async def _upstream_back(self, upstream: Upstream) -> None:
        listed = self._listing()
        if listed == self._listed:
            return
        self._listed, self.tools = listed, self._collect()
        logger.warning("upstream %r lists different tools now: %d functions", upstream.name, len(self.tools))
        for listener in self._listeners:
            try:
                await listener()
            except Exception:
                logger.exception("a listener of the proxy's tool changes failed")


def check_upstream_name(name: str) -> str:
    """``name`` when it can name an upstream (its tools' prefix: ``external_<name>_<tool>``),
    else ``ValueError`` saying why."""
    if not (name.isascii() and name.isidentifier()):
        raise ValueError(
            f"upstream name {name!r} is not an identifier: use letters, digits and _, "
            "not starting with a digit (it prefixes the functions: external_<name>_<tool>)"
        )
    return name


_LAUNCHER = re.compile(r"(python[0-9.]*|py|node|npx|bunx|bun|deno|uv|uvx|pipx|sh|bash)(\.exe)?")
_LAUNCHER_WORDS = frozenset({"run", "tool", "exec"})
_SCRIPT_SUFFIXES = (".py", ".js", ".mjs", ".cjs", ".ts")
_GENERIC_STEMS = frozenset({"index", "main", "server", "__main__", "cli"})
_PACKAGING_DIRS = frozenset({"dist", "build", "src", "lib", "bin", "node_modules"})
_NAME_AFFIXES = ("mcp_server_", "server_", "mcp_", "_mcp_server", "_server", "_mcp")


def default_name(spec: ServerSpec) -> str:
    """A short, predictable upstream name: from a URL its host's name (``mcp.deepwiki.com``:
    ``deepwiki``; a loopback or IP address: ``local``), from a command its program's name,
    or the script's or package's it runs (``mcp-server-time``, ``python -m mcp_server_time``
    and ``uvx mcp-server-time``: ``time``; ``npx -y @modelcontextprotocol/server-everything``:
    ``everything``)."""
    if isinstance(spec, str):
        host = urlsplit(spec).hostname or ""
        if host == "localhost" or not host or host.replace(".", "").isdigit() or ":" in host:
            return "local"
        labels = [label for label in host.split(".")[:-1] if label not in ("www", "mcp", "api")]
        return _identifier(labels[0] if labels else host.split(".")[0])
    words = [spec.command, *spec.args]
    target = words[0]
    if _LAUNCHER.fullmatch(PurePath(target).name):
        if "-m" in words[1:-1]:
            target = words[words.index("-m") + 1]
        else:
            rest = [w for w in words[1:] if not w.startswith("-") and w not in _LAUNCHER_WORDS]
            target = rest[0] if rest else target
    if target.startswith("@"):  # an npm package: @scope/name@version
        target = target.split("/", 1)[-1]
    head, _, version = target.rpartition("@")
    path = PurePath(head if head and "/" not in version else target)  # name@1.2.3: name
    stem = path.stem if path.suffix in _SCRIPT_SUFFIXES else path.name
    if stem in _GENERIC_STEMS:  # dist/index.js: the package's directory names it
        parents = [part for part in reversed(path.parent.parts) if part not in _PACKAGING_DIRS]
        stem = parents[0] if parents else stem
    return _identifier(stem)


def _identifier(text: str) -> str:
    name = re.sub(r"\W+", "_", text.lower()).strip("_")
    for affix in _NAME_AFFIXES:
        shorter = name.removeprefix(affix) if affix.endswith("_") else name.removesuffix(affix)
        if shorter != name and shorter:
            name = shorter
            break
    if not name:
        return "mcp"
    return name if name[0].isalpha() or name[0] == "_" else f"s{name}"


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


async def _open(
    stack: AsyncExitStack, spec: ServerSpec, timeout: float, lose: Callable[[str], None]
) -> tuple[ClientSession, types.Implementation, list[types.Tool]]:
    """Connect to ``spec`` within ``stack``: the initialized session, its server's info and
    tools. ``lose`` is called when the server's stream ends (its process exited)."""
    if isinstance(spec, str):
        read_stream, write_stream = await stack.enter_async_context(streamable_http_client(spec))
        ended = "the server closed the connection"
    else:
        read_stream, write_stream = await stack.enter_async_context(stdio_client(spec))
        ended = "its process exited"
    watched = _WatchedStream(read_stream, lambda: lose(ended))
    session = await stack.enter_async_context(ClientSession(cast(Any, watched), write_stream))
    with anyio.fail_after(timeout):  # around the requests only: a scope must not hold entered contexts
        init = await session.initialize()
        tools = await list_all_tools(session)
    return session, init.server_info, tools


class _WatchedStream:
    """A transport's read stream that calls ``on_end`` when it ends (the server went away),
    so that the proxy reconnects before the next call finds out."""

    def __init__(self, stream: Any, on_end: Callable[[], None]) -> None:
        self._stream = stream
        self._on_end = on_end

    @property
    def last_context(self) -> Any:
        return getattr(self._stream, "last_context", None)

    async def receive(self) -> Any:
        try:
            return await self._stream.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._on_end()
            raise

    def __aiter__(self) -> _WatchedStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._stream.__anext__()
        except (StopAsyncIteration, anyio.ClosedResourceError):
            self._on_end()
            raise

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def __aenter__(self) -> _WatchedStream:
        await self._stream.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self._stream.__aexit__(*exc_info)


def _leaf(error: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups that is not a cancellation."""
    if isinstance(error, BaseExceptionGroup):
        leaves = [_leaf(inner) for inner in error.exceptions]
        real = [leaf for leaf in leaves if not isinstance(leaf, anyio.get_cancelled_exc_class())]
        return (real or leaves)[0]
    return error


def _reason(error: BaseException, timeout: float) -> str:
    """What went wrong, in a few words (``connection refused``)."""
    leaf = _leaf(error)
    if isinstance(leaf, TimeoutError):
        return f"it did not answer within {timeout:g} s"
    cause: BaseException | None = leaf
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    text = " ".join(str(leaf).split())
    return text or type(leaf).__name__


def _connect_error(spec: ServerSpec, error: BaseException, timeout: float) -> McpConnectError:
    if isinstance(_leaf(error), TimeoutError):
        return McpConnectError(f"MCP server {_describe(spec)} did not answer within {timeout:g} s")
    return McpConnectError(f"cannot connect to MCP server {_describe(spec)}: {_reason(error, timeout)}")


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
    cm: Source,
    *,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    path: str = "/mcp",
    skills_store: SkillStore | str | None = None,
    max_skills: int = 20,
    **server_options: Any,
) -> None:
    """Serve ``cm`` over ``transport``: ``"stdio"`` or ``"streamable-http"`` (on ``host``,
    ``port`` and ``path``); ``server_options`` go to :func:`build_server`.

    ``skills_store`` (a :class:`~codemode.skills.SkillStore` or a store URL, see
    :func:`codemode.skills.store_from_url`) serves the skill library too: the management
    tools, and the ``max_skills`` most-run skills of the store as tools (and ``skill_*``
    functions); skills registered while serving are added, and the clients told."""
    if transport not in ("stdio", "streamable-http"):
        raise ValueError(f"unknown transport {transport!r} (stdio or streamable-http)")
    if skills_store is not None:
        cm = await skills_context(code_mode_of(cm), skills_store, max_skills=max_skills)
    if transport == "stdio":
        await serve_stdio(cm, **server_options)
    elif transport == "streamable-http":
        await serve_streamable_http(cm, host=host, port=port, path=path, **server_options)


async def skills_context(cm: CodeMode, store: SkillStore | str, *, max_skills: int = 20) -> Any:
    """The :class:`~codemode.skills.SkillContext` a server offers over ``store`` (or a store
    URL): the management tools and the ``max_skills`` skills with the most runs (there is no
    conversation to select them from)."""
    from ..skills import with_skills
    from ..skills.url import store_from_url

    if isinstance(store, str):
        store = store_from_url(store)
    return await with_skills(cm, store=store, messages=[], selector=_MostRun(), max_in_context=max_skills)


@dataclass(frozen=True)
class _MostRun:
    """A skill selector without a conversation: the skills run most often (then by name)."""

    async def select(self, store: SkillStore, messages: Sequence[Any], limit: int) -> list[Any]:
        index = await store.list_index()
        index.sort(key=lambda summary: (-summary.stats.executions, summary.name))
        return index[: max(limit, 0)]


async def serve_proxy(
    servers: Sequence[ServerSpec] | Mapping[str, ServerSpec],
    *,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    path: str = "/mcp",
    name: str = "codemode-proxy",
    prefix: bool | None = None,
    backoff: tuple[float, float] = BACKOFF,
    **code_mode_options: Any,
) -> None:
    """Connect to ``servers`` and serve one ``execute_typescript`` tool over all their tools.

    ``transport``, ``host``, ``port`` and ``path`` are as for :func:`serve`;
    ``code_mode_options`` go to :func:`codemode.create_code_mode`. An upstream that goes away
    is reconnected (``backoff``, see :meth:`McpProxy.connect`); when it comes back with other
    tools, the tool's description (the prompt) follows and the clients that listed the tools
    get ``notifications/tools/list_changed``.
    """
    if transport not in ("stdio", "streamable-http"):
        raise ValueError(f"unknown transport {transport!r} (stdio or streamable-http)")
    async with McpProxy.connect(servers, prefix=prefix, backoff=backoff) as proxy:
        code_modes = [proxy.code_mode(**code_mode_options)]
        connections: weakref.WeakSet[Any] = weakref.WeakSet()

        async def tools_changed() -> None:
            code_modes.append(proxy.code_mode(**code_mode_options))  # running programs keep theirs
            for connection in list(connections):
                try:
                    await connection.send_tool_list_changed()
                except Exception as e:  # a client gone
                    logger.debug("could not send tools/list_changed: %s", e)

        proxy.on_tools_changed(tools_changed)
        server = _build_server(
            lambda: code_modes[-1], name=name, version=None, instructions=None, connections=connections
        )
        try:
            if transport == "stdio":
                await _run_stdio(server)
            else:
                await _run_http(server, host=host, port=port, path=path)
        finally:
            for cm in code_modes:
                await cm.aclose()
