"""An offline agent loop with skills: a real pydantic-ai ``Agent.run`` driven by ``FunctionModel``.

Conversation 1: the model writes a program that computes a basket total with ``external_getPrice``
and saves the logic as the skill ``basket_total`` with ``external_register_skill``. Conversation 2
(a new code mode on the same SQLite file): ``with_skills`` selects ``basket_total`` and offers it as
a tool of its own, which the model calls directly; the store records the run.

The ``ModelTool`` objects of ``SkillContext.tools`` reach the agent through pydantic-ai's own
``Tool.from_schema`` (the tool's JSON schema as is, called with the model's keyword arguments).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent, RunContext, Tool
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

import codemode
from codemode.execute_tool import ModelTool
from codemode.skills import SkillStore, SQLiteSkillStore, with_skills
from codemode.skills.tools import management_tools

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # pydantic-ai runs on asyncio only


# -- the application -----------------------------------------------------------------------------

PRICES = {"A-1": 2.5, "B-2": 4.0, "C-3": 1.25}
SKU_INPUT = {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}


@dataclass
class Shop:
    """The price list's tool; remembers every SKU it was asked for."""

    calls: list[str] = field(default_factory=list)

    async def get_price(self, args: dict[str, Any]) -> float:
        self.calls.append(args["sku"])
        return PRICES[args["sku"]]


def make_code_mode(shop: Shop, store: SkillStore) -> codemode.CodeMode:
    """A code mode with ``getPrice`` and the skill management tools (``external_register_skill``...)."""
    get_price = codemode.Tool.from_schema(
        "getPrice", "Unit price of a product in EUR", SKU_INPUT, {"type": "number"}, shop.get_price
    )
    return codemode.create_code_mode(
        tools=[get_price, *management_tools(store, known_tools=[get_price])], timeout=10
    )


def pydantic_ai_tools(tools: Sequence[ModelTool]) -> list[Tool[Any]]:
    """Each codemode ``ModelTool`` as a pydantic-ai tool with the same name, description and schema."""
    return [_pydantic_ai_tool(tool) for tool in tools]


def _pydantic_ai_tool(tool: ModelTool) -> Tool[Any]:
    async def call(ctx: RunContext[Any], **arguments: Any) -> dict[str, Any]:
        return await tool.call(arguments, tool_call_id=ctx.tool_call_id)

    return Tool.from_schema(
        call,
        name=tool.name,
        description=tool.description,
        json_schema=dict(tool.input_schema),
        takes_ctx=True,
    )


# -- the skill the model writes ------------------------------------------------------------------

