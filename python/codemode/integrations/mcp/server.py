"""Serving a code mode over MCP: :func:`build_server` (the tools, with ``execute_typescript``
described by the system prompt, and the declarations as a resource), and :func:`serve` over
stdio or streamable HTTP, with a skill store's skills as tools when given one."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import queue
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import anyio
import mcp_types as types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette

from ...code_mode import CodeMode
from .._sources import (
    Source,
    code_mode_of,
    execute_tool_of,
    executor_of,
    is_skill_context,
    listing,
    prompt_of,
    tools_of,
)
from .elicitation import _execute_with_approvals
from .progress import _PROGRESS, _ProgressSink
from .tools import _call_result, _mcp_tool

if TYPE_CHECKING:
    from ...skills import SkillStore

logger = logging.getLogger("codemode.integrations.mcp")

DECLARATIONS_URI = "codemode://declarations.d.ts"
"""The MCP resource holding the TypeScript declarations of the code mode's tools."""


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
    handlers = _Handlers(current, connections)
    server_class = Server if connections is None else _ToolsChangeServer
    return server_class(
        name,
        version=_codemode_version() if version is None else version,
        instructions=instructions,
        on_list_tools=handlers.list_tools,
        on_call_tool=handlers.call_tool,
        on_list_resources=handlers.list_resources,
        on_read_resource=handlers.read_resource,
    )


class _Handlers:
    """The requests of a server over the code mode ``current()`` returns at each request; the
    connections that listed the tools are added to ``connections``, when given."""

    def __init__(self, current: Callable[[], Source], connections: weakref.WeakSet[Any] | None) -> None:
        self._current = current
        self._connections = connections
        self._listed: list[tuple[Source, tuple[Any, ...], list[types.Tool]]] = []
        self._declarations = types.Resource(
            uri=DECLARATIONS_URI,
            name="declarations",
            title="TypeScript declarations",
            description="Declarations of the functions execute_typescript programs can call.",
            mime_type="text/typescript",
        )

    def _mcp_tools(self, source: Source) -> list[types.Tool]:
        listed = self._listed
        key = (*listing(source), prompt_of(source))
        if not listed or listed[0][0] is not source or listed[0][1] != key:
            listed[:] = [(source, key, [_mcp_tool(tool, source) for tool in tools_of(source)])]
        return listed[0][2]

    async def _tools_changed(self, ctx: Any) -> None:
        """Tell the calling client within its call (a stateless connection has no other way),
        and the other clients that listed the tools on their connection."""
        caller = getattr(ctx.session, "_connection", None)
        try:
            notification = types.ToolListChangedNotification()
            await ctx.session.send_notification(notification, related_request_id=ctx.request_id)
        except Exception as e:  # a client gone
            logger.debug("could not send tools/list_changed: %s", e)
        for connection in list(self._connections or ()):
            if connection is caller:
                continue
            try:
                await connection.send_tool_list_changed()
            except Exception as e:  # a client gone
                logger.debug("could not send tools/list_changed: %s", e)

    async def list_tools(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        # the connection outlives this request's session
        connection = getattr(ctx.session, "_connection", None)
        if self._connections is not None and hasattr(connection, "send_tool_list_changed"):
            self._connections.add(connection)
        return types.ListToolsResult(tools=self._mcp_tools(self._current()))

    async def call_tool(
        self, ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        source = self._current()
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
                await self._tools_changed(ctx)
        return _call_result(output)

    async def list_resources(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[self._declarations])

    async def read_resource(
        self, ctx: Any, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        if params.uri != DECLARATIONS_URI:
            raise MCPError(types.INVALID_PARAMS, f"Unknown resource: {params.uri}")
        text = _declarations(self._current())
        contents = types.TextResourceContents(uri=DECLARATIONS_URI, mime_type="text/typescript", text=text)
        return types.ReadResourceResult(contents=[contents])


class _ToolsChangeServer(Server[Any]):
    """A server that declares ``tools.listChanged``: its tool list can change while it runs."""

    def create_initialization_options(
        self, notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        options = notification_options or NotificationOptions(tools_changed=True)
        return super().create_initialization_options(options, *args, **kwargs)


def _declarations(source: Source) -> str:
    """The declarations of the functions programs call: a skill context's skills included."""
    declarations = code_mode_of(source).declarations
    if is_skill_context(source):
        skills = source.runtime.declarations
        if skills:
            declarations = f"{declarations.rstrip()}\n\n{skills}"
    return declarations


def _codemode_version() -> str:
    try:
        return importlib.metadata.version("codemode")
    except importlib.metadata.PackageNotFoundError:
        return ""


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
    from ...skills import with_skills
    from ...skills.url import store_from_url

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
