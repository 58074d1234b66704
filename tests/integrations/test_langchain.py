"""LangChain / LangGraph: execute_typescript as a LangChain tool inside a real agent loop.

The chat model is scripted (no network): it calls execute_typescript with a program, then
answers from the ToolMessage it gets back. LangGraph's prebuilt ReAct agent runs the loop.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langgraph")

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, StructuredTool, ToolException, tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.prebuilt import create_react_agent
from pydantic import BaseModel, Field, field_validator

import codemode
from codemode.integrations.langchain import (
    CodeModeTool,
    as_langchain_tool,
    as_langchain_tools,
    from_langchain_tool,
    from_langchain_tools,
)

from ..conftest import make_tools

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # LangChain and LangGraph run on asyncio only


# -- a scripted chat model ---------------------------------------------------------------


Script = Callable[[list[BaseMessage]], AIMessage]


class ScriptedChatModel(BaseChatModel):
    """Answers each turn with ``script(messages)``; records the tools bound and the messages."""

    script: Script
    bound_tools: list[dict[str, Any]] = Field(default_factory=list)
    turns: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        self.bound_tools.extend(convert_to_openai_tool(t) for t in tools)
        return self  # type: ignore[return-value]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.turns.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=self.script(messages))])

    @property
    def _llm_type(self) -> str:
        return "scripted"


def run_program_then_answer(program: str, call_id: str = "call_1") -> Script:
    """Turn 1: call execute_typescript with ``program``; turn 2: answer from its output."""

    def script(messages: list[BaseMessage]) -> AIMessage:
        last = messages[-1]
        if isinstance(last, HumanMessage):
            call = {"name": "execute_typescript", "args": {"typescriptCode": program}, "id": call_id}
            return AIMessage(content="", tool_calls=[call])
        assert isinstance(last, ToolMessage)
        output = json.loads(last.text)
        if output["success"]:
            return AIMessage(f"The stock of A1 is worth {output['result']['value']} EUR.")
        return AIMessage(f"The program failed ({output['error']['kind']}): {output['error']['message']}")

    return script


def react_agent(model: BaseChatModel, tools: list[BaseTool], **kwargs: Any) -> Any:
    with warnings.catch_warnings():  # moved to langchain.agents.create_agent in LangGraph 1.0
        warnings.simplefilter("ignore", DeprecationWarning)
        return create_react_agent(model, tools, **kwargs)


# -- LangChain tools to wrap -------------------------------------------------------------


class StockInput(BaseModel):
    sku: str = Field(description="Product code")
    warehouse: str = Field(default="main", description="Warehouse name")


def make_langchain_tools(calls: list[tuple[str, dict[str, Any]]]) -> list[BaseTool]:
    """An async ``@tool`` and a sync ``StructuredTool``; both append their calls to ``calls``."""

    @tool
    async def get_price(sku: str) -> dict[str, Any]:
        """Unit price of a product, in EUR."""
        calls.append(("get_price", {"sku": sku}))
        return {"sku": sku, "price": 2.5}

    def stock(sku: str, warehouse: str = "main") -> int:
        calls.append(("get_stock", {"sku": sku, "warehouse": warehouse}))
        if warehouse == "north":
            raise ToolException("warehouse north is closed")
        return 40

    get_stock = StructuredTool.from_function(
        func=stock, name="get-stock", description="Units of a product in stock.", args_schema=StockInput
    )
    return [get_price, get_stock]


PROGRAM = """
const [price, units] = await Promise.all([
  external_get_price({ sku: "A1" }),
  external_get_stock({ sku: "A1", warehouse: "east" }),
]);
console.log(`price ${price.price}, units ${units}`);
return { value: price.price * units };
"""


# -- the agent loop ----------------------------------------------------------------------


async def test_agent_runs_a_program_over_two_langchain_tools() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    events: list[codemode.Event] = []
    execute = as_langchain_tool(make_langchain_tools(calls), timeout=10.0, on_event=events.append)
    model = ScriptedChatModel(script=run_program_then_answer(PROGRAM))
    agent = react_agent(model, [execute])

    state = await agent.ainvoke({"messages": [HumanMessage("What is the stock of A1 worth?")]})
    messages = state["messages"]

    # the model was given execute_typescript, its schema, and the declarations of both tools
    [bound] = model.bound_tools
    assert bound["function"]["name"] == "execute_typescript"
    assert bound["function"]["parameters"]["required"] == ["typescriptCode"]
    for declared in ("declare function external_get_price", "declare function external_get_stock"):
        assert declared in bound["function"]["description"]
    # the tool call reached the sandbox, and both wrapped tools ran with the program's arguments
    assert sorted(calls) == [("get_price", {"sku": "A1"}), ("get_stock", {"sku": "A1", "warehouse": "east"})]
    tool_message = messages[2]
    assert isinstance(tool_message, ToolMessage)
    assert tool_message.tool_call_id == "call_1" and tool_message.status == "success"
    assert json.loads(tool_message.text) == {
        "success": True,
        "result": {"value": 100},
        "logs": ["price 2.5, units 40"],
    }
    result = tool_message.artifact
    assert isinstance(result, codemode.ExecutionResult) and result.tool_calls == 2
    assert {e.value["toolCallId"] for e in events} == {"call_1"}
    called = [e.value["function"] for e in events if e.name == "code_mode:external_call"]
    assert sorted(called) == ["external_get_price", "external_get_stock"]
    # the model answered from the value the program computed
    assert [type(m) for m in messages] == [HumanMessage, AIMessage, ToolMessage, AIMessage]
    assert messages[-1].text == "The stock of A1 is worth 100 EUR."
    assert isinstance(model.turns[1][-1], ToolMessage)


@pytest.mark.parametrize(
    ("program", "kind", "message"),
    [
        (
            'return await external_get_stock({ sku: "A1", warehouse: "north" })',
            "tool",
            "warehouse north is closed",
        ),
        ("return await external_get_stock({ warehouse: 3 })", "invalid_args", "external_get_stock"),
        ('throw new Error("no plan")', "runtime", "no plan"),
        ("return (1 +", "syntax", ""),
    ],
)
async def test_failing_program_reaches_the_model_as_an_error(program: str, kind: str, message: str) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    execute = as_langchain_tool(make_langchain_tools(calls), timeout=10.0)
    agent = react_agent(ScriptedChatModel(script=run_program_then_answer(program)), [execute])

    state = await agent.ainvoke({"messages": [HumanMessage("What is the stock of A1 worth?")]})
    tool_message = state["messages"][2]

    assert isinstance(tool_message, ToolMessage) and tool_message.status == "error"
    output = json.loads(tool_message.text)
    assert output["success"] is False
    assert output["error"]["kind"] == kind and message in output["error"]["message"]
    assert state["messages"][-1].text.startswith(f"The program failed ({kind})")


async def test_execution_events_stream_as_langchain_custom_events() -> None:
    execute = as_langchain_tool(make_langchain_tools([]), timeout=10.0)
    agent = react_agent(ScriptedChatModel(script=run_program_then_answer(PROGRAM, "call_7")), [execute])

    custom = [
        event
        async for event in agent.astream_events(
            {"messages": [HumanMessage("What is the stock of A1 worth?")]}, version="v2"
        )
        if event["event"] == "on_custom_event"
    ]

    names = [event["name"] for event in custom]
    assert names[0] == "code_mode:execution_started" and names[-1] == "code_mode:execution_finished"
    assert names.count("code_mode:external_call") == 2 and "code_mode:console" in names
    assert {event["data"]["toolCallId"] for event in custom} == {"call_7"}


def test_sync_agent_loop() -> None:
    """The sync ToolNode runs tools on worker threads (engines are made on another thread)."""
    calls: list[tuple[str, dict[str, Any]]] = []
    execute = as_langchain_tool(make_langchain_tools(calls), timeout=10.0)
    agent = react_agent(ScriptedChatModel(script=run_program_then_answer(PROGRAM)), [execute])

    state = agent.invoke({"messages": [HumanMessage("What is the stock of A1 worth?")]})

    assert len(calls) == 2
    assert state["messages"][-1].text == "The stock of A1 is worth 100 EUR."


async def test_instructions_in_the_system_prompt() -> None:
    execute = as_langchain_tool(make_langchain_tools([]), instructions="system_prompt")
    model = ScriptedChatModel(script=run_program_then_answer(PROGRAM))
    agent = react_agent(model, [execute], prompt=execute.system_prompt)

    state = await agent.ainvoke({"messages": [HumanMessage("What is the stock of A1 worth?")]})

    assert "declare function" not in model.bound_tools[0]["function"]["description"]
    system = model.turns[0][0]
    assert isinstance(system, SystemMessage) and "declare function external_get_price" in system.text
    assert state["messages"][-1].text == "The stock of A1 is worth 100 EUR."


# -- the tool on its own -----------------------------------------------------------------


async def test_direct_calls_return_the_json_output() -> None:
    execute = as_langchain_tool(make_tools())
    assert isinstance(execute, CodeModeTool) and execute.name == "execute_typescript"
    assert execute.args_schema == codemode.create_code_mode([]).tool.input_schema

    content = await execute.ainvoke({"typescriptCode": "return (await external_add({ a: 2, b: 3 })).sum"})
    assert json.loads(content) == {"success": True, "result": 5, "logs": []}
    call = {
        "name": "execute_typescript",
        "args": {"typescriptCode": "return 1"},
        "id": "c9",
        "type": "tool_call",
    }
    message = await execute.ainvoke(call)
    assert isinstance(message, ToolMessage) and message.tool_call_id == "c9" and message.artifact.success
    missing = json.loads(await execute.ainvoke({}))
    assert missing["success"] is False and missing["error"]["kind"] == "invalid_args"


def test_sync_call_runs_its_own_event_loop() -> None:
    execute = as_langchain_tool(make_tools())
    assert execute.invoke({"typescriptCode": "return 6 * 7"}) == '{"success":true,"result":42,"logs":[]}'
    call = {
        "name": "execute_typescript",
        "args": {"typescriptCode": "throw 1"},
        "id": "c3",
        "type": "tool_call",
    }
    message = execute.invoke(call)
    assert isinstance(message, ToolMessage) and message.status == "error"
    assert message.artifact.error.kind == "runtime"


async def test_compact_prompt_adds_the_discovery_tool() -> None:
    tools = as_langchain_tools(make_langchain_tools([]), prompt="compact")
    assert [t.name for t in tools] == ["execute_typescript", "get_tool_declarations"]
    assert "- external_get_price: Unit price" in tools[0].description
    found = json.loads(await tools[1].ainvoke({"names": ["external_get_stock"]}))
    assert found["success"] and "declare function external_get_stock" in found["declarations"]
    with pytest.raises(ValueError, match="as_langchain_tools"):
        as_langchain_tool(make_langchain_tools([]), prompt="compact")


def test_an_existing_code_mode() -> None:
    cm = codemode.create_code_mode(make_tools())
    execute = as_langchain_tool(code_mode=cm)
    assert execute.code_mode is cm and "external_echo" in execute.description
    with pytest.raises(ValueError, match="not both"):
        as_langchain_tool(make_tools(), code_mode=cm)


# -- LangChain tools as codemode tools ---------------------------------------------------


def test_conversion_keeps_name_description_and_schema() -> None:
    get_price, get_stock = make_langchain_tools([])
    price = from_langchain_tool(get_price)
    assert (price.name, price.description) == ("get_price", "Unit price of a product, in EUR.")
    assert price.input_schema == {
        "type": "object",
        "properties": {"sku": {"type": "string"}},
        "required": ["sku"],
    }
    stock = from_langchain_tool(get_stock)
    assert (stock.name, stock.original_name, stock.sandbox_name) == (
        "get_stock",
        "get-stock",
        "external_get_stock",
    )
    assert stock.input_schema["properties"]["warehouse"] == {
        "default": "main",
        "description": "Warehouse name",
        "type": "string",
    }
    mixed = from_langchain_tools([get_price, *make_tools()])
    assert [t.name for t in mixed] == ["get_price", "echo", "fail", "sleep", "add"]
    with pytest.raises(TypeError):
        from_langchain_tools([lambda x: x])  # type: ignore[list-item]


class Order(BaseModel):
    quantity: int

    @field_validator("quantity")
    @classmethod
    def whole_boxes(cls, value: int) -> int:
        if value % 6:
            raise ValueError("orders come in boxes of 6")
        return value


@tool(args_schema=Order)
def place_order(quantity: int) -> str:
    """Order bottles."""
    return f"ordered {quantity}"


@tool
def flaky(sku: str) -> str:
    """Fails, but handles its own errors when called directly."""
    raise ToolException(f"{sku} is out of stock")


flaky.handle_tool_error = True


async def test_errors_of_langchain_tools_reach_the_program() -> None:
    cm = codemode.create_code_mode(from_langchain_tools([place_order, flaky]), timeout=10.0)
    program = """
    const out: Record<string, string> = { ok: await external_place_order({ quantity: 12 }) };
    for (const [key, call] of [
      ["odd", () => external_place_order({ quantity: 7 })],
      ["flaky", () => external_flaky({ sku: "B2" })],
    ] as const) {
      try { await call(); } catch (e: any) { out[key] = `${e.name}: ${e.message}`; }
    }
    return out;
    """
    result = await cm.execute(program)
    assert result.success, result.error
    assert result.result["ok"] == "ordered 12"
    assert result.result["odd"].startswith("InvalidArgumentsError: external_place_order: invalid arguments")
    assert "boxes of 6" in result.result["odd"]
    assert result.result["flaky"] == "ToolError: B2 is out of stock"


async def test_a_paused_program_is_a_langgraph_interrupt_and_command_resume_continues_it() -> None:
    """In a LangGraph agent (with a checkpointer), a program that pauses for approval is an
    ``interrupt()``; ``Command(resume={call_id: decision})`` resumes the program (its earlier
    calls are not made again) and the agent finishes."""
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import Command

    from tests.approvals import shop

    shop.REFUNDED.clear()

    def script(messages: list[BaseMessage]) -> AIMessage:
        last = messages[-1]
        if isinstance(last, HumanMessage):
            call = {"name": "execute_typescript", "args": {"typescriptCode": shop.REFUND_ALL}, "id": "call_1"}
            return AIMessage(content="", tool_calls=[call])
        assert isinstance(last, ToolMessage)
        return AIMessage(" | ".join(json.loads(last.text)["result"]))

    cm = codemode.create_code_mode(shop.TOOLS, approval_key=shop.KEY)
    agent = react_agent(
        ScriptedChatModel(script=script), [as_langchain_tool(code_mode=cm)], checkpointer=InMemorySaver()
    )
    config = {"configurable": {"thread_id": "refunds"}}
    first = await agent.ainvoke({"messages": [HumanMessage("refund every order")]}, config)
    (pause,) = first["__interrupt__"]
    assert [call["call_id"] for call in pause.value["pending"]] == [5, 6]
    assert shop.REFUNDED == ["o-1"]
    decisions = {"5": "approve", "6": {"reject": "too large"}}  # string keys, as LangGraph wants
    done = await agent.ainvoke(Command(resume=decisions), config)
    assert "__interrupt__" not in done
    assert done["messages"][-1].content == (
        "refunded o-1 | refunded o-2 | failed: external_refund was rejected by a person: too large"
    )
    assert shop.REFUNDED == ["o-1", "o-2"]  # o-1 ran once: the resume replayed it from the log


# -- skills ------------------------------------------------------------------------------


async def test_a_skill_context_registers_a_skill_in_one_turn_and_calls_it_in_the_next() -> None:
    """Turn 1: the model calls ``register_skill`` (a tool of the context); turn 2, with the
    tools and the agent built again: the new skill is a tool of its own, which the model
    calls; the store records its run. The prompt is read at every step."""
    from codemode.integrations.langchain import codemode_prompt

    from .skill_turns import REGISTRATION, SKILL_ARGUMENTS, executions, make_context

    context, store = await make_context()
    prompts: list[str] = []

    def script(messages: list[BaseMessage]) -> AIMessage:
        assert isinstance(messages[0], SystemMessage)
        prompts.append(messages[0].text)
        last = messages[-1]
        if isinstance(last, ToolMessage):
            return AIMessage(last.text)
        if last.text == "save it":
            return AIMessage("", tool_calls=[{"name": "register_skill", "args": REGISTRATION, "id": "c1"}])
        return AIMessage("", tool_calls=[{"name": "two_units", "args": SKILL_ARGUMENTS, "id": "c2"}])

    messages: list[BaseMessage] = []
    bound: list[list[str]] = []
    for text in ["save it", "price two units of B-2"]:
        model = ScriptedChatModel(script=script)
        tools = as_langchain_tools(code_mode=context, instructions="system_prompt")
        agent = react_agent(model, tools, prompt=codemode_prompt(context))
        state = await agent.ainvoke({"messages": [*messages, HumanMessage(text)]})
        messages = state["messages"]
        bound.append([t["function"]["name"] for t in model.bound_tools])

    assert "register_skill" in bound[0] and "two_units" not in bound[0]
    assert "two_units" in bound[1]
    assert json.loads(messages[-1].text) == {"success": True, "result": 8, "logs": []}
    assert "skill_two_units" not in prompts[0] and "skill_two_units" in prompts[-1]
    assert await executions(store) == 1


async def test_a_skill_contexts_execute_typescript_runs_programs_with_the_skills() -> None:
    """``as_langchain_tool(code_mode=context)``: programs call ``skill_*``; its prompt is the context's."""
    from .skill_turns import REGISTRATION, executions, make_context

    context, store = await make_context()
    register = next(t for t in as_langchain_tools(code_mode=context) if t.name == "register_skill")
    saved = json.loads(await register.ainvoke(REGISTRATION))
    assert saved["success"] is True, saved
    execute = as_langchain_tool(code_mode=context, instructions="system_prompt")
    output = json.loads(
        await execute.ainvoke({"typescriptCode": 'return await skill_two_units({ sku: "A-1" })'})
    )
    assert output == {"success": True, "result": 5, "logs": []}
    assert "skill_two_units" in execute.system_prompt
    assert await executions(store) == 1
    bad = json.loads(await register.ainvoke({"name": "x"}))
    assert bad["error"]["message"].startswith("register_skill: ")
