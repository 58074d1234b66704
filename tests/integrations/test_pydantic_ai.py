"""The pydantic-ai integration: a real Agent.run driven by FunctionModel, programs in the real engine."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent, FunctionToolset, ModelRetry, RunContext, Tool, ToolDefinition
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel
from pydantic_ai.toolsets import DynamicToolset

import codemode
from codemode.integrations.pydantic_ai import (
    CodeModeCapability,
    CodeModeEvent,
    CodeModeToolset,
    from_pydantic_ai_tools,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # pydantic-ai runs on asyncio only


# -- the application's tools ---------------------------------------------------------------------


@dataclass
class Shop:
    """The agent's dependencies; tools that take a RunContext read them."""

    discount: float
    prices: dict[str, float] = field(default_factory=lambda: {"A-1": 2.5, "B-2": 4.0})
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0


SHOP = Shop(discount=0)  # plain tools have no RunContext: they use this module-level instance


async def get_price(sku: str) -> float:
    """Price of one unit of a product.

    Args:
        sku: The product SKU.
    """
    SHOP.calls.append(("get_price", {"sku": sku}))
    SHOP.in_flight += 1
    SHOP.max_in_flight = max(SHOP.max_in_flight, SHOP.in_flight)
    await anyio.sleep(0.01)  # both Promise.all calls are in flight here
    SHOP.in_flight -= 1
    return SHOP.prices[sku]


def apply_discount(ctx: RunContext[Shop], amount: float, quantity: int = 1) -> dict[str, Any]:
    """Total for a quantity after the customer's discount (a sync tool that takes the RunContext)."""
    ctx.deps.calls.append(
        (
            "apply_discount",
            {"amount": amount, "quantity": quantity, "tool_name": ctx.tool_name, "call": ctx.tool_call_id},
        )
    )
    return {"total": round(amount * quantity * (1 - ctx.deps.discount), 2), "currency": "EUR"}


@pytest.fixture(autouse=True)
def fresh_shop() -> None:
    SHOP.calls.clear()
    SHOP.in_flight = SHOP.max_in_flight = 0


# -- a scripted model ----------------------------------------------------------------------------


@dataclass
class Script:
    """A FunctionModel that sends one program, then answers from the tool return."""

    program: str
    seen: list[tuple[list[ModelMessage], AgentInfo]] = field(default_factory=list)

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.seen.append((list(messages), info))
        returned = [p for p in messages[-1].parts if isinstance(p, ToolReturnPart)]
        if not returned:
            call = ToolCallPart("execute_typescript", {"typescriptCode": self.program}, tool_call_id="call_1")
            return ModelResponse(parts=[call])
        output = returned[0].content
        if output["success"]:
            return ModelResponse(parts=[TextPart(f"The order costs {output['result']['total']} EUR.")])
        return ModelResponse(parts=[TextPart(f"The program failed ({output['error']['kind']}).")])

    async def stream(
        self, messages: list[ModelMessage], info: AgentInfo
    ) -> AsyncIterator[str | DeltaToolCalls]:
        """The same turns streamed, for runs that stream (UI adapters such as ``AGUIAdapter``)."""
        for part in self(messages, info).parts:
            if isinstance(part, TextPart):
                yield part.content
            elif isinstance(part, ToolCallPart):
                delta = DeltaToolCall(part.tool_name, part.args_as_json_str(), tool_call_id=part.tool_call_id)
                yield {0: delta}

    @property
    def model(self) -> FunctionModel:
        return FunctionModel(self, stream_function=self.stream)

    def tool_return(self) -> ToolReturnPart:
        """The execute_typescript return the model received on its second turn."""
        messages = self.seen[1][0]
        return next(p for m in messages for p in m.parts if isinstance(p, ToolReturnPart))


def tool_returns(messages: list[ModelMessage]) -> list[ToolReturnPart]:
    """Every tool return the model has received so far, in order."""
    return [
        p for m in messages if isinstance(m, ModelRequest) for p in m.parts if isinstance(p, ToolReturnPart)
    ]


ORDER_PROGRAM = """
const [a, b] = await Promise.all([
  external_get_price({ sku: "A-1" }),
  external_get_price({ sku: "B-2" }),
]);
const order = await external_apply_discount({ amount: a + b, quantity: 2 });
console.log(`subtotal ${a + b}`);
return order;
"""


# -- the agent loop ------------------------------------------------------------------------------


