"""The pool of engine processes of one Node.js, shared by every :class:`~codemode.v8.V8Driver`
that uses it, and its watcher thread.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from ._engine import LIVE_PROCESSES, OOM_MARKERS, Engine, stop_process

if TYPE_CHECKING:
    from ._driver import V8Driver
    from ._run import V8Run

_RECYCLE_GRACE = 0.5  # seconds an engine may take to be ready again after an execution
_RSS_SLACK_MIB = 128  # process memory allowed beyond twice the heap limit (code, copies in transit)
_WATCH_INTERVAL = 0.02  # seconds between two looks at running engines' memory
_LINGER = 10.0  # seconds an idle engine no open driver wants stays before it ends
_STDERR_MAX = 4096  # bytes kept of the end of an engine's stderr


def injected_test_module() -> str | None:
    # Tests only (tests/hostile/test_v8_host_confinement.py): a module the engine runs in its
    # own realm before anything else. Read from the Python process's environment when a
    # driver first needs its pool; a program has no way to set it.
    inject = os.environ.get("CODEMODE_V8_TEST_INJECT")
    return os.path.realpath(inject) if inject else None


_POOLS: dict[tuple[str, str, str | None], Pool] = {}
_POOLS_LOCK = threading.Lock()


def pool_for(node: str, addon: str, inject: str | None) -> Pool:
    """The process's pool for this Node.js, engine addon (and test hook)."""
    key = (node, addon, inject)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = Pool(node, addon, inject)
        return pool


