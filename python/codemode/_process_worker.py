"""This process's side of one QuickJS worker process (the worker's own is :mod:`codemode._worker`):
its pipes, the requests in flight to it and their responses, its deadlines, and its end.

Requests are answered in order. Reads and writes are non-blocking, awaited with
``anyio.wait_readable``/``wait_writable``: the event loop never blocks on a worker.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import anyio
import orjson

from . import _worker
from .errors import CodemodeError

GRACE = 1.0
"""Seconds a worker's current step may run past its execution's deadline before the worker
is killed (the engine itself stops a program at its deadline; this is the wall behind it)."""
CUTOFF = 0.01
"""Seconds after its deadline an execution stops waiting for its step and fails with
``timeout`` (its step may be queued behind another execution's on the same worker)."""
STARTUP_TIMEOUT = 30.0
"""Seconds a new worker has to confine itself and report."""
PIPE_SIZE = 1 << 20

definition_keys = itertools.count(1)
"""Keys of what is defined once in each worker (toolsets, host libraries): one sequence, so
that they never collide in a worker's ``defined``."""


class WorkerGone(CodemodeError):
    """The worker process died or was killed; ``startup`` is its stderr when it died before
    it was ready (a broken install, not a program). An execution reports it as ``internal``;
    starting the pool raises it."""

    def __init__(self, reason: str, startup: str | None = None) -> None:
        super().__init__(reason)
        self.startup = startup


class Cutoff(Exception):
    """The execution's deadline passed while it waited for its step."""


class Pending:
    """A request written to a worker, until its response is read."""

    __slots__ = ("abandoned", "deadline", "event", "execution_id", "response", "sent")

    def __init__(self, execution_id: int, deadline: float) -> None:
        self.execution_id = execution_id
        self.deadline = deadline
        self.response: bytes | None = None
        self.event: anyio.Event | None = None
        self.abandoned = False
        self.sent = time.perf_counter()


class Worker:
    """One worker process and the requests in flight to it (answered in order); ``on_report``
    is given its confinement report when it arrives."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        to_fd: int,
        from_fd: int,
        control_fd: int,
        on_report: Callable[[dict[str, Any]], None],
    ) -> None:
        self.proc = proc
        self.to_fd = to_fd
        self.from_fd = from_fd
        self.control_fd = control_fd
        self.on_report = on_report
        now = time.perf_counter()
        # The first frame is the report it sends once confined.
        self.outstanding: deque[Pending] = deque([Pending(0, now + STARTUP_TIMEOUT)])
        self.head_since = now
        self.buffer = bytearray()
        self.reading = False
        self.writing = False
        self.write_turns: deque[anyio.Event] = deque()
        self.report: dict[str, Any] | None = None
        self.dead: str | None = None
        self.startup_error: str | None = None
        self.defined: set[int] = set()
        self.load = 0
        self.served = 0
        self.busy = 0.0
        self.retiring = False
        self.idle_since = now

    # -- writing ---------------------------------------------------------------------------

    async def request(self, frame: bytes, pending: Pending) -> None:
        """Write ``frame`` (whole, after any frame being written) and queue ``pending`` for
        its response."""
        if self.dead is not None:
            raise WorkerGone(self.dead, self.startup_error)
        if self.writing:
            turn = anyio.Event()
            self.write_turns.append(turn)
            try:
                await turn.wait()
            except BaseException:
                if turn in self.write_turns:
                    self.write_turns.remove(turn)
                else:  # the turn was handed to us as we were cancelled: pass it on
                    self._next_writer()
                raise
            if self.dead is not None:
                self._next_writer()
                raise WorkerGone(self.dead, self.startup_error)
        self.writing = True
        view = memoryview(frame)
        try:
            if not self.outstanding:
                self.head_since = time.perf_counter()
            pending.sent = time.perf_counter()
            self.outstanding.append(pending)
            while True:
                try:
                    view = view[os.write(self.to_fd, view) :]
                except BlockingIOError:
                    pass
                except OSError:
                    self._die("its pipe closed", exited=True)
                    raise WorkerGone("its pipe closed", self.startup_error) from None
                if not view:
                    return
                try:
                    await anyio.wait_writable(self.to_fd)
                except (anyio.ClosedResourceError, OSError, ValueError):
                    pass  # closed meanwhile: dead, seen below
                if self.dead is not None:
                    raise WorkerGone(self.dead, self.startup_error)
        finally:
            if view and self.dead is None:
                self._die("a request was cut short")  # the stream is no longer framed
            self._next_writer()

    def _next_writer(self) -> None:
        self.writing = False
        if self.write_turns:
            self.writing = True
            self.write_turns.popleft().set()

    def control(self, execution_id: int) -> None:
        """Close an execution in the worker at once, even in the middle of its step."""
        if self.dead is not None:
            return
        try:
            os.write(self.control_fd, _worker.CONTROL.pack(_worker.CLOSE, execution_id))
        except OSError:  # full (its control thread is stuck) or closed: it is of no use
            self._die("its control pipe failed")

    # -- reading ---------------------------------------------------------------------------

    async def response(self, pending: Pending, cutoff: float) -> bytes:
        """The response to ``pending``. One waiter reads for all. Raises :class:`Cutoff`
        at ``cutoff`` if the request is still queued behind another execution's step (when
        its own step runs, the engine stops it at its deadline, and the worker is killed if
        it does not), and :class:`WorkerGone` if the worker dies first."""
        try:
            while pending.response is None:
                if self.dead is not None:
                    raise WorkerGone(self.dead, self.startup_error)
                now = time.perf_counter()
                if self._queued_behind_step(pending):
                    if now >= cutoff:
                        raise Cutoff
                else:
                    cutoff = float("inf")
                if not self.reading:
                    self.reading = True
                    try:
                        await self._read(cutoff)
                    finally:
                        self.reading = False
                        self._next_reader(pending)
                else:
                    pending.event = anyio.Event()
                    try:
                        with anyio.move_on_after(max(0.0, cutoff - now)):
                            await pending.event.wait()
                    finally:
                        pending.event = None
            return pending.response
        except BaseException:
            if pending.response is None:
                pending.abandoned = True
            raise

    def _queued_behind_step(self, pending: Pending) -> bool:
        head = self.outstanding[0] if self.outstanding else pending
        return head is not pending and head.execution_id != 0

    def _next_reader(self, me: Pending) -> None:
        for other in self.outstanding:
            if other is not me and other.event is not None and other.response is None:
                other.event.set()
                return

    async def _read(self, cutoff: float) -> None:
        """Read what the worker has written (waiting for it until ``cutoff``), and deliver
        every complete frame; kill the worker if its current step is overdue.

        It first polls for ``SPIN_SECONDS`` (a step that answers at once, such as one
        settling a tool call, is back within them, and waking from the event loop's poll
        costs more), then waits with the event loop."""
        spin_until = time.perf_counter() + _worker.SPIN_SECONDS
        while True:
            try:
                data = os.read(self.from_fd, PIPE_SIZE)
            except BlockingIOError:
                if time.perf_counter() < spin_until:
                    continue
                data = None
            except OSError:
                data = b""
            if data == b"":
                self._die("it exited", exited=True)
                return
            if data:
                self.buffer += data
                self._deliver()
                return
            now = time.perf_counter()
            head = self.outstanding[0] if self.outstanding else None
            kill_at = max(head.deadline, self.head_since) + GRACE if head else cutoff
            if now >= kill_at:
                self._die("its step ran past its deadline")
                return
            wait = min(kill_at, cutoff) - now
            if wait <= 0:
                return
            with anyio.move_on_after(wait):
                try:
                    await anyio.wait_readable(self.from_fd)
                except (anyio.ClosedResourceError, OSError, ValueError):
                    return  # closed meanwhile: the caller sees it dead

    def _deliver(self) -> None:
        buffer = self.buffer
        at = 0
        while len(buffer) - at >= 5:
            length, op = _worker.HEADER.unpack_from(buffer, at)
            end = at + 4 + length
            if len(buffer) < end:
                break
            body = bytes(buffer[at + 5 : end])
            at = end
            if not self.outstanding:
                self._die("it answered what was not asked")
                return
            head = self.outstanding[0]
            if op == _worker.OUTPUT:
                expected = len(body) >= 8 and int.from_bytes(body[:8], "little") == head.execution_id
            else:
                expected = op in (_worker.READY, _worker.PAYLOAD_RESULT) and head.execution_id == 0
                expected = expected and (op == _worker.READY) == (self.report is None)
            if not expected:
                self._die("it answered what was not asked")
                return
            now = time.perf_counter()
            self.outstanding.popleft()
            self.busy += now - max(head.sent, self.head_since)
            self.head_since = now
            if op == _worker.READY:
                self.report = orjson.loads(body)
                self.on_report(self.report)
            head.response = body
            if head.event is not None:
                head.event.set()
        del buffer[:at]

    # -- the end ---------------------------------------------------------------------------

    def _die(self, reason: str, exited: bool = False) -> None:
        """Kill the process (``exited``: it ended by itself) and fail whatever is in flight
        to it."""
        if self.dead is not None:
            return
        self.dead = reason
        if self.report is None and exited:  # it never got ready: a broken install, say why
            self.startup_error = self._stderr() or reason
        self.close()
        for pending in self.outstanding:
            if pending.event is not None:
                pending.event.set()
        for turn in self.write_turns:
            turn.set()

    def close(self) -> None:
        """Kill the process now and release its pipes (idempotent)."""
        if self.dead is None:
            self.dead = "closed"
        if self.proc.returncode is None:
            try:
                self.proc.send_signal(signal.SIGKILL)
            except OSError:
                pass
            self.proc.poll()
        for fd in (self.to_fd, self.from_fd, self.control_fd):
            if fd < 0:
                continue
            try:
                anyio.notify_closing(fd)  # wakes a task waiting on it (ClosedResourceError)
            except Exception:  # outside an event loop: nobody waits
                pass
            try:
                os.close(fd)
            except OSError:
                pass
        self.to_fd = self.from_fd = self.control_fd = -1
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def _stderr(self) -> str:
        try:
            assert self.proc.stderr is not None
            self.proc.wait(timeout=1.0)
            return self.proc.stderr.read(1 << 16).decode(errors="replace").strip()
        except Exception:
            return ""
