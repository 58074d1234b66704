"""The skill management tools: every refusal stores nothing; depends_on, cycles, example runs."""

from __future__ import annotations

import gc
import statistics
import time
from pathlib import Path
from typing import Any

import pytest

import codemode
from codemode.skills import MemorySkillStore, Skill, SkillStore, SQLiteSkillStore, TrustStrategy
from codemode.skills.tools import (
    SKILL_REGISTERED,
    SkillRegistrationError,
    SkillRegistry,
    code_mode_runner,
    find_calls,
    management_tools,
    skill_program,
    strip_comments_and_strings,
)

pytestmark = pytest.mark.anyio

NUMBER_IN = {"type": "object", "properties": {"n": {"type": "number"}}, "required": ["n"]}
NUMBER_OUT = {"type": "object", "properties": {"value": {"type": "number"}}, "required": ["value"]}


async def _double(args: dict[str, Any]) -> dict[str, Any]:
    return {"value": args["n"] * 2}


DOUBLE = codemode.Tool.from_schema("double", "Double a number", NUMBER_IN, NUMBER_OUT, _double)


def registry(store: SkillStore, **options: Any) -> SkillRegistry:
    return SkillRegistry(store, known_tools=[DOUBLE], **options)


async def register(
    reg: SkillRegistry, name: str = "quadruple", code: str | None = None, **fields: Any
) -> Skill:
    values: dict[str, Any] = {
        "description": "Multiply a number by four",
        "code": code
        if code is not None
        else "const a = await external_double({ n: input.n });\nconst b = await external_double({ n: a.value });\nreturn b;",
        "input_schema": NUMBER_IN,
        "output_schema": NUMBER_OUT,
    }
    values.update(fields)
    return await reg.register(name, **values)


# -- depends_on


def test_find_calls_ignores_comments_strings_and_methods() -> None:
    code = """// skill_commented(1)
/* external_blocked({}) */
const s = "skill_in_string(1)"; const q = 'external_quoted()';
const t = `text skill_in_template( ${await skill_in_expression({ a: { b: 1 } })} and ${`${external_nested()}`}`;
obj.skill_method(1);
await external_spaced ({});
return skill_last(input) + skill_last(input);
"""
    calls = find_calls(code)
    assert calls.externals == ("nested", "spaced")
    assert calls.skills == ("in_expression", "last")
    stripped = strip_comments_and_strings(code)
    assert len(stripped) == len(code) and stripped.count("\n") == code.count("\n")


async def test_depends_on_is_derived_from_the_code_not_the_model() -> None:
    store = MemorySkillStore()
    reg = registry(store)
    await register(reg)
    skill = await register(
        reg,
        "octuple",
        "// skill_ignored(1)\nconst q = await skill_quadruple(input);\nreturn await external_double({ n: q.value });",
    )
    assert skill.depends_on == ["quadruple"]
    tools = {t.name: t for t in reg.tools()}
    await tools["register_skill"].handler(
        {
            "name": "sixteen_times",
            "description": "Multiply by 16",
            "code": "const o = await skill_octuple(input); return external_double({ n: o.value });",
            "input_schema": NUMBER_IN,
            "output_schema": NUMBER_OUT,
        }
    )
    stored = await store.get("sixteen_times")
    assert stored is not None and stored.depends_on == ["octuple"]
    # the model cannot give depends_on itself
    with pytest.raises(codemode.InvalidArguments, match="depends_on"):
        tools["register_skill"].validate(
            {
                "name": "x",
                "description": "d",
                "code": "return 1;",
                "input_schema": {},
                "output_schema": {},
                "depends_on": ["a"],
            }
        )


# -- refusals: each leaves the store as it was


async def _refused(reg: SkillRegistry, match: str, name: str = "quadruple", **fields: Any) -> None:
    before = await reg.store.list_index()
    with pytest.raises(SkillRegistrationError, match=match):
        await register(reg, name, **fields)
    assert await reg.store.list_index() == before


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("Quadruple", "not snake_case"),
        ("two__underscores", "not snake_case"),
        ("", "cannot be empty"),
        ("external_quadruple", "starts with 'external_'"),
        ("skill_quadruple", "starts with 'skill_'"),
        ("delete", "reserved word"),
        ("x" * 65, "longer than 64"),
    ],
)
async def test_refuses_bad_names(name: str, match: str) -> None:
    await _refused(registry(MemorySkillStore()), match, name)


