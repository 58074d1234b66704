"""The OpenAI Agents SDK integration, through the real ``Runner`` with a scripted model."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

agents = pytest.importorskip("agents")

import anyio  # noqa: E402
from agents import (  # noqa: E402
    Agent,
    FunctionTool,
    ModelResponse,
    RunContextWrapper,
    Runner,
    ToolCallOutputItem,
    Usage,
    WebSearchTool,
    function_tool,
)
from agents.models.interface import Model, ModelTracing  # noqa: E402
from agents.tool_context import ToolContext  # noqa: E402
from openai.types.responses import (  # noqa: E402
    Response,
    ResponseCompletedEvent,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)
from pydantic import BaseModel  # noqa: E402

import codemode  # noqa: E402
from codemode.integrations.openai_agents import (  # noqa: E402
    as_function_tool,
    as_function_tools,
    codemode_instructions,
    from_function_tool,
    from_function_tools,
)

from ..conftest import make_tools  # noqa: E402

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_tracing() -> None:
    agents.set_tracing_disabled(True)


# -- a scripted model: the SDK's Model interface, answering from a list of steps ------------

Step = Callable[[list[dict[str, Any]]], list[Any]]
"""Gets the input items of the model call; returns the output items of the response."""


@dataclass
class ModelCall:
    instructions: str | None
    input: list[dict[str, Any]]
    tools: list[Any]


@dataclass
class ScriptedModel(Model):
    steps: list[Step]
    calls: list[ModelCall] = field(default_factory=list)

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[Any],
        model_settings: Any,
        tools: list[Any],
        output_schema: Any,
        handoffs: list[Any],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: Any,
    ) -> ModelResponse:
        items = [{"role": "user", "content": input}] if isinstance(input, str) else [_plain(i) for i in input]
        self.calls.append(ModelCall(system_instructions, items, list(tools)))
        output = self.steps.pop(0)(items)
        return ModelResponse(output=output, usage=Usage(), response_id=None)

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[Any],
        model_settings: Any,
        tools: list[Any],
        output_schema: Any,
        handoffs: list[Any],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: Any,
    ) -> AsyncIterator[Any]:
        response = await self.get_response(
            system_instructions,
            input,
            model_settings,
            tools,
            output_schema,
            handoffs,
            tracing,
            previous_response_id=previous_response_id,
            conversation_id=conversation_id,
            prompt=prompt,
        )
        yield ResponseCompletedEvent(
            type="response.completed",
            sequence_number=0,
            response=Response(
                id="resp_scripted",
                created_at=0,
                model="scripted",
                object="response",
                output=response.output,
                tool_choice="auto",
                tools=[],
                parallel_tool_calls=False,
            ),
        )


def _plain(item: Any) -> dict[str, Any]:
    return item.model_dump() if isinstance(item, BaseModel) else dict(item)


def run_program(code: str, call_id: str = "call_1") -> Step:
    def step(items: list[dict[str, Any]]) -> list[Any]:
        arguments = json.dumps({"typescriptCode": code})
        return [
            ResponseFunctionToolCall(
                type="function_call",
                id=f"fc_{call_id}",
                call_id=call_id,
                name="execute_typescript",
                arguments=arguments,
            )
        ]

    return step


def answer(make_text: Callable[[dict[str, Any]], str], call_id: str = "call_1") -> Step:
    """The final message, made from the tool output the model got for ``call_id``."""

    def step(items: list[dict[str, Any]]) -> list[Any]:
        outputs = [
            i for i in items if i.get("type") == "function_call_output" and i.get("call_id") == call_id
        ]
        assert len(outputs) == 1, items
        text = make_text(json.loads(outputs[0]["output"]))
        content = [ResponseOutputText(type="output_text", text=text, annotations=[])]
        return [
            ResponseOutputMessage(
                type="message", id="msg_1", role="assistant", status="completed", content=content
            )
        ]

    return step


# -- the application: Agents SDK function tools ---------------------------------------------


class Order(BaseModel):
    id: str
    total: float
    items: list[str]


@dataclass
class Shop:
    orders: dict[str, Order]
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    call_ids: list[str] = field(default_factory=list)
    agents: list[str | None] = field(default_factory=list)


@function_tool
async def get_order(ctx: ToolContext[Shop], order_id: str, include_items: bool = False) -> Order:
    """Get an order by id.

    Args:
        order_id: The order id, like "A1".
        include_items: Whether to list the items.
    """
    shop = ctx.context
    shop.calls.append((ctx.tool_name, order_id, include_items))
    shop.call_ids.append(ctx.tool_call_id)
    shop.agents.append(ctx.agent.name if ctx.agent is not None else None)
    assert ctx.tool_call is not None and ctx.tool_call.call_id == ctx.tool_call_id
    order = shop.orders[order_id]
    return order if include_items else order.model_copy(update={"items": []})


@function_tool
def exchange_rate(ctx: RunContextWrapper[Shop], currency: str, day: str | None = None) -> dict[str, Any]:
    """The exchange rate from USD.

    Args:
        currency: An ISO currency code.
        day: The day (YYYY-MM-DD); today when null.
    """
    ctx.context.calls.append(("exchange_rate", currency, day))
    return {"currency": currency, "rate": 0.5, "day": day}


@function_tool(failure_error_function=None)
async def cancel_order(order_id: str) -> str:
    """Cancel an order."""
    raise RuntimeError(f"order {order_id} already shipped")


@function_tool
async def refund_order(order_id: str) -> str:
    """Refund an order (the SDK's default failure handling)."""
    raise RuntimeError("payment provider down")


SHOP_TOOLS: list[FunctionTool] = [get_order, exchange_rate, cancel_order, refund_order]


def make_shop() -> Shop:
    return Shop(
        {
            "A1": Order(id="A1", total=30.0, items=["lamp"]),
            "B2": Order(id="B2", total=54.0, items=["desk", "chair"]),
        }
    )


def make_agent(model: ScriptedModel, **options: Any) -> Agent[Shop]:
    cm = codemode.create_code_mode(from_function_tools(SHOP_TOOLS), timeout=10.0)
    return Agent(
        name="shop",
        instructions=codemode_instructions(cm, "You answer questions about orders."),
        model=model,
        tools=[as_function_tool(cm, **options)],
    )


TOTAL_PROGRAM = """
const ids: string[] = ["A1", "B2"];
const orders = await Promise.all(ids.map((id) => external_get_order({ order_id: id, include_items: true })));
const { rate } = await external_exchange_rate({ currency: "EUR" });
console.log(`fetched ${orders.length} orders`);
return { total: orders.reduce((sum, o) => sum + o.total, 0) * rate, items: orders.flatMap((o) => o.items) };
"""


# -- the agent loop -----------------------------------------------------------------------


async def test_agent_runs_a_program_that_calls_function_tools() -> None:
    model = ScriptedModel(
        [
            run_program(TOTAL_PROGRAM),
            answer(
                lambda out: f"Total: {out['result']['total']} EUR for {len(out['result']['items'])} items"
            ),
        ]
    )
    shop = make_shop()
    result = await Runner.run(make_agent(model), "What do orders A1 and B2 cost in EUR?", context=shop)

    assert result.final_output == "Total: 42 EUR for 3 items"
    # the wrapped function tools ran, with the program's arguments (defaults and nulls filled in)
    assert sorted(shop.calls, key=str) == [
        ("exchange_rate", "EUR", None),
        ("get_order", "A1", True),
        ("get_order", "B2", True),
    ]
    assert sorted(shop.call_ids) == ["call_1:1", "call_1:2"]
    assert shop.agents == ["shop", "shop"]  # the run's agent, through the derived ToolContext
    # what the model saw: the instructions with the declarations, one strict tool, the output
    first, second = model.calls
    assert first.instructions is not None and first.instructions.startswith(
        "You answer questions about orders."
    )
    assert "declare function external_get_order" in first.instructions
    assert "limited to 10 s" in first.instructions
    assert [t.name for t in first.tools] == ["execute_typescript"]
    output = next(i for i in second.input if i.get("type") == "function_call_output")
    assert json.loads(output["output"]) == {
        "success": True,
        "result": {"total": 42.0, "items": ["lamp", "desk", "chair"]},
        "logs": ["fetched 2 orders"],
    }
    assert any(isinstance(item, ToolCallOutputItem) for item in result.new_items)


async def test_parallel_calls_keep_their_own_context() -> None:
    def two_programs(items: list[dict[str, Any]]) -> list[Any]:
        return [
            *run_program('return (await external_get_order({ order_id: "A1" })).total', "call_a")(items),
            *run_program('return (await external_get_order({ order_id: "B2" })).total', "call_b")(items),
        ]

    def both(items: list[dict[str, Any]]) -> list[Any]:
        outputs = {
            i["call_id"]: json.loads(i["output"]) for i in items if i.get("type") == "function_call_output"
        }
        return answer(lambda _: f"{outputs['call_a']['result']} and {outputs['call_b']['result']}", "call_a")(
            items
        )

    shop = make_shop()
    result = await Runner.run(make_agent(ScriptedModel([two_programs, both])), "Totals?", context=shop)
    assert result.final_output == "30 and 54"
    assert sorted(zip(shop.call_ids, [c[1] for c in shop.calls], strict=True)) == [
        ("call_a:1", "A1"),
        ("call_b:1", "B2"),
    ]


async def test_a_failing_program_gives_success_false_to_the_model() -> None:
    program = 'await external_get_order({ order_id: "A1" })\nawait external_cancel_order({ order_id: "A1" })\nreturn "done"'
    seen: list[dict[str, Any]] = []

    def report(out: dict[str, Any]) -> str:
        seen.append(out)
        return f"Could not cancel: {out['error']['message']}"

    model = ScriptedModel([run_program(program, "call_9"), answer(report, "call_9")])
    shop = make_shop()
    result = await Runner.run(make_agent(model), "Cancel A1", context=shop)

    (out,) = seen
    assert out["success"] is False
    assert out["error"]["kind"] == "tool" and out["error"]["name"] == "ToolError"
    assert "order A1 already shipped" in out["error"]["message"]
    assert shop.calls == [("get_order", "A1", False)]
    assert result.final_output == f"Could not cancel: {out['error']['message']}"


async def test_syntax_errors_and_bad_arguments_do_not_fail_the_run() -> None:
    outputs: list[dict[str, Any]] = []

    def keep(out: dict[str, Any]) -> str:
        outputs.append(out)
        return "ok"

    model = ScriptedModel([run_program("return (", "c1"), answer(keep, "c1")])
    await Runner.run(make_agent(model), "x", context=make_shop())
    assert outputs[0]["success"] is False and outputs[0]["error"]["kind"] == "syntax"

    tool = as_function_tool(SHOP_TOOLS)
    ctx = ToolContext(make_shop(), tool_name="execute_typescript", tool_call_id="c2", tool_arguments="{nope")
    for bad in ("{nope", "[1]", '{"code": "return 1"}'):
        output = json.loads(await tool.on_invoke_tool(ctx, bad))
        assert output["success"] is False and output["error"]["kind"] == "invalid_args"


async def test_streamed_run_and_events() -> None:
    events: list[codemode.Event] = []
    model = ScriptedModel(
        [run_program(TOTAL_PROGRAM, "call_s"), answer(lambda out: str(out["result"]["total"]), "call_s")]
    )
    streamed = Runner.run_streamed(make_agent(model, on_event=events.append), "Total?", context=make_shop())
    async for _ in streamed.stream_events():
        pass
    assert streamed.final_output == "42"
    names = [e.name for e in events]
    assert names[0] == "code_mode:execution_started" and names[-1] == "code_mode:execution_finished"
    assert names.count("code_mode:external_call") == 3
    assert {e.value["toolCallId"] for e in events} == {"call_s"}


async def test_default_failure_handling_gives_the_program_the_sdk_message() -> None:
    cm = codemode.create_code_mode(from_function_tools([refund_order]))
    result = await cm.execute('return await external_refund_order({ order_id: "A1" })')
    assert result.success and result.result == "An error occurred while running the tool. Please try again."


# -- the tool definition ------------------------------------------------------------------


def test_the_function_tool_is_strict_and_short() -> None:
    tool = as_function_tool(SHOP_TOOLS)
    assert isinstance(tool, FunctionTool)
    assert tool.name == "execute_typescript" and tool.strict_json_schema
    assert tool.params_json_schema == {
        "type": "object",
        "properties": {
            "typescriptCode": {
                "type": "string",
                "description": tool.params_json_schema["properties"]["typescriptCode"]["description"],
            }
        },
        "required": ["typescriptCode"],
        "additionalProperties": False,
    }
    assert len(tool.description) < 1024 and "declare function" not in tool.description

    with_declarations = as_function_tool(SHOP_TOOLS, include_declarations=True)
    assert (
        with_declarations.description
        == codemode.create_code_mode(from_function_tools(SHOP_TOOLS)).system_prompt
    )
    assert "declare function external_exchange_rate" in with_declarations.description


def test_instructions_are_stable_and_accept_a_code_mode() -> None:
    cm = codemode.create_code_mode(from_function_tools(SHOP_TOOLS))
    assert codemode_instructions(SHOP_TOOLS) == codemode_instructions(cm) == cm.system_prompt
    assert codemode_instructions(cm, "Be brief.\n") == f"Be brief.\n\n{cm.system_prompt}"
    with pytest.raises(TypeError):
        as_function_tool(cm, timeout=3.0)


def test_compact_prompt_gives_the_discovery_tool_too() -> None:
    cm = codemode.create_code_mode(from_function_tools(SHOP_TOOLS), prompt="compact")
    tools = as_function_tools(cm)
    assert [t.name for t in tools] == ["execute_typescript", "get_tool_declarations"]
    assert all(t.params_json_schema["additionalProperties"] is False for t in tools)


async def test_discovery_tool_through_on_invoke_tool() -> None:
    cm = codemode.create_code_mode(from_function_tools(SHOP_TOOLS), prompt="compact")
    discovery = as_function_tools(cm)[1]
    ctx = ToolContext(None, tool_name="get_tool_declarations", tool_call_id="d1", tool_arguments="")
    output = json.loads(await discovery.on_invoke_tool(ctx, '{"names": ["external_get_order"]}'))
    assert output["success"] and "external_get_order" in output["declarations"]


# -- function tools as codemode tools --------------------------------------------------------


def test_strict_schema_is_relaxed_for_defaults_and_nulls() -> None:
    order_tool = from_function_tool(get_order)
    assert order_tool.name == "get_order" and order_tool.description.startswith("Get an order by id.")
    assert order_tool.input_schema["required"] == ["order_id"]
    assert from_function_tool(exchange_rate).input_schema["required"] == ["currency"]
    declarations = codemode.create_code_mode([order_tool, from_function_tool(exchange_rate)]).declarations
    assert "include_items?: boolean" in declarations
    assert "day?: string | null" in declarations
    assert "order_id: string" in declarations


async def test_converted_tools_run_outside_an_agent_run() -> None:
    shop = make_shop()
    cm = codemode.create_code_mode([*from_function_tools(SHOP_TOOLS, context=shop), *make_tools()])
    result = await cm.execute(
        'const o = await external_get_order({ order_id: "B2" })\n'
        'const r = await external_exchange_rate({ currency: "GBP", day: "2025-01-02" })\n'
        "return [o, r, (await external_add({ a: 1, b: 2 })).sum]"
    )
    assert result.success, result.error
    assert result.result == [
        {"id": "B2", "total": 54.0, "items": []},
        {"currency": "GBP", "rate": 0.5, "day": "2025-01-02"},
        3,
    ]
    assert shop.calls == [("get_order", "B2", False), ("exchange_rate", "GBP", "2025-01-02")]
    assert all(i.startswith("codemode_") for i in shop.call_ids)
    assert shop.agents == [None]


async def test_wrong_arguments_are_rejected_before_the_tool_runs() -> None:
    shop = make_shop()
    cm = codemode.create_code_mode(from_function_tools([get_order], context=shop))
    result = await cm.execute("return await external_get_order({ order_id: 7 })")
    assert not result.success and result.error is not None
    assert result.error.kind == "invalid_args" and "order_id" in result.error.message
    assert shop.calls == []


async def test_timeout_seconds_is_honoured() -> None:
    @function_tool(timeout=0.05, failure_error_function=None)
    async def slow(ms: int) -> str:
        """Sleep."""
        await anyio.sleep(ms / 1000)
        return "done"

    cm = codemode.create_code_mode(from_function_tools([slow]))
    result = await cm.execute(
        "const quick = await external_slow({ ms: 1 })\n"
        "try { await external_slow({ ms: 2000 }) } catch (e) { return [quick, e.name, e.message] }"
    )
    assert result.result == ["done", "ToolError", "slow timed out after 0.05 s"]


def test_tools_a_program_cannot_call_are_refused() -> None:
    @function_tool(needs_approval=True)
    def delete_everything() -> str:
        """Dangerous."""
        return "gone"

    with pytest.raises(ValueError, match="needs approval"):
        from_function_tools([delete_everything])
    with pytest.raises(TypeError, match="WebSearchTool"):
        from_function_tools([WebSearchTool()])


def test_custom_function_tool_with_output_schema() -> None:
    async def invoke(ctx: ToolContext[Any], arguments: str) -> str:
        return json.dumps({"echo": json.loads(arguments)["text"]})

    tool = FunctionTool(
        name="say-hello",
        description="Echo text",
        params_json_schema={
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
            "additionalProperties": False,
        },
        on_invoke_tool=invoke,
        output_json_schema={
            "type": "object",
            "properties": {"echo": {"type": "string"}},
            "required": ["echo"],
        },
    )
    converted = from_function_tool(tool)
    assert converted.name == "say_hello" and converted.original_name == "say-hello"
    assert "echo: string" in codemode.create_code_mode([converted]).declarations
    result = codemode.create_code_mode([converted]).execute_sync(
        'return await external_say_hello({ text: "hi" })'
    )
    assert result.result == '{"echo": "hi"}'


async def test_a_paused_program_is_an_approval_item_of_the_run() -> None:
    """A program that pauses for approval makes the call an approval item of the run
    (``result.interruptions``); ``state.approve`` resumes the program, ``state.reject`` gives the
    model the rejection. One program's refund is approved, the next one's rejected."""
    from tests.approvals import shop as refunds

    refunds.REFUNDED.clear()
    cm = codemode.create_code_mode(refunds.TOOLS, approval_key=refunds.KEY)

    def rejected(items: list[dict[str, Any]]) -> list[Any]:
        (output,) = [
            i["output"] for i in items if i.get("type") == "function_call_output" and i["call_id"] == "call_2"
        ]
        content = [ResponseOutputText(type="output_text", text=f"second: {output}", annotations=[])]
        return [
            ResponseOutputMessage(
                type="message", id="m", role="assistant", status="completed", content=content
            )
        ]

    first = 'return await external_refund({ order_id: "o-2", amount: 250 })'
    second = 'return await external_refund({ order_id: "o-3", amount: 900 })'
    model = ScriptedModel(
        [
            run_program(first, "call_1"),
            run_program(second, "call_2"),
            rejected,
        ]
    )
    agent = Agent(name="refunds", instructions="Refund orders.", model=model, tools=[as_function_tool(cm)])
    result = await Runner.run(agent, "Refund o-2, then o-3")
    (item,) = result.interruptions
    assert item.raw_item.call_id == "call_1" and refunds.REFUNDED == []
    state = result.to_state()
    state.approve(item)
    result = await Runner.run(agent, state)
    (item,) = result.interruptions
    assert item.raw_item.call_id == "call_2" and refunds.REFUNDED == ["o-2"]
    outputs = [i for i in model.calls[-1].input if i.get("type") == "function_call_output"]
    assert json.loads(outputs[0]["output"]) == {"success": True, "result": "refunded o-2", "logs": []}
    state = result.to_state()
    state.reject(item, rejection_message="no refunds over 500")
    result = await Runner.run(agent, state)
    assert result.final_output == "second: no refunds over 500" or "no refunds over 500" in str(
        result.final_output
    )
    assert refunds.REFUNDED == ["o-2"]


# -- skills ---------------------------------------------------------------------------------


def call_tool(name: str, arguments: dict[str, Any], call_id: str) -> Step:
    def step(items: list[dict[str, Any]]) -> list[Any]:
        return [
            ResponseFunctionToolCall(
                type="function_call",
                id=f"fc_{call_id}",
                call_id=call_id,
                name=name,
                arguments=json.dumps(arguments),
            )
        ]

    return step


async def test_a_skill_context_registers_a_skill_then_the_model_calls_it_directly() -> None:
    """One ``Runner.run``: turn 1 calls ``register_skill``; the agent's tool list (the one
    ``as_function_tools`` returned) gains the skill, which turn 2 calls as a tool of its
    own; the instructions, read at every turn, declare it from then on."""
    from .skill_turns import REGISTRATION, SKILL_ARGUMENTS, executions, make_context

    context, store = await make_context()
    model = ScriptedModel(
        [
            call_tool("register_skill", REGISTRATION, "call_1"),
            call_tool("two_units", SKILL_ARGUMENTS, "call_2"),
            answer(lambda out: f"Two units cost {out['result']} EUR.", call_id="call_2"),
        ]
    )
    agent = Agent(
        name="shop",
        instructions=codemode_instructions(context, "You price products."),
        model=model,
        tools=as_function_tools(context),
    )
    result = await Runner.run(agent, "Save a skill for two units, then price two units of B-2.")

    assert result.final_output == "Two units cost 8 EUR."
    first, second, _ = model.calls
    assert "register_skill" in [t.name for t in first.tools]
    assert "two_units" not in [t.name for t in first.tools] and "two_units" in [t.name for t in second.tools]
    assert first.instructions is not None and first.instructions.startswith("You price products.")
    assert "skill_two_units" not in first.instructions
    assert second.instructions is not None and "skill_two_units" in second.instructions
    register = next(t for t in first.tools if t.name == "register_skill")
    assert register.strict_json_schema is False  # optional properties stay optional
    assert await executions(store) == 1


async def test_a_skill_contexts_execute_typescript_runs_programs_with_its_skills() -> None:
    from .skill_turns import REGISTRATION, executions, make_context

    context, store = await make_context()
    await context.tools[[t.name for t in context.tools].index("register_skill")].call(REGISTRATION)
    tool = as_function_tool(context)
    program = json.dumps({"typescriptCode": 'return await skill_two_units({ sku: "A-1" })'})
    ctx = ToolContext(None, tool_name=tool.name, tool_call_id="c1", tool_arguments=program)
    assert json.loads(await tool.on_invoke_tool(ctx, program)) == {"success": True, "result": 5, "logs": []}
    assert await executions(store) == 1
