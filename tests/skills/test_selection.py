"""Selection per request: the default (BM25) and LLM selectors, and ``with_skills`` end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import codemode
from codemode.skills import (
    BM25SkillSelector,
    LLMSkillSelector,
    MemorySkillStore,
    Skill,
    SkillContext,
    SQLiteSkillStore,
    TrustStrategy,
    with_skills,
)
from codemode.skills.selection import parse_names, search_query, user_texts

pytestmark = pytest.mark.anyio

CITY_IN = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


async def _forecast(args: dict[str, Any]) -> dict[str, Any]:
    return {"city": args["city"], "celsius": 21.5}


def make_cm() -> codemode.CodeMode:
    return codemode.create_code_mode(
        tools=[codemode.Tool.from_schema("forecast", "Weather forecast of a city", CITY_IN, None, _forecast)],
        timeout=5,
    )


SKILLS = [
    Skill(
        name="weather_report",
        description="A one-line weather report for a city",
        code="const f = await external_forecast({ city: input.city });\nreturn `${f.city}: ${f.celsius} C`;",
        input_schema=CITY_IN,
        output_schema={"type": "string"},
        usage_hints=["forecast temperature"],
    ),
    Skill(
        name="weather_pair",
        description="Weather reports for two cities",
        code=(
            "return await Promise.all([skill_weather_report({ city: input.a }), "
            "skill_weather_report({ city: input.b })]);"
        ),
        input_schema={
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "required": ["a", "b"],
        },
        output_schema={"type": "array", "items": {"type": "string"}},
        depends_on=["weather_report"],
    ),
    Skill(name="invoice_total", description="Sum the lines of an invoice", code="return 0;"),
    Skill(name="send_email", description="Send an email to a customer", code="return true;"),
]


async def filled(store: Any) -> Any:
    for skill in SKILLS:
        await store.save(skill)
    return store


def test_user_texts_accepts_strings_dicts_parts_and_objects() -> None:
    class Message:
        def __init__(self, role: str, content: Any) -> None:
            self.role, self.content = role, content

    messages = [
        "first",
        {"role": "system", "content": "ignored"},
        {"role": "user", "content": [{"type": "text", "text": "parts"}, {"type": "image"}]},
        {"role": "assistant", "content": "ignored too"},
        Message("user", "object"),
        {"role": "user", "content": "last"},
    ]
    assert user_texts(messages, 10) == ["first", "parts", "object", "last"]
    assert user_texts(messages, 2) == ["object", "last"]


def test_search_query_drops_stopwords_latest_first() -> None:
    assert (
        search_query(["What is the weather in Paris?", "And send it by email"]) == "send email weather paris"
    )


def test_parse_names() -> None:
    assert parse_names('["a", "b"]') == ["a", "b"]
    assert parse_names('Sure! ```json\n["weather_report"]\n```') == ["weather_report"]
    assert parse_names('{"skills": ["x"]}') == ["x"]
    assert parse_names("[]") == []
    assert parse_names("no idea") is None
    assert parse_names("[1, 2]") is None
    assert parse_names("") is None


async def test_the_default_selector_ranks_with_bm25() -> None:
    store = await filled(MemorySkillStore())
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    chosen = await BM25SkillSelector().select(store, messages, 5)
    assert [s.name for s in chosen][:2] == ["weather_pair", "weather_report"] or [s.name for s in chosen][
        :2
    ] == ["weather_report", "weather_pair"]
    assert "invoice_total" not in [s.name for s in chosen]
    assert await BM25SkillSelector().select(store, [{"role": "user", "content": "the of a"}], 5) == []
    assert await BM25SkillSelector().select(store, [], 5) == []


class Scripted:
    """An async completion callable with canned answers; remembers the prompts."""

    def __init__(self, *answers: str | Exception) -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []

    async def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_the_llm_selector_uses_the_answer() -> None:
    store = await filled(MemorySkillStore())
    complete = Scripted('["weather_report"]')
    chosen = await LLMSkillSelector(complete).select(store, ["weather in Paris and email it"], 5)
    assert [s.name for s in chosen] == ["weather_report"]
    prompt = complete.prompts[0]
    assert "- weather_report: A one-line weather report for a city" in prompt
    assert "- send_email: Send an email to a customer" in prompt
    assert "invoice_total" not in prompt  # only the BM25 candidates
    assert "weather in Paris and email it" in prompt


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            '["made_up_skill", "weather_report", "weather_report"]',
            ["weather_report"],
        ),  # hallucinated, repeated
        ("[]", []),  # nothing helps: nothing selected
        ('["made_up_skill"]', []),
    ],
)
async def test_the_llm_selector_drops_unknown_names(answer: str, expected: list[str]) -> None:
    store = await filled(MemorySkillStore())
    chosen = await LLMSkillSelector(Scripted(answer)).select(store, ["weather in Paris"], 5)
    assert [s.name for s in chosen] == expected


@pytest.mark.parametrize(
    "answer", ["I think the weather one", "", "[1, 2]", '{"a": 1}', RuntimeError("down")]
)
async def test_the_llm_selector_falls_back_on_garbage(answer: str | Exception) -> None:
    store = await filled(MemorySkillStore())
    messages = ["weather in Paris"]
    chosen = await LLMSkillSelector(Scripted(answer)).select(store, messages, 5)
    assert [s.name for s in chosen] == [s.name for s in await BM25SkillSelector().select(store, messages, 5)]
    assert chosen


async def test_the_llm_selector_respects_the_limit_and_skips_the_call_without_skills() -> None:
    store = await filled(MemorySkillStore())
    chosen = await LLMSkillSelector(Scripted('["weather_pair", "weather_report", "send_email"]')).select(
        store, ["weather email"], 2
    )
    assert [s.name for s in chosen] == ["weather_pair", "weather_report"]
    empty = Scripted()
    assert await LLMSkillSelector(empty).select(MemorySkillStore(), ["weather"], 5) == []
    assert empty.prompts == []


async def test_with_skills_end_to_end_on_sqlite(tmp_path: Path) -> None:
    cm = make_cm()
    async with SQLiteSkillStore(tmp_path / "skills.db", trust=TrustStrategy.relaxed()) as store:
        await filled(store)
        ctx = await with_skills(
            cm, store=store, messages=[{"role": "user", "content": "Weather for two cities please"}]
        )
        assert isinstance(ctx, SkillContext)
        assert [s.name for s in ctx.selected] == ["weather_pair", "weather_report"]
        names = [t.name for t in ctx.tools]
        assert names[0] == "execute_typescript"
        assert names[-2:] == ["weather_pair", "weather_report"]
        for tool in ctx.tools:
            assert tool.description and isinstance(tool.input_schema, dict | type(tool.input_schema))
        assert ctx.system_prompt.startswith(cm.system_prompt.rstrip())
        assert "declare function skill_weather_pair(input: SkillWeatherPairInput)" in ctx.system_prompt
        assert "declare function external_forecast" in ctx.system_prompt

        execute = ctx.tools[0]
        output = await execute.call(
            {"typescriptCode": "return await skill_weather_pair({ a: 'Paris', b: 'Oslo' });"}
        )
        assert output == {"success": True, "result": ["Paris: 21.5 C", "Oslo: 21.5 C"], "logs": []}
        direct = next(t for t in ctx.tools if t.name == "weather_report")
        assert (await direct.call({"city": "Rome"}))["result"] == "Rome: 21.5 C"
        report = await store.get("weather_report")
        pair = await store.get("weather_pair")
        assert report is not None and pair is not None
        # one run from the pair's execution (two calls), one from the direct call
        assert report.stats.executions == 2 and report.trust_level == "untrusted"
        assert pair.stats.executions == 1


async def test_with_skills_gates_direct_tools_by_min_trust(tmp_path: Path) -> None:
    cm = make_cm()
    async with SQLiteSkillStore(tmp_path / "skills.db", trust=TrustStrategy.relaxed()) as store:
        await filled(store)
        for _ in range(3):
            await store.record_run("weather_report", True)
        ctx = await with_skills(cm, store=store, messages=["weather for two cities"], min_trust="provisional")
        tool_names = [t.name for t in ctx.tools]
        assert "weather_report" in tool_names and "weather_pair" not in tool_names
        assert "skill_weather_pair" in ctx.system_prompt  # still callable in programs
        no_tools = await with_skills(cm, store=store, messages=["weather"], skills_as_tools=False)
        assert not {"weather_report", "weather_pair"} & {t.name for t in no_tools.tools}


async def test_with_skills_limits_and_approve(tmp_path: Path) -> None:
    cm = make_cm()
    store = await filled(MemorySkillStore())
    one = await with_skills(cm, store=store, messages=["weather for two cities"], max_in_context=1)
    assert [s.name for s in one.selected] == ["weather_pair"]
    assert "skill_weather_report(" not in one.system_prompt  # a dependency: callable, not declared
    assert (
        await one.tools[0].call({"typescriptCode": "return await skill_weather_pair({a: 'A', b: 'B'});"})
    )["success"]
    refused = await with_skills(cm, store=store, messages=["weather"], approve=lambda skill: False)
    output = await refused.tools[0].call(
        {"typescriptCode": "return await skill_weather_report({city: 'X'});"}
    )
    assert output["error"]["message"] == "skill_weather_report: not approved to run"


async def test_with_skills_nothing_selected_is_plain_code_mode() -> None:
    cm = make_cm()
    ctx = await with_skills(cm, store=MemorySkillStore(), messages=["hello"], management=False)
    assert ctx.selected == [] and [t.name for t in ctx.tools] == ["execute_typescript"]
    assert ctx.system_prompt == cm.system_prompt
    output = await ctx.tools[0].call({"typescriptCode": "return 1 + 1;"})
    assert output["result"] == 2


async def test_with_skills_uses_the_llm_selector() -> None:
    cm = make_cm()
    store = await filled(MemorySkillStore())
    ctx = await with_skills(
        cm, store=store, messages=["weather"], selector=LLMSkillSelector(Scripted('["weather_report"]'))
    )
    assert [s.name for s in ctx.selected] == ["weather_report"]


async def test_a_skill_registered_in_the_conversation_is_usable_at_once() -> None:
    pytest.importorskip("codemode.skills.tools")
    cm = make_cm()
    store = await filled(MemorySkillStore())
    events: list[codemode.Event] = []
    ctx = await with_skills(cm, store=store, messages=["weather"])
    tools = {t.name: t for t in ctx.tools}
    assert {"search_skills", "get_skill", "register_skill", "update_skill"} <= set(tools)
    found = await tools["search_skills"].call({"query": "weather"})
    assert found["success"] and found["result"]["skills"]
    registered = await tools["register_skill"].call(
        {
            "name": "hot_city",
            "description": "Whether a city is hot",
            "code": "const r = await skill_weather_report({ city: input.city });\nreturn r.includes('21');",
            "input_schema": CITY_IN,
            "output_schema": {"type": "boolean"},
            "usage_hints": [],
        },
        on_event=events.append,
    )
    assert registered["success"], registered
    assert [e.name for e in events] == ["code_mode:skill_registered"]
    output = await tools["execute_typescript"].call(
        {"typescriptCode": "return await skill_hot_city({ city: 'Rome' });"}
    )
    assert output == {"success": True, "result": True, "logs": []}
    refused = await tools["register_skill"].call(
        {"name": "skill_x", "description": "d", "code": "return 1;", "input_schema": {}, "output_schema": {}}
    )
    assert refused["success"] is False
    hot = await store.get("hot_city")
    assert hot is not None and hot.stats.executions == 1


HOT_CITY = {
    "name": "hot_city",
    "description": "Whether a city is hot",
    "code": "const r = await skill_weather_report({ city: input.city });\nreturn r.includes('21');",
    "input_schema": CITY_IN,
    "output_schema": {"type": "boolean"},
    "usage_hints": [],
}


async def test_a_skill_registered_in_the_conversation_is_in_the_prompt_and_the_tools() -> None:
    pytest.importorskip("codemode.skills.tools")
    cm = make_cm()
    store = await filled(MemorySkillStore())
    ctx = await with_skills(cm, store=store, messages=["weather"])
    tools = {t.name: t for t in ctx.tools}
    before = ctx.system_prompt
    assert "skill_hot_city" not in before and "hot_city" not in tools
    registered = await tools["register_skill"].call(HOT_CITY)
    assert registered["success"], registered

    # the prompt declares the new skill, as a fresh with_skills selecting it would
    assert "/** Whether a city is hot */" in ctx.system_prompt
    assert "declare function skill_hot_city(input: SkillHotCityInput): Promise<SkillHotCityOutput>;" in (
        ctx.system_prompt
    )
    assert ctx.system_prompt.startswith(before.split("```typescript\n")[0])
    assert "declare function skill_weather_report(" in ctx.system_prompt  # the selected ones stay
    # and the skill is a direct tool of its own, added to the same list
    assert [t.name for t in ctx.tools][-1] == "hot_city" and "hot_city" in ctx.skill_tools
    direct = ctx.tools[-1]
    assert direct.description == "Whether a city is hot" and direct.input_schema == CITY_IN
    assert await direct.call({"city": "Rome"}) == {"success": True, "result": True, "logs": []}
    assert "hot_city" not in {s.name for s in ctx.selected}  # selected: what the selector chose

    # a new version: the prompt and the tool describe it, the tool is replaced, not repeated
    updated = await tools["update_skill"].call({"name": "hot_city", "description": "Is a city warm"})
    assert updated["success"], updated
    assert "/** Is a city warm */" in ctx.system_prompt and "Whether a city is hot" not in ctx.system_prompt
    assert [t.name for t in ctx.tools].count("hot_city") == 1
    assert next(t for t in ctx.tools if t.name == "hot_city").description == "Is a city warm"

    # a skill named like a management tool is declared, and the management tool stays
    clash = await tools["register_skill"].call({**HOT_CITY, "name": "search_skills"})
    assert clash["success"], clash
    assert "declare function skill_search_skills(" in ctx.system_prompt
    assert [t for t in ctx.tools if t.name == "search_skills"] == [tools["search_skills"]]

    # a refused registration changes nothing
    prompt, names = ctx.system_prompt, [t.name for t in ctx.tools]
    refused = await tools["register_skill"].call({**HOT_CITY, "name": "skill_hot"})
    assert refused["success"] is False
    assert ctx.system_prompt == prompt and [t.name for t in ctx.tools] == names


async def test_a_registered_skill_follows_the_contexts_tool_options() -> None:
    pytest.importorskip("codemode.skills.tools")
    cm = make_cm()
    store = await filled(MemorySkillStore())
    gated = await with_skills(cm, store=store, messages=["weather"], min_trust="provisional")
    tools = {t.name: t for t in gated.tools}
    assert (await tools["register_skill"].call(HOT_CITY))["success"]
    assert "skill_hot_city(" in gated.system_prompt  # callable in programs: declared
    assert "hot_city" not in {t.name for t in gated.tools}  # untrusted: no direct tool

    store = await filled(MemorySkillStore())
    no_tools = await with_skills(cm, store=store, messages=["weather"], skills_as_tools=False)
    tools = {t.name: t for t in no_tools.tools}
    assert (await tools["register_skill"].call(HOT_CITY))["success"]
    assert "skill_hot_city(" in no_tools.system_prompt
    assert "Each is also a tool of its own" not in no_tools.system_prompt
    assert "hot_city" not in tools and "hot_city" not in {t.name for t in no_tools.tools}


async def test_include_rebuilds_the_prompt_of_an_empty_context() -> None:
    cm = make_cm()
    store = MemorySkillStore()
    ctx = await with_skills(cm, store=store, messages=["weather"], management=False)
    assert ctx.system_prompt == cm.system_prompt and ctx.selected == []
    for skill in SKILLS[:2]:
        await store.save(skill)
    report = await store.get("weather_report")
    assert report is not None
    ctx.include(report)
    assert "declare function skill_weather_report(" in ctx.system_prompt
    assert [t.name for t in ctx.tools] == ["execute_typescript", "weather_report"]
    output = await ctx.tools[0].call(
        {"typescriptCode": "return await skill_weather_report({ city: 'Oslo' });"}
    )
    assert output == {"success": True, "result": "Oslo: 21.5 C", "logs": []}


async def test_the_llm_selector_over_a_pydantic_ai_model() -> None:
    pytest.importorskip("pydantic_ai")
    from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    from codemode.skills.selection import pydantic_ai_completion

    prompts: list[str] = []

    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        prompts.append(str(messages[-1].parts[0].content))  # type: ignore[union-attr]
        return ModelResponse(parts=[TextPart('["weather_report", "nonexistent"]')])

    store = await filled(MemorySkillStore())
    selector = LLMSkillSelector(pydantic_ai_completion(FunctionModel(answer)))
    chosen = await selector.select(store, ["weather in Paris"], 5)
    assert [s.name for s in chosen] == ["weather_report"]
    assert "- weather_report:" in prompts[0]


async def test_the_prompt_describes_the_library_its_skills_and_their_trust() -> None:
    """The skill library section: each declared skill with its trust level and usage hints,
    their declarations, what trust means, and (with the management tools) how to search and
    register skills; without skills but with the management tools, the library still shows."""
    cm = make_cm()
    store = await filled(MemorySkillStore())
    await store.set_trust("weather_report", "trusted")
    ctx = await with_skills(cm, store=store, messages=["weather"])
    prompt = ctx.system_prompt
    assert "## Skill library" in prompt
    line = next(line for line in prompt.splitlines() if line.startswith("- `skill_weather_report`"))
    assert "[trusted]" in line
    assert "register_skill" in prompt and "search_skills" in prompt and "Trust:" in prompt
    hinted = next(s for s in ctx.selected if s.usage_hints)
    assert f"  - {hinted.usage_hints[0]}" in prompt
    empty = await with_skills(cm, store=MemorySkillStore(), messages=["hello"])
    assert "## Skill library" in empty.system_prompt and "register_skill" in empty.system_prompt
    assert "declare function skill_" not in empty.system_prompt