async def test_refuses_a_taken_name_and_updating_an_unknown_one() -> None:
    reg = registry(MemorySkillStore())
    first = await register(reg)
    with pytest.raises(
        SkillRegistrationError, match="already exists: choose another name, or call update_skill"
    ):
        await register(reg, code="return { value: 0 };")
    assert await reg.store.versions("quadruple") == [1]
    assert (await reg.store.get("quadruple")) == first
    with pytest.raises(SkillRegistrationError, match="no skill named 'missing' to update"):
        await register(reg, "missing", update=True)
    assert await reg.store.get("missing") is None


@pytest.mark.parametrize(
    ("field", "schema", "match"),
    [
        (
            "input_schema",
            {"type": "strin"},
            r'input_schema.type is not valid JSON Schema: must be one of \["array"',
        ),
        ("input_schema", {"properties": {"n": {"type": 5}}}, r"input_schema.properties.n.type is not valid"),
        ("output_schema", {"required": "value"}, "output_schema.* is not valid JSON Schema"),
        ("output_schema", {"minimum": "zero"}, "output_schema.* is not valid JSON Schema"),
        ("input_schema", ["type", "object"], "input_schema must be a JSON Schema object"),
    ],
)
async def test_refuses_invalid_schemas(field: str, schema: Any, match: str) -> None:
    await _refused(registry(MemorySkillStore()), match, **{field: schema})


@pytest.mark.parametrize(
    ("code", "match"),
    [
        ("const x = ;\nreturn x;", r"code does not parse: .* at line 1, column"),
        ("return 1;\nreturn input.n +;", r"at line 2, column"),
        ("return {", "code does not parse"),
    ],
)
async def test_refuses_code_that_does_not_parse(code: str, match: str) -> None:
    await _refused(registry(MemorySkillStore()), match, code=code)


async def test_refuses_unknown_external_and_skill_calls() -> None:
    reg = registry(MemorySkillStore())
    await _refused(
        reg,
        r"calls external_triple, which is not an available tool \(available: external_double\)",
        code="return await external_triple({ n: input.n });",
    )
    await _refused(
        reg,
        "calls skill_triple, which is not a stored skill: register it first",
        code="return await skill_triple({ n: input.n });",
    )
    # a method or a comment of the same name is no call
    await register(
        reg,
        code="// external_triple(x)\nconst o: any = { s: (a: any) => a };\nreturn o.skill_x?.(1) ?? o.s({ value: 1 });",
    )


async def test_refuses_cycles() -> None:
    store = MemorySkillStore()
    reg = registry(store)
    await _refused(
        reg, "calls skill_quadruple, the skill itself", code="return await skill_quadruple(input);"
    )
    await register(reg, "step_a", "return { value: input.n };")
    await register(reg, "step_b", "return await skill_step_a(input);")
    await register(reg, "step_c", "return await skill_step_b(input);")
    # updating step_a to call step_c closes step_a -> step_c -> step_b -> step_a
    before = await store.get("step_a")
    with pytest.raises(
        SkillRegistrationError,
        match=r"cycle between skills \(skill_step_a -> skill_step_c -> skill_step_b -> skill_step_a\)",
    ):
        await register(reg, "step_a", "return await skill_step_c(input);", update=True)
    assert await store.versions("step_a") == [1] and await store.get("step_a") == before
    # a diamond is not a cycle
    await register(
        reg, "step_d", "const b = await skill_step_b(input); return await skill_step_c({ n: b.value });"
    )
    assert (await store.get("step_d")).depends_on == ["step_b", "step_c"]  # type: ignore[union-attr]


async def test_refusal_through_the_tool_is_invalid_arguments_with_the_message() -> None:
    store = MemorySkillStore()
    tools = {t.name: t for t in management_tools(store, known_tools=[DOUBLE])}
    with pytest.raises(codemode.InvalidArguments, match="not snake_case"):
        await tools["register_skill"].handler(
            {"name": "Bad", "description": "d", "code": "return 1;", "input_schema": {}, "output_schema": {}}
        )
    assert await store.list_index() == []


# -- example_input, with a real code mode


