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
  ``GRACE`` seconds is killed. A hostile program cannot hold a worker past its deadline;
- turns a worker that dies into an ``internal`` error of the executions it was running and
  replaces it for the next ones.

Reads and writes are non-blocking, awaited with ``anyio.wait_readable``/``wait_writable``;
the event loop never blocks on a worker (workers are started from a thread).

This module holds the pool; one worker seen from here is :mod:`codemode._process_worker`, an
execution in a worker :mod:`codemode._process_execution`.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
import warnings
import weakref
from collections import deque
from pathlib import Path
from typing import Any

import anyio
import orjson

from . import _core, _worker
from ._process_execution import ProcessContext, RemoteExecution
from ._process_worker import GRACE, PIPE_SIZE, Pending, Worker, WorkerGone, definition_keys
from .limits import Limits

__all__ = ["ProcessContext", "RemoteExecution", "WorkerGone", "WorkerPool", "doctor"]

_PACKAGE_DIR = Path(__file__).resolve().parent
_WORKER_SCRIPT = str(_PACKAGE_DIR / "_worker.py")
_SITE_DIR = str(Path(orjson.__file__).resolve().parent.parent)

_warned = False


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
        self.workers: list[Worker] = []
        self.lock = threading.Lock()  # self.workers, with the thread that starts spares
        self.spawning = 0
        self.room: deque[anyio.Event] = deque()
        self.libraries: dict[str, int] = {}
        self._finalizer = weakref.finalize(self, _close_all, self.workers)

    # -- workers ---------------------------------------------------------------------------

    def _spawn(self) -> Worker:
        """Start a worker process (blocking: call it from a thread)."""
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        control_r, control_w = os.pipe()
        for fd in (to_w, from_w):
            try:
                fcntl.fcntl(fd, 1031, PIPE_SIZE)  # F_SETPIPE_SZ: fewer partial writes
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
        return Worker(proc, to_w, from_r, control_w, _note_report)

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

    def _live(self) -> list[Worker]:
        with self.lock:
            self.workers[:] = [w for w in self.workers if w.dead is None]
            return [w for w in self.workers if not w.retiring]

    async def acquire(self) -> Worker:
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

    def release(self, worker: Worker, limit_hit: bool) -> None:
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

    def _shrink(self, live: list[Worker]) -> list[Worker]:
        """Close workers idle for ``idle_timeout`` (keeping one); the others."""
        now = time.perf_counter()
        idle = [w for w in live if w.load == 0 and now - w.idle_since > self.idle_timeout]
        for worker in idle[: max(0, len(live) - 1)]:
            worker.close()
        return [w for w in live if w.dead is None]

    def library_key(self, library: str) -> int:
        key = self.libraries.get(library)
        if key is None:
            key = self.libraries[library] = next(definition_keys)
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
            pending = Pending(0, time.perf_counter() + timeout)
            await worker.request(_worker.HEADER.pack(1 + len(text), _worker.PAYLOAD) + text, pending)
            answer: dict[str, Any] = orjson.loads(await worker.response(pending, pending.deadline + GRACE))
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


def _close_all(workers: list[Worker]) -> None:
    for worker in list(workers):
        worker.close()
