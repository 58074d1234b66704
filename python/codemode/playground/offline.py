"""The offline demo model: a scripted stand-in for an LLM, so the chat works with no API key.

It is a pydantic-ai ``FunctionModel``: the agent loop, the tools, the skills and the events
are the real ones; only the model's turns are written ahead. It plays three scenarios over
the demo tools (``codemode.demo``), chosen from the words of the user's message:

* ``top-products``: the program of the original post (top products with their ratings);
* ``recover``: a call with a wrong product id fails, the model reads the error and fixes it;
* ``skill``: register a skill with ``register_skill``, then use it as ``skill_<name>``.

Anything else gets a short answer listing what it can do.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic_ai.messages import ModelMessage, ModelRequest, ToolReturnPart, UserPromptPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel

from ..demo import TOP_PRODUCTS_PROGRAM

MODEL_LABEL = "Offline demo model (scripted, no LLM)"
DEMO_TOOLS = ("getTopProducts", "getProductRatings")
"""The tools the scenarios call: the offline model is offered only over the demo tools."""


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    prompt: str
    keywords: tuple[str, ...]

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "title": self.title, "prompt": self.prompt}


SCENARIOS = (
    Scenario(
        "top-products",
        "Top products and their ratings",
        "Which products sell best, and how do customers rate them?",
        ("sell", "top", "best", "rate", "rating"),
    ),
    Scenario(
        "recover",
        "A failing call, recovered",
        "How is product p-999 rated? If it does not exist, use our best seller instead.",
        ("p-999", "fail", "exist", "recover"),
    ),
    Scenario(
        "skill",
        "Register a skill, then use it",
        "Save a reusable skill that finds the best-rated of our top products, then use it for the top 3.",
        ("skill", "reusable", "save"),
    ),
)

TOP_PRODUCTS = TOP_PRODUCTS_PROGRAM.read_text(encoding="utf-8")

MISSING_PRODUCT = """\
// The product the user asked about
const ratings = await external_getProductRatings({ productId: "p-999" })
const scores = ratings.ratings.map((r: { score: number }) => r.score)
const sum = scores.reduce((a: number, b: number) => a + b, 0)
return { productId: "p-999", averageRating: sum / scores.length }
"""

BEST_SELLER = """\
// p-999 does not exist: rate the best seller instead
const { products } = await external_getTopProducts({ limit: 1 })
const best = products[0]
const { ratings } = await external_getProductRatings({ productId: best.id })
const avg = ratings.reduce((sum: number, r: { score: number }) => sum + r.score, 0) / ratings.length
console.log(`${best.name}: ${ratings.length} ratings`)
return { name: best.name, sales: best.totalSales, averageRating: Math.round(avg * 100) / 100 }
"""

SKILL_NAME = "best_rated_top_products"
SKILL_CODE = """\
const { products } = await external_getTopProducts({ limit: input.limit })
const rated = await Promise.all(products.map(async (p: { id: string; name: string }) => {
  const { ratings } = await external_getProductRatings({ productId: p.id })
  const avg = ratings.reduce((s: number, r: { score: number }) => s + r.score, 0) / ratings.length
  return { name: p.name, averageRating: Math.round(avg * 100) / 100 }
}))
return rated.sort((a, b) => b.averageRating - a.averageRating)
"""
SKILL_REGISTRATION: dict[str, Any] = {
    "name": SKILL_NAME,
    "description": "The best-rated products among the top sellers, best first.",
    "code": SKILL_CODE,
    "input_schema": {
        "type": "object",
        "properties": {"limit": {"type": "integer", "minimum": 1, "maximum": 20}},
        "required": ["limit"],
    },
    "output_schema": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "averageRating": {"type": "number"}},
            "required": ["name", "averageRating"],
        },
    },
    "usage_hints": ["pass limit: how many top sellers to compare"],
    "example_input": {"limit": 2},
}
USE_SKILL = f"""\
// Use the skill just saved
const ranked = await skill_{SKILL_NAME}({{ limit: 3 }})
console.log(`best rated of the top 3: ${{ranked[0].name}}`)
return ranked
"""


@dataclass(frozen=True)
class _Turn:
    """What the model says next: text, then at most one tool call."""

    text: str = ""
    tool: str | None = None
    args: dict[str, Any] | None = None


def _latest_exchange(messages: Sequence[ModelMessage]) -> tuple[str, list[Any]]:
    """The user's latest message and the tool outputs that came after it, in order."""
    prompt = ""
    outputs: list[Any] = []
    for message in messages:
        if not isinstance(message, ModelRequest):
            continue
        for part in message.parts:
            if isinstance(part, UserPromptPart) and not str(part.content).startswith("<system>"):
                # (the agent's own notes, such as newly available tools, come as <system> parts)
                prompt = part.content if isinstance(part.content, str) else str(part.content)
                outputs = []
            elif isinstance(part, ToolReturnPart):
                outputs.append(part.content)
    return prompt, outputs


