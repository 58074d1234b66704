"""Connecting to upstream MCP servers and keeping them connected: :class:`Upstream` (one
server, its session and tools, and the supervisor that reconnects it with backoff, restarting
a command that exited), :func:`list_all_tools`, and :class:`McpConnectError`."""

from __future__ import annotations

import errno
import logging
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, cast

import anyio
import anyio.abc
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # anyio's dependency there

from ...errors import CodemodeError
from .specs import ServerSpec, _describe

logger = logging.getLogger("codemode.integrations.mcp")

_MAX_PAGES = 1000


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
