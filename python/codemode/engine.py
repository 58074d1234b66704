"""What every engine's execution shares: the context (tools and limits), and one execution's
tool calls, console lines, events and result.

An engine driver subclasses :class:`EngineContext` (``_new_run``) and :class:`EngineRun`
(``_steps``, the engine's own loop, and ``_answer``, how a call's answer reaches the engine):
``quickjs.py`` for the embedded engine and its worker processes, ``v8/_driver.py`` for V8.
Tool calls are validated, run and settled here, the same way on every engine.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar, cast

import anyio
import anyio.abc
import orjson
from pydantic_core import PydanticSerializationError, to_jsonable_python

from . import _core
from .drivers import Program, program_text
from .eager import first_step, outside_current_task, start_eagerly
from .errors import InvalidArgumentsError
from .events import (
    Event,
    EventCallback,
    EventName,
    console_value,
    emit,
    finished_value,
    now_ms,
    settled_value,
    started_value,
)
from .limits import Limits
from .results import PROGRAM_FILE, ErrorKind, ExecutionError, ExecutionResult, Frame, format_stack
from .tools import ToolBinding

SETTLE_OK, SETTLE_TOOL_ERROR, SETTLE_INVALID = 0, 1, 2
"""How a tool call settles in the engine: its result, a ToolError, an InvalidArgumentsError."""
TIMEOUT: tuple[str, str, str, list[Any]] = ("timeout", "TimeoutError", "", [])
"""The error of a run that the host ends at its deadline (``_error`` words the message)."""

CALL_ID: contextvars.ContextVar[int] = contextvars.ContextVar("codemode_call_id", default=0)
"""The id of the tool call a handler runs for (its ``callId``: the program's calls are
numbered in the order it makes them), set when the handler is called if it has a true
``wants_call_id`` attribute."""

RUN_LOGS: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("codemode_run_logs", default=None)
"""When set as an execution starts, the list its console lines are kept in (read by a host
that stops the execution before it returns a result: a paused run keeps its logs)."""

ReportCallback = Callable[[str], "Event | None"]
"""Receives each line of an execution's report channel (see ``execute(on_report=...)``); an
event it returns is emitted in order with the execution's own."""


class EngineContext:
    """Tools and limits shared by the engines' contexts; each :meth:`execute` runs the
    program in a fresh engine, made by the subclass's ``_new_run``."""

    def __init__(
        self, bindings: Mapping[str, ToolBinding], limits: Limits, inline_slice: float | None
    ) -> None:
        self._bindings = list(bindings.values())
        self._names = [b.name for b in self._bindings]
        prechecks = [b.precheck_schema for b in self._bindings]
        self._prechecks = _core.InputChecks(prechecks) if any(prechecks) else None
        # Handlers that read CALL_ID say so (``wants_call_id``): only then is it set, per call.
        self._call_ids = any(getattr(b.handler, "wants_call_id", False) for b in self._bindings)
        self.limits = limits
        self._inline_slice = inline_slice
        self._disposed = False

    def _new_run(
        self, program: Program, limits: Limits, on_event: EventCallback | None, tool_call_id: str | None
    ) -> EngineRun:
        raise NotImplementedError

    async def execute(
        self,
        javascript: str | Program,
        *,
        on_event: EventCallback | None = None,
        tool_call_id: str | None = None,
        limits: Limits | None = None,
        on_report: ReportCallback | None = None,
        library: str | None = None,
        library_checks: Sequence[str] | None = None,
    ) -> ExecutionResult:
        """Run a program body (top-level ``await`` and ``return`` allowed) to its result.

        ``on_report`` opens the report channel: the program's function receives, as its
        parameter ``__codemode_channel``, a function whose every line is passed to
        ``on_report`` as it arrives (in order with the tool calls and console lines), outside
        the console and its limits; an event ``on_report`` returns is emitted in that order.
        It is meant for code a host places on line 1 before the model's own, which takes the
        channel (and clears the parameter) before the model's code runs.

        ``library``: JavaScript evaluating to a function, run before the program; the
        parameter is then what that function returns when called with the channel (or with
        ``undefined``). QuickJS compiles a library once per process, so a large one costs an
        execution only its loading.

        ``library_checks``: JSON Schemas (JSON text) the library checks values with. It is
        called as ``library(channel, check)``: ``check(i, value)`` is ``null`` when ``value``
        (as its JSON crosses to the host) is valid by schema ``i``, else ``[path, message]``
        as :class:`codemode._core.JsonSchema` words it (the path a suffix to the value's name:
        ``""``, ``.n``, ``[0]``). On QuickJS it is a synchronous function of the engine (no
        host round trip); on V8 and Workers it returns a promise (a library awaits it on
        every engine). A check is no tool call: it counts toward no limit and makes no event.
        Pass the same sequence (a tuple) for the same schemas: it is compiled once.
        """
        if self._disposed:
            raise RuntimeError("this context has been disposed")
        if not isinstance(javascript, Program):
            javascript = program_text(javascript)
            javascript = Program(javascript, javascript)
        program = javascript
        run = self._new_run(program, limits or self.limits, on_event, tool_call_id)
        run.on_report = on_report
        run.library = library
        if library_checks is not None:
            run.library_checks = tuple(library_checks)
        return await run.run()

    async def dispose(self) -> None:
        """Refuse further executions (idempotent). Engines are freed after each execution."""
        self._disposed = True

    async def __aenter__(self) -> EngineContext:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.dispose()