async def test_agent_runs_a_program_over_wrapped_tools() -> None:
    events: list[codemode.Event] = []
    toolset = CodeModeToolset.from_tools([get_price, Tool(apply_discount)], on_event=events.append)
    script = Script(ORDER_PROGRAM)
    agent = Agent(script.model, deps_type=Shop, toolsets=[toolset])
    shop = Shop(discount=0.1)

    result = await agent.run("What do two of each cost?", deps=shop)

    # the program ran in the sandbox: its events, and the tools' own records
    names = [e.name for e in events]
    assert names[0] == "code_mode:execution_started" and names[-1] == "code_mode:execution_finished"
    called = [e.value["function"] for e in events if e.name == "code_mode:external_call"]
    assert called == ["external_get_price", "external_get_price", "external_apply_discount"]
    assert {e.value["toolCallId"] for e in events} == {"call_1"}
    assert SHOP.calls == [("get_price", {"sku": "A-1"}), ("get_price", {"sku": "B-2"})]
    assert SHOP.max_in_flight == 2  # Promise.all ran both calls at once
    # the RunContext tool got this run's context, under its own name, in the model's call
    assert shop.calls == [
        ("apply_discount", {"amount": 6.5, "quantity": 2, "tool_name": "apply_discount", "call": "call_1"})
    ]

    # the model saw the program's output, and the answer used it
    output = script.tool_return().content
    assert output == {"success": True, "result": {"total": 11.7, "currency": "EUR"}, "logs": ["subtotal 6.5"]}
    assert result.output == "The order costs 11.7 EUR."

    # one tool with codemode's schema; the declarations reached the model in the instructions
    messages, info = script.seen[0]
    assert [t.name for t in info.function_tools] == ["execute_typescript"]
    assert info.function_tools[0].parameters_json_schema["required"] == ["typescriptCode"]
    request = messages[0]
    assert isinstance(request, ModelRequest) and request.instructions is not None
    for expected in (
        "declare function external_get_price(",
        "declare function external_apply_discount(",
        "Price of one unit of a product.",
        "sku: string;",
        "Promise.all",
    ):
        assert expected in request.instructions
    assert toolset.instructions.strip() in request.instructions
    assert "ctx" not in toolset.code_mode.declarations  # the RunContext is not part of the schema


async def test_syntax_error_is_a_tool_return_the_model_sees() -> None:
    toolset = CodeModeToolset.from_tools([get_price])
    script = Script("const total = (await external_get_price({ sku: 'A-1' }) * ;\nreturn total")
    agent = Agent(script.model, toolsets=[toolset])

    result = await agent.run("price?")

    output = script.tool_return().content
    assert output["success"] is False
    assert output["error"]["kind"] == "syntax" and output["error"]["name"] == "SyntaxError"
    assert output["error"]["line"] == 1
    assert result.output == "The program failed (syntax)."
    assert SHOP.calls == []  # nothing ran


async def test_events_are_forwarded_into_the_run_event_stream() -> None:
    toolset = CodeModeToolset.from_tools([get_price, apply_discount])
    script = Script(ORDER_PROGRAM)
    agent = Agent(script.model, deps_type=Shop, toolsets=[toolset])
    forwarded: list[CodeModeEvent] = []
    async with agent.iter("cost?", deps=Shop(discount=0)) as run:
        async for node in run:
            if Agent.is_call_tools_node(node):
                async with node.stream(run.ctx) as stream:
                    forwarded.extend([e async for e in stream if isinstance(e, CodeModeEvent)])
    assert run.result is not None and run.result.output == "The order costs 13 EUR."
    assert forwarded[0].event_name == "code_mode:execution_started"
    assert forwarded[-1].event_name == "code_mode:execution_finished"
    results = [e.value["result"] for e in forwarded if e.event_name == "code_mode:external_result"]
    assert sorted(results[:2]) == [2.5, 4.0] and results[2] == {"total": 13.0, "currency": "EUR"}
    assert {e.tool_call_id for e in forwarded} == {"call_1"}
    assert all(e.name == "code_mode" for e in forwarded)


