"""Code mode over upstream MCP servers: :class:`McpProxy` (their tools as codemode tools,
followed as upstreams go away and come back) and :func:`serve_proxy`, which serves one
``execute_typescript`` tool over them."""

from __future__ import annotations

import logging
import sys
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # anyio's dependency there

from ...code_mode import CodeMode, create_code_mode
from ...tools import Tool
from .server import _build_server, _run_http, _run_stdio
from .specs import ServerSpec, _unique, check_upstream_name, default_name
from .tools import _tools_of
from .upstreams import BACKOFF, Upstream

logger = logging.getLogger("codemode.integrations.mcp")


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
