"""The run of one execution in an engine process: taking an engine from the pool, the lines
to and from it on the run's own event loop, and the error of an engine that died under it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import orjson

from ..drivers import Program
from ..engine import TIMEOUT
from ..engine_lines import FAILED, LineRun, loads
from ..events import EventCallback
from ..limits import Limits
from ..results import ExecutionResult
from ._engine import OOM_MARKERS, READ_MAX, Engine, memory_mib

if TYPE_CHECKING:
    from ._driver import V8Context
    from ._pool import Pool

_SPIN_SECONDS = 50e-6  # how long a run polls for the engine's answer after sending results
_YIELD_EVERY = 0.002  # seconds a run may go on handling answers without letting its loop run
_ENGINE_WAIT_MAX = 30.0  # seconds an execution may wait for an engine before it times out
_sched_yield: Callable[[], None] = getattr(os, "sched_yield", lambda: None)


class V8Run(LineRun):
    """One execution in a V8 engine; tool calls, events and errors as on every engine (``engine.py``).

    While it holds an engine, the run reads the engine's stdout on its own event loop
    (``add_reader`` on asyncio, a task waiting with ``wait_readable`` on trio) and writes its
    stdin without blocking; right after it sends tool results it polls stdout for
    ``_SPIN_SECONDS`` before sleeping, since the next call often follows within them."""

    def __init__(
        self,
        context: V8Context,
        program: Program,
        limits: Limits,
        on_event: EventCallback | None,
        tool_call_id: str | None,
    ) -> None:
        super().__init__(context, program, limits, on_event, tool_call_id)
        self.driver = context._driver
        self.pool: Pool | None = None
        self._init_lines()
        self.notified = False
        self.notify: Callable[[], object] = lambda: None
        self.engine: Engine | None = None  # the engine this run reads and writes
        self.handed: Engine | None = None  # given by the pool, not yet taken (pool lock)
        self.holds_slot = False  # counts towards the driver's max_workers (pool lock)
        self.mib = memory_mib(limits)
        self.deadline = 0.0
        self.reader_scope: anyio.CancelScope | None = None
        self.writer_scope: anyio.CancelScope | None = None

    # -- messages from the pool's watcher thread -----------------------------------------

    def deliver(self, message: bytes) -> None:
        self.inbox.append(message)
        if not self.notified:
            self.notified = True
            try:
                self.notify()
            except RuntimeError:  # the event loop is gone
                pass

    def hand_over(self, engine: Engine) -> None:
        """The pool has given this run an engine that became ready (``self.handed``)."""
        self.deliver(b"p")

    def _wake(self) -> None:
        self.notified = False
        if self.wakeup is not None:
            self.wakeup.set()

    def _set_notify(self) -> None:
        loop = self.loop
        if loop is not None:
            wake = self._wake
            self.notify = lambda: loop.call_soon_threadsafe(wake)
            return
        import trio

        token = trio.lowlevel.current_trio_token()
        self.notify = lambda: token.run_sync_soon(self._wake)

    # -- the engine's pipes, on this run's event loop --------------------------------------

    def _take(self, engine: Engine) -> None:
        """Read and write ``engine`` from this run's loop from now on."""
        self.engine = engine
        if self.loop is not None:
            self.loop.add_reader(engine.stdout_fd, self._readable)
        else:
            assert self.task_group is not None
            self.task_group.start_soon(self._pipe_task, engine, False)

    async def _pipe_task(self, engine: Engine, writing: bool) -> None:
        """On trio: wait until ``engine``'s stdout can be read (``writing``: its stdin written,
        while output is queued) and do it, for as long as this run holds the engine."""
        if writing:
            fd, wait, ready = engine.stdin_fd, anyio.wait_writable, self._writable
        else:
            fd, wait, ready = engine.stdout_fd, anyio.wait_readable, self._readable
        with anyio.CancelScope() as scope:
            if writing:
                self.writer_scope = scope
            else:
                self.reader_scope = scope
            while self.engine is engine and (engine.out or not writing):
                try:
                    await wait(fd)
                except (anyio.ClosedResourceError, OSError, ValueError):
                    return
                ready()

    def _readable(self) -> None:
        engine = self.engine
        if engine is None:
            return
        data = engine.read()
        if data is None:
            return
        self._received(engine, data)
        if self.wakeup is not None:
            self.wakeup.set()

    def _poll(self) -> None:
        """Right after a message went out: read the answer if it comes within
        ``_SPIN_SECONDS`` (waking from the event loop's poll would cost more). Between two
        reads the CPU is offered to whatever waits for it, such as the engine itself."""
        engine = self.engine
        if engine is None or engine.out:
            return
        fd = engine.stdout_fd
        until = time.perf_counter() + _SPIN_SECONDS
        while True:
            try:
                data = os.read(fd, READ_MAX)
            except BlockingIOError:
                if time.perf_counter() < until:
                    # Should the engine wait for this CPU (a loaded machine), let it run.
                    _sched_yield()
                    continue
                return
            except OSError:
                data = b""
            self._received(engine, data)
            return

    def _received(self, engine: Engine, data: bytes) -> None:
        """Queue the complete lines of ``data``; the engine goes back to the pool after the
        outcome line (what follows stays buffered for the watcher) or at the end of output."""
        if not data:
            self._let_go(ended=True)
            return
        nl = data.rfind(b"\n")
        buffer = engine.buffer
        if nl < 0:
            buffer += data
            return
        if buffer:
            buffer += data
            cut = len(buffer) - (len(data) - nl)
            chunk = bytes(buffer[:cut])
            del buffer[: cut + 1]
        else:
            chunk = data[:nl]
            if nl + 1 < len(data):
                buffer += data[nl + 1 :]
        lines = chunk.split(b"\n") if b"\n" in chunk else [chunk]
        inbox = self.inbox
        for at, line in enumerate(lines):
            if not line:
                continue
            inbox.append(line)
            if line[0] in (0x6F, 0x66):  # o, f: the execution is over
                rest = lines[at + 1 :]
                if rest:
                    buffer[:0] = b"\n".join(rest) + b"\n"
                self._let_go(ended=False)
                return

    def _send(self, data: bytes) -> None:
        """Write to the engine's stdin without blocking; what does not fit is written when
        the pipe has room."""
        engine = self.engine
        if engine is None:
            return
        if engine.out:
            engine.out += data
            return
        try:
            written = os.write(engine.stdin_fd, data)
        except BlockingIOError:
            written = 0
        except OSError:  # it died: its output ends, and the run learns why
            engine.kill()
            return
        if written < len(data):
            engine.out += memoryview(data)[written:]
            if self.loop is not None:
                self.loop.add_writer(engine.stdin_fd, self._writable)
            else:
                assert self.task_group is not None
                self.task_group.start_soon(self._pipe_task, engine, True)

    def _writable(self) -> None:
        engine = self.engine
        if engine is None:
            return
        if engine.out:
            try:
                del engine.out[: os.write(engine.stdin_fd, engine.out)]
            except BlockingIOError:
                return
            except OSError:
                engine.kill()
                engine.out.clear()
        if not engine.out and self.loop is not None:
            self.loop.remove_writer(engine.stdin_fd)

    def _let_go(self, *, ended: bool) -> None:
        """Stop reading and writing the engine and give it back to the pool (``ended``: its
        output ended; the pool's watcher reaps it and tells this run why)."""
        engine, self.engine = self.engine, None
        if engine is None:
            return
        if self.loop is not None:
            self.loop.remove_reader(engine.stdout_fd)
            self.loop.remove_writer(engine.stdin_fd)
        else:
            # Cancelling a task blocked in wait_readable unregisters its descriptor at once,
            # before the watcher may close it.
            for scope in (self.reader_scope, self.writer_scope):
                if scope is not None:
                    scope.cancel()
            self.reader_scope = self.writer_scope = None
        if engine.out:  # a message cut short: the engine's input is no longer framed
            engine.out.clear()
            engine.kill()
        assert self.pool is not None
        self.pool.give_back(engine, self, ended=ended)

    # -- the execution -------------------------------------------------------------------

    async def _steps(self) -> ExecutionResult:
        # The time limit runs from the moment an engine takes the program; waiting for an
        # engine to start (or to become free) is bounded apart.
        self.deadline = self.started + max(self.limits.timeout, _ENGINE_WAIT_MAX)
        self._set_notify()
        try:
            self.pool = self.driver._get_pool()
            engine = self.pool.acquire(self)
        except RuntimeError as e:  # no Node.js or no engine addon here: an error like any other
            failure = self._finish(FAILED, ("internal", "InternalError", str(e), []))
            await self._flush_events()
            return failure
        if engine is not None:
            self._begin(engine)
        done = False
        yield_at = time.perf_counter() + _YIELD_EVERY
        try:
            while True:
                self.wakeup = anyio.Event()
                result = self._drain()
                if self.completions:
                    self._send_settles()
                if result is not None:
                    done = True
                    await self._flush_events()
                    return result
                if self.events:
                    await self._flush_events()
                if self.inbox or self.completions:
                    if time.perf_counter() > yield_at:
                        # Answers that came while polling keep this loop busy without a
                        # pause: let the event loop's other work run now and then.
                        await anyio.lowlevel.checkpoint()
                        yield_at = time.perf_counter() + _YIELD_EVERY
                    continue
                wait = self.deadline - time.perf_counter()
                if wait <= 0:
                    self._abandon()
                    done = True
                    result = self._finish(FAILED, TIMEOUT)
                    await self._flush_events()
                    return result
                with anyio.move_on_after(wait):
                    await self.wakeup.wait()
                yield_at = time.perf_counter() + _YIELD_EVERY
        except anyio.get_cancelled_exc_class():
            self._abandon()
            done = True
            await self._report_cancelled()
            raise
        finally:
            self.wakeup = None
            if not done:  # an event handler raised
                self._abandon()
            for task in self.tasks:
                task.cancel()

    def _begin(self, engine: Engine) -> None:
        self.deadline = time.perf_counter() + self.limits.timeout
        self._take(engine)
        self._send(b"R " + orjson.dumps(self.spec()) + b"\n")

    def _abandon(self) -> None:
        """Stop whatever runs for this execution: its engine process dies with it."""
        engine = self.engine
        if engine is not None:
            engine.kill()
            self._let_go(ended=False)
        elif self.pool is not None:
            self.pool.forget_waiter(self)

    def _other(self, kind: int, message: bytes) -> ExecutionResult | None:
        if kind == 0x70:  # p: an engine is ours (from the pool)
            assert self.pool is not None
            engine = self.pool.take_handed(self)
            if engine is not None and self.engine is None:
                self._begin(engine)
        elif kind == 0x78:  # x <[status, stderr]>: the engine process ended (from the pool)
            return self._finish(FAILED, _engine_died(loads(message[1:]), self.mib))
        elif kind == 0x65:  # e <json message>: no engine for this run (from the pool)
            return self._finish(FAILED, ("internal", "InternalError", loads(message[2:]), []))
        return None

    def _send_settles(self) -> None:
        completions, self.completions = self.completions, []
        if self.engine is not None:
            self._send(completions[0] if len(completions) == 1 else b"".join(completions))
            self._poll()


def _engine_died(report: list[Any], mib: int) -> tuple[str, str, str, list[Any]]:
    """The error of an execution whose engine process ended under it."""
    status, stderr = report
    text = str(stderr).encode("utf-8", "replace")
    if any(marker in text for marker in OOM_MARKERS):
        return ("memory", "MemoryError", f"the execution exceeded its memory limit ({mib} MiB)", [])
    why = f"the V8 engine process exited (status {status})"
    detail = _stderr_summary(str(stderr))
    if detail:
        why += ": " + detail
    return ("internal", "InternalError", why, [])


def _stderr_summary(stderr: str) -> str:
    """The lines of an engine's stderr that say why it stopped (Node's error, not its
    version banner or the source excerpt above it)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("Node.js v", "at ", "^", "(Use `node"))]
    errors = [line for line in lines if "Error" in line or "error" in line or line.startswith("REPORT ")]
    return " | ".join((errors or lines)[-3:])[:1000]