async def test_native_tools_and_function_toolsets_together() -> None:
    seen: list[dict[str, Any]] = []

    def tax(args: dict[str, Any]) -> dict[str, Any]:
        seen.append(args)
        return {"tax": round(args["amount"] * 0.2, 2)}

    native = codemode.Tool.from_schema(
        "tax",
        "Tax due on an amount",
        {"type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]},
        None,
        tax,
    )
    pricing = FunctionToolset([get_price], instructions="Prices are in EUR.")
    toolset = CodeModeToolset.from_tools([native, pricing])
    script = Script(
        "const price = await external_get_price({ sku: 'B-2' });\n"
        "const { tax } = await external_tax({ amount: price });\n"
        "return { total: price + tax }"
    )
    result = await Agent(script.model, toolsets=[toolset]).run("with tax?")
    assert result.output == "The order costs 4.8 EUR."
    assert seen == [{"amount": 4.0}]
    instructions = script.seen[0][0][0].instructions
    assert instructions is not None
    assert "declare function external_tax(" in instructions and "Prices are in EUR." in instructions


async def test_validation_and_tool_failures_reach_the_program() -> None:
    def even_quantity(ctx: RunContext[Any], sku: str, quantity: int) -> None:
        if quantity % 2:
            raise ModelRetry("quantity must be even")

    def reserve(sku: str, quantity: int) -> str:
        """Reserve stock."""
        raise ModelRetry(f"{sku} is out of stock")

    toolset = CodeModeToolset.from_tools([Tool(reserve, args_validator=even_quantity)])
    script = Script(
        """
        const errors = [];
        for (const input of [{ sku: "A-1", quantity: "two" }, { sku: "A-1", quantity: 3 }, { sku: "A-1", quantity: 2 }]) {
          try { await external_reserve(input) } catch (e) { errors.push(`${e.name}: ${e.message}`) }
        }
        return { total: errors }
        """
    )
    await Agent(script.model, toolsets=[toolset]).run("reserve")
    errors = script.tool_return().content["result"]["total"]
    assert errors[0].startswith("InvalidArgumentsError: external_reserve: invalid arguments")  # JSON Schema
    assert errors[1] == "InvalidArgumentsError: external_reserve: invalid arguments: quantity must be even"
    assert errors[2] == "ToolError: A-1 is out of stock"


async def test_prompt_in_the_tool_description() -> None:
    toolset = CodeModeToolset.from_tools([get_price], prompt_placement="description")
    script = Script("return { total: await external_get_price({ sku: 'A-1' }) }")
    result = await Agent(script.model, toolsets=[toolset]).run("price?")
    assert result.output == "The order costs 2.5 EUR."
    info = script.seen[0][1]
    assert not info.instructions
    description = info.function_tools[0].description
    assert description is not None and "declare function external_get_price(" in description


async def test_compact_prompt_adds_the_discovery_tool() -> None:
    toolset = CodeModeToolset.from_tools([get_price, apply_discount], prompt="compact")

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returned = [p for p in messages[-1].parts if isinstance(p, ToolReturnPart)]
        if not returned:
            args = {"names": ["external_apply_discount"]}
            return ModelResponse(parts=[ToolCallPart("get_tool_declarations", args, tool_call_id="d1")])
        return ModelResponse(parts=[TextPart(returned[0].content["declarations"])])

    result = await Agent(FunctionModel(model), deps_type=Shop, toolsets=[toolset]).run("?", deps=Shop(0))
    assert "declare function external_apply_discount(" in result.output
    assert "external_get_price" not in result.output


# -- building the toolset ------------------------------------------------------------------------


def test_tools_without_fixed_definitions_are_live_not_converted() -> None:
    async def hide(ctx: RunContext[Any], tool_def: Any) -> Any:
        return None

    # from_pydantic_ai_tools needs fixed definitions; from_tools lists these at each step instead
    with pytest.raises(ValueError, match="prepare function"):
        from_pydantic_ai_tools([Tool(get_price, prepare=hide)])
    with pytest.raises(ValueError, match="requires approval"):
        from_pydantic_ai_tools([Tool(get_price, requires_approval=True)])
    with pytest.raises(TypeError, match="lists its tools during a run"):
        from_pydantic_ai_tools([FunctionToolset([get_price]).prefixed("shop")])
    prefixed = FunctionToolset([get_price]).prefixed("shop")
    assert CodeModeToolset.from_tools([prefixed]).live_toolsets == (prefixed,)
    with pytest.raises(ValueError, match="two tools are named 'get_price'"):
        CodeModeToolset.from_tools([get_price, FunctionToolset([get_price])])


def test_converted_tools_keep_pydantic_ai_schemas() -> None:
    tools = {t.name: t for t in from_pydantic_ai_tools([get_price, apply_discount])}
    assert tools["get_price"].input_schema == Tool(get_price).tool_def.parameters_json_schema
    assert tools["apply_discount"].input_schema["properties"]["quantity"]["default"] == 1
    assert tools["get_price"].output_schema == {"type": "number"}


async def test_wrapped_tools_need_an_agent_run() -> None:
    toolset = CodeModeToolset.from_tools([get_price])
    result = await toolset.code_mode.execute("return await external_get_price({ sku: 'A-1' })")
    assert result.error is not None and result.error.kind == "tool"
    assert "inside an agent run" in result.error.message
    await toolset.aclose()


class Line(BaseModel):
    sku: str
    quantity: int = 1


class Quote(BaseModel):
    total: float
    lines: list[Line]


async def quote(lines: list[Line], note: str | None = None) -> Quote:
    """Quote an order (pydantic models in and out)."""
    return Quote(total=sum(SHOP.prices[line.sku] * line.quantity for line in lines), lines=lines)


async def test_pydantic_model_arguments_and_results() -> None:
    toolset = CodeModeToolset.from_tools([quote])
    assert "interface Line {" in toolset.code_mode.declarations  # from pydantic-ai's $defs
    script = Script("return await external_quote({ lines: [{ sku: 'A-1', quantity: 2 }, { sku: 'B-2' }] })")
    result = await Agent(script.model, toolsets=[toolset]).run("quote")
    assert result.output == "The order costs 9 EUR."
    lines = script.tool_return().content["result"]["lines"]
    assert lines == [{"sku": "A-1", "quantity": 2}, {"sku": "B-2", "quantity": 1}]  # defaults filled in


async def test_a_skill_context_registers_a_skill_and_uses_it_in_the_same_run() -> None:
    """With ``skills=``, the toolset offers the skill context's tools, read again at each step:
    a skill registered in one step is callable (``skill_*``) in the next, and the instructions
    are the context's prompt."""
    from codemode.skills import MemorySkillStore, with_skills

    cm = codemode.create_code_mode(from_pydantic_ai_tools([get_price]))
    store = MemorySkillStore()
    skills = await with_skills(cm, store=store, messages=["price two units"])
    toolset = CodeModeToolset(cm, skills=skills)
    offered: list[list[str]] = []
    registration = {
        "name": "two_units",
        "description": "Price of two units.",
        "code": "return 2 * (await external_get_price({ sku: input.sku }))",
        "input_schema": {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]},
        "output_schema": {"type": "number"},
    }

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        offered.append(sorted(tool.name for tool in info.function_tools))
        returns = tool_returns(messages)
        if not returns:
            return ModelResponse(parts=[ToolCallPart("register_skill", registration)])
        if len(returns) == 1:
            code = 'return await skill_two_units({ sku: "B-2" })'
            return ModelResponse(parts=[ToolCallPart("execute_typescript", {"typescriptCode": code})])
        return ModelResponse(parts=[TextPart(str(returns[-1].content["result"]))])

    result = await Agent(FunctionModel(model), toolsets=[toolset]).run("price two units of B-2")
    assert result.output == "8"  # 2 * 4.0, a JSON number
    assert "register_skill" in offered[0] and "two_units" not in offered[0]
    assert "two_units" in offered[1]  # the new skill is offered as a direct tool from the next step
    assert "skill_two_units" in toolset.instructions
    skill = await store.get("two_units")
    assert skill is not None and skill.stats.executions == 1


