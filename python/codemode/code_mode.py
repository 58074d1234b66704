"""The entry point: tools in, one ``execute_typescript`` capability out."""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import anyio
from typing_extensions import Unpack

from . import _core
from .drivers import IsolateContext, IsolateDriver, Program, program_text
from .errors import TypeScriptSyntaxError
from .events import Event, EventCallback, emit, now_ms
from .execute_tool import ModelTool, discovery_tool, execute_typescript_tool
from .limits import LimitOverrides, Limits
from .prompt import compact_system_prompt, system_prompt
from .results import ExecutionError, ExecutionResult
from .tools import ToolBinding, index_tools

if TYPE_CHECKING:
    from .approvals import Approvals, Decision, ExecutionStore


_FENCED = re.compile(r"\A\s*```[A-Za-z0-9_+-]*[ \t]*\n(.*)\n[ \t]*```[ \t]*\s*\Z", re.DOTALL)


def unfence(code: str) -> str:
    """The program inside a markdown code fence (```ts ... ```), as models sometimes send it;
    other code as it is. The fence lines become empty lines, so line numbers stay those of
    the text the model wrote."""
    match = _FENCED.match(code)
    if match is None:
        return code
    leading = code[: match.start(1)].count("\n")
    return "\n" * leading + match.group(1) + "\n"


def compile_typescript(typescript: str) -> Program:
    """Strip the types of a program body; raises :class:`codemode.TypeScriptSyntaxError`."""
    typescript = program_text(typescript)
    try:
        stripped = _core.strip_types(typescript)
    except _core.TypeScriptSyntaxError as e:
        raise TypeScriptSyntaxError(*e.args) from None
    return Program(stripped.javascript, typescript, None if stripped.positions_preserved else stripped)