class Pool:
    """The engine processes of one Node.js, shared by the ``V8Driver`` objects that use it.

    An engine's stdout is read by exactly one party at a time: the execution it serves (on
    that execution's event loop, from the moment it takes the engine until its outcome line
    or the end of the output), else this pool's watcher thread. The watcher reads engines
    that are starting or getting ready again after a run (until their ``i`` line), and dead
    ones (to the end of their output, then reaps them); it reads every engine's stderr; and
    while executions run it checks their engines' memory and the grace time of engines
    getting ready. An idle engine's stdout is read by nobody: its death shows on its stderr.
    All changes to the watcher's selector happen on the watcher thread (``commands``).
    """

    def __init__(self, node: str, addon: str, inject: str | None) -> None:
        self.node = node
        self.addon = addon
        self.inject = inject
        self.lock = threading.Lock()
        self.drivers: weakref.WeakSet[V8Driver] = weakref.WeakSet()
        self.engines: set[Engine] = set()
        self.idle: dict[int, list[Engine]] = {}
        self.starting: dict[int, int] = {}
        self.waiters: deque[V8Run] = deque()
        self.running: set[Engine] = set()
        self.recycling: dict[Engine, float] = {}
        self.dying: set[Engine] = set()  # output ended, stderr not yet (watcher thread)
        self.commands: deque[Callable[[], None]] = deque()
        self.selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, self._woken)
        self._last_check = 0.0
        threading.Thread(target=self._watch, name="codemode-v8-watcher", daemon=True).start()

    # -- drivers (any thread) --------------------------------------------------------------

    def attach(self, driver: V8Driver) -> None:
        with self.lock:
            self.drivers.add(driver)

    def detach(self, driver: V8Driver) -> None:
        """``driver`` is closed: its waiting executions fail, its running ones end with their
        engine, and its wants no longer count."""
        with self.lock:
            self.drivers.discard(driver)
            failed = [run for run in self.waiters if run.driver is driver]
            for run in failed:
                self.waiters.remove(run)
            doomed = [e for e in self.engines if e.run is not None and e.run.driver is driver]
        for run in failed:
            run.deliver(b"e " + orjson.dumps("the V8Driver was closed"))
        for engine in doomed:
            engine.kill()
        self.wake()  # idle engines may now be unwanted

    def want(self, driver: V8Driver, mib: int, count: int) -> None:
        with self.lock:
            driver._want[mib] = max(driver._want.get(mib, 0), min(count, driver.max_workers))
            self._refill()

    def _cap(self) -> int:
        """Engine processes at most: the sum of the open drivers' ``max_workers``."""
        return sum(d.max_workers for d in self.drivers if not d._closed)

    def _wants(self) -> dict[int, int]:
        wants: dict[int, int] = {}
        for driver in self.drivers:
            if not driver._closed:
                for mib, count in driver._want.items():
                    wants[mib] = max(wants.get(mib, 0), count)
        return wants

    # -- engines for executions --------------------------------------------------------------

    def acquire(self, run: V8Run) -> Engine | None:
        """An idle engine for ``run`` (run's thread), or ``None``: ``run`` then waits for one,
        handed over with a ``p`` message."""
        with self.lock:
            driver = run.driver
            if driver._closed:
                raise RuntimeError("this V8Driver has been closed")
            driver._want.setdefault(run.mib, 1)
            engine = self._take_idle(run.mib) if driver._active < driver.max_workers else None
            if engine is not None:
                self._assign(engine, run)
            else:
                self.waiters.append(run)
            self._refill()
        return engine

    def _take_idle(self, mib: int) -> Engine | None:
        idle = self.idle.get(mib)
        while idle:
            engine = idle.pop()
            if not engine.dead:
                return engine
        return None

    def _assign(self, engine: Engine, run: V8Run) -> None:
        """``engine`` serves ``run`` (lock held)."""
        engine.run = run
        run.driver._active += 1
        run.holds_slot = True
        quiet = not self.running and not self.recycling
        self.running.add(engine)
        if quiet:
            self.wake()  # the watcher starts its memory checks (it sees running first)

    def _free_slot(self, run: V8Run) -> None:
        if run.holds_slot:
            run.holds_slot = False
            run.driver._active -= 1

    def _dispatch(self) -> list[tuple[V8Run, Engine]]:
        """Give idle engines to waiting runs whose driver has room (lock held); the caller
        notifies them (``run.hand_over``) once the lock is released."""
        handed = []
        for run in list(self.waiters):
            if run.driver._active >= run.driver.max_workers:
                continue
            engine = self._take_idle(run.mib)
            if engine is None:
                continue
            self.waiters.remove(run)
            self._assign(engine, run)
            run.handed = engine
            handed.append((run, engine))
        return handed

    def _refill(self) -> None:
        """Start engines for waiting runs that may run, and up to the wanted number of idle
        ones per limit (lock held)."""
        cap = self._cap()
        need: dict[int, int] = {}
        room: dict[V8Driver, int] = {}
        for run in self.waiters:
            left = room.setdefault(run.driver, run.driver.max_workers - run.driver._active)
            if left > 0:
                room[run.driver] = left - 1
                need[run.mib] = need.get(run.mib, 0) + 1
        # An engine getting ready after a run is ready within milliseconds: it counts as
        # one coming (starting another process would cost tens of them, and CPU).
        coming = dict(self.starting)
        for engine in self.recycling:
            coming[engine.mib] = coming.get(engine.mib, 0) + 1
        for mib, count in need.items():
            while coming.get(mib, 0) < count and len(self.engines) < cap:
                self._spawn(mib)
                coming[mib] = coming.get(mib, 0) + 1
        for mib, want in self._wants().items():
            while len(self.idle.get(mib, ())) + coming.get(mib, 0) < want and len(self.engines) < cap:
                self._spawn(mib)
                coming[mib] = coming.get(mib, 0) + 1
        if need and len(self.engines) >= cap:
            # Make room: an idle engine of a limit nobody is waiting for.
            for mib, idle in self.idle.items():
                if idle and mib not in need:
                    idle.pop().kill()
                    return

    def _spawn(self, mib: int) -> None:
        """Start an engine for ``mib`` in a thread of its own (lock held)."""
        engine = Engine(self, mib)
        self.engines.add(engine)
        self.starting[mib] = self.starting.get(mib, 0) + 1
        threading.Thread(target=self._start, args=(engine,), name="codemode-v8-start", daemon=True).start()

    def _start(self, engine: Engine) -> None:
        try:
            engine.start()
        except OSError as e:
            engine.stderr = f"the engine process could not be started: {e}".encode()
            engine.dead = True
            self._gone(engine)
            return
        self.command(lambda: self._watch_engine(engine))

    def forget_waiter(self, run: V8Run) -> None:
        """``run`` gives up (run's thread): out of the queue, and an engine handed to it but
        not yet taken goes back (idle, or to be reaped)."""
        with self.lock:
            if run in self.waiters:
                self.waiters.remove(run)
            engine, run.handed = run.handed, None
            if engine is None:
                return
            engine.run = None
            self.running.discard(engine)
            self._free_slot(run)
            if not engine.dead:
                self.idle.setdefault(engine.mib, []).append(engine)
                engine.idle_since = time.monotonic()
            handed = self._dispatch()
        if engine.dead:
            self.command(lambda: self._adopt(engine))
        for waiter, given in handed:
            waiter.hand_over(given)

    def take_handed(self, run: V8Run) -> Engine | None:
        with self.lock:
            engine, run.handed = run.handed, None
            return engine

    def give_back(self, engine: Engine, run: V8Run, *, ended: bool) -> None:
        """``run`` no longer reads ``engine`` (run's thread): its outcome came, or it gave
        up, or (``ended``) the engine's output ended; then the watcher reaps the process and
        tells ``run`` why it ended. Bytes already read stay in ``engine.buffer``."""
        with self.lock:
            self.running.discard(engine)
            self._free_slot(run)
            if not ended:
                engine.run = None
                if not engine.dead:
                    self.recycling[engine] = time.monotonic() + _RECYCLE_GRACE
            handed = self._dispatch()
            if self.waiters:
                self._refill()
        self.command(lambda: self._adopt(engine))
        for waiter, given in handed:
            waiter.hand_over(given)

    # -- the watcher thread ------------------------------------------------------------------

    def command(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the watcher thread."""
        self.commands.append(fn)
        self.wake()

    def wake(self) -> None:
        try:
            os.write(self._wake_w, b"w")
        except BlockingIOError:  # already awake
            pass

    def _woken(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _watch(self) -> None:
        while True:
            with self.lock:  # other threads change these (and wake this one after)
                if self.running or self.recycling or self.dying:
                    timeout: float | None = _WATCH_INTERVAL
                elif any(self.idle.values()):
                    timeout = _LINGER / 4
                else:
                    timeout = None
            try:
                for key, _ in self.selector.select(timeout):
                    key.data()
                while self.commands:
                    self.commands.popleft()()
                self._supervise()
            except Exception:  # a bug here must not leave every engine unwatched
                import traceback

                traceback.print_exc()

    def _watch_engine(self, engine: Engine) -> None:
        """A started engine: watch its output until it is ready, and its stderr always."""
        self.selector.register(engine.stderr_fd, selectors.EVENT_READ, lambda: self._on_stderr(engine))
        self._adopt(engine)

    def _adopt(self, engine: Engine) -> None:
        """The watcher reads ``engine``'s stdout (what is buffered first)."""
        if engine.stdout_fd < 0 or engine.stdout_eof:
            return
        if not engine.watched:
            engine.watched = True
            self.selector.register(engine.stdout_fd, selectors.EVENT_READ, lambda: self._on_stdout(engine))
        if engine.buffer:
            self._feed(engine, b"")

    def _unwatch(self, engine: Engine) -> None:
        if engine.watched:
            engine.watched = False
            self.selector.unregister(engine.stdout_fd)

    def _on_stdout(self, engine: Engine) -> None:
        data = engine.read()
        if data is None:
            return
        if data:
            self._feed(engine, data)
            return
        self._unwatch(engine)
        engine.stdout_eof = time.monotonic()
        engine.dead = True
        stop_process(engine.proc)
        self.dying.add(engine)
        self._reap_if_done(engine)

    def _feed(self, engine: Engine, data: bytes) -> None:
        buffer = engine.buffer
        buffer += data
        while True:
            nl = buffer.find(b"\n")
            if nl < 0:
                return
            line = bytes(buffer[:nl])
            del buffer[: nl + 1]
            if line == b"i":
                self._unwatch(engine)
                self._ready(engine)
                return
            run = engine.run
            if run is not None and line:
                run.deliver(line)

    def _on_stderr(self, engine: Engine) -> None:
        """Keep the end of the process's stderr. V8 giving up on memory can hang in its own
        report instead of exiting: the first lines of that report end the process."""
        try:
            chunk = os.read(engine.stderr_fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            engine.stderr = (engine.stderr + chunk)[-_STDERR_MAX:]
            if any(marker in engine.stderr for marker in OOM_MARKERS):
                engine.memory_exceeded = True
                engine.kill()
            return
        self.selector.unregister(engine.stderr_fd)
        engine.stderr_eof = True
        with self.lock:
            engine.dead = True
            unread = engine.run is None
            if engine in self.idle.get(engine.mib, ()):
                self.idle[engine.mib].remove(engine)
        stop_process(engine.proc)
        if unread:  # idle: nobody reads its stdout; read it to its end, then reap
            self._adopt(engine)
        self._reap_if_done(engine)

    def _reap_if_done(self, engine: Engine) -> None:
        """Reap an engine whose output ended once its stderr ended too (or after a second)."""
        if not engine.stdout_eof or engine not in self.dying:
            return
        if not engine.stderr_eof and time.monotonic() - engine.stdout_eof < 1.0:
            return
        self.dying.discard(engine)
        if not engine.stderr_eof:
            engine.stderr_eof = True
            self.selector.unregister(engine.stderr_fd)
        proc = engine.proc
        assert proc is not None
        stop_process(proc)
        try:
            engine.returncode = proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            engine.returncode = None
        LIVE_PROCESSES.discard(proc)
        engine.close_fds()
        self._gone(engine)

    def _supervise(self) -> None:
        """Kill engines over their memory or past their grace; end unwanted idle ones."""
        now = time.monotonic()
        if now - self._last_check < _WATCH_INTERVAL * 0.9:
            return
        self._last_check = now
        for engine in list(self.dying):
            self._reap_if_done(engine)
        with self.lock:
            overdue = [e for e, until in self.recycling.items() if until < now]
            running = list(self.running)
            wants = self._wants()
            unwanted = []
            for mib, idle in self.idle.items():
                keep = wants.get(mib, 0)
                spare = [e for e in idle[: max(0, len(idle) - keep)] if now - e.idle_since > _LINGER]
                for engine in spare:
                    idle.remove(engine)
                unwanted += spare
        for engine in overdue + unwanted:
            engine.kill()
        for engine in running:
            engine.check_memory()

    def _ready(self, engine: Engine) -> None:
        """``engine`` is ready for an execution (watcher thread). Its next execution may
        grow its memory by twice its limit plus some slack from what it holds now; an engine
        already holding that much more than when it first got ready (memory a past program
        left behind, that V8 did not give back) is retired instead."""
        rss = engine.rss()
        if rss:
            allowance = (2 * engine.mib + _RSS_SLACK_MIB) << 20
            if not engine.first_rss:
                engine.first_rss = rss
            elif rss > engine.first_rss + allowance:
                engine.kill()
            engine.rss_limit = rss + allowance
        with self.lock:
            if engine.fresh:
                engine.fresh = False
                self.starting[engine.mib] -= 1
            self.recycling.pop(engine, None)
            if engine.dead:
                return
            engine.idle_since = time.monotonic()
            self.idle.setdefault(engine.mib, []).append(engine)
            handed = self._dispatch()
        for run, given in handed:
            run.hand_over(given)

    def _gone(self, engine: Engine) -> None:
        """``engine``'s process has ended and been reaped."""
        with self.lock:
            self.engines.discard(engine)
            self.recycling.pop(engine, None)
            self.running.discard(engine)
            idle = self.idle.get(engine.mib)
            if idle and engine in idle:
                idle.remove(engine)
            failed: list[V8Run] = []
            if engine.fresh:
                engine.fresh = False
                self.starting[engine.mib] -= 1
                # It never became ready: the runs waiting for it learn why, instead of
                # waiting (and it is not replaced until someone asks again).
                failed = [run for run in self.waiters if run.mib == engine.mib]
                for waiter in failed:
                    self.waiters.remove(waiter)
            else:
                self._refill()
            run = engine.run
        report = b"x" + engine.exit_report()
        for waiter in failed:
            waiter.deliver(report)
        if run is not None:
            run.deliver(report)