async def test_a_paused_program_is_a_deferred_approval_that_resumes_the_program() -> None:
    """A program that calls a tool needing approval ends the agent run with
    DeferredToolRequests (the resume token and the pending calls in its metadata); the run
    resumed with DeferredToolResults applies a decision per call and the model reads the result."""
    from pydantic_ai import DeferredToolRequests, DeferredToolResults

    from tests.approvals import shop

    shop.REFUNDED.clear()
    toolset = CodeModeToolset(codemode.create_code_mode(shop.TOOLS, approval_key=shop.KEY))

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returns = tool_returns(messages)
        if not returns:
            return ModelResponse(
                parts=[ToolCallPart("execute_typescript", {"typescriptCode": shop.REFUND_ALL})]
            )
        return ModelResponse(parts=[TextPart(" | ".join(returns[-1].content["result"]))])

    agent = Agent(FunctionModel(model), toolsets=[toolset], output_type=[str, DeferredToolRequests])
    first = await agent.run("refund every order")
    requests = first.output
    assert isinstance(requests, DeferredToolRequests)
    (call,) = requests.approvals
    metadata = requests.metadata[call.tool_call_id]
    assert [p["call_id"] for p in metadata["pending"]] == [5, 6] and shop.REFUNDED == ["o-1"]
    decisions = {"5": "approve", "6": {"reject": "needs a manager"}}
    results = DeferredToolResults(
        approvals={call.tool_call_id: True},
        metadata={call.tool_call_id: {**metadata, "decisions": decisions}},
    )
    second = await agent.run(
        message_history=first.all_messages(),
        deferred_tool_results=results,
        output_type=[str, DeferredToolRequests],
    )
    assert second.output == (
        "refunded o-1 | refunded o-2 | failed: external_refund was rejected by a person: needs a manager"
    )
    assert shop.REFUNDED == ["o-1", "o-2"]


