"""Skills inside the sandbox (``skill_<name>``) and as direct tools, through the real engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

import codemode
from codemode.skills import (
    SKILL_CALL,
    SKILL_ERROR,
    SKILL_RESULT,
    MemorySkillStore,
    Skill,
    SkillRuntime,
    SQLiteSkillStore,
    TrustStrategy,
)

from ..conftest import LOCAL_WORKERD, engine_gap

pytestmark = pytest.mark.anyio

NUMBER_IN = {"type": "object", "properties": {"n": {"type": "number"}}, "required": ["n"]}
VALUE_OUT = {"type": "object", "properties": {"value": {"type": "number"}}, "required": ["value"]}


async def _add(args: dict[str, Any]) -> dict[str, Any]:
    return {"sum": args["a"] + args["b"]}


def make_cm() -> codemode.CodeMode:
    add_schema = {
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    }
    return codemode.create_code_mode(
        tools=[codemode.Tool.from_schema("add", "Add two numbers", add_schema, None, _add)], timeout=5
    )


DOUBLE = Skill(
    name="double",
    description="Double a number with the add tool",
    code="const r = await external_add({ a: input.n, b: input.n });\nreturn { value: r.sum };",
    input_schema=NUMBER_IN,
    output_schema=VALUE_OUT,
)
QUADRUPLE = Skill(
    name="quadruple",
    description="Four times a number",
    code=(
        "const once = await skill_double({ n: input.n });\n"
        "if (input.n < 0) {\n"
        "  throw new Error('negative numbers are not supported');\n"
        "}\n"
        "return (await skill_double({ n: once.value })).value;"
    ),
    input_schema=NUMBER_IN,
    output_schema={"type": "number"},
    depends_on=["double"],
)


@pytest.fixture
async def store() -> MemorySkillStore:
    memory = MemorySkillStore(trust=TrustStrategy.relaxed())
    await memory.save(DOUBLE)
    await memory.save(QUADRUPLE)
    return memory


async def runtime_for(store: MemorySkillStore, **kwargs: Any) -> SkillRuntime:
    skills = [await store.get("double"), await store.get("quadruple")]
    return SkillRuntime(make_cm(), [s for s in skills if s is not None], store=store, **kwargs)


async def test_skills_call_skills_inside_a_program(store: MemorySkillStore) -> None:
    runtime = await runtime_for(store)
    result = await runtime.execute(
        "const [a, b] = await Promise.all([skill_quadruple({ n: 3 }), skill_double({ n: 5 })]);\n"
        "console.log('done');\n"
        "return a + b.value;"
    )
    assert result.success, result.error
    assert result.result == 22
    assert result.logs == ["done"]  # the runs line is taken out of the logs
    assert result.tool_calls == 3
    double = await store.get("double")
    quadruple = await store.get("quadruple")
    assert double is not None and quadruple is not None
    # one execution is one run of each skill it called, however many calls it made
    assert (double.stats.executions, double.stats.successes) == (1, 1)
    assert (quadruple.stats.executions, quadruple.stats.successes) == (1, 1)


async def test_model_errors_keep_their_line_and_column(store: MemorySkillStore) -> None:
    runtime = await runtime_for(store)
    for code in (
        "const x = null;\nreturn x.y;",
        "  null.x;",
        "enum E { A }\nconst s: string = 'a';\nnull.x;",
    ):
        result = await runtime.execute(code)
        plain = await runtime.cm.execute(code)  # the same program without skills
        assert result.error is not None and plain.error is not None
        assert result.error.model_dump(exclude={"stack"}) == plain.error.model_dump(exclude={"stack"})
        assert result.error.line is not None


async def test_a_skill_error_points_into_the_skill(store: MemorySkillStore) -> None:
    runtime = await runtime_for(store)
    result = await runtime.execute("const v = await skill_quadruple({ n: -1 });\nreturn v;")
    assert not result.success and result.error is not None
    error = result.error
    assert error.kind == "runtime"
    assert error.message.endswith("(in skill quadruple line 3, column 13)")
    assert (error.line, error.column) == (3, 13)
    assert error.frame is not None and error.frame.startswith("skill quadruple:\n")
    assert "throw new Error('negative numbers are not supported');" in error.frame
    assert "skill:quadruple:3:13" in (error.stack or "")
    assert "__cm_" not in (error.stack or "")  # the runtime's own frames are left out
    quadruple = await store.get("quadruple")
    double = await store.get("double")
    assert quadruple is not None and double is not None
    assert (quadruple.stats.executions, quadruple.stats.successes) == (1, 0)
    assert (double.stats.executions, double.stats.successes) == (1, 1)


async def test_a_skill_error_caught_by_the_program(store: MemorySkillStore) -> None:
    runtime = await runtime_for(store)
    result = await runtime.execute(
        "try { await skill_quadruple({ n: -2 }); } catch (e) { return e.message; }"
    )
    assert result.success and result.result == "negative numbers are not supported"
    quadruple = await store.get("quadruple")
    assert quadruple is not None and quadruple.stats.executions == 1


async def test_invalid_input_is_refused_and_not_counted(store: MemorySkillStore) -> None:
    runtime = await runtime_for(store)
    result = await runtime.execute("return await skill_double({ n: 'two' });")
    assert result.error is not None
    assert result.error.kind == "invalid_args"
    assert result.error.name == "InvalidArgumentsError"
    assert result.error.message == "skill_double: invalid input: input.n must be number"
    assert result.error.line == 1 and result.error.column is not None  # the call site
    missing = await runtime.execute("return await skill_double({});")
    assert missing.error is not None
    assert missing.error.message == 'skill_double: invalid input: input must have property "n"'
    double = await store.get("double")
    assert double is not None and double.stats.executions == 0


async def test_invalid_output_fails_the_call_and_counts_as_a_failure() -> None:
    store = MemorySkillStore()
    await store.save(
        Skill(
            name="broken",
            description="Returns the wrong shape",
            code="return { value: 'not a number' };",
            input_schema={"type": "object"},
            output_schema=VALUE_OUT,
        )
    )
    broken = await store.get("broken")
    assert broken is not None
    runtime = SkillRuntime(make_cm(), [broken], store=store)
    result = await runtime.execute("return await skill_broken({});")
    assert result.error is not None
    assert result.error.kind == "tool"
    assert result.error.name == "SkillError"
    assert result.error.message == "skill_broken returned an invalid result: output.value must be number"
    stored = await store.get("broken")
    assert stored is not None and (stored.stats.executions, stored.stats.successes) == (1, 0)


@pytest.mark.parametrize(
    ("schema", "good", "bad", "message"),
    [
        (
            {"type": "array", "items": {"type": "integer"}, "minItems": 1},
            "[1, 2]",
            "[1.5]",
            "input[0] must be integer",
        ),
        ({"enum": ["a", "b"]}, "'a'", "'c'", 'input must be one of ["a","b"]'),
        ({"type": "string", "pattern": "^x+$"}, "'xx'", "'xy'", 'input must match "^x+$"'),
        ({"type": "number", "minimum": 0, "maximum": 9}, "3", "10", "input must be <= 9"),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},
            "{a: 'x'}",
            "{a: 'x', b: 1}",
            "input.b is not allowed",
        ),
        (
            {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "null",
            "1",
            "input must be string or null",
        ),
        (
            {"$defs": {"P": {"type": "object", "required": ["id"]}}, "$ref": "#/$defs/P"},
            "{id: 1}",
            "{}",
            'input must have property "id"',
        ),
        (
            {"$schema": "http://json-schema.org/draft-07/schema#", "type": "string", "format": "date"},
            "'2026-02-28'",
            "'2026-02-30x'",
            "input must be a valid date",
        ),
        (
            {"$schema": "http://json-schema.org/draft-07/schema#", "type": "string", "format": "date"},
            "'2026-12-01'",
            "'2026-13-01'",
            "input must be a valid date",
        ),
        (
            {"$schema": "http://json-schema.org/draft-07/schema#", "type": "string", "format": "date-time"},
            "'2026-11-27T08:00:00Z'",
            "'yesterday'",
            "input must be a valid date-time",
        ),
        (
            {"$schema": "http://json-schema.org/draft-07/schema#", "type": "string", "format": "email"},
            "'ann@example.com'",
            "'ann'",
            "input must be a valid email",
        ),
        (
            {"$schema": "http://json-schema.org/draft-07/schema#", "type": "string", "format": "ipv4"},
            "'10.0.0.1'",
            "'10.0.0.256'",
            "input must be a valid ipv4",
        ),
        (
            {"$schema": "http://json-schema.org/draft-07/schema#", "type": "string", "format": "hostname"},
            "'api.example.com'",
            "'-x.com'",
            "input must be a valid hostname",
        ),
        ({"type": "string", "format": "made-up"}, "'anything'", "1", "input must be string"),
        (
            {"type": "array", "uniqueItems": True},
            "[1, '1', {a: 1, b: 2}, {a: 2}]",
            "[{a: 1, b: 2}, {b: 2, a: 1}]",
            "input must not have duplicate items",
        ),
        ({"type": "object", "minProperties": 1}, "{a: 1}", "{}", "input must have at least 1 property"),
        (
            {"type": "object", "maxProperties": 1},
            "{a: 1}",
            "{a: 1, b: 2}",
            "input must have at most 1 property",
        ),
    ],
)
async def test_schema_keywords(schema: dict[str, Any], good: str, bad: str, message: str) -> None:
    skill = Skill(name="echo_input", description="Echo", code="return input;", input_schema=schema)
    runtime = SkillRuntime(make_cm(), [skill])
    ok = await runtime.execute(f"return await skill_echo_input({good});")
    assert ok.success, ok.error
    refused = await runtime.execute(f"return await skill_echo_input({bad});")
    assert refused.error is not None
    assert refused.error.message == f"skill_echo_input: invalid input: {message}"


async def test_format_is_an_annotation_unless_the_draft_asserts_it() -> None:
    # Draft 2020-12 (the default) and 2019-09 take `format` as an annotation; drafts 4 to 7
    # assert the formats they define (uuid is not one of them).
    schemas = {
        "email": {"type": "string", "format": "email"},
        "uuid": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "string", "format": "uuid"},
    }
    skills = [
        Skill(name=f"f_{k}", description="Echo", code="return input;", input_schema=v)
        for k, v in schemas.items()
    ]
    runtime = SkillRuntime(make_cm(), skills)
    result = await runtime.execute("return [await skill_f_email('ann'), await skill_f_uuid('123')];")
    assert result.success, result.error
    assert result.result == ["ann", "123"]


async def test_defaults_are_filled_in_a_copy_of_the_input() -> None:
    schema = {
        "type": "object",
        "properties": {
            "q": {"type": "string"},
            "limit": {"type": "integer", "default": 10},
            "opts": {"type": "object", "properties": {"deep": {"type": "boolean", "default": True}}},
            "tags": {"type": "array", "default": []},
        },
        "required": ["q"],
    }
    skill = Skill(name="echo_input", description="Echo", code="return input;", input_schema=schema)
    runtime = SkillRuntime(make_cm(), [skill])
    result = await runtime.execute(
        "const arg = { q: 'x', opts: {} };\nconst out = await skill_echo_input(arg);\nreturn [out, arg];"
    )
    assert result.result == [
        {"q": "x", "opts": {}, "limit": 10, "tags": []},  # top-level defaults only, as for tools
        {"q": "x", "opts": {}},  # the caller's object is left as it was
    ]
    given = await runtime.execute("return await skill_echo_input({ q: 'y', limit: 3 });")
    assert given.result == {"q": "y", "limit": 3, "tags": []}


async def test_events_come_before_execution_finished(store: MemorySkillStore) -> None:
    runtime = await runtime_for(store)
    events: list[codemode.Event] = []
    result = await runtime.execute(
        "const q = await skill_quadruple({ n: 1 });\n"
        "try { await skill_double({ n: 'x' }); } catch (e) {}\n"
        "console.log('hi');\n"
        "return q;",
        tool_call_id="call_7",
        on_event=events.append,
    )
    assert result.success
    names = [e.name for e in events]
    assert names[0] == "code_mode:execution_started"
    assert names[-1] == "code_mode:execution_finished"
    skill_events = [(e.name, e.value["skill"]) for e in events if e.name.startswith("code_mode:skill_")]
    assert skill_events == [
        (SKILL_CALL, "quadruple"),
        (SKILL_CALL, "double"),
        (SKILL_RESULT, "double"),
        (SKILL_CALL, "double"),
        (SKILL_RESULT, "double"),
        (SKILL_RESULT, "quadruple"),
        (SKILL_CALL, "double"),
        (SKILL_ERROR, "double"),
    ]
    assert all(e.value["toolCallId"] == "call_7" for e in events)
    consoles = [e.value["text"] for e in events if e.name == "code_mode:console"]
    assert consoles == ["hi"]
    calls = [e.value for e in events if e.name == SKILL_CALL]
    assert calls[0]["input"] == {"n": 1}
    results = [e.value for e in events if e.name == SKILL_RESULT]
    assert results[-1]["result"] == 4
    error = next(e.value for e in events if e.name == SKILL_ERROR)
    assert error["error"] == "skill_double: invalid input: input.n must be number"


async def test_failed_execution_event_carries_the_mapped_error(store: MemorySkillStore) -> None:
    runtime = await runtime_for(store)
    events: list[codemode.Event] = []
    await runtime.execute("return await skill_quadruple({ n: -1 });", on_event=events.append)
    finished = events[-1]
    assert finished.name == "code_mode:execution_finished"
    assert finished.value["error"]["line"] == 3
    assert "in skill quadruple" in finished.value["error"]["message"]


async def test_syntax_errors_are_the_models_own(store: MemorySkillStore) -> None:
    runtime = await runtime_for(store)
    result = await runtime.execute("const x = await skill_double({ n: 1 }\nreturn x;")
    assert result.error is not None
    assert (result.error.kind, result.error.line, result.error.column) == ("syntax", 2, 1)


async def test_typescript_in_skills_and_program_maps_positions() -> None:
    skill = Skill(
        name="colors",
        description="An enum in a skill",
        code="enum C { Red, Green }\nconst x: number = input.n;\nif (x > 1) throw new Error('big');\nreturn C.Green;",
        input_schema=NUMBER_IN,
    )
    runtime = SkillRuntime(make_cm(), [skill])
    ok = await runtime.execute(
        "enum D { A }\nconst y: number = await skill_colors({ n: 0 });\nreturn y + D.A;"
    )
    assert ok.success and ok.result == 1
    failed = await runtime.execute("enum D { A }\nreturn await skill_colors({ n: 2 });")
    assert failed.error is not None
    assert (failed.error.line, failed.error.column) == (3, 22)


async def test_declarations_include_the_skills(store: MemorySkillStore) -> None:
    runtime = await runtime_for(store)
    declarations = runtime.declarations
    assert (
        "declare function skill_double(input: SkillDoubleInput): Promise<SkillDoubleOutput>;" in declarations
    )
    assert "declare function skill_quadruple(input: SkillQuadrupleInput): Promise<SkillQuadrupleOutput>;" in (
        declarations
    )
    assert "/** Double a number with the add tool */" in declarations
    assert "type SkillQuadrupleOutput = number;" in declarations


async def test_promotion_after_enough_successes_with_the_relaxed_strategy(store: MemorySkillStore) -> None:
    runtime = await runtime_for(store, trust=TrustStrategy.relaxed())
    for n in range(2):
        assert (await runtime.execute(f"return await skill_double({{ n: {n} }});")).success
    assert runtime.skills["double"].trust_level == "untrusted"
    assert (await runtime.execute("return await skill_double({ n: 2 });")).success
    assert runtime.skills["double"].trust_level == "provisional"  # 3 runs, 100 %
    stored = await store.get("double")
    assert stored is not None and stored.trust_level == "provisional"
    # calling it many times in one execution is one more run, not seven
    result = await runtime.execute("for (let i = 0; i < 7; i++) await skill_double({ n: i }); return 1;")
    assert result.success
    assert runtime.skills["double"].trust_level == "provisional"  # 4 runs
    for n in range(6):
        assert (await runtime.execute(f"return await skill_double({{ n: {n} }});")).success
    assert runtime.skills["double"].trust_level == "trusted"  # 10 runs


async def test_the_direct_skill_tool(store: MemorySkillStore) -> None:
    runtime = await runtime_for(store)
    tool = runtime.skill_tool("quadruple")
    assert tool.name == "quadruple"
    assert tool.description == "Four times a number"
    assert tool.input_schema == NUMBER_IN
    assert await tool.call({"n": 2}) == {"success": True, "result": 8, "logs": []}
    failed = await tool.call({"n": -1})
    assert failed["success"] is False and failed["error"]["line"] == 3
    invalid = await tool.call({"n": "x"})
    assert invalid["error"]["kind"] == "invalid_args"
    quadruple = await store.get("quadruple")
    assert quadruple is not None and (quadruple.stats.executions, quadruple.stats.successes) == (2, 1)


async def test_approve_is_consulted_before_an_untrusted_skill_runs(store: MemorySkillStore) -> None:
    asked: list[str] = []

    async def approve(skill: Skill) -> bool:
        asked.append(skill.name)
        return skill.name == "double"

    runtime = await runtime_for(store, approve=approve)
    assert (await runtime.execute("return (await skill_double({ n: 1 })).value;")).result == 2
    assert asked == ["double"]
    asked.clear()
    refused = await runtime.execute("return await skill_quadruple({ n: 1 });")
    assert sorted(asked) == ["double", "quadruple"]
    assert refused.error is not None
    assert refused.error.name == "SkillError"
    assert refused.error.message == "skill_quadruple: not approved to run"
    # a skill the program does not mention is not approved either (no dynamic way around)
    asked.clear()
    sneaky = await runtime.execute("return await globalThis.eval('skill_' + 'quadruple')({ n: 1 });")
    assert not sneaky.success
    assert asked == []
    trusted = TrustStrategy.always_trusted()
    always = MemorySkillStore(trust=trusted)
    await always.save(DOUBLE)
    skill = await always.get("double")
    assert skill is not None
    asked.clear()
    runtime = SkillRuntime(make_cm(), [skill], store=always, approve=approve)
    assert (await runtime.execute("return await skill_double({ n: 1 });")).success
    assert asked == []  # trusted skills run without asking


async def test_missing_dependency_rejects_with_a_message() -> None:
    runtime = SkillRuntime(make_cm(), [QUADRUPLE])  # double is not loaded
    result = await runtime.execute("return await skill_quadruple({ n: 1 });")
    assert result.error is not None
    assert result.error.message.startswith("skill_double: there is no such skill")


async def test_a_skill_that_does_not_parse_is_left_out() -> None:
    bad = Skill(name="bad", description="Broken", code="return {;")
    runtime = SkillRuntime(make_cm(), [bad, DOUBLE])
    assert sorted(runtime.skills) == ["double"]
    assert (await runtime.execute("return (await skill_double({ n: 2 })).value;")).result == 4


async def test_runs_are_recorded_in_sqlite(tmp_path: Path) -> None:
    async with SQLiteSkillStore(tmp_path / "skills.db", trust=TrustStrategy.relaxed()) as sqlite:
        await sqlite.save(DOUBLE)
        skill = await sqlite.get("double")
        assert skill is not None
        runtime = SkillRuntime(make_cm(), [skill], store=sqlite)
        for n in range(4):
            result = await runtime.execute(
                f"await skill_double({{ n: {n} }}); return await skill_double({{ n: 1 }});"
            )
            assert result.success
        stored = await sqlite.get("double")
        assert stored is not None
        assert stored.stats.executions == 4 and stored.trust_level == "provisional"


async def test_every_driver(driver: codemode.drivers.IsolateDriver, store: MemorySkillStore) -> None:
    cm = codemode.create_code_mode(
        tools=[codemode.Tool.from_schema("add", "Add", {"type": "object"}, None, _add)], driver=driver
    )
    skills = [s for s in [await store.get("double"), await store.get("quadruple")] if s is not None]
    runtime = SkillRuntime(cm, skills, store=store)
    try:
        assert (await runtime.execute("return await skill_quadruple({ n: 2 });")).result == 8
        failed = await runtime.execute("return await skill_quadruple({ n: -2 });")
        assert failed.error is not None and failed.error.line == 3
        assert "(in skill quadruple line 3, column " in failed.error.message
        invalid = await runtime.execute("return await skill_quadruple({ n: 'x' });")
        assert invalid.error is not None and invalid.error.kind == "invalid_args"
        quadruple = await store.get("quadruple")
        assert quadruple is not None and quadruple.stats.executions == 2
    finally:
        await cm.aclose()


# -- runs cut off by the execution's limits

SPIN = Skill(name="spin", description="Never returns", code="let i = 0;\nwhile (true) { i++; }\nreturn i;")
NAP = Skill(
    name="nap",
    description="Waits ten seconds",
    code="await new Promise((resolve) => setTimeout(resolve, 10000));\nreturn 1;",
)
HOG = Skill(
    name="hog",
    description="Allocates without end",
    code="const kept = [];\nwhile (true) { kept.push(new Array(100000).fill(input.n)); }",
)


async def cut_off_runtime(
    driver: codemode.drivers.IsolateDriver | None = None, **limits: Any
) -> tuple[SkillRuntime, MemorySkillStore]:
    store = MemorySkillStore()
    for skill in (DOUBLE, SPIN, NAP, HOG):
        await store.save(skill)
    cm = codemode.create_code_mode(
        tools=[codemode.Tool.from_schema("add", "Add", {"type": "object"}, None, _add)],
        driver=driver,
        **{"timeout": 0.3, **limits},
    )
    skills = [await store.get(name) for name in ("double", "spin", "nap", "hog")]
    return SkillRuntime(cm, [s for s in skills if s is not None], store=store), store


async def stats_of(store: MemorySkillStore, name: str) -> tuple[int, int]:
    skill = await store.get(name)
    assert skill is not None
    return skill.stats.executions, skill.stats.successes


@engine_gap("cloudflare", reason=LOCAL_WORKERD, run=False)
async def test_a_skill_cut_off_by_the_timeout_is_a_failed_run(driver: codemode.drivers.IsolateDriver) -> None:
    runtime, store = await cut_off_runtime(driver)
    try:
        assert await stats_of(store, "spin") == (0, 0)
        events: list[codemode.Event] = []
        result = await runtime.execute(
            "console.log('start');\nconst a = await skill_double({ n: 1 });\nreturn await skill_spin({});",
            on_event=events.append,
        )
        assert result.error is not None and result.error.kind == "timeout"
        assert result.logs == ["start"]  # the runtime's lines are taken out
        assert await stats_of(store, "spin") == (1, 0)  # cut off while running: failed
        assert await stats_of(store, "double") == (1, 1)  # it had returned: a success
        assert runtime.skills["spin"].stats.executions == 1
        names = [e.name for e in events]
        assert names[-2:] == [SKILL_ERROR, "code_mode:execution_finished"]
        assert events[-2].value["skill"] == "spin"
        assert events[-2].value["error"].startswith("cut off while running (TimeoutError: ")
        assert events[-1].value["error"]["kind"] == "timeout"
        assert not any(
            e.name == "code_mode:console" and "@@codemode" in str(e.value.get("text")) for e in events
        )
    finally:
        await runtime.cm.aclose()


async def test_a_hang_in_the_programs_own_code_blames_no_skill() -> None:
    runtime, store = await cut_off_runtime()
    result = await runtime.execute("await skill_double({ n: 1 });\nwhile (true) {}")
    assert result.error is not None and result.error.kind == "timeout"
    assert await stats_of(store, "double") == (1, 1)


async def test_a_skill_waiting_past_the_timeout_is_a_failed_run() -> None:
    runtime, store = await cut_off_runtime()
    result = await runtime.execute(
        "const [a, b] = await Promise.all([skill_nap({}), skill_nap({}), skill_double({ n: 2 })]);"
    )
    assert result.error is not None and result.error.kind == "timeout"
    assert await stats_of(store, "nap") == (1, 0)  # both calls were still waiting: one failed run
    assert await stats_of(store, "double") == (1, 1)


async def test_a_skill_cut_off_by_cancellation_is_a_failed_run() -> None:
    runtime, store = await cut_off_runtime(timeout=30)
    events: list[codemode.Event] = []
    with anyio.move_on_after(0.3) as scope:
        await runtime.execute(
            "await skill_double({ n: 3 });\nreturn await skill_nap({});", on_event=events.append
        )
    assert scope.cancelled_caught
    assert await stats_of(store, "nap") == (1, 0)
    assert await stats_of(store, "double") == (1, 1)
    assert [e.name for e in events][-2:] == [SKILL_ERROR, "code_mode:execution_finished"]
    assert events[-1].value["error"] == {"kind": "cancelled"}


async def test_a_skill_stopped_by_the_memory_limit_is_a_failed_run() -> None:
    runtime, store = await cut_off_runtime(timeout=10, memory_limit_mb=16)
    result = await runtime.execute("return await skill_hog({ n: 1 });")
    assert result.error is not None and result.error.kind == "memory"
    assert await stats_of(store, "hog") == (1, 0)


async def test_a_long_cut_off_execution_records_one_run_per_skill() -> None:
    runtime, store = await cut_off_runtime(timeout=1, max_log_lines=10)
    result = await runtime.execute(
        "for (let i = 0; i < 150; i++) await skill_double({ n: i });\nreturn await skill_spin({});"
    )
    assert result.error is not None and result.error.kind == "timeout"
    assert result.logs == []  # the reports are not console lines, nor count against its limits
    assert await stats_of(store, "double") == (1, 1)
    assert await stats_of(store, "spin") == (1, 0)


# -- nothing the program does can pass for a run


async def test_a_program_cannot_forge_runs(store: MemorySkillStore) -> None:
    runtime = SkillRuntime(make_cm(), [DOUBLE], store=store)
    before = await stats_of(store, "double")
    forgeries = [
        # the old console markers, and every report format
        "for (const t of ['@@codemode:skill-runs@@{\"r\":[1,1,1]}', 'r0', 'r0 1 {}', 'h'])"
        " { console.debug(t); console.log(t); }\nreturn 1",
        # the channel parameter, arguments, and the runtime's names are gone by the model's code
        "return [typeof __codemode_channel, typeof arguments[0], typeof __cm_b0_0]",
        # a hoisted declaration of the channel's name takes it first: the execution fails
        "function __codemode_channel(text) {}\nreturn await skill_double({ n: 1 })",
        # a var of that name is assigned only after the runtime took the channel: harmless
        "var __codemode_channel = (t) => 0;\nreturn await skill_double({ n: 1 })",
    ]
    results = [await runtime.execute(code) for code in forgeries]
    assert results[0].success
    assert results[1].result == ["undefined", "undefined", "undefined"]
    hijacked = results[2].error
    assert hijacked is not None and (hijacked.kind, hijacked.name) == ("runtime", "SyntaxError")
    assert "__codemode_channel is reserved" in hijacked.message
    assert results[3].result == {"value": 2}
    assert await stats_of(store, "double") == (before[0] + 1, before[1] + 1)  # only the real run


async def test_skill_events_are_live(driver: codemode.drivers.IsolateDriver) -> None:
    """A skill's call event reaches the host while a tool the skill calls is running."""
    seen: list[list[str]] = []
    events: list[codemode.Event] = []

    async def probe(args: dict[str, Any]) -> dict[str, Any]:
        await anyio.sleep(0.05)  # the step's events are delivered meanwhile
        seen.append([e.name for e in events])
        return {"ok": True}

    cm = codemode.create_code_mode(
        tools=[
            codemode.Tool.from_schema("probe", "Records the events so far", {"type": "object"}, None, probe)
        ],
        driver=driver,
    )
    calls_probe = Skill(
        name="calls_probe", description="Calls the probe", code="return await external_probe({});"
    )
    runtime = SkillRuntime(cm, [calls_probe])
    try:
        result = await runtime.execute("return await skill_calls_probe({});", on_event=events.append)
        assert result.result == {"ok": True}
        assert seen and seen[0][-2:] == [SKILL_CALL, "code_mode:external_call"]
        names = [e.name for e in events]
        assert names.index(SKILL_RESULT) < names.index("code_mode:execution_finished")
    finally:
        await cm.aclose()


async def test_skill_events_become_ag_ui_custom_events(store: MemorySkillStore) -> None:
    pytest.importorskip("ag_ui.core")
    from codemode.integrations.ag_ui import to_ag_ui

    runtime = await runtime_for(store)
    events: list[codemode.Event] = []
    result = await runtime.execute(
        "const q = await skill_quadruple({ n: 1 });\ntry { await skill_double({ n: 'x' }) } catch (e) {}\nreturn q",
        on_event=events.append,
        tool_call_id="call-1",
    )
    assert result.success, result.error
    custom = [to_ag_ui(event) for event in events]
    names = [event.name for event in custom]
    assert SKILL_CALL in names and SKILL_RESULT in names and SKILL_ERROR in names
    for event in custom:
        assert event.value["toolCallId"] == "call-1"
        event.model_dump_json()  # serialisable as the AG-UI stream sends it
