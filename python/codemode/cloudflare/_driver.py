"""The Cloudflare driver: programs run on a Worker, tools stay in this process.

Each execution opens one WebSocket to the Worker (``codemode/cloudflare/worker.js``), which
runs the program in a dynamic Worker of its own with no network. The program's tool calls come
back over the same socket, are run here like on every engine (``engine.py``), and their results
go back the same way: the tools, their secrets and their data never leave this process, and
the program is never replayed. Messages are the lines of the V8 engine (``engine_lines.py``),
each signed with the shared secret (see ``worker.js`` for the scheme).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import secrets
import ssl
import time
import weakref
from collections.abc import Mapping
from typing import Any

import anyio
import anyio.abc
import orjson

from ..drivers import Program
from ..engine import TIMEOUT, DriverContext
from ..engine_lines import FAILED, LineRun
from ..events import EventCallback
from ..limits import Limits
from ..results import ExecutionResult
from ..tools import ToolBinding
from ._socket import RefusedError, WebSocket

_CONNECT_MAX = 30.0  # seconds an execution may wait to reach the Worker (within its timeout)
_SECRET_MIN = 16
_FRAME_BYTES = 1 << 20  # tool results sent in one frame, at most (unless one is larger)
_SPARE_MAX_AGE = 20.0  # seconds a connection opened ahead is used for (the Worker allows 60)
_STALE = "the connection opened ahead was closed"


def _signature(key: bytes, nonce: str, direction: str, seq: int, line: str) -> str:
    return hmac.digest(key, f"{nonce}\n{direction}\n{seq}\n{line}".encode(), "sha256").hex()


async def _open(url: str, key: bytes, nonce: str, ssl_context: ssl.SSLContext | None = None) -> WebSocket:
    """An authenticated connection for one execution (``nonce``) to the Worker at ``url``."""
    stamp = str(int(time.time()))
    signature = hmac.digest(key, f"open\n{stamp}\n{nonce}".encode(), "sha256").hex()
    headers = {"x-codemode-time": stamp, "x-codemode-nonce": nonce, "x-codemode-signature": signature}
    return await WebSocket.connect(url + "/execute", headers, ssl_context)


class CloudflareDriver:
    """Runs each execution on a Cloudflare Worker (or a local ``workerd``), one fresh dynamic
    Worker per execution with no network; tool calls come back to this process.

    ``url``: where the Worker is (``https://codemode.<account>.workers.dev``, or the URL
    ``codemode cloudflare dev`` prints). ``secret``: the Worker's ``SECRET`` (16 characters or
    more), which signs every message both ways; ``None`` reads ``$CODEMODE_CLOUDFLARE_SECRET``.
    ``ssl_context``: how ``https://`` is verified (default: the system's CAs).
    ``ready_connections``: on asyncio, keep the next execution's connection open ahead (one
    per event loop), which takes a handshake off each execution.

    Same contract as the local engines: results, error kinds with positions in the model's
    TypeScript (types are stripped here), live events, limits, cancellation, asyncio and trio.
    The time limit holds here and in the Worker; memory is the Worker's own cap (128 MB on
    Cloudflare, none on a local ``workerd``); tool calls, console output and the result are
    limited in the Worker too, so a program cannot flood this process.
    """

    def __init__(
        self,
        url: str,
        secret: str | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        ready_connections: bool = True,
    ) -> None:
        secret = secret if secret is not None else os.environ.get("CODEMODE_CLOUDFLARE_SECRET", "")
        if len(secret) < _SECRET_MIN:
            raise ValueError(f"the Worker's secret must be at least {_SECRET_MIN} characters")
        self.url = url.rstrip("/")
        self.ssl_context = ssl_context
        self._key = secret.encode()
        self._closed = False
        self.ready_connections = ready_connections
        # One connection opened ahead per asyncio loop, for the next execution there:
        # (socket, its nonce, when it was opened).
        self._spares: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[WebSocket, str, float]] = (
            weakref.WeakKeyDictionary()
        )
        self._opening: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
        self._tasks: set[asyncio.Task[None]] = set()

    def _take_spare(self, loop: asyncio.AbstractEventLoop | None) -> tuple[WebSocket, str] | None:
        """The connection opened ahead on ``loop``, if one is there and fresh enough."""
        spare = self._spares.pop(loop, None) if loop is not None else None
        if spare is None:
            return None
        socket, nonce, opened = spare
        if socket.closed or time.monotonic() - opened > _SPARE_MAX_AGE:
            self._tasks_add(loop, socket.aclose())  # type: ignore[arg-type]
            return None
        return socket, nonce

    def _prepare_spare(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Open the next execution's connection in the background (asyncio only)."""
        if loop is None or not self.ready_connections or self._closed:
            return
        if loop in self._spares or loop in self._opening:
            return
        self._opening.add(loop)
        self._tasks_add(loop, self._open_spare(loop))

    def _tasks_add(self, loop: asyncio.AbstractEventLoop, coro: Any) -> None:
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open_spare(self, loop: asyncio.AbstractEventLoop) -> None:
        nonce = secrets.token_hex(16)
        try:
            socket = await _open(self.url, self._key, nonce, self.ssl_context)
        except Exception:  # the next execution connects itself, and says why
            return
        finally:
            self._opening.discard(loop)
        if self._closed or loop in self._spares:
            await socket.aclose()
            return
        self._spares[loop] = (socket, nonce, time.monotonic())

    async def create_context(
        self, *, bindings: Mapping[str, ToolBinding], limits: Limits
    ) -> CloudflareContext:
        """A context for ``bindings`` (keyed by tool name) with the given limits."""
        return CloudflareContext(self, bindings, limits)

    def close(self) -> None:
        """Refuse further executions (running ones finish); close the connections opened ahead."""
        self._closed = True
        for loop, (socket, _, _) in list(self._spares.items()):
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._tasks_add, loop, socket.aclose())
        self._spares.clear()