async def test_a_program_with_skills_pauses_for_a_skill_then_for_its_call() -> None:
    """With ``skills=`` and ``approve="ask"``: the untrusted skill is a deferred approval first
    (a pending call of kind ``skill``), then the refund its code makes; each resumes the same
    program, and the model reads the result."""
    from pydantic_ai import DeferredToolRequests, DeferredToolResults

    from codemode.approvals import MemoryExecutionStore
    from codemode.skills import MemorySkillStore, Skill, with_skills
    from tests.approvals import shop

    shop.REFUNDED.clear()
    cm = codemode.create_code_mode(shop.TOOLS, execution_store=MemoryExecutionStore(), approval_key=shop.KEY)
    store = MemorySkillStore()
    code = "const o = await external_get_order({ order_id: input.id });\n"
    code += "return await external_refund({ order_id: o.id, amount: o.amount })"
    await store.save(Skill(name="refund_order", description="Refund an order in full", code=code))
    skills = await with_skills(cm, store=store, messages=["refund an order"], approve="ask")
    toolset = CodeModeToolset(cm, skills=skills)

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returns = tool_returns(messages)
        if not returns:
            program = 'return await skill_refund_order({ id: "o-3" })'
            return ModelResponse(parts=[ToolCallPart("execute_typescript", {"typescriptCode": program})])
        return ModelResponse(parts=[TextPart(str(returns[-1].content["result"]))])

    agent = Agent(FunctionModel(model), toolsets=[toolset], output_type=[str, DeferredToolRequests])
    run = await agent.run("refund o-3")
    seen: list[tuple[str, str]] = []
    while isinstance(run.output, DeferredToolRequests):
        (call,) = run.output.approvals
        metadata = run.output.metadata[call.tool_call_id]
        seen += [(p["kind"], p["function"]) for p in metadata["pending"]]
        results = DeferredToolResults(
            approvals={call.tool_call_id: True}, metadata={call.tool_call_id: metadata}
        )
        run = await agent.run(
            message_history=run.all_messages(),
            deferred_tool_results=results,
            output_type=[str, DeferredToolRequests],
        )
    assert seen == [("skill", "skill_refund_order"), ("tool", "external_refund")]
    assert run.output == "refunded o-3" and shop.REFUNDED == ["o-3"]
    skill = await store.get("refund_order")
    assert skill is not None and (skill.stats.approvals, skill.stats.executions, skill.stats.successes) == (
        1,
        1,
        1,
    )


# -- any toolset: listed at each step ------------------------------------------------------------


PRICE_PROGRAM = "return { total: await external_{name}({ sku: 'B-2' }) }"


async def run_price_program(name: str, **agent_options: Any) -> tuple[Script, Any]:
    """Run a program calling external_<name> and return the script and the result."""
    script = Script(PRICE_PROGRAM.replace("{name}", name))
    result = await Agent(script.model, **agent_options).run("price?")
    return script, result


async def test_a_prefixed_toolset_is_wrapped() -> None:
    toolset = CodeModeToolset.from_tools([FunctionToolset([get_price]).prefixed("shop")])
    script, result = await run_price_program("shop_get_price", toolsets=[toolset])
    assert result.output == "The order costs 4 EUR."
    assert SHOP.calls == [("get_price", {"sku": "B-2"})]
    instructions = script.seen[0][0][0].instructions or ""
    assert "declare function external_shop_get_price(" in instructions


