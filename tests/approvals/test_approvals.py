"""Human approval inside programs: a call that needs approval pauses the execution, a signed
token resumes it by deterministic replay, with each decision applied; on every engine."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import codemode
from codemode.approvals import MemoryExecutionStore
from codemode.events import Event

from . import shop
from .conftest import StoreLocation

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_refunds() -> None:
    shop.REFUNDED.clear()


@pytest.fixture
def store() -> MemoryExecutionStore:
    return MemoryExecutionStore()


@pytest.fixture
def cm(driver: codemode.drivers.IsolateDriver, store: MemoryExecutionStore) -> codemode.CodeMode:
    return codemode.create_code_mode(
        shop.TOOLS, driver=driver, timeout=10, execution_store=store, approval_key=shop.KEY
    )


async def test_calls_needing_approval_in_one_step_pause_the_run_together(
    cm: codemode.CodeMode, store: MemoryExecutionStore
) -> None:
    events: list[Event] = []
    result = await cm.execute(shop.REFUND_ALL, tool_call_id="call_1", on_event=events.append)
    paused = result.paused
    assert paused is not None and not result.success and result.error is None
    assert [(p.call_id, p.tool, p.args) for p in paused.pending] == [
        (5, "refund", {"order_id": "o-2", "amount": 250.0}),
        (6, "refund", {"order_id": "o-3", "amount": 900.0}),
    ]
    assert shop.REFUNDED == ["o-1"]  # the small refund needs no approval: it ran
    assert result.logs == ["refunding 3 orders"] and result.tool_calls == 6
    names = [e.name for e in events]
    assert names[-1] == "code_mode:execution_paused" and "code_mode:execution_finished" not in names
    assert events[-1].value["toolCallId"] == "call_1"
    assert [e["name"] for e in paused.events] == names
    output = result.to_tool_output()
    assert output["paused"] is True and "external_refund (call 5)" in output["message"]
    record = await store.load(paused.run_id)
    assert record is not None and record.status == "paused" and record.pending == [5, 6]


async def test_resume_applies_each_decision(cm: codemode.CodeMode) -> None:
    first = await cm.execute(shop.REFUND_ALL)
    assert first.paused is not None
    events: list[Event] = []
    result = await cm.resume(
        first.paused.token,
        {5: codemode.approve(), "6": codemode.reject("over the monthly limit")},
        on_event=events.append,
    )
    assert result.success, result.error
    assert result.result == [
        "refunded o-1",
        "refunded o-2",
        "failed: external_refund was rejected by a person: over the monthly limit",
    ]
    assert shop.REFUNDED == ["o-1", "o-2"]  # each call ran once: the replay answered o-1 from the log
    # the resumed execution's events are the new ones only
    calls = [e.value["args"]["order_id"] for e in events if e.name == "code_mode:external_call"]
    assert calls == []
    results = [e.value["result"] for e in events if e.name == "code_mode:external_result"]
    assert results == ["refunded o-2"]
    assert events[-1].name == "code_mode:execution_finished" and events[-1].value["success"] is True


async def test_override_answers_the_call_without_running_it(cm: codemode.CodeMode) -> None:
    first = await cm.execute(shop.REFUND_ALL)
    assert first.paused is not None
    result = await cm.resume(first.paused.token, {5: codemode.override("credit note"), 6: codemode.approve()})
    assert result.result == ["refunded o-1", "credit note", "refunded o-3"]
    assert shop.REFUNDED == ["o-1", "o-3"]


async def test_a_run_pauses_again_and_date_and_random_replay_the_same(cm: codemode.CodeMode) -> None:
    code = """
    const before = { now: Date.now(), date: new Date().toISOString(), random: Math.random() }
    const a = await external_refund({ order_id: "o-2", amount: 250 })
    const middle = { now: Date.now(), random: Math.random() }
    const b = await external_refund({ order_id: "o-3", amount: 900 })
    return { before, middle, after: { now: Date.now(), random: Math.random() }, a, b }
    """
    first = await cm.execute(code)
    assert first.paused is not None and [p.call_id for p in first.paused.pending] == [1]
    time.sleep(0.02)
    second = await cm.resume(first.paused.token, {1: codemode.approve()})
    assert second.paused is not None and [p.call_id for p in second.paused.pending] == [2]
    time.sleep(0.02)
    done = await cm.resume(second.paused.token, {2: codemode.approve()})
    assert done.success, done.error
    value = done.result
    assert (value["a"], value["b"]) == ("refunded o-2", "refunded o-3")
    # the values read before each pause are the ones the program saw then
    assert abs(value["before"]["now"] - time.time() * 1000) > 30
    assert value["middle"]["now"] >= value["before"]["now"]
    assert value["after"]["now"] - value["middle"]["now"] >= 15
    randoms = [value[k]["random"] for k in ("before", "middle", "after")]
    assert len(set(randoms)) == 3 and all(0 <= r < 1 for r in randoms)
    assert shop.REFUNDED == ["o-2", "o-3"]


async def test_a_token_is_single_use(cm: codemode.CodeMode) -> None:
    first = await cm.execute(shop.REFUND_ALL)
    assert first.paused is not None
    decisions = {5: codemode.approve(), 6: codemode.approve()}
    await cm.resume(first.paused.token, decisions)
    with pytest.raises(codemode.ResumeError, match="already resumed"):
        await cm.resume(first.paused.token, decisions)
    assert sorted(shop.REFUNDED) == ["o-1", "o-2", "o-3"]  # the approved two run at once


def _tampered(token: str) -> str:
    prefix, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["v"] += 1
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{prefix}.{forged}.{signature}"


async def test_forged_altered_and_expired_tokens_are_refused(
    driver: codemode.drivers.IsolateDriver, cm: codemode.CodeMode, store: MemoryExecutionStore
) -> None:
    first = await cm.execute(shop.REFUND_ALL)
    assert first.paused is not None
    token = first.paused.token
    decisions = {5: codemode.approve(), 6: codemode.approve()}
    other_key = codemode.create_code_mode(
        shop.TOOLS, driver=driver, execution_store=store, approval_key="another key, 16 bytes+"
    )
    for bad, cm_used in [
        (_tampered(token), cm),
        (token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), cm),
        ("cm1.e30.", cm),
        ("not a token", cm),
        (token, other_key),
    ]:
        with pytest.raises(codemode.InvalidResumeToken):
            await cm_used.resume(bad, decisions)
    expiring = codemode.create_code_mode(
        shop.TOOLS, driver=driver, execution_store=store, approval_key=shop.KEY, token_ttl=0.05
    )
    paused = (await expiring.execute(shop.REFUND_ALL)).paused
    assert paused is not None
    time.sleep(0.1)
    with pytest.raises(codemode.InvalidResumeToken, match="expired"):
        await expiring.resume(paused.token, decisions)
    assert shop.REFUNDED == ["o-1", "o-1"]  # nothing else ran
    # none of it spent the genuine token
    assert (await cm.resume(token, decisions)).success


async def test_decisions_must_match_the_pending_calls(cm: codemode.CodeMode) -> None:
    first = await cm.execute(shop.REFUND_ALL)
    assert first.paused is not None
    token = first.paused.token
    for decisions, message in [
        ({5: codemode.approve()}, "no decision on call 6"),
        ({5: codemode.approve(), 6: codemode.approve(), 7: codemode.approve()}, "call 7 is not waiting"),
        ({5: codemode.approve(), 6: "yes"}, "not approve"),
    ]:
        with pytest.raises(codemode.ResumeError, match=message):
            await cm.resume(token, decisions)  # type: ignore[arg-type]
    # a refused resume does not spend the token
    result = await cm.resume(token, {5: codemode.approve(), 6: codemode.approve()})
    assert result.success


async def test_a_run_that_diverges_from_its_log_fails_clearly(
    cm: codemode.CodeMode, store: MemoryExecutionStore
) -> None:
    first = await cm.execute(shop.REFUND_ALL)
    assert first.paused is not None
    record = await store.load(first.paused.run_id)
    assert record is not None
    assert [call.index for call in record.calls] == [1, 2, 3, 4, 5, 6]
    record.calls[1].args = {"order_id": "o-9"}  # the log no longer matches the program
    await store.save(record)
    events: list[Event] = []
    result = await cm.resume(
        first.paused.token, {5: codemode.approve(), 6: codemode.approve()}, on_event=events.append
    )
    assert not result.success and result.paused is None
    assert result.error is not None and result.error.name == "ReplayDivergenceError"
    assert "call 2" in result.error.message and "o-9" in result.error.message
    assert events[-1].name == "code_mode:execution_finished" and events[-1].value["success"] is False
    assert shop.REFUNDED == ["o-1"]  # no refund ran on the diverged replay


@codemode.tool
async def slow_quote(order_id: str, ms: int) -> str:
    """A quote that takes ``ms`` milliseconds."""
    import anyio

    await anyio.sleep(ms / 1000)
    return f"quote for {order_id}"


RACE = """
const timeout = (ms: number) => new Promise((resolve) => setTimeout(() => resolve("timed out"), ms))
const slow = await Promise.race([external_slow_quote({ order_id: "o-1", ms: 400 }), timeout(40)])
const fast = await Promise.race([external_slow_quote({ order_id: "o-2", ms: 0 }), timeout(300)])
const refunded = await external_refund({ order_id: "o-3", amount: 900 })
return [slow, fast, refunded]
"""


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_race_between_a_timer_and_a_call_ends_the_same_way_on_resume(
    driver: codemode.drivers.IsolateDriver, store: MemoryExecutionStore
) -> None:
    """The timer won the first race and the call the second; on resume the slow call's answer
    comes from the log at once, yet it waits for the timer that fired before it: the same winners."""
    cm = codemode.create_code_mode(
        [*shop.TOOLS, slow_quote], driver=driver, execution_store=store, approval_key=shop.KEY
    )
    first = await cm.execute(RACE)
    assert first.paused is not None
    record = await store.load(first.paused.run_id)
    assert record is not None and len(record.timers) == 2  # both timers fired before the pause
    done = await cm.resume(first.paused.token, {first.paused.pending[0].call_id: codemode.approve()})
    assert done.success, done.error
    assert done.result == ["timed out", "quote for o-2", "refunded o-3"]
    finished = await store.load(first.paused.run_id)
    assert finished is not None and finished.timers == record.timers


@pytest.mark.parametrize(
    ("logged", "message"),
    [
        ([[0, 1, 5]], "timer 1 did not fire where the run's log has it"),  # logged before the first answer
        ([[0, 3, 5]], "timer 1 fired before what came before it"),  # logged after an answer that is not there
    ],
)
async def test_a_timer_out_of_its_logged_place_fails_clearly(
    cm: codemode.CodeMode, store: MemoryExecutionStore, logged: list[list[int]], message: str
) -> None:
    code = """
    const first = await external_get_order({ order_id: "o-1" })
    await new Promise((resolve) => setTimeout(resolve, 1))
    return await external_refund({ order_id: "o-3", amount: first.amount * 100 })
    """
    first = await cm.execute(code)
    assert first.paused is not None
    record = await store.load(first.paused.run_id)
    assert record is not None and [t[:2] for t in record.timers] == [[0, 2]]  # after the first answer
    record.timers = logged
    record.calls[0].settled = 2 if logged[0][1] == 1 else 1
    await store.save(record)
    result = await cm.resume(first.paused.token, {2: codemode.approve()})
    assert result.error is not None and result.error.name == "ReplayDivergenceError"
    assert message in result.error.message
    assert shop.REFUNDED == []


async def test_a_code_mode_without_approvals_runs_as_before(driver: codemode.drivers.IsolateDriver) -> None:
    cm = codemode.create_code_mode([shop.get_order], driver=driver)
    assert cm.approvals is None
    result = await cm.execute("return (await external_get_order({ order_id: 'o-1' })).amount")
    assert result.result == 40
    with pytest.raises(ValueError, match="no tool that needs approval"):
        await cm.resume("cm1.x.y", {})


def _resume_elsewhere(url: str, token: str, decisions: dict[int, str]) -> dict[str, Any]:
    """Resume in a second Python process (``tests/approvals/shop.py``)."""
    out = subprocess.run(
        [sys.executable, "-m", "tests.approvals.shop", "resume", url, token, json.dumps(decisions)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_run_paused_here_resumes_in_another_process(persistent_location: StoreLocation) -> None:
    """On SQLite and on PostgreSQL: paused in this process, resumed in another one."""
    url = (
        f"sqlite:///{persistent_location.location}"
        if persistent_location.kind == "sqlite"
        else persistent_location.location
    )
    async with persistent_location.open() as store:
        cm = codemode.create_code_mode(shop.TOOLS, execution_store=store, approval_key=shop.KEY)
        first = await cm.execute(shop.REFUND_ALL)
    assert first.paused is not None
    done = _resume_elsewhere(url, first.paused.token, {5: "approve", 6: "reject"})
    assert done["output"]["success"] is True
    assert (
        done["output"]["result"][2] == "failed: external_refund was rejected by a person: not in this process"
    )
    assert done["refunded"] == ["o-2"]  # that process ran only the approved call
    async with persistent_location.open() as store:
        record = await store.load(first.paused.run_id)
        assert record is not None and record.status == "finished" and record.result == done["output"]
        # the spent token is refused here too
        cm = codemode.create_code_mode(shop.TOOLS, execution_store=store, approval_key=shop.KEY)
        with pytest.raises(codemode.ResumeError):
            await cm.resume(first.paused.token, {5: codemode.approve(), 6: codemode.approve()})


async def test_a_program_that_takes_the_replay_channels_name_cannot_pause(
    cm: codemode.CodeMode, store: MemoryExecutionStore
) -> None:
    """The attack: a hoisted declaration named like the report channel runs instead of the
    deterministic prelude (it gets the seed, Math.random stays unseeded), so a resume would
    silently differ. Its first call fails the run clearly, before any tool runs."""
    code = """
    function __codemode_channel(seed: number) { (globalThis as any).leak = seed }
    const r = Math.random()
    await external_refund({ order_id: "o-3", amount: 900 })
    return r
    """
    result = await cm.execute(code)
    assert result.paused is None and result.error is not None
    assert (
        result.error.name == "ReplayDivergenceError"
        and "__codemode_channel is reserved" in result.error.message
    )
    assert shop.REFUNDED == [] and await store.list() == []
    assert (await cm.execute(shop.REFUND_ALL)).paused is not None  # the next execution works