async def test_example_input_runs_before_saving() -> None:
    store = MemorySkillStore()
    cm = codemode.create_code_mode([DOUBLE])
    try:
        reg = registry(store, run_example=code_mode_runner(cm))
        skill = await register(reg, example_input={"n": 3})
        assert skill.version == 1 and skill.stats.executions == 0  # the example run is not a counted run
        await _refused(
            reg,
            r"running the skill on example_input failed \(runtime error at line 2 of the code\): "
            r"TypeError: .*Fix the code",
            "broken",
            code="const a = null as any;\nreturn a.value;",
            example_input={"n": 1},
        )
        await _refused(
            reg,
            r"failed \(invalid_args error at line 1 of the code\): InvalidArgumentsError: external_double: "
            r"invalid arguments: input.n must be number",
            "bad_tool_call",
            code="return await external_double({ n: 'two' });",
            example_input={"n": 1},
        )
        await _refused(
            reg,
            "example_input does not match input_schema",
            "wrong_example",
            code="return { value: 1 };",
            example_input={"m": 1},
        )
        await _refused(
            reg,
            r"returned a value that does not match output_schema.*\(returned \{\"value\": \"one\"\}\)",
            "wrong_output",
            code="return { value: 'one' };",
            example_input={"n": 1},
        )
        # without example_input nothing runs (a skill that would fail is stored)
        await register(reg, "unrun", code="throw new Error('never run');")
    finally:
        await cm.aclose()


def test_skill_program_is_the_body_of_an_async_function() -> None:
    assert skill_program("return input.n;", {"n": 1}) == (
        'return await (async function (input: any) {\nreturn input.n;\n})({"n": 1});'
    )
    cm = codemode.create_code_mode([])
    result = cm.execute_sync(skill_program("const x: number = input.n;\nreturn x * 10;", {"n": 4}))
    assert result.success and result.result == 40


# -- events, search and get


async def test_registration_emits_skill_registered() -> None:
    events: list[codemode.Event] = []

    async def record(event: codemode.Event) -> None:
        events.append(event)

    reg = registry(MemorySkillStore(), on_event=record)
    await register(reg)
    await register(reg, code="return { value: input.n * 4 };", update=True)
    with pytest.raises(SkillRegistrationError):
        await register(reg, "Bad")
    assert [(e.name, e.value["name"], e.value["version"], e.value["update"]) for e in events] == [
        (SKILL_REGISTERED, "quadruple", 1, False),
        (SKILL_REGISTERED, "quadruple", 2, True),
    ]
    assert events[0].value["depends_on"] == [] and events[0].value["trust_level"] == "untrusted"
    assert isinstance(events[0].value["timestamp"], float) and "toolCallId" in events[0].value


async def test_update_keeps_versions_and_restarts_stats() -> None:
    store = MemorySkillStore()
    tools = {t.name: t for t in management_tools(store, known_tools=[DOUBLE])}
    await register(registry(store))
    for _ in range(3):
        await store.record_run("quadruple", True)
    out = await tools["update_skill"].handler({"name": "quadruple", "code": "return { value: input.n * 4 };"})
    assert out["version"] == 2 and out["depends_on"] == []
    latest = await store.get("quadruple")
    assert latest is not None and latest.stats.executions == 0
    assert latest.description == "Multiply a number by four" and latest.input_schema == NUMBER_IN  # kept
    previous = await store.get("quadruple", version=1)
    assert previous is not None and previous.stats.executions == 3 and "external_double" in previous.code
    with pytest.raises(codemode.InvalidArguments, match="no skill named 'nope' to update"):
        await tools["update_skill"].handler({"name": "nope", "code": "return 1;"})


async def test_search_and_get() -> None:
    store = MemorySkillStore()
    reg = registry(store, trust=TrustStrategy.always_trusted())
    await register(reg, usage_hints=["for numbers"])
    tools = {t.name: t for t in reg.tools()}
    found = await tools["search_skills"].handler({"query": "multiply four"})
    [summary] = found["skills"]
    assert summary["name"] == "quadruple" and "code" not in summary
    assert summary["usage_hints"] == ["for numbers"] and summary["input_schema"] == NUMBER_IN
    assert summary["trust_level"] == "trusted"  # as the given strategy sees it
    assert summary["stats"] == {"executions": 0, "successes": 0, "success_rate": 0.0}
    got = await tools["get_skill"].handler({"name": "quadruple"})
    assert got["code"].startswith("const a = await external_double")
    assert await tools["get_skill"].handler({"name": "missing"}) is None
    # the store's own level without a strategy
    plain = {t.name: t for t in management_tools(store, known_tools={"double": DOUBLE})}
    assert (await plain["search_skills"].handler({"query": "quadruple", "limit": 1}))["skills"][0][
        "trust_level"
    ] == "untrusted"


