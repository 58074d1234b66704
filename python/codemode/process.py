"""QuickJS in pooled worker processes confined by the OS: ``QuickJSDriver(isolation="process")``.

Each worker (:mod:`codemode._worker`) is a remote ``_core.Execution``: this process keeps the
whole run (tool dispatch, events, the report channel, skills) and sends each step of an
execution to a worker over a pipe, receiving the step's output back. So every feature of the
in-process driver works unchanged; only the engine is elsewhere. A worker is started with an
empty environment, no descriptors but its pipes, in a session of its own, and confines itself
before it reads a request (see :func:`codemode._core.confine`): no network, no file system
but its own code (read-only), no new processes or exec, no signals but to itself, rlimits.

A worker serves several executions at once (each in its own QuickJS runtime), one step at a
time. The pool:

- starts a worker when a context is created and keeps one spare ready, growing to the
  concurrency asked for (``workers`` at most); executions go to an idle worker first, else
  to the least loaded one;
- retires a worker after ``recycle_after`` executions, after any execution that hit a limit
  (timeout, memory, cancellation, a crash), and when it has been idle ``idle_timeout``
  seconds (one is kept); a retired worker ends when its last execution does;
- enforces deadlines itself: an execution stops waiting for its step shortly after its
  deadline (``timeout``), and a worker whose current step runs past that step's deadline by
  ``_GRACE`` seconds is killed. A hostile program cannot hold a worker past its deadline;
- turns a worker that dies into an ``internal`` error of the executions it was running and
  replaces it for the next ones.

Reads and writes are non-blocking, awaited with ``anyio.wait_readable``/``wait_writable``;
the event loop never blocks on a worker (workers are started from a thread).
"""

from __future__ import annotations

import array
import fcntl
import functools
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import orjson

from . import _core, _worker
from .drivers import Program
from .engine import EngineContext
from .errors import CodemodeError
from .events import EventCallback
from .limits import Limits
from .quickjs import QuickJSRun
from .tools import ToolBinding

_GRACE = 1.0
"""Seconds a worker's current step may run past its execution's deadline before the worker
is killed (the engine itself stops a program at its deadline; this is the wall behind it)."""
_CUTOFF = 0.01
"""Seconds after its deadline an execution stops waiting for its step and fails with
``timeout`` (its step may be queued behind another execution's on the same worker)."""
_STARTUP_TIMEOUT = 30.0
"""Seconds a new worker has to confine itself and report."""
_PIPE_SIZE = 1 << 20
_LIMIT_KINDS = frozenset({"timeout", "memory", "cancelled", "internal"})
"""Error kinds after which a worker is retired."""

_PACKAGE_DIR = Path(__file__).resolve().parent
_WORKER_SCRIPT = str(_PACKAGE_DIR / "_worker.py")
_SITE_DIR = str(Path(orjson.__file__).resolve().parent.parent)

_ids = itertools.count(1)
_keys = itertools.count(1)
_warned = False


class WorkerGone(CodemodeError):
    """The worker process died or was killed; ``startup`` is its stderr when it died before
    it was ready (a broken install, not a program). An execution reports it as ``internal``;
    starting the pool raises it."""

    def __init__(self, reason: str, startup: str | None = None) -> None:
        super().__init__(reason)
        self.startup = startup


class _Cutoff(Exception):
    """The execution's deadline passed while it waited for its step."""


def _note_report(report: dict[str, Any]) -> None:
    """Warn once per process when a confinement layer does not hold."""
    global _warned
    if report.get("problems") and not _warned:
        _warned = True
        warnings.warn(
            "codemode: OS confinement of the QuickJS workers is incomplete: " + "; ".join(report["problems"]),
            RuntimeWarning,
            stacklevel=2,
        )


class _Pending:
    """A request written to a worker, until its response is read."""

    __slots__ = ("abandoned", "deadline", "event", "execution_id", "response", "sent")

    def __init__(self, execution_id: int, deadline: float) -> None:
        self.execution_id = execution_id
        self.deadline = deadline
        self.response: bytes | None = None
        self.event: anyio.Event | None = None
        self.abandoned = False
        self.sent = time.perf_counter()