class DriverContext(EngineContext):
    """The context of a driver whose runs are ``run_class(context, program, limits, on_event,
    tool_call_id)`` and reach their driver as ``context._driver``."""

    run_class: type[EngineRun]

    def __init__(self, driver: Any, bindings: Mapping[str, ToolBinding], limits: Limits) -> None:
        super().__init__(bindings, limits, None)
        self._driver = driver

    def _new_run(
        self, program: Program, limits: Limits, on_event: EventCallback | None, tool_call_id: str | None
    ) -> EngineRun:
        return self.run_class(self, program, limits, on_event, tool_call_id)


_Made = TypeVar("_Made")


def per_schemas(make: Callable[[tuple[str, ...]], _Made]) -> Callable[[tuple[str, ...]], _Made]:
    """``make`` for a tuple of schemas (``library_checks``), made once: the last tuple is
    known by identity (a host passes the same one to every execution: hashing thousands of
    schemas would cost each execution more than its checks), others by value (16 kept)."""
    cached = functools.lru_cache(maxsize=16)(make)
    last: list[tuple[tuple[str, ...], _Made] | None] = [None]  # one pair, replaced whole

    def made(schemas: tuple[str, ...]) -> _Made:
        pair = last[0]
        if pair is not None and pair[0] is schemas:
            return pair[1]
        value = cached(schemas)
        last[0] = (schemas, value)
        return value

    return made


def _json_default(value: Any) -> Any:
    """What orjson cannot (or, with ``_JSON_OPTIONS``, may not) write itself, as JSON data the
    way pydantic makes it (models, dataclasses, datetimes, UUIDs, Decimal, sets, enums): every
    tool's result is sent as a decorated tool's would be."""
    try:
        return to_jsonable_python(value)
    except PydanticSerializationError as e:
        raise TypeError(str(e)) from None


_JSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
)


