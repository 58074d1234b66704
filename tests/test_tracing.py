"""OpenTelemetry spans of executions and tool calls, read back from the SDK's in-memory
exporter, on every engine."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import codemode

from .approvals import shop

pytestmark = pytest.mark.anyio


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def make_lookup(provider: TracerProvider | None = None) -> codemode.Tool:
    """A tool that makes a span of its own (with ``provider``'s tracer): a child of its call's."""
    tracer = (provider or trace.get_tracer_provider()).get_tracer("app")

    async def lookup(args: dict[str, Any]) -> dict[str, Any]:
        with tracer.start_as_current_span("database query"):
            if args["id"] == "missing":
                raise LookupError("no such record")
            return {"id": args["id"], "found": True}

    schema = {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}
    return codemode.Tool.from_schema("lookup", "Find a record", schema, None, lookup)


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


async def test_an_execution_and_each_tool_call_are_spans(
    driver: codemode.drivers.IsolateDriver, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    cm = codemode.create_code_mode([make_lookup(provider)], driver=driver, tracer_provider=provider)
    code = """
    const [a, b] = await Promise.all([external_lookup({ id: "a" }), external_lookup({ id: "b" })])
    try { await external_lookup({ id: "missing" }) } catch (e) {}
    return [a.found, b.found]
    """
    result = await cm.execute(code, tool_call_id="call_7")
    assert result.success and result.result == [True, True]
    spans = exporter.get_finished_spans()
    (execution,) = by_name(spans, "codemode.execution")
    assert execution.attributes is not None
    assert execution.attributes["codemode.tool_call_id"] == "call_7"
    assert (
        execution.attributes["codemode.success"] is True and execution.attributes["codemode.tool_calls"] == 3
    )
    calls = by_name(spans, "codemode.tool_call external_lookup")
    assert sorted(call.attributes["codemode.call_id"] for call in calls) == [1, 2, 3]  # type: ignore[index]
    assert all(call.parent is not None and call.parent.span_id == execution.context.span_id for call in calls)
    assert all(call.attributes["codemode.tool_call_id"] == "call_7" for call in calls)  # type: ignore[index]
    (failed,) = [call for call in calls if call.status.status_code == StatusCode.ERROR]
    assert failed.attributes["codemode.call_id"] == 3  # type: ignore[index]
    assert "no such record" in str(failed.status.description) and failed.events[0].name == "exception"
    queries = by_name(spans, "database query")
    assert {query.parent.span_id for query in queries} == {call.context.span_id for call in calls}  # type: ignore[union-attr]


async def test_a_failed_program_is_an_error_span(
    driver: codemode.drivers.IsolateDriver, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    cm = codemode.create_code_mode([make_lookup(provider)], driver=driver, tracer_provider=provider)
    result = await cm.execute("throw new TypeError('bad input')")
    assert not result.success
    (execution,) = by_name(exporter.get_finished_spans(), "codemode.execution")
    assert execution.status.status_code == StatusCode.ERROR
    assert execution.status.description == "TypeError: bad input"
    assert execution.attributes["codemode.error.kind"] == "runtime"  # type: ignore[index]


async def test_a_pause_and_its_resume_are_spans(
    driver: codemode.drivers.IsolateDriver, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    shop.REFUNDED.clear()
    cm = codemode.create_code_mode(shop.TOOLS, driver=driver, approval_key=shop.KEY, tracer_provider=provider)
    paused = await cm.execute(shop.REFUND_ALL)
    assert paused.paused is not None
    await cm.resume(paused.paused.token, {5: codemode.approve(), 6: codemode.approve()})
    spans = exporter.get_finished_spans()
    (execution,) = by_name(spans, "codemode.execution")
    (resume,) = by_name(spans, "codemode.resume")
    assert execution.attributes["codemode.paused"] is True  # type: ignore[index]
    assert list(execution.attributes["codemode.pending"]) == [5, 6]  # type: ignore[index]
    assert resume.attributes["codemode.success"] is True  # type: ignore[index]
    refunds = by_name(spans, "codemode.tool_call external_refund")
    assert [span.parent.span_id for span in refunds].count(resume.context.span_id) >= 2  # type: ignore[union-attr]


async def test_without_a_tracer_provider_nothing_is_traced(
    driver: codemode.drivers.IsolateDriver, exporter: InMemorySpanExporter
) -> None:
    tool = make_lookup()
    cm = codemode.create_code_mode([tool], driver=driver)
    assert cm.tracer is None  # no global provider is set in the tests
    assert cm.tools["lookup"].handler is tool.handler  # nothing wrapped
    assert (await cm.execute("return (await external_lookup({ id: 'a' })).found")).result is True
    assert exporter.get_finished_spans() == ()


async def test_a_program_with_skills_has_a_span_per_skill_call(
    driver: codemode.drivers.IsolateDriver, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A program run with skills is an execution span too; each skill call is a child span
    (the tool calls its code makes are the execution's children as well), failures marked."""
    from codemode.skills import Skill, SkillRuntime

    cm = codemode.create_code_mode([make_lookup(provider)], driver=driver, tracer_provider=provider)
    found = Skill(
        name="found",
        description="Whether a record exists",
        code="return (await external_lookup({ id: input.id })).found",
    )
    runtime = SkillRuntime(cm, [found])
    code = """
    const both = await Promise.all([skill_found({ id: "a" }), skill_found({ id: "b" })])
    try { await skill_found({ id: "missing" }) } catch (e) {}
    return both
    """
    result = await runtime.execute(code, tool_call_id="call_9")
    assert result.success and result.result == [True, True]
    spans = exporter.get_finished_spans()
    (execution,) = by_name(spans, "codemode.execution")
    skills = by_name(spans, "codemode.skill_call skill_found")
    assert sorted(span.attributes["codemode.skill_call"] for span in skills) == [1, 2, 3]  # type: ignore[index]
    assert all(
        span.parent is not None and span.parent.span_id == execution.context.span_id for span in skills
    )
    assert all(span.attributes["codemode.tool_call_id"] == "call_9" for span in skills)  # type: ignore[index]
    (failed,) = [span for span in skills if span.status.status_code == StatusCode.ERROR]
    assert failed.attributes["codemode.skill_call"] == 3  # type: ignore[index]
    assert len(by_name(spans, "codemode.tool_call external_lookup")) == 3