async def test_a_filtered_toolset_offers_only_what_its_filter_lets_through() -> None:
    shop = FunctionToolset([get_price, apply_discount]).filtered(lambda ctx, td: td.name == "get_price")
    toolset = CodeModeToolset.from_tools([shop])
    script, result = await run_price_program("get_price", toolsets=[toolset])
    assert result.output == "The order costs 4 EUR."
    instructions = script.seen[0][0][0].instructions or ""
    assert "external_get_price(" in instructions and "external_apply_discount" not in instructions


async def test_a_dynamic_toolset_is_listed_at_each_step() -> None:
    steps: list[int] = []
    script = Script("return { total: await external_get_price({ sku: 'A-1' }) }")
    agent = Agent(script.model, capabilities=[CodeModeCapability()])

    @agent.toolset
    def per_step(ctx: RunContext[None]) -> FunctionToolset[None]:  # the agent's dynamic toolset
        steps.append(ctx.run_step)
        return FunctionToolset([get_price])

    result = await agent.run("price?")
    assert result.output == "The order costs 2.5 EUR."
    assert steps == [1, 2]  # built once per step; the program's call used step 1's listing
    assert SHOP.calls == [("get_price", {"sku": "A-1"})]
    assert [t.name for t in script.seen[0][1].function_tools] == ["execute_typescript"]
    assert "declare function external_get_price(" in (script.seen[0][0][0].instructions or "")


def priced_per_run(ctx: RunContext[Shop]) -> FunctionToolset[Shop]:
    """A dynamic toolset whose tool answers with the prices of the run that listed it."""
    prices = dict(ctx.deps.prices)

    def get_price(sku: str) -> float:
        """Price of one unit of a product."""
        return prices[sku]

    return FunctionToolset([get_price])


@pytest.mark.parametrize("wiring", ["capability", "toolset"])
async def test_concurrent_runs_call_the_tools_of_their_own_step(wiring: str) -> None:
    """Two runs of one agent, each with its own dynamic toolset instance: both list their tools
    before either program runs, and each program calls the tool its own run listed."""
    arrived: list[str] = []
    both_listed = anyio.Event()

    async def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returns = tool_returns(messages)
        if not returns:
            arrived.append("run")
            if len(arrived) == 2:
                both_listed.set()
            await both_listed.wait()  # the other run has listed its step-1 tools too
            code = "return await external_get_price({ sku: 'B-2' })"
            return ModelResponse(parts=[ToolCallPart("execute_typescript", {"typescriptCode": code})])
        return ModelResponse(parts=[TextPart(str(returns[-1].content["result"]))])

    if wiring == "capability":
        agent = Agent(FunctionModel(model), deps_type=Shop, capabilities=[CodeModeCapability()])
        agent.toolset(priced_per_run)
    else:  # one CodeModeToolset instance shared by both runs
        toolset = CodeModeToolset.from_tools([DynamicToolset(priced_per_run)])
        agent = Agent(FunctionModel(model), deps_type=Shop, toolsets=[toolset])
    outputs: dict[str, str] = {}

    async def run(name: str, shop: Shop) -> None:
        outputs[name] = (await agent.run("price of B-2?", deps=shop)).output

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, "a", Shop(discount=0, prices={"B-2": 4.0}))
        tg.start_soon(run, "b", Shop(discount=0, prices={"B-2": 40.0}))
    assert outputs == {"a": "4", "b": "40"}


