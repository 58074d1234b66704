"""The QuickJS driver: programs run in the embedded engine of ``codemode._core``.

How an execution runs. The native ``Execution`` runs JavaScript until it is idle and hands
back every tool call made meanwhile; the driver answers them and steps again. Each step runs
on the calling thread (GIL released) for at most ``inline_slice`` seconds: almost every step
is done or waiting on tools by then, and tool calls answered on the same thread cost no
thread hop. A step still computing when its slice ends stops where it is (it runs on a stack
of its own) and is finished in a worker thread; the event loop never waits on it for longer
than the slice.

Tool handlers run as tasks. On asyncio their first step runs at once (an eager task), so a
handler that does not suspend answers before JavaScript resumes, without a trip through the
event loop.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.abc
import orjson

from . import _core
from .drivers import Program
from .engine import TIMEOUT, EngineContext, EngineRun, per_schemas
from .events import EventCallback
from .limits import Limits
from .results import ExecutionResult
from .tools import ToolBinding

if TYPE_CHECKING:
    from .process import WorkerPool


@per_schemas
def compiled_checks(schemas: tuple[str, ...]) -> _core.LibraryChecks:
    """The validators of a host library's ``check`` (see ``EngineContext.execute``), compiled
    once per tuple of schemas (and through the cache ``_core.JsonSchema`` shares)."""
    return _core.LibraryChecks(list(schemas))


class QuickJSDriver:
    """The embedded QuickJS engine: microsecond start-up, a fresh runtime per execution.

    ``inline_slice``: how long (seconds) a step of a program may run on the event loop's
    thread before the rest of it is moved to a worker thread. ``None`` runs every step in a
    worker thread (slower tool calls, but the loop's thread never runs JavaScript).

    ``prewarm``: how many fresh engines a background thread keeps ready, and whether it
    frees finished ones (a process-wide setting; ``None`` leaves it as it is). Each engine
    still serves exactly one execution. Worth it when executions come with pauses between
    them (as they do behind a model); in a tight loop the thread competes for the CPU.

    ``isolation="process"`` runs the engine in a pool of worker processes confined by the OS
    (no network, no file system, no new processes), for servers that run untrusted programs;
    ``process_options`` go to :class:`codemode.process.WorkerPool`. See ``docs/security.md``.
    """

    def __init__(
        self,
        *,
        inline_slice: float | None = 0.002,
        prewarm: int | None = None,
        isolation: Literal["none", "process"] = "none",
        **process_options: Any,
    ) -> None:
        self.inline_slice = inline_slice
        if prewarm is not None:
            _core.set_prewarm(prewarm)
        self.isolation = isolation
        self.pool: WorkerPool | None = None
        if isolation == "process":
            from .process import WorkerPool

            self.pool = WorkerPool(**process_options)
        elif isolation != "none" or process_options:
            raise ValueError(f"isolation must be 'none' or 'process' (options need 'process'): {isolation!r}")

    def close(self) -> None:
        """Stop the worker processes of ``isolation="process"`` (executions in flight fail
        with ``internal``; the next one starts a worker again). Nothing to do in process."""
        if self.pool is not None:
            self.pool.close()

    async def create_context(self, *, bindings: Mapping[str, ToolBinding], limits: Limits) -> EngineContext:
        """A context for ``bindings`` (keyed by tool name) with the given limits."""
        if self.pool is not None:
            from .process import ProcessContext

            await self.pool.start()
            return ProcessContext(self.pool, bindings, limits)
        return QuickJSContext(bindings, limits, self.inline_slice)


class QuickJSContext(EngineContext):
    """Tools and limits; each :meth:`execute` runs in a fresh QuickJS runtime."""

    def _new_run(
        self, program: Program, limits: Limits, on_event: EventCallback | None, tool_call_id: str | None
    ) -> QuickJSRun:
        return QuickJSRun(self, program, limits, on_event, tool_call_id)


class QuickJSRun(EngineRun):
    """One execution in the embedded engine (or, with ``process.py``'s engine type, in a
    worker process): the engine steps until it is idle and hands back the calls it made."""

    _execution_type: Callable[..., Any] = _core.Execution
    """Makes the engine; ``process.py`` puts one that runs in a worker process."""
    _remote = False
    """Steps are awaited (``step_async``): the engine runs in another process."""

    def __init__(
        self,
        context: EngineContext,
        program: Program,
        limits: Limits,
        on_event: EventCallback | None,
        tool_call_id: str | None,
    ) -> None:
        super().__init__(context, program, limits, on_event, tool_call_id)
        # Answers gathered for the next step: call ids, outcome codes, and their JSON (results
        # or error messages) as the elements of one array, each followed by a comma.
        self.answer_ids: list[int] = []
        self.answer_outcomes = bytearray()
        self.answer_json = bytearray(b"[")

    def _new_execution(self) -> Any:
        # A _core.Execution, or process.py's RemoteExecution (its steps are awaited)
        limits = self.limits
        return self._execution_type(
            self.program.javascript,
            self.names,
            _core.ExecutionLimits(
                timeout=max(0.0, limits.timeout - (time.perf_counter() - self.started)),
                memory_limit_bytes=int(limits.memory_limit_mb * 1024 * 1024),
                stack_limit_bytes=limits.stack_limit_kb * 1024,
                max_tool_calls=limits.max_tool_calls,
                max_log_bytes=limits.max_log_bytes,
                max_log_lines=limits.max_log_lines,
                fail_on_log_overflow=limits.log_overflow == "error",
                max_result_bytes=limits.max_result_bytes,
            ),
            report_channel=self.on_report is not None,
            library=self.library,
            input_checks=self.prechecks,
            **self._library_checks(),
        )

    def _library_checks(self) -> dict[str, Any]:
        """The ``library_checks`` argument of the engine: compiled here (once per tuple of
        schemas), or the schemas themselves for a worker process, which compiles them there."""
        schemas = self.library_checks
        if schemas is None:
            return {}
        return {"library_checks": schemas if self._remote else compiled_checks(schemas)}

    async def _steps(self) -> ExecutionResult:
        deadline = self.started + self.limits.timeout
        execution = self._new_execution()
        in_thread = self.inline_slice is None
        stepping_in_thread = False
        ids: list[int] = []
        outcomes: bytes | bytearray = b""
        json: bytes | bytearray = b""
        try:
            while True:
                if self._remote:
                    output = await execution.step_async(ids, outcomes, json)
                elif in_thread:
                    stepping_in_thread = True
                    with anyio.move_on_after(max(0.0, deadline - time.perf_counter()) + _OVERRUN_GRACE):
                        output = await anyio.to_thread.run_sync(
                            execution.step, ids, outcomes, json, None, abandon_on_cancel=True
                        )
                        stepping_in_thread = False
                else:
                    output = execution.step(ids, outcomes, json, self.inline_slice)
                    while output[0] == _core.SUSPENDED:
                        # Still computing when its slice was over: the rest of the step runs
                        # in a worker thread, where it left off; the event loop goes on.
                        stepping_in_thread = True
                        with anyio.move_on_after(max(0.0, deadline - time.perf_counter()) + _OVERRUN_GRACE):
                            output = await _in_background(execution.resume)
                            stepping_in_thread = False
                        if stepping_in_thread:
                            break
                if stepping_in_thread:
                    # Past its deadline inside something the engine cannot stop (such as
                    # freeing a large structure): the step stops at its next check and the
                    # engine is freed after it, in the background; the run ends now.
                    _cancel(execution)
                    _background_close(execution)
                    result = self._finish(_core.DONE_ERROR, TIMEOUT)
                    await self._flush_events()
                    return result
                status, calls, logs, payload = output
                if status == _core.WAITING:
                    self._dispatch(calls, logs)
                    if self.events:
                        await self._flush_events()
                    if not self.answer_ids:
                        wait = deadline - time.perf_counter()
                        if payload is not None:
                            wait = min(wait, payload)
                        if wait > 0:
                            await self._wait(wait)
                    ids, outcomes, json = self._take_answers()
                    continue
                if logs:
                    self._record_logs(logs)
                result = self._finish(status, payload)
                await self._flush_events()
                return result
        except anyio.get_cancelled_exc_class():
            # The awaiting task was cancelled: stop the engine, report, re-raise.
            _cancel(execution)
            await self._report_cancelled()
            raise
        finally:
            self.finished = True
            for task in self.tasks:
                task.cancel()
            if not stepping_in_thread:
                execution.close()

    async def _wait(self, seconds: float) -> None:
        """Sleep until a tool call completes or ``seconds`` pass."""
        self.wakeup = anyio.Event()
        with anyio.move_on_after(seconds):
            await self.wakeup.wait()
        self.wakeup = None

    def _dispatch(self, calls: _core.Calls, logs: list[tuple[str, str, float, int]]) -> None:
        """Start the step's tool calls, with its console lines in the order they happened."""
        ids, tools, args_json, checked = calls
        if not logs:
            if len(ids) == 1:  # the common case: one call awaited at a time
                self._start_parsed_call(ids[0], tools[0], orjson.loads(args_json)[0], checked[0])
            elif ids:
                self._start_many(ids, tools, orjson.loads(args_json), checked)
            return
        pending = zip(ids, tools, orjson.loads(args_json), checked, strict=True)
        made = self.calls
        for line in logs:
            while made < line[3]:
                self._start_parsed_call(*next(pending))
                made += 1
            self._record_logs([line])
        for call in pending:
            self._start_parsed_call(*call)

    def _answer(self, call_id: int, outcome: int, json: bytes) -> None:
        """Keep a call's answer (JSON: the result, or the error message) for the next step."""
        self.answer_ids.append(call_id)
        self.answer_outcomes.append(outcome)
        # Copied in at once, so the small bytes object is freed now: a thousand answers do
        # not each hold a buffer of their own until the step.
        self.answer_json += json
        self.answer_json += b","

    def _take_answers(self) -> tuple[list[int], bytearray, bytearray]:
        """The answers for the next step (ids, outcomes, one JSON array); starts afresh."""
        ids, outcomes, json = self.answer_ids, self.answer_outcomes, self.answer_json
        if ids:
            json[-1] = 0x5D  # the last comma becomes the closing "]"
        else:
            json += b"]"
        self.answer_ids, self.answer_outcomes, self.answer_json = [], bytearray(), bytearray(b"[")
        return ids, outcomes, json


_BACKGROUND_NICE = 10
"""How far below the event loop's the priority of the threads that finish long steps is (Linux):
when the CPUs are busy, the loop and the short steps of every other execution go first."""
_OVERRUN_GRACE = 0.005
"""Seconds past the deadline after which a run whose step is still running in the
background ends as a timeout without it (the engine itself stops well within them, but for
what it cannot interrupt)."""
_background: ThreadPoolExecutor | None = None


def _lower_priority() -> None:
    if sys.platform == "linux":  # elsewhere the call would lower the whole process
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _BACKGROUND_NICE)
        except OSError:
            pass


async def _in_background(step: Callable[[], Any]) -> Any:
    """Run ``step`` (the rest of a step past its slice) in a background thread, at a lower
    priority than the event loop's; cancelling the wait leaves the thread to finish the step
    (the execution is cancelled through its handle)."""
    future = _background_threads().submit(step)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # trio
        return await anyio.to_thread.run_sync(future.result, abandon_on_cancel=True)
    return await asyncio.wrap_future(future, loop=loop)


def _background_threads() -> ThreadPoolExecutor:
    """The threads that finish long steps (made on first use)."""
    global _background
    if _background is None:
        _background = ThreadPoolExecutor(
            max_workers=64, thread_name_prefix="codemode-compute", initializer=_lower_priority
        )
    return _background


def _background_close(execution: _core.Execution) -> None:
    """Free ``execution`` once its step, still running in another thread, is over."""
    _background_threads().submit(execution.close)


def _cancel(execution: _core.Execution) -> None:
    try:
        execution.cancel_handle().cancel()
    except RuntimeError:  # it never started
        pass
