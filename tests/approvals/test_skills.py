"""Approvals and skills: a program that calls skills pauses and resumes like any other (the
call that needs approval may be in the program or in a skill's code), and ``approve="ask"``
puts untrusted skills before a person through the same pause; on every engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import codemode
from codemode.approvals import MemoryExecutionStore
from codemode.events import Event
from codemode.skills import MemorySkillStore, Skill, SkillRuntime, SQLiteSkillStore, with_skills

from . import shop
from .test_approvals import _resume_elsewhere

pytestmark = pytest.mark.anyio

AMOUNT_OF = Skill(
    name="amount_of",
    description="An order's amount",
    code="return (await external_get_order({ order_id: input.id })).amount",
    trust_level="trusted",
)
REFUND_ORDER = Skill(
    name="refund_order",
    description="Refund an order in full",
    code="const o = await external_get_order({ order_id: input.id });\n"
    "return await external_refund({ order_id: o.id, amount: o.amount })",
    trust_level="trusted",
)
STAMP = Skill(
    name="stamp",
    description="A time and a random number",
    code="return { t: Date.now(), r: Math.random(), d: new Date().toISOString() }",
    trust_level="trusted",
)


@pytest.fixture(autouse=True)
def _fresh_refunds() -> None:
    shop.REFUNDED.clear()


@pytest.fixture
def cm(driver: codemode.drivers.IsolateDriver) -> codemode.CodeMode:
    return codemode.create_code_mode(
        shop.TOOLS, driver=driver, timeout=10, execution_store=MemoryExecutionStore(), approval_key=shop.KEY
    )


async def _runtime(
    cm: codemode.CodeMode, *skills: Skill, **options: Any
) -> tuple[SkillRuntime, MemorySkillStore]:
    store = MemorySkillStore()
    saved = []
    for skill in skills:
        await store.save(skill)
        saved.append(await store.set_trust(skill.name, skill.trust_level))  # a save starts untrusted
    return SkillRuntime(cm, saved, store=store, **options), store


async def test_a_program_calling_skills_pauses_on_its_own_call_and_resumes(cm: codemode.CodeMode) -> None:
    runtime, store = await _runtime(cm, AMOUNT_OF)
    code = """
    const amount = await skill_amount_of({ id: "o-3" })
    try { return await external_refund({ order_id: "o-3", amount }) } catch (e) { return e.name + ": " + e.message }
    """
    first = await runtime.execute(code)
    assert first.paused is not None and shop.REFUNDED == []
    assert [(p.call_id, p.function, p.kind) for p in first.paused.pending] == [(2, "external_refund", "tool")]
    # a paused run is not over: the skill's run is recorded when it finishes, once
    assert (await store.get("amount_of")).stats.executions == 0  # type: ignore[union-attr]
    done = await cm.resume(first.paused.token, {2: codemode.approve()})
    assert done.success and done.result == "refunded o-3" and shop.REFUNDED == ["o-3"]
    stats = (await store.get("amount_of")).stats  # type: ignore[union-attr]
    assert (stats.executions, stats.successes) == (1, 1)


async def test_a_call_needing_approval_inside_a_skill_pauses_too(cm: codemode.CodeMode) -> None:
    """The attack by indirection: the refund is in a skill's code, not in the program. It waits
    for a person like any other call; rejected, it rejects inside the skill, and nothing is
    refunded."""
    runtime, store = await _runtime(cm, REFUND_ORDER)
    events: list[Event] = []
    first = await runtime.execute('return await skill_refund_order({ id: "o-3" })', on_event=events.append)
    assert first.paused is not None and shop.REFUNDED == []
    assert [(p.function, p.args) for p in first.paused.pending] == [
        ("external_refund", {"order_id": "o-3", "amount": 900.0})
    ]
    names = [e.name for e in events]
    assert "code_mode:skill_call" in names and names[-1] == "code_mode:execution_paused"
    assert "code_mode:skill_error" not in names  # the pause is not a failure of the skill
    resumed: list[Event] = []
    done = await cm.resume(first.paused.token, {2: codemode.reject("too much")}, on_event=resumed.append)
    assert not done.success and done.error is not None
    assert done.error.message.startswith("external_refund was rejected by a person: too much")
    assert shop.REFUNDED == []
    assert [e.value["skill"] for e in resumed if e.name == "code_mode:skill_error"] == ["refund_order"]
    stats = (await store.get("refund_order")).stats  # type: ignore[union-attr]
    assert (stats.executions, stats.successes) == (1, 0)


async def test_a_skill_sees_the_same_time_and_random_numbers_on_resume(cm: codemode.CodeMode) -> None:
    runtime, _ = await _runtime(cm, STAMP)
    code = """
    const before = await skill_stamp({})
    console.log(JSON.stringify(before))
    await external_refund({ order_id: "o-2", amount: 250 })
    return { before, after: await skill_stamp({}) }
    """
    first = await runtime.execute(code)
    assert first.paused is not None
    done = await cm.resume(first.paused.token, {1: codemode.approve()})
    assert done.success, done.error
    assert done.result["before"] == json.loads(first.logs[0])  # replayed, not read again
    assert done.result["after"]["t"] >= done.result["before"]["t"]
    assert done.result["after"]["r"] != done.result["before"]["r"]


async def test_a_resumed_run_keeps_the_skills_it_started_with(cm: codemode.CodeMode) -> None:
    """The run keeps the skills' code as it was: a new version saved meanwhile does not change
    the program being replayed (it would diverge from its log)."""
    runtime, store = await _runtime(cm, REFUND_ORDER)
    first = await runtime.execute('return await skill_refund_order({ id: "o-2" })')
    assert first.paused is not None
    await store.save(REFUND_ORDER.model_copy(update={"code": 'return "changed"'}))
    done = await cm.resume(first.paused.token, {2: codemode.approve()})
    assert done.success and done.result == "refunded o-2"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_skill_run_paused_here_resumes_in_another_process(tmp_path: Path) -> None:
    """The other process knows the tools, not the skills: the run carries them."""
    from codemode.approvals import SQLiteExecutionStore

    async with SQLiteExecutionStore(tmp_path / "runs.db") as store:
        cm = codemode.create_code_mode(shop.TOOLS, execution_store=store, approval_key=shop.KEY)
        runtime, _ = await _runtime(cm, REFUND_ORDER, AMOUNT_OF)
        code = """
        const total = (await skill_amount_of({ id: "o-1" })) + (await skill_amount_of({ id: "o-2" }))
        return [total, await skill_refund_order({ id: "o-2" })]
        """
        first = await runtime.execute(code)
    assert first.paused is not None and [p.call_id for p in first.paused.pending] == [4]
    done = _resume_elsewhere(f"sqlite:///{tmp_path / 'runs.db'}", first.paused.token, {4: "approve"})
    assert done["output"] == {"success": True, "result": [290.0, "refunded o-2"], "logs": []}
    assert done["refunded"] == ["o-2"]


async def test_an_example_run_refuses_a_call_that_needs_approval(cm: codemode.CodeMode) -> None:
    """Runs that cannot pause (a skill's example run, the playground's run button) refuse the
    call with a ToolError the program can catch; the tool never runs."""
    runtime, _ = await _runtime(cm, REFUND_ORDER, pausing=False)
    result = await runtime.execute('return await skill_refund_order({ id: "o-3" })')
    assert result.paused is None and not result.success and result.error is not None
    assert result.error.message.startswith(
        "external_refund needs a person's approval, which this execution cannot ask for"
    )
    assert shop.REFUNDED == []
    small = await runtime.execute('return await skill_refund_order({ id: "o-1" })')
    assert small.result == "refunded o-1"


# -- approve="ask": untrusted skills before a person


async def test_ask_pauses_before_the_program_starts_and_counts_the_decisions(cm: codemode.CodeMode) -> None:
    double = Skill(name="double", description="Double a number", code="return input.n * 2")
    runtime, store = await _runtime(cm, double, AMOUNT_OF, approve="ask")
    code = """
    const total = await skill_amount_of({ id: "o-1" })
    try { return [total, await skill_double({ n: total })] } catch (e) { return [total, e.name + ": " + e.message] }
    """
    first = await runtime.execute(code, tool_call_id="call_7")
    assert first.paused is not None and first.tool_calls == 0  # nothing ran
    [pending] = first.paused.pending
    assert (pending.call_id, pending.kind, pending.function) == (-1, "skill", "skill_double")
    assert pending.args == {
        "name": "double",
        "version": 1,
        "description": "Double a number",
        "code": "return input.n * 2",
    }
    assert "skill_double (call -1)" in first.to_tool_output()["message"]
    with pytest.raises(codemode.ResumeError, match="approve\\(\\) or reject\\(\\)"):
        await cm.resume(first.paused.token, {-1: codemode.override(3)})
    done = await cm.resume(first.paused.token, {"-1": codemode.approve()})
    assert done.success and done.result == [40.0, 80.0]
    stats = (await store.get("double")).stats  # type: ignore[union-attr]
    assert (stats.approvals, stats.rejections, stats.executions, stats.successes) == (1, 0, 1, 1)

    again = await runtime.execute(code)
    assert again.paused is not None
    refused = await cm.resume(again.paused.token, {-1: codemode.reject("not today")})
    assert refused.success and refused.result == [40.0, "SkillError: skill_double: not approved to run"]
    stats = (await store.get("double")).stats  # type: ignore[union-attr]
    assert (stats.approvals, stats.rejections, stats.executions) == (1, 1, 1)  # a refused skill did not run
    # trusted skills are never asked; a program naming no untrusted skill runs at once
    plain = await runtime.execute('return await skill_amount_of({ id: "o-2" })')
    assert plain.success and plain.result == 250.0


async def test_ask_then_a_tool_pause_in_the_same_run(cm: codemode.CodeMode) -> None:
    """The two kinds of pause follow each other in one run: the skill first, then its call."""
    untrusted = REFUND_ORDER.model_copy(update={"trust_level": "untrusted"})
    runtime, store = await _runtime(cm, untrusted, approve="ask")
    first = await runtime.execute('return await skill_refund_order({ id: "o-2" })')
    assert first.paused is not None and first.paused.pending[0].kind == "skill"
    second = await cm.resume(first.paused.token, {-1: codemode.approve()})
    assert second.paused is not None and [p.function for p in second.paused.pending] == ["external_refund"]
    done = await cm.resume(second.paused.token, {second.paused.pending[0].call_id: codemode.approve()})
    assert done.success and done.result == "refunded o-2"
    stats = (await store.get("refund_order")).stats  # type: ignore[union-attr]
    assert (stats.approvals, stats.executions, stats.successes) == (1, 1, 1)


async def test_ask_needs_a_code_mode_that_can_pause(driver: codemode.drivers.IsolateDriver) -> None:
    cm = codemode.create_code_mode([shop.get_order], driver=driver)
    store = MemorySkillStore()
    with pytest.raises(ValueError, match="able to pause"):
        await with_skills(cm, store=store, messages=[], approve="ask")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_ask_through_with_skills_resumes_in_a_new_process_state(tmp_path: Path) -> None:
    """with_skills(approve="ask") on persistent stores: the decision resumes the run through a
    code mode built afresh (as in another request), and lands in the skill store's stats."""
    from codemode.approvals import SQLiteExecutionStore

    runs, skills_db = tmp_path / "runs.db", tmp_path / "skills.db"
    async with SQLiteSkillStore(skills_db) as skills:
        await skills.save(Skill(name="triple", description="Triple a number", code="return input.n * 3"))
    async with SQLiteExecutionStore(runs) as store, SQLiteSkillStore(skills_db) as skills:
        cm = codemode.create_code_mode(shop.TOOLS, execution_store=store, approval_key=shop.KEY)
        context = await with_skills(
            cm, store=skills, messages=[{"role": "user", "content": "triple"}], approve="ask"
        )
        first = await context.runtime.execute("return await skill_triple({ n: 14 })")
    assert first.paused is not None
    async with SQLiteExecutionStore(runs) as store, SQLiteSkillStore(skills_db) as skills:
        cm = codemode.create_code_mode(shop.TOOLS, execution_store=store, approval_key=shop.KEY)
        await with_skills(cm, store=skills, messages=[], approve="ask")  # names the skill store
        done = await cm.resume(first.paused.token, {-1: codemode.approve()})
        assert done.success and done.result == 42
        stats = (await skills.get("triple")).stats  # type: ignore[union-attr]
        assert (stats.approvals, stats.executions) == (1, 1)