async def test_a_live_tool_whose_schema_cannot_be_declared_is_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A listed tool with an invalid JSON Schema (as MCP servers can list) is left out of the
    step's sandbox with a warning; the toolset's other tools still run."""

    async def break_get_price(ctx: RunContext[Any], tool_defs: list[ToolDefinition]) -> list[ToolDefinition]:
        invalid = {"type": "object", "properties": {"sku": {"type": "nonsense"}}}
        return [
            replace(td, parameters_json_schema=invalid) if td.name == "get_price" else td for td in tool_defs
        ]

    shop = FunctionToolset([get_price, apply_discount]).prepared(break_get_price)
    toolset = CodeModeToolset.from_tools([shop])
    script = Script("return await external_apply_discount({ amount: 10 })")
    result = await Agent(script.model, deps_type=Shop, toolsets=[toolset]).run("?", deps=Shop(discount=0.5))
    assert result.output == "The order costs 5 EUR."
    instructions = script.seen[0][0][0].instructions or ""
    assert "external_apply_discount(" in instructions and "external_get_price" not in instructions
    assert "skipping tool 'get_price'" in caplog.text


async def test_a_function_toolset_with_prepare_is_live() -> None:
    prepared: list[int] = []

    async def only_first_step(ctx: RunContext[Any], tool_def: Any) -> Any:
        prepared.append(ctx.run_step)
        return tool_def if ctx.run_step <= 1 else None

    toolset = CodeModeToolset.from_tools([Tool(get_price, prepare=only_first_step)])
    script, result = await run_price_program("get_price", toolsets=[toolset])
    assert result.output == "The order costs 4 EUR."
    assert "external_get_price(" in (script.seen[0][0][0].instructions or "")
    assert "external_get_price(" not in (script.seen[1][0][-1].instructions or "")  # gone at step 2
    # listed once a step: the instructions and the program's call use the step's get_tools listing
    assert prepared == [1, 2]


# -- MCP servers ---------------------------------------------------------------------------------


FIXTURE_SERVER = Path(__file__).resolve().parent / "mcp_servers" / "fixture_server.py"

MCP_PROGRAM = """
const stats = await external_get_stats({ values: [1, 2, 3.5] });
const greeting = await external_greet({ name: "Ada" });
let refused = "";
try { await external_fail({ reason: "closed" }) } catch (e) { refused = `${e.name}: ${e.message}` }
return { total: [stats, greeting, refused] };
"""


async def run_mcp_program(toolset: CodeModeToolset[Any]) -> tuple[Any, str]:
    """Run MCP_PROGRAM through an agent; the program's result and the first step's instructions."""
    script = Script(MCP_PROGRAM)
    await Agent(script.model, toolsets=[toolset]).run("stats?")
    return script.tool_return().content, script.seen[0][0][0].instructions or ""


async def test_a_pydantic_ai_mcp_toolset_is_listed_at_run_time_and_called() -> None:
    """pydantic-ai's MCPToolset (on the fastmcp client) as a wrapped toolset: the agent run
    connects it, its tools are listed in the step (a tool whose schema cannot be declared is
    skipped, not fatal) and the program's calls reach the server."""
    pytest.importorskip("fastmcp", reason="pydantic-ai's MCPToolset needs the fastmcp client")
    from fastmcp.client.transports import StdioTransport
    from pydantic_ai.mcp import MCPToolset

    server = MCPToolset(StdioTransport(sys.executable, [str(FIXTURE_SERVER)]))
    toolset = CodeModeToolset.from_tools([server])
    output, instructions = await run_mcp_program(toolset)
    assert output == {
        "success": True,
        "result": {"total": [{"count": 3, "total": 6.5}, "Hello, Ada!", "ToolError: refused: closed"]},
        "logs": [],
    }
    assert "declare function external_get_stats(" in instructions
    assert "declare function external_json_text(" in instructions  # MCP names made identifiers
    assert "external_broken" not in instructions  # invalid input schema: skipped


async def test_an_mcp_server_through_codemodes_own_client() -> None:
    """Without fastmcp: codemode's MCP client (McpProxy) gives the server's tools as codemode
    tools, which the toolset takes like any native tool."""
    pytest.importorskip("mcp")
    from mcp import StdioServerParameters

    from codemode.integrations.mcp import McpProxy

    params = StdioServerParameters(command=sys.executable, args=[str(FIXTURE_SERVER)])
    async with McpProxy.connect([params]) as proxy:
        toolset = CodeModeToolset.from_tools(proxy.tools)
        output, instructions = await run_mcp_program(toolset)
        await toolset.aclose()
    assert output["result"] == {
        "total": [{"count": 3, "total": 6.5}, "Hello, Ada!", "ToolError: refused: closed"]
    }
    assert "declare function external_get_stats(" in instructions


# -- the capability ------------------------------------------------------------------------------


async def test_the_capability_wraps_the_agent_tools_and_adds_the_prompt() -> None:
    script = Script(ORDER_PROGRAM)
    agent = Agent(
        script.model,
        deps_type=Shop,
        tools=[get_price, apply_discount],
        capabilities=[CodeModeCapability()],
    )
    result = await agent.run("What do two of each cost?", deps=Shop(discount=0.1))
    assert result.output == "The order costs 11.7 EUR."
    info = script.seen[0][1]
    assert [t.name for t in info.function_tools] == ["execute_typescript"]
    instructions = script.seen[0][0][0].instructions or ""
    assert "declare function external_apply_discount(" in instructions


