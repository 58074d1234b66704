"""The Cloudflare driver: programs run on a Worker, tools stay in this process.

Each execution opens one WebSocket to the Worker (``codemode/cloudflare/worker.js``), which
runs the program in a dynamic Worker of its own with no network. The program's tool calls come
back over the same socket, are run here like on every engine (``engine.py``), and their results
go back the same way: the tools, their secrets and their data never leave this process, and
the program is never replayed. Messages are the lines of the V8 engine (``engine_lines.py``),
each signed with the shared secret (see ``worker.js`` for the scheme).
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from collections.abc import Mapping
from typing import Any

import anyio
import anyio.abc
import orjson

from ..driver import Program
from ..engine import TIMEOUT, EngineContext
from ..engine_lines import FAILED, LineRun
from ..events import EventCallback
from ..limits import Limits
from ..results import ExecutionResult
from ..tools import ToolBinding
from ._socket import RefusedError, WebSocket

_CONNECT_MAX = 30.0  # seconds an execution may wait to reach the Worker (within its timeout)
_SECRET_MIN = 16
_FRAME_BYTES = 1 << 20  # tool results sent in one frame, at most (unless one is larger)


def _signature(key: bytes, nonce: str, direction: str, seq: int, line: str) -> str:
    return hmac.digest(key, f"{nonce}\n{direction}\n{seq}\n{line}".encode(), "sha256").hex()


class CloudflareDriver:
    """Runs each execution on a Cloudflare Worker (or a local ``workerd``), one fresh dynamic
    Worker per execution with no network; tool calls come back to this process.

    ``url``: where the Worker is (``https://codemode.<account>.workers.dev``, or the URL
    ``codemode cloudflare dev`` prints). ``secret``: the Worker's ``SECRET`` (16 characters or
    more), which signs every message both ways; ``None`` reads ``$CODEMODE_CLOUDFLARE_SECRET``.

    Same contract as the local engines: results, error kinds with positions in the model's
    TypeScript (types are stripped here), live events, limits, cancellation, asyncio and trio.
    The time limit holds here and in the Worker; memory is the Worker's own cap (128 MB on
    Cloudflare, none on a local ``workerd``); tool calls, console output and the result are
    limited in the Worker too, so a program cannot flood this process.
    """

    def __init__(self, url: str, secret: str | None = None) -> None:
        secret = secret if secret is not None else os.environ.get("CODEMODE_CLOUDFLARE_SECRET", "")
        if len(secret) < _SECRET_MIN:
            raise ValueError(f"the Worker's secret must be at least {_SECRET_MIN} characters")
        self.url = url.rstrip("/")
        self._key = secret.encode()
        self._closed = False

    async def create_context(
        self,
        *,
        bindings: Mapping[str, ToolBinding],
        timeout: float,
        memory_limit_mb: float,
        **limits: Any,
    ) -> CloudflareContext:
        """A context for ``bindings`` (keyed by tool name) with the given limits."""
        return CloudflareContext(
            self, bindings, Limits(timeout=timeout, memory_limit_mb=memory_limit_mb, **limits)
        )

    def close(self) -> None:
        """Refuse further executions (running ones finish)."""
        self._closed = True


class CloudflareContext(EngineContext):
    """Tools and limits; each :meth:`execute` runs in a fresh dynamic Worker."""

    def __init__(self, driver: CloudflareDriver, bindings: Mapping[str, ToolBinding], limits: Limits) -> None:
        super().__init__(bindings, limits, None)
        self._driver = driver

    def _new_run(
        self, program: Program, limits: Limits, on_event: EventCallback | None, tool_call_id: str | None
    ) -> _CloudflareRun:
        return _CloudflareRun(self, program, limits, on_event, tool_call_id)


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
        super().__init__(context, program, limits, on_event, tool_call_id)  # type: ignore[arg-type]
        self._init_lines()
        self.driver = context._driver
        self.socket: WebSocket | None = None
        self.nonce = secrets.token_hex(16)
        self.seq_out = 0
        self.seq_in = 0
        self.problem: str | None = None  # why the connection ended early

    def _stamp(self, stamp: bytes) -> float:
        # The Worker's clock is another machine's (and stands still while a program runs):
        # lines are stamped when they are read here, in order with this host's own events.
        return time.time() * 1000

    def _failed(self, why: str) -> ExecutionResult:
        return self._finish(FAILED, ("internal", "InternalError", why, []))

    async def _connect(self) -> WebSocket:
        stamp = str(int(time.time()))
        key = self.driver._key
        signature = hmac.digest(key, f"open\n{stamp}\n{self.nonce}".encode(), "sha256").hex()
        headers = {
            "x-codemode-time": stamp,
            "x-codemode-nonce": self.nonce,
            "x-codemode-signature": signature,
        }
        return await WebSocket.connect(self.driver.url + "/execute", headers)

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
        socket = self.socket
        spec = self.spec()
        spec["timeoutMs"] = max(1, int((deadline - time.perf_counter()) * 1000))
        spec["memoryMib"] = max(1, int(limits.memory_limit_mb + 0.999))
        outcome: ExecutionResult | None = None
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._read, socket)
                await self._send_line("R " + orjson.dumps(spec).decode())
                outcome = await self._exchange(deadline)
                tg.cancel_scope.cancel()
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
        return await self._end(outcome)

    async def _exchange(self, deadline: float) -> ExecutionResult:
        """Answer the Worker's messages until the outcome, the deadline or a broken connection."""
        while True:
            self.wakeup = anyio.Event()
            result = self._drain()
            if self.completions:
                await self._send_completions()
            if result is not None:
                return result
            if self.problem is not None:
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