class EngineRun:
    """The state of one execution: its tool calls, console lines, events and result, the
    same on every engine. A subclass runs the engine (``_steps``) and answers its calls
    (``_answer``)."""

    def __init__(
        self,
        context: EngineContext,
        program: Program,
        limits: Limits,
        on_event: EventCallback | None,
        tool_call_id: str | None,
    ) -> None:
        self.bindings = context._bindings
        self.names = context._names
        self.prechecks = context._prechecks
        self.call_ids = context._call_ids
        self.inline_slice = context._inline_slice
        self.program = program
        self.limits = limits
        self.on_event = on_event
        self.on_report: ReportCallback | None = None
        self.library: str | None = None
        self.library_checks: tuple[str, ...] | None = None
        self.tool_call_id = tool_call_id
        self.events: list[Event] = []
        logs = RUN_LOGS.get()
        self.logs: list[str] = logs if logs is not None else []
        self.wakeup: anyio.Event | None = None
        self.running = 0
        self.queued: deque[tuple[int, ToolBinding, Any]] = deque()
        self.tasks: set[asyncio.Task[None]] = set()
        self.task_group: anyio.abc.TaskGroup | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.calls = 0
        self.started = 0.0
        self.finished = False

    async def run(self) -> ExecutionResult:
        self.started = time.perf_counter()
        self.emit("code_mode:execution_started", started_value(len(self.program.source)))
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None
        if self.loop is not None:
            return await self._steps()
        async with anyio.create_task_group() as tg:
            self.task_group = tg
            result = await self._steps()
            tg.cancel_scope.cancel()
        return result

    async def _steps(self) -> ExecutionResult:
        """Run the program to its result (the engine's own loop)."""
        raise NotImplementedError

    def _answer(self, call_id: int, outcome: int, json: bytes) -> None:
        """Send or keep a call's answer (JSON: the result, or the error message)."""
        raise NotImplementedError

    async def _report_cancelled(self) -> None:
        """The ``execution_finished`` event of a cancelled execution, delivered even though
        the awaiting task is being cancelled."""
        self.emit(
            "code_mode:execution_finished",
            finished_value(False, self._elapsed_ms(), error={"kind": "cancelled"}, log_count=len(self.logs)),
        )
        with anyio.CancelScope(shield=True):
            await self._flush_events(swallow=True)

    # -- tool calls ----------------------------------------------------------------------

    def _start_many(self, ids: list[int], tools: list[int], arguments: list[Any], checked: bytes) -> None:
        """Start a step's calls. The same steps as :meth:`_start_parsed_call`, with the
        common case (asyncio, no events, an async handler that answers at once, room under
        the concurrency cap) taken inline: a thousand calls at once spend most of their time
        here."""
        loop = self.loop
        if loop is None or self.on_event is not None:
            for call_id, tool, args, valid in zip(ids, tools, arguments, checked, strict=True):
                self._start_parsed_call(call_id, tool, args, valid)
            return
        with outside_current_task(loop):
            self._start_inline(loop, ids, tools, arguments, checked)
        if self.wakeup is not None:
            self.wakeup.set()

    def _start_inline(
        self,
        loop: asyncio.AbstractEventLoop,
        ids: list[int],
        tools: list[int],
        arguments: list[Any],
        checked: bytes,
    ) -> None:
        """The loop of :meth:`_start_many`, run with no task current on ``loop``."""
        bindings = self.bindings
        cap = self.limits.max_concurrent_tool_calls
        answer = self._answer
        for call_id, tool, args, valid in zip(ids, tools, arguments, checked, strict=True):
            binding = bindings[tool]
            if not binding.is_async or self.running >= cap:
                self._start_parsed_call(call_id, tool, args, valid)
                continue
            self.calls += 1
            try:
                if not valid:
                    args = binding.validate(args)
                elif binding._defaults:
                    args = binding.fill_defaults(args)
            except InvalidArgumentsError as e:
                self._settle(call_id, binding, 0.0, error=(SETTLE_INVALID, str(e)), launched=False)
                continue
            self.running += 1
            token = CALL_ID.set(call_id) if self.call_ids else None
            try:
                done, outcome = first_step(loop, binding.handler(args))  # type: ignore[arg-type]
            except _PROPAGATE:
                raise
            except BaseException as e:
                self._settle(call_id, binding, 0.0, error=_tool_error(e))
                continue
            finally:
                if token is not None:
                    CALL_ID.reset(token)
            if not done:
                self._track(outcome, functools.partial(self._task_done, call_id, binding, 0.0))
                continue
            try:
                json = orjson.dumps(
                    binding.check_output(outcome), default=_json_default, option=_JSON_OPTIONS
                )
            except Exception:
                self._settle(call_id, binding, 0.0, result=outcome)  # checks again, reports why
                continue
            self.running -= 1
            answer(call_id, SETTLE_OK, json)

    def _start_parsed_call(self, call_id: int, tool_index: int, args: Any, checked: int = 0) -> None:
        """Validate a call's arguments (unless the engine ``checked`` them), then run it, or
        queue it past the concurrency cap."""
        binding = self.bindings[tool_index]
        self.calls += 1
        if self.on_event is not None:
            # The event keeps what the program sent, whatever the handler does to its input.
            sent = orjson.loads(orjson.dumps(args))
            self.emit(
                "code_mode:external_call", {"callId": call_id, "function": binding.sandbox_name, "args": sent}
            )
        try:
            if not checked:
                args = binding.validate(args)
            elif binding._defaults:
                args = binding.fill_defaults(args)
        except InvalidArgumentsError as e:
            error = (SETTLE_INVALID, str(e))
            self._settle(call_id, binding, time.perf_counter(), error=error, launched=False)
            return
        if self.running >= self.limits.max_concurrent_tool_calls:
            self.queued.append((call_id, binding, args))
            return
        self._launch(call_id, binding, args)

    def _launch(self, call_id: int, binding: ToolBinding, args: Any) -> None:
        self.running += 1
        # Only events report durations.
        started = 0.0 if self.on_event is None else time.perf_counter()
        if self.loop is None or not binding.is_async:
            coro = self._call(call_id, binding, args, started)
            if self.loop is None:
                assert self.task_group is not None
                self.task_group.start_soon(_await, coro)
            else:
                self._track(start_eagerly(self.loop, coro)[1])
            return
        # asyncio and an async handler: its first step runs now, usually to the end.
        token = CALL_ID.set(call_id) if self.call_ids else None
        try:
            done, outcome = start_eagerly(self.loop, cast("Coroutine[Any, Any, Any]", binding.handler(args)))
        except _PROPAGATE:
            raise
        except BaseException as e:
            self._settle(call_id, binding, started, error=_tool_error(e))
            return
        finally:
            if token is not None:
                CALL_ID.reset(token)
        if done:
            self._settle(call_id, binding, started, result=outcome)
        else:
            self._track(outcome, functools.partial(self._task_done, call_id, binding, started))

    def _track(self, task: asyncio.Task[Any] | None, on_done: Any = None) -> None:
        if task is None:
            return
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        if on_done is not None:
            task.add_done_callback(on_done)

    def _task_done(self, call_id: int, binding: ToolBinding, started: float, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            # Cancelled by the run as it ended, or by the handler itself (a tool error).
            if not self.finished:
                self._settle(call_id, binding, started, error=(SETTLE_TOOL_ERROR, say("tool_cancelled")))
            return
        error = task.exception()
        if error is None:
            self._settle(call_id, binding, started, result=task.result())
        elif not isinstance(error, _PROPAGATE):
            self._settle(call_id, binding, started, error=_tool_error(error))

    async def _call(self, call_id: int, binding: ToolBinding, args: Any, started: float) -> None:
        if self.call_ids:
            CALL_ID.set(call_id)  # this task's own context
        try:
            if binding.is_async:
                result = await binding.handler(args)
            else:
                result = await anyio.to_thread.run_sync(binding.handler, args)
                if inspect.isawaitable(result):
                    result = await result
        except _PROPAGATE:
            raise
        except BaseException as e:
            # A cancellation of the run itself goes on (on trio, every Cancelled is one); any
            # other exception, CancelledError or GeneratorExit of the handler's own included,
            # is the tool's failure, and the call settles.
            if isinstance(e, anyio.get_cancelled_exc_class()) and (self.finished or self.loop is None):
                raise
            self._settle(call_id, binding, started, error=_tool_error(e))
        else:
            self._settle(call_id, binding, started, result=result)

    def _settle(
        self,
        call_id: int,
        binding: ToolBinding,
        started: float,
        *,
        result: Any = None,
        error: tuple[int, str] | None = None,
        launched: bool = True,
    ) -> None:
        if error is None:
            try:
                result = binding.check_output(result)
                self._answer(
                    call_id, SETTLE_OK, orjson.dumps(result, default=_json_default, option=_JSON_OPTIONS)
                )
            except TypeError as e:
                error = (SETTLE_TOOL_ERROR, f"{binding.sandbox_name} returned a value that is not JSON: {e}")
            except Exception as e:
                error = (SETTLE_TOOL_ERROR, f"{binding.sandbox_name} returned an invalid result: {e}")
        if error is not None:
            self._answer(call_id, error[0], orjson.dumps(error[1]))
        if self.on_event is not None:
            duration_ms = (time.perf_counter() - started) * 1000
            call = {"callId": call_id, "function": binding.sandbox_name}
            if error is None:
                self.emit("code_mode:external_result", settled_value(call, duration_ms, result=result))
            else:
                self.emit("code_mode:external_error", settled_value(call, duration_ms, error=error[1]))
        if self.wakeup is not None:
            self.wakeup.set()
        if launched:
            self.running -= 1
            if self.queued and self.running < self.limits.max_concurrent_tool_calls:
                self._launch(*self.queued.popleft())

    # -- results, logs and events --------------------------------------------------------

    def _record_logs(self, logs: list[tuple[str, str, float, int]]) -> None:
        for level, text, timestamp, _ in logs:
            if level == "report":
                if self.on_report is not None:
                    event = self.on_report(text)
                    if event is not None and self.on_event is not None:
                        self.events.append(event)
                continue
            self.logs.append(text)
            if self.on_event is not None:
                value = console_value(level, text, timestamp)
                value["toolCallId"] = self.tool_call_id
                self.events.append(Event("code_mode:console", value))

    def _finish(self, status: int, payload: Any) -> ExecutionResult:
        duration_ms = self._elapsed_ms()
        if status == _core.DONE_OK:
            result = ExecutionResult.model_construct(
                success=True,
                result=orjson.loads(payload),
                error=None,
                logs=self.logs,
                duration_ms=duration_ms,
                tool_calls=self.calls,
            )
        else:
            result = ExecutionResult.model_construct(
                success=False,
                result=None,
                error=self._error(payload),
                logs=self.logs,
                duration_ms=duration_ms,
                tool_calls=self.calls,
            )
        if self.on_event is not None:
            error = result.error.model_dump(exclude_none=True) if result.error is not None else None
            value = finished_value(result.success, duration_ms, error=error, log_count=len(self.logs))
            self.emit("code_mode:execution_finished", value)
        return result

    def _error(self, payload: tuple[str, str, str, list[tuple[str, int, int]]]) -> ExecutionError:
        kind, name, message, raw_frames = payload
        # Messages that give a limit are worded here, where the limits are known exactly.
        if kind == "timeout":
            message = say("timeout", ms=f"{self.limits.timeout * 1000:g}")
        elif kind == "memory" and not _is_stack_overflow(name, message):
            name, message = "MemoryError", say("memory", mib=f"{round(self.limits.memory_limit_mb, 2):g}")
        program = self.program
        frames = [
            Frame.model_construct(file=PROGRAM_FILE, function=function, line=ln, column=col)
            for function, ln, col in (
                (function, *program.original_position(line, column)) for function, line, column in raw_frames
            )
        ]
        line = column = frame = stack = None
        if frames:
            line, column = frames[0].line, frames[0].column
            frame = _core.code_frame(program.source, line, column)
        if frames or kind in ("runtime", "tool", "invalid_args", "memory"):
            stack = format_stack(name, message, frames)
        return ExecutionError.model_construct(
            kind=cast(ErrorKind, kind),
            name=name,
            message=message,
            line=line,
            column=column,
            frame=frame,
            stack=stack,
            frames=frames,
        )

    def _elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def emit(self, name: EventName, value: dict[str, Any]) -> None:
        if self.on_event is None:
            return
        value["toolCallId"] = self.tool_call_id
        value.setdefault("timestamp", now_ms())
        self.events.append(Event(name, value))

    async def _flush_events(self, *, swallow: bool = False) -> None:
        if self.on_event is None:
            self.events.clear()
            return
        events, self.events = self.events, []
        for event in events:
            try:
                await emit(self.on_event, event)
            except Exception:
                if not swallow:
                    raise


def say(key: str, **values: object) -> str:
    """A message of the sandbox's own errors, from the one table of every engine
    (``_core.MESSAGES``), with each ``{name}`` replaced by its value."""
    message = _core.MESSAGES[key]
    for name, value in values.items():
        message = message.replace("{" + name + "}", str(value))
    return message


def _is_stack_overflow(name: str, message: str) -> bool:
    """The engine's own stack limit (a ``memory`` error that keeps its name and message)."""
    overflow = "stack overflow" in message or "call stack size" in message
    return overflow and name in ("RangeError", "InternalError")


_PROPAGATE = (SystemExit, KeyboardInterrupt)
"""What a tool handler raises that is not its failure but the process's: it goes on up."""


def _tool_error(error: BaseException) -> tuple[int, str]:
    """How a handler's exception reaches the program: an InvalidArgumentsError for
    :class:`InvalidArgumentsError`, else a ToolError, with the exception's message."""
    kind = SETTLE_INVALID if isinstance(error, InvalidArgumentsError) else SETTLE_TOOL_ERROR
    return kind, str(error) or type(error).__name__


async def _await(awaitable: Awaitable[None]) -> None:
    await awaitable