class CloudflareContext(DriverContext):
    """Tools and limits; each :meth:`execute` runs in a fresh dynamic Worker."""

    _driver: CloudflareDriver


class _CloudflareRun(LineRun):
    """One execution over one WebSocket to the Worker."""

    def __init__(
        self,
        context: CloudflareContext,
        program: Program,
        limits: Limits,
        on_event: EventCallback | None,
        tool_call_id: str | None,
    ) -> None:
        super().__init__(context, program, limits, on_event, tool_call_id)
        self._init_lines()
        self.driver = context._driver
        self.socket: WebSocket | None = None
        self.nonce = secrets.token_hex(16)
        self.seq_out = 0
        self.seq_in = 0
        self.problem: str | None = None  # why the connection ended early
        self.may_retry = False  # on a connection opened ahead: if it ends at once, open another

    def _stamp(self, stamp: bytes) -> float:
        # The Worker's clock is another machine's (and stands still while a program runs):
        # lines are stamped when they are read here, in order with this host's own events.
        return time.time() * 1000

    def _failed(self, why: str) -> ExecutionResult:
        return self._finish(FAILED, ("internal", "InternalError", why, []))

    async def _connect(self) -> WebSocket:
        return await _open(self.driver.url, self.driver._key, self.nonce, self.driver.ssl_context)

    async def _send_line(self, line: str) -> None:
        assert self.socket is not None
        self.seq_out += 1
        signature = _signature(self.driver._key, self.nonce, "h", self.seq_out, line)
        await self.socket.send(f"{self.seq_out} {signature} {line}")

    async def _send_completions(self) -> None:
        """The settled calls' lines, as few frames as fit ``_FRAME_BYTES`` (one line may be more)."""
        completions, self.completions = self.completions, []
        frame: list[bytes] = []
        size = 0
        for completion in completions:
            if frame and size + len(completion) > _FRAME_BYTES:
                await self._send_line(b"".join(frame)[:-1].decode())
                frame, size = [], 0
            frame.append(completion)
            size += len(completion)
        if frame:
            await self._send_line(b"".join(frame)[:-1].decode())

    async def _read(self, socket: WebSocket) -> None:
        """Take the Worker's messages as they come, each checked, into the inbox."""
        key, nonce = self.driver._key, self.nonce
        while True:
            texts = await socket.receive()
            if not texts:
                self.problem = (
                    self.problem
                    or "the Cloudflare Worker closed the connection before the execution finished"
                )
                break
            for text in texts:
                seq_text, _, rest = text.partition(" ")
                signature, _, line = rest.partition(" ")
                seq = self.seq_in + 1
                if seq_text != str(seq) or not hmac.compare_digest(
                    signature, _signature(key, nonce, "w", seq, line)
                ):
                    self.problem = "a message from the Cloudflare Worker failed its signature check"
                    break
                self.seq_in = seq
                self.inbox.extend(part.encode() for part in line.split("\n"))
            else:
                if self.wakeup is not None:
                    self.wakeup.set()
                continue
            break
        if self.wakeup is not None:
            self.wakeup.set()

    async def _steps(self) -> ExecutionResult:
        limits = self.limits
        deadline = self.started + limits.timeout
        if self.driver._closed:
            return await self._end(self._failed("this CloudflareDriver has been closed"))
        driver = self.driver
        spare = driver._take_spare(self.loop)
        driver._prepare_spare(self.loop)
        if spare is not None:
            self.socket, self.nonce = spare
        else:
            failed = await self._connect_or_fail(deadline)
            if failed is not None:
                return failed
        spec = self.spec()
        spec["timeoutMs"] = max(1, int((deadline - time.perf_counter()) * 1000))
        spec["memoryMib"] = max(1, int(limits.memory_limit_mb + 0.999))
        outcome: ExecutionResult | None = None
        try:
            self.may_retry = spare is not None
            outcome = await self._attempt(spec, deadline)
            if outcome is None:
                # The connection opened ahead had been closed by the Worker: once more, afresh.
                await self._close()
                self.problem, self.seq_out, self.may_retry = None, 0, False
                self.nonce = secrets.token_hex(16)
                failed = await self._connect_or_fail(deadline)
                if failed is not None:
                    return failed
                outcome = await self._attempt(spec, deadline)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as e:
            outcome = self._failed(f"the connection to the Cloudflare Worker failed: {e}")
        except anyio.get_cancelled_exc_class():
            await self._close()
            await self._report_cancelled()
            raise
        finally:
            self.wakeup = None
            if outcome is None:  # an event handler raised
                await self._close()
            for task in self.tasks:
                task.cancel()
        assert outcome is not None
        return await self._end(outcome)

    async def _attempt(self, spec: dict[str, Any], deadline: float) -> ExecutionResult | None:
        """Run over ``self.socket``; ``None`` if a connection opened ahead turned out closed
        before the Worker said anything (``may_retry``)."""
        assert self.socket is not None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._read, self.socket)
            try:
                await self._send_line("R " + orjson.dumps(spec).decode())
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                if not self.may_retry:
                    raise
                self.problem = _STALE
            outcome = await self._exchange(deadline)
            tg.cancel_scope.cancel()
        return outcome

    async def _connect_or_fail(self, deadline: float) -> ExecutionResult | None:
        """Open this run's connection (``self.socket``); the failed result if it cannot."""
        try:
            with anyio.fail_after(min(_CONNECT_MAX, max(0.0, deadline - time.perf_counter()))):
                self.socket = await self._connect()
        except TimeoutError:
            return await self._end(self._finish(FAILED, TIMEOUT))
        except RefusedError as e:
            why = "the Cloudflare Worker refused the execution"
            if e.status == 401:
                why += " (HTTP 401: check that the driver's secret is the Worker's SECRET)"
            else:
                why += f" ({e})"
            return await self._end(self._failed(why))
        except RuntimeError as e:  # no wsproto here
            return await self._end(self._failed(str(e)))
        except OSError as e:
            return await self._end(
                self._failed(f"the Cloudflare Worker at {self.driver.url} cannot be reached: {e}")
            )
        return None

    async def _exchange(self, deadline: float) -> ExecutionResult | None:
        """Answer the Worker's messages until the outcome, the deadline or a broken connection."""
        while True:
            self.wakeup = anyio.Event()
            result = self._drain()
            if result is not None:
                return result
            if self.completions:
                try:
                    await self._send_completions()
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    # The Worker is closing: its outcome (or the reason) comes from the reader.
                    self.completions.clear()
            if self.problem is not None:
                if self.may_retry and self.seq_in == 0:
                    return None
                return self._failed(self.problem)
            if self.events:
                await self._flush_events()
            if self.inbox or self.completions:
                continue
            wait = deadline - time.perf_counter()
            if wait <= 0:
                return self._finish(FAILED, TIMEOUT)
            with anyio.move_on_after(wait):
                await self.wakeup.wait()

    async def _close(self) -> None:
        socket, self.socket = self.socket, None
        if socket is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await socket.aclose()
                except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    pass

    async def _end(self, result: ExecutionResult) -> ExecutionResult:
        await self._close()
        await self._flush_events()
        return result


CloudflareContext.run_class = _CloudflareRun