async def test_the_capability_leaves_unselected_tools_direct() -> None:
    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returned = [p for m in messages for p in m.parts if isinstance(p, ToolReturnPart)]
        if not returned:
            return ModelResponse(parts=[ToolCallPart("get_price", {"sku": "A-1"}, tool_call_id="direct")])
        return ModelResponse(
            parts=[TextPart(f"{sorted(t.name for t in info.function_tools)} {returned[0].content}")]
        )

    agent = Agent(
        FunctionModel(model),
        deps_type=Shop,
        tools=[get_price, apply_discount],
        capabilities=[CodeModeCapability(tools=["apply_discount"])],
    )
    result = await agent.run("?", deps=Shop(0))
    assert result.output == "['execute_typescript', 'get_price'] 2.5"


# -- events: one shape for AG-UI frontends -------------------------------------------------------


async def test_ag_ui_adapter_and_ag_ui_events_send_the_same_custom_events() -> None:
    """pydantic-ai's AGUIAdapter forwards the CodeModeEvents a run emits as AG-UI CUSTOM events
    with the names and values codemode's own ``ag_ui_events`` sends for the same program."""
    ag_ui = pytest.importorskip("codemode.integrations.ag_ui")
    from ag_ui.core import RunAgentInput, UserMessage
    from pydantic_ai.ui.ag_ui import AGUIAdapter

    price = codemode.Tool.from_schema(  # a native tool: ag_ui_events runs the program outside a run
        "get_price",
        "Price of one unit of a product.",
        {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]},
        {"type": "number"},
        lambda args: SHOP.prices[args["sku"]],
    )
    program = "const p = await external_get_price({ sku: 'A-1' });\nconsole.log('p', p);\nreturn { total: p }"
    toolset = CodeModeToolset.from_tools([price])
    script = Script(program)  # streams: the adapter runs the agent with run_stream_events
    agent = Agent(script.model, toolsets=[toolset])
    run_input = RunAgentInput(
        thread_id="t",
        run_id="r",
        messages=[UserMessage(id="m", content="price?")],
        state=None,
        tools=[],
        context=[],
        forwarded_props=None,
    )
    streamed = [e async for e in AGUIAdapter(agent=agent, run_input=run_input).run_stream()]
    assert [e.type for e in streamed][-1] == "RUN_FINISHED"
    adapter_events = [e for e in streamed if e.type == "CUSTOM"]
    own = [
        e
        async for e in ag_ui.ag_ui_events(toolset.code_mode, program, tool_call_id="call_1", lifecycle=False)
        if e.type == "CUSTOM"
    ]
    assert (
        [e.name for e in adapter_events]
        == [e.name for e in own]
        == [
            "code_mode:execution_started",
            "code_mode:external_call",
            "code_mode:external_result",
            "code_mode:console",
            "code_mode:execution_finished",
        ]
    )

    def comparable(value: dict[str, Any]) -> dict[str, Any]:
        timings = ("timestamp", "duration", "durationMs", "duration_ms")
        return {k: v for k, v in value.items() if k not in timings}

    assert [comparable(e.value) for e in adapter_events] == [comparable(e.value) for e in own]
    assert comparable(own[2].value) == {
        "callId": 1,
        "function": "external_get_price",
        "result": 2.5,
        "toolCallId": "call_1",
    }
    # the tool-call lifecycle around them is the adapter's own: the custom events sit inside it
    types = [e.type for e in streamed]
    assert types.index("TOOL_CALL_END") < types.index("CUSTOM") < types.index("TOOL_CALL_RESULT")
    await toolset.aclose()


# -- Python 3.10 -----------------------------------------------------------------------------------


def test_importing_on_python_3_10_says_it_needs_3_11(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import sys

    import codemode.integrations.pydantic_ai as module

    monkeypatch.setattr(sys, "version_info", (3, 10, 14, "final", 0))
    spec = importlib.util.spec_from_file_location("codemode.integrations._pydantic_ai_310", module.__file__)
    assert spec is not None and spec.loader is not None
    with pytest.raises(ImportError, match=r"needs Python 3\.11 or newer.*Python 3\.10"):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