class CodeMode:
    """Runs model-written TypeScript against a set of tools, each time in a fresh sandbox."""

    def __init__(
        self,
        tools: Sequence[ToolBinding],
        driver: IsolateDriver,
        limits: Limits,
        *,
        prompt: Literal["full", "compact"] = "full",
        approvals: Approvals | None = None,
        tracer: Any | None = None,
    ) -> None:
        self.tools: dict[str, ToolBinding] = index_tools(tools)
        self.driver = driver
        self.limits = limits
        self.prompt_mode = prompt
        self.approvals = approvals
        """How runs pause and resume (set when a tool needs approval, or a store is given)."""
        self.tracer = tracer
        """The OpenTelemetry tracer of the executions' spans (``None``: tracing off)."""
        self._context: IsolateContext | None = None

    @functools.cached_property
    def declarations(self) -> str:
        """TypeScript declarations of every tool (for the prompt, editors and type checks)."""
        from .declarations import render_declarations

        return render_declarations(list(self.tools.values()))

    def declarations_for(self, names: Sequence[str]) -> str:
        """Declarations of some tools only (by tool name)."""
        from .declarations import render_declarations

        return render_declarations([self.tools[n] for n in names if n in self.tools])

    @functools.cached_property
    def system_prompt(self) -> str:
        """Instructions and declarations for the model; the same tools give the same text."""
        if self.prompt_mode == "compact":
            return compact_system_prompt(list(self.tools.values()), self.limits)
        return system_prompt(self.declarations, self.limits)

    @functools.cached_property
    def tool(self) -> ModelTool:
        """The ``execute_typescript`` tool: name, description, input JSON Schema and ``call``."""
        return execute_typescript_tool(self.execute)

    @functools.cached_property
    def model_tools(self) -> list[ModelTool]:
        """Every tool to give the model: ``execute_typescript``, plus ``get_tool_declarations``
        when the prompt is compact."""
        if self.prompt_mode == "compact":
            return [self.tool, discovery_tool(self.declarations_for, list(self.tools))]
        return [self.tool]

    async def _get_context(self) -> IsolateContext:
        if self._context is None:
            self._context = await self.driver.create_context(bindings=self.tools, limits=self.limits)
        return self._context

    async def execute(
        self,
        code: str,
        *,
        tool_call_id: str | None = None,
        on_event: EventCallback | None = None,
        **limit_overrides: Unpack[LimitOverrides],
    ) -> ExecutionResult:
        """Run a TypeScript program body (top-level ``await``/``return``) and return its result.

        ``limit_overrides`` (``timeout=``, ``memory_limit_mb=``, ... see :class:`Limits`)
        apply to this execution only. Code wrapped in a markdown fence runs as the code inside
        (:func:`unfence`).
        """
        if limit_overrides:
            self.limits.with_overrides(**limit_overrides)  # a misspelt or invalid limit raises here
        code = unfence(code)
        if self.tracer is not None:
            from .tracing import traced_execution

            run = functools.partial(self._execute, code, tool_call_id, on_event, limit_overrides)
            return await traced_execution(self.tracer, "codemode.execution", tool_call_id, run)
        return await self._execute(code, tool_call_id, on_event, limit_overrides)

    async def _execute(
        self,
        code: str,
        tool_call_id: str | None,
        on_event: EventCallback | None,
        limit_overrides: LimitOverrides,
    ) -> ExecutionResult:
        if self.approvals is not None:
            return await self.approvals.execute(
                self, code, tool_call_id=tool_call_id, on_event=on_event, limit_overrides=limit_overrides
            )
        started = time.perf_counter()
        try:
            program = compile_typescript(code)
        except TypeScriptSyntaxError as e:
            return await _syntax_failure(e, started, tool_call_id, on_event, len(code))
        return await self.execute_program(
            program, tool_call_id=tool_call_id, on_event=on_event, **limit_overrides
        )

    async def execute_program(
        self,
        program: Program,
        *,
        tool_call_id: str | None = None,
        on_event: EventCallback | None = None,
        on_report: Callable[[str], Event | None] | None = None,
        library: str | None = None,
        library_checks: Sequence[str] | None = None,
        **limit_overrides: Unpack[LimitOverrides],
    ) -> ExecutionResult:
        """Run a compiled program in a fresh sandbox (``execute`` compiles, then calls this).
        ``on_report`` opens the report channel and ``library`` is a host library the program
        gets instead of it, checking values against the JSON Schemas ``library_checks`` (see
        :meth:`IsolateContext.execute`); skills run this way."""
        context = await self._get_context()
        # Only given when there are some: a driver written before them still runs the rest.
        checks: dict[str, Any] = {} if library_checks is None else {"library_checks": library_checks}
        return await context.execute(
            program,
            on_event=on_event,
            tool_call_id=tool_call_id,
            limits=self.limits.with_overrides(**limit_overrides) if limit_overrides else None,
            on_report=on_report,
            library=library,
            **checks,
        )

    async def resume(
        self,
        token: str,
        decisions: Mapping[int | str, Decision],
        *,
        on_event: EventCallback | None = None,
    ) -> ExecutionResult:
        """Continue a paused execution (``result.paused.token``) with a decision on each of
        its pending calls, keyed by ``call_id``: :func:`codemode.approve`,
        :func:`codemode.reject` (the program's ``await`` rejects with a ``ToolError`` it can
        catch) or :func:`codemode.override` (the call answers with a value). The program is
        replayed from its log; it may pause again. Raises
        :class:`codemode.InvalidResumeToken` for a forged, altered or expired token and
        :class:`codemode.ResumeError` for a run that is unknown, already resumed, or whose
        pending calls the decisions do not match.
        """
        if self.approvals is None:
            raise ValueError("this code mode has no tool that needs approval, and no execution store")
        resume = functools.partial(self.approvals.resume, self, token, decisions, on_event=on_event)
        if self.tracer is not None:
            from .tracing import traced_execution

            return await traced_execution(self.tracer, "codemode.resume", None, resume)
        return await resume()

    async def stream(
        self, code: str, *, tool_call_id: str | None = None, **limit_overrides: Unpack[LimitOverrides]
    ) -> AsyncIterator[Event | ExecutionResult]:
        """Run ``code`` and yield its live events as they happen, then the result."""
        send, receive = anyio.create_memory_object_stream[Event | ExecutionResult](math.inf)

        async def run() -> None:
            async with send:
                result = await self.execute(
                    code, tool_call_id=tool_call_id, on_event=send.send_nowait, **limit_overrides
                )
                send.send_nowait(result)

        async with anyio.create_task_group() as tg, receive:
            tg.start_soon(run)
            async for item in receive:
                yield item

    def execute_sync(
        self,
        code: str,
        *,
        tool_call_id: str | None = None,
        on_event: EventCallback | None = None,
        **limit_overrides: Unpack[LimitOverrides],
    ) -> ExecutionResult:
        """Blocking convenience for scripts (runs its own event loop); prefer ``execute``."""
        run = functools.partial(self.execute, code, tool_call_id=tool_call_id, on_event=on_event)
        return anyio.run(functools.partial(run, **limit_overrides))

    async def aclose(self) -> None:
        """Dispose the underlying context (idempotent)."""
        if self._context is not None:
            await self._context.dispose()


