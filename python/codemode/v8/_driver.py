"""The V8 driver: each execution runs in a V8 isolate of its own, in an engine process.

An engine is a Node.js process running ``host.mjs``: it serves one execution at a time, each
in a fresh isolate made with isolated-vm (a bare V8 isolate: no Node.js realm, no
``process``, nothing but ECMAScript built-ins and the sandbox prelude), disposed the moment
the execution ends. Whatever a program does (run out of memory, crash V8, loop inside a
native built-in) touches only its own engine process: Python kills it at the deadline or on
cancellation, and a process that died is replaced.

Engines belong to one pool per Python process and Node.js executable (``Pool``, ``_pool.py``),
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

This module holds the driver and its context; ``_pool.py`` the pool of engine processes and
its watcher thread; ``_engine.py`` one engine process (how it starts, its pipes, its memory,
why it ended) and where ``node`` and the engine addon are found; ``_run.py`` the run of one
execution, on its own event loop.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..engine import DriverContext
from ..limits import Limits
from ..tools import ToolBinding
from ._engine import Engine, find_addon, find_node, memory_mib
from ._pool import Pool, injected_test_module, pool_for
from ._run import V8Run

__all__ = ["V8Context", "V8Driver", "find_addon", "find_node"]


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
        self._pool: Pool | None = None
        self._want: dict[int, int] = {}  # engines to keep ready per memory limit (pool lock)
        self._active = 0  # executions of this driver holding an engine (pool lock)
        self._closed = False

    def _get_pool(self) -> Pool:
        """The pool of this driver's Node.js (found, and joined, on first use)."""
        if self._closed:
            raise RuntimeError("this V8Driver has been closed")
        pool = self._pool
        if pool is None:
            node = os.path.realpath(self.node) if self.node else find_node()
            pool = pool_for(node, find_addon(), injected_test_module())
            pool.attach(self)
            self._pool = pool
        return pool

    @property
    def _engines(self) -> set[Engine]:
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
                self.prewarm_engines(memory_mib(limits), self.prewarm)
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


V8Context.run_class = V8Run