BASKET_INPUT = {
    "type": "object",
    "properties": {"skus": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
    "required": ["skus"],
}
BASKET_OUTPUT = {
    "type": "object",
    "properties": {"total": {"type": "number"}, "count": {"type": "integer"}},
    "required": ["total", "count"],
}
BASKET_CODE = """\
const prices = await Promise.all(input.skus.map((sku: string) => external_getPrice({ sku })));
return { total: prices.reduce((sum: number, price: number) => sum + price, 0), count: prices.length };"""

REGISTER_PROGRAM = f"""
const skus = ["A-1", "B-2", "C-3"];
const prices = await Promise.all(skus.map((sku) => external_getPrice({{ sku }})));
const total = prices.reduce((sum, price) => sum + price, 0);
const saved = await external_register_skill({{
  name: "basket_total",
  description: "Total price in EUR of a basket of products, given their SKUs",
  code: {json.dumps(BASKET_CODE)},
  input_schema: {json.dumps(BASKET_INPUT)},
  output_schema: {json.dumps(BASKET_OUTPUT)},
  usage_hints: ["the basket total of several SKUs in one call"],
}});
return {{ total, saved }};
"""


@dataclass
class Script:
    """A FunctionModel: the first turn calls ``tool`` with ``arguments``, the second answers with
    the ``total`` of the tool's result."""

    tool: str
    arguments: dict[str, Any]
    seen: list[tuple[list[ModelMessage], AgentInfo]] = field(default_factory=list)

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.seen.append((list(messages), info))
        returned = [p for p in messages[-1].parts if isinstance(p, ToolReturnPart)]
        if not returned:
            return ModelResponse(parts=[ToolCallPart(self.tool, self.arguments, tool_call_id="call_1")])
        output = returned[0].content
        if not output["success"]:
            return ModelResponse(parts=[TextPart(f"Failed: {output['error']}")])
        return ModelResponse(parts=[TextPart(f"The basket costs {output['result']['total']} EUR.")])

    def tool_return(self) -> Any:
        """What the tool returned to the model (seen on its second turn)."""
        messages = self.seen[1][0]
        return next(p for m in messages for p in m.parts if isinstance(p, ToolReturnPart)).content


# -- the loop ------------------------------------------------------------------------------------


async def test_a_skill_registered_in_one_conversation_is_a_direct_tool_in_the_next(tmp_path: Path) -> None:
    database = tmp_path / "skills.db"
    shop = Shop()

    # conversation 1: compute the total in a program that also saves the logic as a skill
    async with SQLiteSkillStore(database) as store:
        cm = make_code_mode(shop, store)
        try:
            question = "What does a basket of A-1, B-2 and C-3 cost in total?"
            ctx = await with_skills(
                cm, store=store, messages=[{"role": "user", "content": question}], management=False
            )
            assert ctx.selected == [] and [t.name for t in ctx.tools] == ["execute_typescript"]
            script = Script("execute_typescript", {"typescriptCode": REGISTER_PROGRAM})
            agent = Agent(
                FunctionModel(script), tools=pydantic_ai_tools(ctx.tools), instructions=ctx.system_prompt
            )
            result = await agent.run(question)
        finally:
            await cm.aclose()

        output = script.tool_return()
        assert output["success"], output
        assert output["result"]["total"] == 7.75
        saved = output["result"]["saved"]
        assert (saved["name"], saved["version"], saved["depends_on"]) == ("basket_total", 1, [])
        assert result.output == "The basket costs 7.75 EUR."
        assert shop.calls == ["A-1", "B-2", "C-3"]  # the registration ran nothing (no example)
        instructions = script.seen[0][0][0]
        assert isinstance(instructions, ModelRequest) and instructions.instructions is not None
        assert "declare function external_register_skill" in instructions.instructions

        skill = await store.get("basket_total")
        assert skill is not None
        assert skill.version == 1 and skill.code == BASKET_CODE
        assert skill.depends_on == []  # derived from the code: it calls tools, no other skill
        assert skill.input_schema == BASKET_INPUT and skill.output_schema == BASKET_OUTPUT
        assert skill.stats.executions == 0 and skill.trust_level == "untrusted"

    # conversation 2: a new code mode on the same database; the skill is a tool of its own
    shop.calls.clear()
    async with SQLiteSkillStore(database) as store:
        cm = make_code_mode(shop, store)
        try:
            question = "And the basket total for A-1 and C-3?"
            ctx = await with_skills(
                cm, store=store, messages=[{"role": "user", "content": question}], management=False
            )
            assert [s.name for s in ctx.selected] == ["basket_total"]
            assert [t.name for t in ctx.tools] == ["execute_typescript", "basket_total"]
            assert "declare function skill_basket_total(" in ctx.system_prompt
            script = Script("basket_total", {"skus": ["A-1", "C-3"]})
            agent = Agent(
                FunctionModel(script), tools=pydantic_ai_tools(ctx.tools), instructions=ctx.system_prompt
            )
            result = await agent.run(question)
        finally:
            await cm.aclose()

        offered = {t.name: t for t in script.seen[0][1].function_tools}
        assert set(offered) == {"execute_typescript", "basket_total"}
        assert offered["basket_total"].parameters_json_schema == BASKET_INPUT
        assert offered["basket_total"].description is not None
        assert offered["basket_total"].description.startswith("Total price in EUR of a basket")

        assert script.tool_return() == {"success": True, "result": {"total": 3.75, "count": 2}, "logs": []}
        assert result.output == "The basket costs 3.75 EUR."
        assert sorted(shop.calls) == ["A-1", "C-3"]  # the skill ran, calling the tool once per SKU

        skill = await store.get("basket_total")
        assert skill is not None and skill.version == 1
        assert (skill.stats.executions, skill.stats.successes) == (1, 1)