def choose(prompt: str) -> Scenario | None:
    """The scenario a message asks for (the first whose keyword it contains), if any."""
    text = prompt.lower()
    by_id = {scenario.id: scenario for scenario in SCENARIOS}
    for scenario_id in ("recover", "skill", "top-products"):  # the specific ones first
        scenario = by_id[scenario_id]
        if any(word in text for word in scenario.keywords):
            return scenario
    return None


def _ok(output: Any) -> bool:
    return isinstance(output, dict) and output.get("success") is True


def _failure(output: Any) -> str:
    if isinstance(output, dict) and isinstance(output.get("error"), dict):
        error = output["error"]
        return f"{error.get('name', 'Error')}: {error.get('message', '')}"
    return json.dumps(output)[:300]


def _table(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        sales = f", {row['sales']:,} sold" if "sales" in row else ""
        lines.append(f"- **{row['name']}**{sales}, rated {row['averageRating']:.2f} / 5")
    return "\n".join(lines)


def _run(code: str) -> dict[str, Any]:
    return {"typescriptCode": code}


def next_turn(messages: Sequence[ModelMessage]) -> _Turn:
    """The scripted reply to the conversation so far."""
    prompt, outputs = _latest_exchange(messages)
    scenario = choose(prompt)
    step = len(outputs)
    last: Any = outputs[-1] if outputs else None
    if scenario is None:
        titles = "; ".join(f"“{s.prompt}”" for s in SCENARIOS)
        return _Turn(
            "I am the offline demo model: I play scripted scenarios over the demo tools, with real "
            f"programs on a real engine. Try one of these: {titles}"
        )
    if scenario.id == "top-products":
        if step == 0:
            return _Turn(
                "I'll fetch the top sellers and their ratings in one program.",
                "execute_typescript",
                _run(TOP_PRODUCTS),
            )
        if not _ok(last):
            return _Turn(f"The program failed: {_failure(last)}")
        return _Turn("Here are the best sellers with their average rating:\n\n" + _table(last["result"]))
    if scenario.id == "recover":
        if step == 0:
            return _Turn("Let me look up the ratings of p-999.", "execute_typescript", _run(MISSING_PRODUCT))
        if step == 1 and not _ok(last):
            return _Turn(
                f"That failed ({_failure(last)}): p-999 is not one of our products. As you asked, "
                "I'll rate our best seller instead.",
                "execute_typescript",
                _run(BEST_SELLER),
            )
        if not _ok(last):
            return _Turn(f"That failed too: {_failure(last)}")
        return _Turn("Our best seller instead:\n\n" + _table([last["result"]]))
    # the skill scenario
    if step == 0:
        return _Turn(
            "I'll save this as a skill, checked on an example input.", "register_skill", SKILL_REGISTRATION
        )
    if step == 1:
        if not _ok(last) or last["result"].get("name") != SKILL_NAME:
            return _Turn(f"The skill was not saved: {_failure(last)}")
        return _Turn(
            f"Saved **{SKILL_NAME}** (version {last['result'].get('version')}). "
            "Now I'll use it for the top 3.",
            "execute_typescript",
            _run(USE_SKILL),
        )
    if not _ok(last):
        return _Turn(f"Using the skill failed: {_failure(last)}")
    return _Turn("The skill ranks the top 3 sellers by rating:\n\n" + _table(last["result"]))


async def _stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str | DeltaToolCalls]:
    turn = next_turn(messages)
    for word in turn.text.split(" "):  # streamed a word at a time, as a model would
        yield word + " "
    if turn.tool is not None:
        yield {0: DeltaToolCall(name=turn.tool, json_args=json.dumps(turn.args))}


def offline_model() -> FunctionModel:
    """The offline demo model (streaming only, as the playground's chat streams)."""
    return FunctionModel(stream_function=_stream, model_name="offline-demo")
