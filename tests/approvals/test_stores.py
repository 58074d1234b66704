"""One test suite over the three execution stores: memory, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import anyio
import pytest

from codemode.approvals.models import CallRecord, RunRecord, utc_now
from codemode.approvals.sqlite import SQLiteExecutionStore
from codemode.approvals.store import ExecutionStore, MemoryExecutionStore
from codemode.approvals.url import execution_store_from_url

from .conftest import StoreLocation, worker

pytestmark = pytest.mark.anyio

CREATED = datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=timezone(timedelta(hours=2)))


def make_record(run_id: str = "run-1", **fields: object) -> RunRecord:
    """A paused run with every field set to something other than its default."""
    values: dict[str, object] = {
        "version": 3,
        "status": "paused",
        "created_at": CREATED,
        "updated_at": CREATED + timedelta(seconds=5),
        "code": "const a = await tools.lookup({ zeta: 1, alpha: 2 });\nreturn await tools.send(a);",
        "tool_call_id": "call_abc",
        "limits": {"timeout": 12.5, "memory_limit_mb": 64},
        "seed": 987654321,
        "clock": [1741937213589.0, 1741937213590.25],
        "calls": [
            CallRecord(
                index=1,
                tool="lookup",
                args={"zeta": 1, "alpha": 2, "nested": {"b": [1, 2.5, None], "a": "é ✓"}},
                outcome={"result": {"value": 42, "items": ["x", "y"]}},
                settled=1,
                duration_ms=3.75,
            ),
            CallRecord(
                index=2,
                tool="send",
                args={"to": "ops"},
                outcome={"error": "denied by a person"},
                settled=2,
                duration_ms=0.5,
                approval="rejected",
            ),
            CallRecord(index=3, tool="send", args=["positional", 1], approval=None),
        ],
        "pending": [3],
        "events": [{"name": "progress", "value": {"step": 1}}, {"name": "log", "value": "hi"}],
        "result": None,
    }
    values.update(fields)
    return RunRecord(run_id=run_id, **values)  # type: ignore[arg-type]


async def test_is_an_execution_store(store: ExecutionStore) -> None:
    assert isinstance(store, ExecutionStore)
    async with store as entered:
        assert entered is store


async def test_save_then_load_returns_every_field(store: ExecutionStore) -> None:
    record = make_record(result={"output": "done", "n": 1})
    before = utc_now()
    await store.save(record)
    loaded = await store.load("run-1")
    assert loaded is not None
    # the store sets updated_at; everything else comes back as it went in
    assert before <= loaded.updated_at <= utc_now()
    assert loaded.updated_at.tzinfo is not None
    assert loaded.model_copy(update={"updated_at": record.updated_at}) == record
    assert loaded.created_at == CREATED
    assert loaded.calls[0].args == {"zeta": 1, "alpha": 2, "nested": {"b": [1, 2.5, None], "a": "é ✓"}}
    assert list(loaded.calls[0].args) == ["zeta", "alpha", "nested"]  # key order kept for replay
    assert list(loaded.calls[0].args["nested"]) == ["b", "a"]
    assert loaded.calls[1].outcome == {"error": "denied by a person"}
    assert loaded.calls[1].approval == "rejected"
    assert (loaded.calls[2].outcome, loaded.calls[2].settled, loaded.calls[2].approval) == (None, None, None)
    assert loaded.calls[2].args == ["positional", 1]
    assert loaded.clock == [1741937213589.0, 1741937213590.25]
    assert (loaded.seed, loaded.tool_call_id, loaded.pending) == (987654321, "call_abc", [3])
    assert loaded.events == record.events and loaded.result == {"output": "done", "n": 1}
    assert record.updated_at == CREATED + timedelta(seconds=5)  # the caller's object is untouched


async def test_defaults_round_trip(store: ExecutionStore) -> None:
    record = RunRecord(run_id="bare", code="return 1;")
    await store.save(record)
    loaded = await store.load("bare")
    assert loaded is not None
    assert loaded.model_copy(update={"updated_at": record.updated_at}) == record


async def test_save_replaces_the_record(store: ExecutionStore) -> None:
    await store.save(make_record())
    await store.save(make_record(version=4, status="finished", calls=[], pending=[], result={"ok": True}))
    loaded = await store.load("run-1")
    assert loaded is not None
    assert (loaded.version, loaded.status, loaded.calls, loaded.result) == (4, "finished", [], {"ok": True})
    [summary] = await store.list()
    assert (summary.version, summary.status, summary.calls, summary.pending) == (4, "finished", 0, 0)


async def test_missing_run(store: ExecutionStore) -> None:
    assert await store.load("nothing") is None
    assert await store.claim("nothing", 1) is None
    assert await store.release("nothing", 1) is False
    assert await store.delete("nothing") is False
    assert await store.list() == []


async def test_records_are_copies(store: ExecutionStore) -> None:
    record = make_record()
    await store.save(record)
    record.calls[0].args["zeta"] = "changed"
    record.pending.append(99)
    loaded = await store.load("run-1")
    assert loaded is not None and loaded.calls[0].args["zeta"] == 1 and loaded.pending == [3]
    loaded.calls.clear()
    claimed = await store.claim("run-1", 3)
    assert claimed is not None
    claimed.status = "paused"
    claimed.calls[0].outcome = None
    again = await store.load("run-1")
    assert again is not None and again.status == "resuming" and again.calls[0].outcome is not None


async def test_claim_once(store: ExecutionStore) -> None:
    await store.save(make_record())
    saved = await store.load("run-1")
    assert saved is not None
    claimed = await store.claim("run-1", 3)
    assert claimed is not None
    assert claimed.status == "resuming" and claimed.updated_at >= saved.updated_at
    assert claimed.model_copy(update={"status": "paused", "updated_at": saved.updated_at}) == saved
    assert await store.claim("run-1", 3) is None  # the token works once
    loaded = await store.load("run-1")
    assert loaded == claimed  # the record itself says resuming, not only the listing
    [summary] = await store.list()
    assert (summary.status, summary.updated_at) == ("resuming", claimed.updated_at)


@pytest.mark.parametrize("status", ["running", "resuming", "finished"])
async def test_claim_needs_a_paused_run(store: ExecutionStore, status: str) -> None:
    await store.save(make_record(status=status))
    before = await store.load("run-1")
    assert await store.claim("run-1", 3) is None
    assert await store.load("run-1") == before


async def test_claim_with_the_wrong_version(store: ExecutionStore) -> None:
    await store.save(make_record())
    before = await store.load("run-1")
    assert await store.claim("run-1", 2) is None
    assert await store.claim("run-1", 4) is None
    assert await store.load("run-1") == before
    assert await store.claim("run-1", 3) is not None


async def test_release(store: ExecutionStore) -> None:
    await store.save(make_record())
    assert await store.release("run-1", 3) is False  # paused: nothing to release
    claimed = await store.claim("run-1", 3)
    assert claimed is not None
    assert await store.release("run-1", 2) is False  # another version
    loaded = await store.load("run-1")
    assert loaded is not None and loaded.status == "resuming"
    assert await store.release("run-1", 3) is True
    assert await store.release("run-1", 3) is False
    loaded = await store.load("run-1")
    assert loaded is not None and loaded.status == "paused" and loaded.updated_at >= claimed.updated_at
    assert loaded.model_copy(update={"status": "resuming", "updated_at": claimed.updated_at}) == claimed
    # the token works again after a release
    assert await store.claim("run-1", 3) is not None


async def test_concurrent_claims_have_one_winner(store: ExecutionStore) -> None:
    await store.save(make_record())
    results: list[RunRecord | None] = []

    async def claim() -> None:
        results.append(await store.claim("run-1", 3))

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(claim)
    assert len(results) == 20
    assert sum(result is not None for result in results) == 1


async def test_concurrent_claims_on_separate_store_objects(persistent_location: StoreLocation) -> None:
    async with persistent_location.open() as first:
        await first.save(make_record())
    stores = [persistent_location.open() for _ in range(20)]
    results: list[RunRecord | None] = []

    async def claim(store: ExecutionStore) -> None:
        results.append(await store.claim("run-1", 3))

    try:
        async with anyio.create_task_group() as group:
            for store in stores:
                group.start_soon(claim, store)
    finally:
        for store in stores:
            await store.aclose()
    assert len(results) == 20
    assert sum(result is not None for result in results) == 1


async def test_list_order_limit_and_status(store: ExecutionStore) -> None:
    for run_id, status in [("a", "paused"), ("b", "finished"), ("c", "paused"), ("d", "running")]:
        await store.save(make_record(run_id, status=status, calls=[], pending=[]))
        await anyio.sleep(0.002)
    assert [s.run_id for s in await store.list()] == ["d", "c", "b", "a"]
    assert await store.claim("a", 3) is not None  # a claim updates the run: newest now
    summaries = await store.list()
    assert [s.run_id for s in summaries] == ["a", "d", "c", "b"]
    assert [s.run_id for s in await store.list(limit=2)] == ["a", "d"]
    assert await store.list(limit=0) == []
    assert [s.run_id for s in await store.list(status="paused")] == ["c"]
    assert [s.run_id for s in await store.list(status="resuming")] == ["a"]
    assert [s.run_id for s in await store.list(status="finished", limit=1)] == ["b"]
    first = summaries[0]
    assert (first.version, first.status, first.calls, first.pending) == (3, "resuming", 0, 0)
    assert first.created_at == CREATED and first.updated_at.tzinfo is not None
    loaded = await store.load("a")
    assert loaded is not None and first.updated_at == loaded.updated_at


async def test_list_counts_calls_and_pending(store: ExecutionStore) -> None:
    await store.save(make_record())
    [summary] = await store.list()
    assert (summary.run_id, summary.calls, summary.pending) == ("run-1", 3, 1)


async def test_list_many(store: ExecutionStore) -> None:
    for index in range(60):
        await store.save(make_record(f"run-{index:02d}", calls=[], pending=[]))
    listed = await store.list()
    assert len(listed) == 50
    assert [s.updated_at for s in listed] == sorted((s.updated_at for s in listed), reverse=True)
    assert len(await store.list(limit=100)) == 60


async def test_delete(store: ExecutionStore) -> None:
    await store.save(make_record("a"))
    await store.save(make_record("b"))
    assert await store.delete("a") is True
    assert await store.delete("a") is False
    assert await store.load("a") is None
    assert await store.claim("a", 3) is None
    assert [s.run_id for s in await store.list()] == ["b"]


async def test_a_second_store_object_sees_the_data(persistent_location: StoreLocation) -> None:
    async with persistent_location.open() as first, persistent_location.open() as second:
        await first.save(make_record())
        loaded = await second.load("run-1")
        assert loaded is not None and loaded.status == "paused" and loaded.calls == make_record().calls
        assert await second.claim("run-1", 3) is not None
        assert await first.claim("run-1", 3) is None
        loaded = await first.load("run-1")
        assert loaded is not None and loaded.status == "resuming"
        assert await first.release("run-1", 3) is True
        assert [s.status for s in await second.list()] == ["paused"]
        assert await second.delete("run-1") is True
        assert await first.load("run-1") is None
    # closed stores open their connection again when used
    reopened = persistent_location.open()
    await reopened.save(make_record("after"))
    await reopened.aclose()
    assert await reopened.load("after") is not None
    await reopened.aclose()


async def test_claim_race_across_processes(persistent_location: StoreLocation) -> None:
    run_ids = [f"race-{index}" for index in range(10)]
    async with persistent_location.open() as store:
        for run_id in run_ids:
            await store.save(make_record(run_id))
    processes = [worker(persistent_location, "3", *run_ids) for _ in range(2)]
    try:
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line == "ready\n", process.communicate()[1]
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = [process.communicate(timeout=60) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert [process.returncode for process in processes] == [0, 0], [err for _, err in outputs]
    won = [json.loads(out) for out, _ in outputs]
    assert sorted(won[0] + won[1]) == sorted(run_ids)  # every run claimed exactly once
    assert not set(won[0]) & set(won[1])
    async with persistent_location.open() as store:
        assert {s.status for s in await store.list()} == {"resuming"}


async def test_memory_store_is_per_object() -> None:
    first, second = MemoryExecutionStore(), MemoryExecutionStore()
    await first.save(make_record())
    assert await second.load("run-1") is None


async def test_sqlite_store_uses_wal(tmp_path: Path) -> None:
    async with SQLiteExecutionStore(tmp_path / "runs.db") as store:
        await store.save(make_record())
    import sqlite3

    connection = sqlite3.connect(tmp_path / "runs.db")
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        columns = [row[1] for row in connection.execute("PRAGMA table_info(codemode_runs)")]
        assert columns == [
            "run_id",
            "version",
            "status",
            "created_at",
            "updated_at",
            "calls",
            "pending",
            "record",
        ]
        indexes = [row[1] for row in connection.execute("PRAGMA index_list(codemode_runs)")]
        assert "codemode_runs_updated_at" in indexes
        (text,) = connection.execute("SELECT record FROM codemode_runs").fetchone()
        assert RunRecord.model_validate_json(text).run_id == "run-1"
    finally:
        connection.close()


# -- URLs


def test_url_memory() -> None:
    assert isinstance(execution_store_from_url("memory:"), MemoryExecutionStore)


def test_url_sqlite_paths(tmp_path: Path) -> None:
    relative = execution_store_from_url("sqlite:runs/my%20runs.db")
    assert isinstance(relative, SQLiteExecutionStore) and relative.path == "runs/my runs.db"
    absolute = execution_store_from_url(f"sqlite://{tmp_path}/runs.db")
    assert isinstance(absolute, SQLiteExecutionStore) and absolute.path == f"{tmp_path}/runs.db"
    assert isinstance(execution_store_from_url("SQLite:///tmp/x.db"), SQLiteExecutionStore)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_url_postgres(scheme: str) -> None:
    pytest.importorskip("psycopg")
    from codemode.approvals.postgres import PostgresExecutionStore

    url = f"{scheme}://user@localhost:5432/db"
    store = execution_store_from_url(url)
    assert isinstance(store, PostgresExecutionStore) and store.dsn == url  # nothing connects yet


@pytest.mark.parametrize(
    "url", ["", "runs.db", "redis://localhost/0", "file:runs", "sqlite:", "sqlite://host/runs.db", "memory:x"]
)
def test_url_rejects(url: str) -> None:
    with pytest.raises(
        ValueError, match=re.escape("memory:, sqlite:relative/path.db, sqlite:///absolute/path.db")
    ):
        execution_store_from_url(url)


async def test_sqlite_store_from_url_works(tmp_path: Path) -> None:
    async with execution_store_from_url(f"sqlite://{tmp_path}/runs.db") as store:
        await store.save(make_record())
        assert await store.claim("run-1", 3) is not None
