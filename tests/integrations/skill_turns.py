"""What the per-framework skill loops share: a code mode with ``getPrice``, a skill context over
a fresh store, the ``register_skill`` arguments the scripted model sends in its first turn, and
the direct call of the new skill it makes in the next one."""

from __future__ import annotations

from typing import Any

import codemode
from codemode.skills import MemorySkillStore, SkillContext, with_skills

PRICES = {"A-1": 2.5, "B-2": 4.0}
SKU_INPUT = {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}

REGISTRATION: dict[str, Any] = {
    "name": "two_units",
    "description": "Price in EUR of two units of a product.",
    "code": "return 2 * (await external_getPrice({ sku: input.sku }))",
    "input_schema": SKU_INPUT,
    "output_schema": {"type": "number"},
}
"""The first turn's ``register_skill`` call."""

SKILL_ARGUMENTS = {"sku": "B-2"}
"""The next turn's direct call of ``two_units``, whose result is 8 (2 * 4.0)."""


def make_code_mode() -> codemode.CodeMode:
    async def get_price(args: dict[str, Any]) -> float:
        return PRICES[args["sku"]]

    tool = codemode.Tool.from_schema(
        "getPrice", "Unit price of a product in EUR", SKU_INPUT, {"type": "number"}, get_price
    )
    return codemode.create_code_mode([tool], timeout=10)


async def make_context(cm: codemode.CodeMode | None = None) -> tuple[SkillContext, MemorySkillStore]:
    """A request's skills over an empty store: the management tools, no skill yet."""
    store = MemorySkillStore()
    context = await with_skills(cm or make_code_mode(), store=store, messages=["price two units"])
    return context, store


async def executions(store: MemorySkillStore, name: str = "two_units") -> int:
    """How many runs of the skill the store recorded."""
    skill = await store.get(name)
    assert skill is not None, f"{name} was not registered"
    return skill.stats.executions