# -- the tools through a real code mode


async def test_tools_from_a_program() -> None:
    store = MemorySkillStore()
    events: list[codemode.Event] = []
    base = codemode.create_code_mode([DOUBLE])
    tools = management_tools(
        store, known_tools=[DOUBLE], run_example=code_mode_runner(base), on_event=events.append
    )
    cm = codemode.create_code_mode([DOUBLE, *tools])
    try:
        assert "declare function external_register_skill" in cm.declarations
        result = await cm.execute(
            """
const code = "const a = await external_double({ n: input.n });\\nreturn external_double({ n: a.value });";
const stored = await external_register_skill({
  name: "quadruple", description: "Multiply a number by four", code,
  input_schema: { type: "object", properties: { n: { type: "number" } }, required: ["n"] },
  output_schema: { type: "object", properties: { value: { type: "number" } } },
  usage_hints: ["n is any number"], example_input: { n: 2 },
});
let refusal = "";
try {
  await external_register_skill({ name: "quadruple", description: "again", code, input_schema: {}, output_schema: {} });
} catch (e: any) { refusal = `${e.name}: ${e.message}`; }
const found = await external_search_skills({ query: "multiply" });
const got = await external_get_skill({ name: "quadruple" });
return { stored, refusal, found: found.skills.map((s) => s.name), code: got?.code };
"""
        )
        assert result.success, result.error
        value = result.result
        assert value["stored"]["version"] == 1 and value["stored"]["name"] == "quadruple"
        assert value["refusal"].startswith("InvalidArgumentsError: ")
        assert "already exists" in value["refusal"]
        assert value["found"] == ["quadruple"]
        assert value["code"].startswith("const a = await external_double")
        assert [e.name for e in events] == [SKILL_REGISTERED]
    finally:
        await cm.aclose()
        await base.aclose()


# -- speed


async def test_registration_takes_at_most_5_ms_on_sqlite(tmp_path: Path) -> None:
    # one dependency to look up, both schemas checked, the code parsed, one SQLite commit; the
    # best median of three rounds (the machine may be busy with other work)
    store = SQLiteSkillStore(tmp_path / "skills.db")
    reg = registry(store)
    try:
        await register(reg, "warm_up")
        await register(reg, "base_skill", "return { value: input.n };")
        medians = []
        for round_ in range(3):
            gc.collect()
            times = []
            for index in range(30):
                code = f"const b = await skill_base_skill(input);\nreturn await external_double({{ n: b.value + {index} }});"
                started = time.perf_counter()
                await register(reg, f"number_{round_}_{index}", code, usage_hints=["a hint"])
                times.append(time.perf_counter() - started)
            medians.append(statistics.median(times) * 1000)
        print(f"registration on SQLite: p50 per round {', '.join(f'{m:.2f}' for m in medians)} ms")
        assert min(medians) <= 5.0
    finally:
        await store.aclose()


async def test_example_runs_in_the_same_code_mode_from_inside_a_program() -> None:
    # run_example may use the very code mode whose program is calling register_skill
    store = MemorySkillStore()
    holder: dict[str, codemode.CodeMode] = {}

    async def run(skill: Skill, example: Any) -> codemode.ExecutionResult:
        return await code_mode_runner(holder["cm"])(skill, example)

    cm = holder["cm"] = codemode.create_code_mode(
        [DOUBLE, *management_tools(store, known_tools=[DOUBLE], run_example=run)]
    )
    try:
        result = await cm.execute(
            """
const ok = await external_register_skill({ name: "plus_one", description: "Add one", code: "return { value: input.n + 1 };",
  input_schema: { type: "object" }, output_schema: { type: "object" }, example_input: { n: 1 } });
let refusal = "";
try {
  await external_register_skill({ name: "fails", description: "Fails", code: "throw new RangeError('too big');",
    input_schema: { type: "object" }, output_schema: { type: "object" }, example_input: {} });
} catch (e: any) { refusal = e.message; }
return { version: ok.version, refusal };
"""
        )
        assert result.success, result.error
        assert result.result["version"] == 1
        assert "failed (runtime error at line 1 of the code): RangeError: too big" in result.result["refusal"]
        assert [s.name for s in await store.list_index()] == ["plus_one"]
    finally:
        await cm.aclose()