async def _syntax_failure(
    e: TypeScriptSyntaxError,
    started: float,
    tool_call_id: str | None,
    on_event: EventCallback | None,
    code_length: int = 0,
) -> ExecutionResult:
    message, line, column, frame = e.message, e.line, e.column, e.frame
    duration_ms = (time.perf_counter() - started) * 1000
    error = ExecutionError(
        kind="syntax", name="SyntaxError", message=message, line=line, column=column, frame=frame
    )
    if on_event is not None:
        from .events import finished_value, started_value

        stamp = {"toolCallId": tool_call_id}
        finished = finished_value(
            False, duration_ms, error=error.model_dump(exclude_none=True), phase="transpile"
        )
        for event in (
            Event(
                "code_mode:execution_started", {**stamp, "timestamp": now_ms(), **started_value(code_length)}
            ),
            Event("code_mode:execution_finished", {**stamp, "timestamp": now_ms(), **finished}),
        ):
            await emit(on_event, event)
    return ExecutionResult(success=False, error=error, duration_ms=duration_ms)


def create_code_mode(
    tools: Sequence[ToolBinding],
    *,
    driver: IsolateDriver | None = None,
    limits: Limits | None = None,
    prompt: Literal["full", "compact"] = "full",
    execution_store: ExecutionStore | None = None,
    approval_key: bytes | str | None = None,
    token_ttl: float = 24 * 3600.0,
    tracer_provider: Any | None = None,
    record_runs: bool = False,
    **limit_overrides: Unpack[LimitOverrides],
) -> CodeMode:
    """Build a code mode over ``tools`` (default driver: :class:`codemode.QuickJSDriver`).

    Limits: ``limits`` (default ``Limits()``), with any of its fields changed by keyword
    (``timeout=5``, ``memory_limit_mb=64``, ...: :class:`codemode.LimitOverrides`).

    ``prompt="compact"`` keeps only names and one-line descriptions in the system prompt and
    adds a discovery tool returning declarations on demand (for large tool sets).

    Approvals: when a tool ``requires_approval`` (or an ``execution_store`` is given), an
    execution that calls it pauses (``result.paused``) and :meth:`CodeMode.resume` continues
    it. Paused runs are kept in ``execution_store`` (default: in memory, this process only;
    :class:`codemode.approvals.SQLiteExecutionStore` or ``PostgresExecutionStore`` to resume
    in another process) and their tokens signed with ``approval_key`` (default
    ``$CODEMODE_APPROVAL_KEY``, else a key of this process), valid ``token_ttl`` seconds.
    ``record_runs`` keeps every finished run in the store too (the execution log: program,
    tool calls with arguments, results and durations, result; ``codemode runs``).

    Tracing: with ``tracer_provider`` (an OpenTelemetry ``TracerProvider``), or when the
    application set a global one before this call, each execution is a span and each tool
    call a child span (see :mod:`codemode.tracing`).
    """
    if driver is None:
        from .quickjs import QuickJSDriver

        driver = QuickJSDriver()
    approvals = None
    if record_runs or execution_store is not None or any(tool.requires_approval for tool in tools):
        from .approvals import Approvals, MemoryExecutionStore, intercepted, signing_key

        tools = [intercepted(tool) for tool in tools]
        store = execution_store if execution_store is not None else MemoryExecutionStore()
        approvals = Approvals(store, signing_key(approval_key), token_ttl, record_all=record_runs)
    from .tracing import traced, tracer_for

    tracer = tracer_for(tracer_provider)
    if tracer is not None:
        tools = [traced(tool, tracer) for tool in tools]
    return CodeMode(
        tools,
        driver,
        (limits or Limits()).with_overrides(**limit_overrides),
        prompt=prompt,
        approvals=approvals,
        tracer=tracer,
    )