class _Worker:
    """One worker process and the requests in flight to it (answered in order)."""

    def __init__(self, proc: subprocess.Popen[bytes], to_fd: int, from_fd: int, control_fd: int) -> None:
        self.proc = proc
        self.to_fd = to_fd
        self.from_fd = from_fd
        self.control_fd = control_fd
        now = time.perf_counter()
        # The first frame is the report it sends once confined.
        self.outstanding: deque[_Pending] = deque([_Pending(0, now + _STARTUP_TIMEOUT)])
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

    async def request(self, frame: bytes, pending: _Pending) -> None:
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

    async def response(self, pending: _Pending, cutoff: float) -> bytes:
        """The response to ``pending``. One waiter reads for all. Raises :class:`_Cutoff`
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
                        raise _Cutoff
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

    def _queued_behind_step(self, pending: _Pending) -> bool:
        head = self.outstanding[0] if self.outstanding else pending
        return head is not pending and head.execution_id != 0

    def _next_reader(self, me: _Pending) -> None:
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
                data = os.read(self.from_fd, _PIPE_SIZE)
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
            kill_at = max(head.deadline, self.head_since) + _GRACE if head else cutoff
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
                _note_report(self.report)
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


class WorkerPool:
    """Worker processes for QuickJS executions, shared by every context of one driver.

    ``workers``: at most this many processes (default: the CPU count).
    ``executions_per_worker``: at most this many executions on one worker at once (``None``:
    no limit; ``1``: each execution has a process to itself while it runs).
    ``recycle_after``: executions a worker serves before it is replaced.
    ``idle_timeout``: seconds an idle worker (beyond the first) is kept.
    ``worker_memory_mb``: address space of a worker (``RLIMIT_AS``), a bound behind the
    engine's own memory limit; ``worker_cpu_seconds``: CPU time of a worker's life
    (``RLIMIT_CPU``; the pool retires a worker at half of it).
    """

    def __init__(
        self,
        *,
        workers: int | None = None,
        executions_per_worker: int | None = None,
        recycle_after: int = 1000,
        idle_timeout: float = 60.0,
        worker_memory_mb: int | None = 4096,
        worker_cpu_seconds: int | None = 3600,
        _test_hooks: bool = False,
    ) -> None:
        if _test_hooks and os.environ.get("CODEMODE_TEST_HOOKS") != "1":
            raise RuntimeError("worker test hooks need CODEMODE_TEST_HOOKS=1 (tests only)")
        self.max_workers = max(1, workers or os.cpu_count() or 2)
        self.executions_per_worker = executions_per_worker
        self.recycle_after = recycle_after
        self.idle_timeout = idle_timeout
        self.cpu_budget = worker_cpu_seconds / 2 if worker_cpu_seconds else float("inf")
        self.test_hooks = _test_hooks
        self.policy = orjson.dumps(
            {
                "read_paths": [str(_PACKAGE_DIR)],
                "address_space_bytes": worker_memory_mb << 20 if worker_memory_mb else None,
                "cpu_seconds": worker_cpu_seconds,
            }
        ).decode()
        self.workers: list[_Worker] = []
        self.lock = threading.Lock()  # self.workers, with the thread that starts spares
        self.spawning = 0
        self.room: deque[anyio.Event] = deque()
        self.libraries: dict[str, int] = {}
        self._finalizer = weakref.finalize(self, _close_all, self.workers)

    # -- workers ---------------------------------------------------------------------------

    def _spawn(self) -> _Worker:
        """Start a worker process (blocking: call it from a thread)."""
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        control_r, control_w = os.pipe()
        for fd in (to_w, from_w):
            try:
                fcntl.fcntl(fd, 1031, _PIPE_SIZE)  # F_SETPIPE_SZ: fewer partial writes
            except OSError:
                pass
        argv = [
            sys.executable,
            "-I",
            "-S",
            _WORKER_SCRIPT,
            str(Path(_core.__file__).resolve()),
            _SITE_DIR,
            str(to_r),
            str(from_w),
            str(control_r),
            self.policy,
        ]
        if self.test_hooks:
            argv.append("--test-hooks")
        try:
            proc = subprocess.Popen(
                argv,
                env={},
                cwd="/",
                close_fds=True,
                pass_fds=(to_r, from_w, control_r),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        finally:
            for fd in (to_r, from_w, control_r):
                os.close(fd)
        for fd in (to_w, from_r, control_w):
            os.set_blocking(fd, False)
        return _Worker(proc, to_w, from_r, control_w)

    def _spare(self) -> None:
        """Start a worker in a thread, so one is ready for the next execution."""

        def start() -> None:
            try:
                worker = self._spawn()
            except Exception:
                worker = None
            with self.lock:
                self.spawning -= 1
                if worker is not None:
                    self.workers.append(worker)

        with self.lock:
            self.spawning += 1
        threading.Thread(target=start, name="codemode-worker-start", daemon=True).start()

    def _live(self) -> list[_Worker]:
        with self.lock:
            self.workers[:] = [w for w in self.workers if w.dead is None]
            return [w for w in self.workers if not w.retiring]

    async def acquire(self) -> _Worker:
        """A worker for a new execution: an idle one, else a new one while the pool may
        grow, else the least loaded one with room (waiting for room if none has)."""
        while True:
            live = self._shrink(self._live())
            cap = self.executions_per_worker
            candidates = [w for w in live if cap is None or w.load < cap]
            chosen = next((w for w in candidates if w.load == 0), None)
            if chosen is None and len(live) + self.spawning < self.max_workers:
                with self.lock:
                    self.spawning += 1
                try:
                    chosen = await anyio.to_thread.run_sync(self._spawn)
                finally:
                    with self.lock:
                        self.spawning -= 1
                        if chosen is not None:
                            self.workers.append(chosen)
                live.append(chosen)
            if chosen is None and self.spawning:
                # Workers are being started (in threads): share the load with them too.
                await anyio.sleep(0.005)
                continue
            if chosen is None and candidates:
                chosen = min(candidates, key=lambda w: w.load)
            if chosen is not None:
                break
            event = anyio.Event()
            self.room.append(event)
            try:
                await event.wait()
            finally:
                if event in self.room:
                    self.room.remove(event)
        chosen.load += 1
        chosen.served += 1
        if chosen.served >= self.recycle_after:
            chosen.retiring = True
        live = self._live()
        if not any(w.load == 0 for w in live) and len(live) + self.spawning < self.max_workers:
            self._spare()
        return chosen

    def release(self, worker: _Worker, limit_hit: bool) -> None:
        """An execution on ``worker`` is over; retire the worker after a limit was hit."""
        worker.load -= 1
        if limit_hit or worker.busy > self.cpu_budget:
            worker.retiring = True
        if worker.load == 0:
            worker.idle_since = time.perf_counter()
            if worker.retiring:
                worker.close()
        if self.room:
            self.room.popleft().set()

    def _shrink(self, live: list[_Worker]) -> list[_Worker]:
        """Close workers idle for ``idle_timeout`` (keeping one); the others."""
        now = time.perf_counter()
        idle = [w for w in live if w.load == 0 and now - w.idle_since > self.idle_timeout]
        for worker in idle[: max(0, len(live) - 1)]:
            worker.close()
        return [w for w in live if w.dead is None]

    def library_key(self, library: str) -> int:
        key = self.libraries.get(library)
        if key is None:
            key = self.libraries[library] = next(_keys)
        return key

    async def start(self) -> None:
        """Have a worker starting (the pool's first), without waiting for it."""
        if not self._live() and self.spawning == 0:
            self._spare()

    def close(self) -> None:
        """Kill every worker (executions in flight fail with ``internal``)."""
        with self.lock:
            workers = list(self.workers)
            self.workers.clear()
        for worker in workers:
            worker._die("the pool was closed")

    async def report(self) -> dict[str, Any]:
        """The confinement report of a worker (started for it if need be)."""
        worker = await self.acquire()
        try:
            if worker.report is None:  # its first outstanding request is the report
                ready = worker.outstanding[0]
                await worker.response(ready, ready.deadline)
            assert worker.report is not None
            return dict(worker.report)
        finally:
            self.release(worker, False)

    async def run_payload(self, source: str, timeout: float = 10.0) -> dict[str, Any]:
        """Test hook: run Python ``source`` in a worker, outside the sandbox (its variable
        ``result``, or the exception it raised). Only with ``_test_hooks``."""
        if not self.test_hooks:
            raise RuntimeError("this pool was made without test hooks")
        worker = await self.acquire()
        limit_hit = True  # the process ran arbitrary code: never reuse it
        try:
            text = source.encode()
            pending = _Pending(0, time.perf_counter() + timeout)
            await worker.request(_worker.HEADER.pack(1 + len(text), _worker.PAYLOAD) + text, pending)
            answer: dict[str, Any] = orjson.loads(await worker.response(pending, pending.deadline + _GRACE))
            return answer
        finally:
            self.release(worker, limit_hit)


async def doctor() -> dict[str, Any]:
    """What holds on this machine: a worker's confinement report, and whether a program runs
    in it (``"runs"``); for ``codemode doctor``."""
    pool = WorkerPool(workers=1)
    try:
        report = await pool.report()
        context = ProcessContext(pool, {}, Limits(timeout=10.0))
        result = await context.execute("return 1 + 1")
        report["runs"] = result.success and result.result == 2
        return report
    finally:
        pool.close()


def _close_all(workers: list[_Worker]) -> None:
    for worker in list(workers):
        worker.close()


# -- executions --------------------------------------------------------------------------


class _Toolset:
    """The tool names and input schemas of a context, defined once in each worker."""

    def __init__(self, names: list[str], schemas: list[str | None]) -> None:
        self.key = next(_keys)
        self.text = orjson.dumps([names, schemas if any(schemas) else None])


class RemoteExecution:
    """Stands in for ``_core.Execution`` (same constructor), stepping in a worker process."""

    def __init__(
        self,
        pool: WorkerPool,
        toolset: _Toolset,
        javascript: str,
        tool_names: list[str],
        *,
        timeout: float,
        memory_limit_bytes: int,
        stack_limit_bytes: int,
        max_tool_calls: int,
        max_log_bytes: int,
        max_log_lines: int,
        fail_on_log_overflow: bool,
        max_result_bytes: int,
        report_channel: bool = False,
        library: str | None = None,
        input_checks: Any = None,
    ) -> None:
        self.pool = pool
        self.toolset = toolset
        self.javascript = javascript
        self.id = next(_ids)
        self.deadline = time.perf_counter() + timeout
        self.limits = [
            timeout,
            memory_limit_bytes,
            stack_limit_bytes,
            max_tool_calls,
            max_log_bytes,
            max_log_lines,
            fail_on_log_overflow,
            max_result_bytes,
        ]
        self.report_channel = report_channel
        self.library = library
        self.worker: _Worker | None = None
        self.finished = False
        self.closing = False

    def _start_frame(self, worker: _Worker) -> bytes:
        parts = []
        toolset = self.toolset
        if toolset.key not in worker.defined:
            parts.append(_define(toolset.key, 1, toolset.text))
            worker.defined.add(toolset.key)
        library_key = None
        if self.library is not None:
            library_key = self.pool.library_key(self.library)
            if library_key not in worker.defined:
                parts.append(_define(library_key, 0, self.library.encode()))
                worker.defined.add(library_key)
        self.limits[0] = max(0.0, self.deadline - time.perf_counter())
        meta = orjson.dumps([toolset.key, self.limits, self.report_channel, library_key])
        code = self.javascript.encode()
        head = _worker.ID_META.pack(self.id, len(meta))
        parts.append(_worker.HEADER.pack(1 + len(head) + len(meta) + len(code), _worker.START))
        parts += (head, meta, code)
        return b"".join(parts)

    async def step_async(
        self, ids: list[int], outcomes: bytes | bytearray, answers: bytes | bytearray
    ) -> tuple[int, Any, list[Any], Any]:
        """The same as ``_core.Execution.step``, in a worker."""
        worker = self.worker
        try:
            if worker is None:
                worker = self.worker = await self.pool.acquire()
                frame = self._start_frame(worker)
            else:
                count = len(ids)
                head = _worker.STEP_HEAD.pack(self.id, count)
                packed = array.array("Q", ids).tobytes()
                length = 1 + len(head) + len(packed) + count + len(answers)
                frame = b"".join((_worker.HEADER.pack(length, _worker.STEP), head, packed, outcomes, answers))
            pending = _Pending(self.id, self.deadline)
            await worker.request(frame, pending)
            body = await worker.response(pending, self.deadline + _CUTOFF)
        except WorkerGone as gone:
            if gone.startup is not None:
                self._end(True)
                raise RuntimeError(f"a QuickJS worker process failed to start: {gone.startup}") from None
            return self._fail("internal", "InternalError", "the engine's worker process stopped unexpectedly")
        except _Cutoff:
            return self._fail("timeout", "TimeoutError", "the execution exceeded its time limit")
        _, status, meta_length = _worker.OUTPUT_HEAD.unpack_from(body)
        at = _worker.OUTPUT_HEAD.size
        call_ids, tools, checked, logs, payload = orjson.loads(body[at : at + meta_length])
        blob = body[at + meta_length :]
        if status == _core.WAITING:
            return status, (call_ids, tools, blob, bytes(checked)), logs, payload
        self._end(status == _core.DONE_ERROR and payload[0] in _LIMIT_KINDS)
        if status == _core.DONE_OK:
            payload = blob
        return status, ([], [], b"[]", b""), logs, payload

    def _fail(self, kind: str, name: str, message: str) -> tuple[int, Any, list[Any], Any]:
        if self.deadline <= time.perf_counter() and kind == "internal":
            kind, name, message = "timeout", "TimeoutError", "the execution exceeded its time limit"
        self._end(True)
        return _core.DONE_ERROR, ([], [], b"[]", b""), [], (kind, name, message, [])

    def _end(self, limit_hit: bool) -> None:
        if self.finished:
            return
        self.finished = True
        if self.worker is not None:
            self.pool.release(self.worker, limit_hit)

    def cancel_handle(self) -> RemoteExecution:
        return self

    def cancel(self) -> None:
        """Stop the execution in its worker now (from the event loop's thread)."""
        if self.worker is not None and not self.finished and not self.closing:
            self.closing = True
            self.worker.control(self.id)

    def close(self) -> None:
        """Free the execution in its worker if it has not ended (idempotent)."""
        if not self.finished:
            self.cancel()
            self._end(True)


def _define(key: int, kind: int, text: bytes) -> bytes:
    return (
        _worker.HEADER.pack(10 + len(text), _worker.DEFINE) + key.to_bytes(8, "little") + bytes([kind]) + text
    )


class ProcessContext(EngineContext):
    """Tools and limits; each :meth:`execute` runs in a fresh QuickJS runtime in a worker."""

    def __init__(self, pool: WorkerPool, bindings: Mapping[str, ToolBinding], limits: Limits) -> None:
        super().__init__(bindings, limits, None)
        self._pool = pool
        self._toolset = _Toolset(self._names, [b.precheck_schema for b in self._bindings])

    def _new_run(
        self, program: Program, limits: Limits, on_event: EventCallback | None, tool_call_id: str | None
    ) -> QuickJSRun:
        run = QuickJSRun(self, program, limits, on_event, tool_call_id)
        run._remote = True
        run._execution_type = functools.partial(RemoteExecution, self._pool, self._toolset)
        return run
