"""The execution log: ``record_runs=True`` keeps every finished run, and ``codemode runs``
lists, shows and replays them (a replay answers every call from the log)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import codemode
from codemode.approvals import SQLiteExecutionStore

from . import shop

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
const order = await external_get_order({ order_id: "o-1" })
const note = await external_refund({ order_id: order.id, amount: order.amount })
return { note, at: new Date().toISOString(), luck: Math.random() }
"""


def runs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codemode.cli", "runs", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def recorded(path: Path) -> list[codemode.ExecutionResult]:
    async with SQLiteExecutionStore(path) as store:
        cm = codemode.create_code_mode(
            shop.TOOLS, execution_store=store, record_runs=True, approval_key=shop.KEY
        )
        return [await cm.execute(PROGRAM, tool_call_id="call_1"), await cm.execute("return 1 + 1")]


async def test_every_run_is_recorded_and_listed_and_shown(tmp_path: Path) -> None:
    first, second = await recorded(tmp_path / "runs.db")
    assert first.success and second.result == 2
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    listed = runs("list", "--json", "--store", url)
    assert listed.returncode == 0, listed.stderr
    summaries = json.loads(listed.stdout)
    assert [s["status"] for s in summaries] == ["finished", "finished"]
    assert sorted(s["calls"] for s in summaries) == [0, 2]
    run_id = next(s["run_id"] for s in summaries if s["calls"] == 2)
    shown = runs("show", run_id, "--store", url)
    assert shown.returncode == 0, shown.stderr
    assert 'external_get_order({"order_id": "o-1"}) -> {"id": "o-1", "amount": 40.0}' in shown.stdout
    assert '"note": "refunded o-1"' in shown.stdout
    record: dict[str, Any] = json.loads(runs("show", run_id, "--json", "--store", url).stdout)
    assert record["tool_call_id"] == "call_1" and record["result"] == first.to_tool_output()
    assert len(record["clock"]) == 1  # the one Date reading


async def test_a_replay_gives_the_recorded_result_without_running_a_tool(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    first, _ = await recorded(path)
    async with SQLiteExecutionStore(path) as store:
        (run,) = [s for s in await store.list() if s.calls == 2]
        replayed = runs(
            "replay", run.run_id, "--tools", "tests.approvals.shop", "--store", f"sqlite:///{path}"
        )
        assert replayed.returncode == 0, replayed.stderr
        assert "replayed: the same result as recorded" in replayed.stdout
        assert json.loads(replayed.stdout.split("\nreplayed")[0]) == first.to_tool_output()
        # a log that says another thing gives another result, and the replay says so
        record = await store.load(run.run_id)
        assert record is not None
        record.calls[1].outcome = {"result": "refused by the bank"}
        await store.save(record)
    changed = runs("replay", run.run_id, "--tools", "tests.approvals.shop", "--store", f"sqlite:///{path}")
    assert changed.returncode == 1 and "refused by the bank" in changed.stdout
    assert changed.stderr.strip() == "codemode runs: the replay's result differs from the recorded one"


async def test_a_replay_never_runs_a_call_the_log_does_not_have(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    await recorded(path)
    async with SQLiteExecutionStore(path) as store:
        (run,) = [s for s in await store.list() if s.calls == 2]
        record = await store.load(run.run_id)
        assert record is not None
        record.calls = record.calls[:1]  # the refund is no longer in the log
        await store.save(record)
        cm = codemode.create_code_mode(shop.TOOLS, execution_store=store, approval_key=shop.KEY)
        assert cm.approvals is not None
        shop.REFUNDED.clear()
        result = await cm.approvals.replay(cm, run.run_id)
    assert result.error is not None and result.error.name == "ReplayDivergenceError"
    assert "is not in the run's log" in result.error.message and shop.REFUNDED == []


def test_everyday_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    missing = f"sqlite:///{tmp_path / 'typo.db'}"
    sqlite3.connect(tmp_path / "runs.db").close()  # a store that exists (a missing one is not made)
    for args, code, message in [  # codes: codemode.cli_errors.ExitCode
        (["list", "--store", missing], 6, "codemode runs: no such store"),
        (["show", "nope", "--store", url], 1, "codemode runs: no run 'nope' in this store"),
        (["replay", "nope", "--tools", "tests.approvals.shop", "--store", url], 1, "no run 'nope'"),
        (["list", "--store", "mysql://x"], 2, "codemode runs: not an execution store URL"),
        (["list"], 2, "give --store URL"),
    ]:
        out = runs(*args)
        assert out.returncode == code and message in out.stderr and "Traceback" not in out.stderr, (
            args,
            out.stderr,
        )
    assert not (tmp_path / "typo.db").exists()
