"""OpenTelemetry spans: one per execution, a child per tool call (with ``toolCallId`` and the
call's ``callId``) and per skill call, made with ``opentelemetry-api`` only, so whatever SDK
the application set up (Logfire, Jaeger, an OTLP exporter...) receives them.

Tracing is on for a code mode made with a ``tracer_provider``, or when the application set a
global tracer provider before :func:`codemode.create_code_mode`; otherwise nothing is wrapped
and an execution costs what it did. A tool call's span is current while its handler runs, so
the spans the tool makes itself (an HTTP client's, a database's) are its children.
"""

from __future__ import annotations

import contextvars
import dataclasses
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from .engine import CALL_ID
from .results import ExecutionResult
from .tools import ToolBinding

try:
    from opentelemetry import trace
    from opentelemetry.context import attach, detach
    from opentelemetry.trace import Span, Status, StatusCode, Tracer, TracerProvider, set_span_in_context
except ImportError:  # pragma: no cover - opentelemetry-api is installed with the usual extras
    trace = None  # type: ignore[assignment]

INSTRUMENTATION = "codemode"
_execution: contextvars.ContextVar[Any] = contextvars.ContextVar("codemode_execution_span", default=None)


def tracer_for(provider: Any | None) -> Tracer | None:
    """The tracer of ``provider``, else of the global provider if the application set one;
    ``None`` (tracing off) without opentelemetry or a provider."""
    if trace is None:
        return None
    if provider is None:
        provider = trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
            return None
    return provider.get_tracer(INSTRUMENTATION)


def traced(binding: ToolBinding, tracer: Tracer) -> ToolBinding:
    """``binding`` with a span around each call made during a traced execution."""
    handler = binding.handler
    is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        type(handler).__dict__.get("__call__")
    )
    name = f"codemode.tool_call {binding.sandbox_name}"

    async def run(args: Any) -> Any:
        execution = _execution.get()
        if execution is None or not execution[0].is_recording():  # not traced, or sampled out
            return await handler(args) if is_async else await anyio.to_thread.run_sync(handler, args)
        attributes = {
            "codemode.tool": binding.name,
            "codemode.call_id": CALL_ID.get(),
            "codemode.tool_call_id": execution[1] or "",
        }
        # start_as_current_span without its generator-based context manager (a call's cost)
        span = tracer.start_span(name, attributes=attributes, record_exception=False)
        token = attach(set_span_in_context(span))
        try:
            if is_async:
                return await handler(args)
            return await anyio.to_thread.run_sync(handler, args)
        except BaseException as e:
            if not isinstance(e, anyio.get_cancelled_exc_class()):
                span.record_exception(e)
                span.set_status(Status(StatusCode.ERROR, str(e) or type(e).__name__))
            raise
        finally:
            detach(token)
            span.end()

    run.wants_call_id = True  # type: ignore[attr-defined]  # see engine.CALL_ID
    return dataclasses.replace(binding, handler=run)


async def traced_execution(
    tracer: Tracer,
    name: str,
    tool_call_id: str | None,
    run: Callable[[], Awaitable[ExecutionResult]],
) -> ExecutionResult:
    """Run ``run`` (an execution, or a resume) in a span that records its outcome."""
    attributes = {"codemode.tool_call_id": tool_call_id or ""}
    with tracer.start_as_current_span(name, attributes=attributes, record_exception=False) as span:
        token = _execution.set((span, tool_call_id))
        try:
            result = await run()
        except BaseException as e:
            span.set_status(Status(StatusCode.ERROR, type(e).__name__))
            raise
        finally:
            _execution.reset(token)
        _record(span, result)
        return result


class SkillSpans:
    """The spans of one traced execution's skill calls: children of the execution's span
    (siblings of its tool calls' spans), started and ended as the skills runtime reports them."""

    def __init__(self, tracer: Tracer, tool_call_id: str | None) -> None:
        self.tracer = tracer
        self.tool_call_id = tool_call_id or ""
        self.open: dict[int, Span] = {}

    def start(self, skill: str, call: int) -> None:
        attributes: dict[str, str | int] = {
            "codemode.skill": skill,
            "codemode.skill_call": call,
            "codemode.tool_call_id": self.tool_call_id,
        }
        self.open[call] = self.tracer.start_span(f"codemode.skill_call skill_{skill}", attributes=attributes)

    def end(self, call: int, error: str | None = None) -> None:
        span = self.open.pop(call, None)
        if span is None:
            return
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end()

    def cut_off(self, why: str, *, error: bool = True) -> None:
        """End the spans of the calls still running when the execution ended."""
        for call in list(self.open):
            if not error:
                self.open[call].set_attribute("codemode.interrupted", why)
            self.end(call, f"cut off while running ({why})" if error else None)


def skill_spans(tracer: Tracer | None, tool_call_id: str | None) -> SkillSpans | None:
    """Spans for the skill calls of the current execution, when it is traced and sampled."""
    if tracer is None:
        return None
    execution = _execution.get()
    if execution is None or not execution[0].is_recording():
        return None
    return SkillSpans(tracer, tool_call_id)


def _record(span: Span, result: ExecutionResult) -> None:
    span.set_attribute("codemode.success", result.success)
    span.set_attribute("codemode.tool_calls", result.tool_calls)
    span.set_attribute("codemode.duration_ms", result.duration_ms)
    if result.paused is not None:
        span.set_attribute("codemode.paused", True)
        span.set_attribute("codemode.run_id", result.paused.run_id)
        span.set_attribute("codemode.pending", [call.call_id for call in result.paused.pending])
    elif result.error is not None:
        span.set_attribute("codemode.error.kind", result.error.kind)
        span.set_status(Status(StatusCode.ERROR, f"{result.error.name}: {result.error.message}"))


__all__ = ["SkillSpans", "TracerProvider", "skill_spans", "traced", "traced_execution", "tracer_for"]
