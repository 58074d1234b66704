"""Where run records live: the :class:`ExecutionStore` interface, what the stores share, and
:class:`MemoryExecutionStore`.

Semantics every implementation follows (one test suite checks them on every store):

* ``save(record)`` inserts the record, or replaces the one with its ``run_id``; the stored copy's
  ``updated_at`` is now (the caller's object is left as it is).
* ``load(run_id)`` gives the stored record, ``None`` when there is none.
* ``claim(run_id, version)`` is the one atomic step of a resume: when the stored record is
  ``paused`` at ``version``, it becomes ``resuming`` (``updated_at`` now) and is returned;
  otherwise nothing changes and the answer is ``None``. Of any number of concurrent claims of one
  ``(run_id, version)`` (tasks, threads, or processes sharing a database) exactly one wins: a
  resume token works once.
* ``release(run_id, version)`` undoes a claim whose resume failed before it started
  (``resuming`` → ``paused`` at that version).
* ``list(limit=, status=)`` summarizes the runs, the most recently updated first (ties by
  ``run_id``).
* Records come back as copies: changing one changes nothing stored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar, runtime_checkable

from ..sql_stores import ThreadedConnection
from .models import RunRecord, RunStatus, RunSummary, utc_now

T = TypeVar("T")
C = TypeVar("C")  # the database connection


@runtime_checkable
class ExecutionStore(Protocol):
    """Where paused and recorded runs live. Every method is async; call :meth:`aclose` when
    done (or use the store with ``async with``)."""

    async def save(self, record: RunRecord) -> None:
        """Store ``record``, replacing any record with its ``run_id``; the stored copy's
        ``updated_at`` is set to now."""
        ...

    async def load(self, run_id: str) -> RunRecord | None:
        """The record of ``run_id`` (a copy), ``None`` when there is none."""
        ...

    async def claim(self, run_id: str, version: int) -> RunRecord | None:
        """Atomically take a paused run for resuming.

        When the stored record is ``paused`` at ``version``, set its status to ``resuming``
        (and ``updated_at`` to now) and return it as updated. Otherwise (no such run, another
        version, any other status) change nothing and return ``None``. Concurrent claims of the
        same ``(run_id, version)``, in this process or in others sharing the store's database,
        have exactly one winner.
        """
        ...

    async def release(self, run_id: str, version: int) -> bool:
        """Undo a claim whose resume failed before it started: a record ``resuming`` at
        ``version`` goes back to ``paused`` (``updated_at`` now). True when it did; False (and
        nothing changed) otherwise."""
        ...

    async def delete(self, run_id: str) -> bool:
        """Remove the record of ``run_id``; False when there was none."""
        ...

    async def aclose(self) -> None:
        """Release connections (the store opens them again if used afterwards)."""
        ...

    async def __aenter__(self) -> ExecutionStore:
        """The store itself."""
        ...

    async def __aexit__(self, *exc_info: object) -> None:
        """:meth:`aclose`."""
        ...

    # last: in this class body a later ``list`` annotation would name this method
    async def list(self, *, limit: int = 50, status: RunStatus | None = None) -> list[RunSummary]:
        """Summaries of at most ``limit`` runs (those with ``status`` when given), the most
        recently updated first; ties are ordered by ``run_id``. A ``limit`` of 0 or less gives
        none."""
        ...


class ExecutionStoreBase:
    """Shared plumbing: ``async with`` support and a no-op :meth:`aclose`."""

    async def aclose(self) -> None:
        """Release connections (nothing to release here)."""

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


SUMMARY_COLUMNS = "run_id, version, status, created_at, updated_at, calls, pending"
"""The columns of a run's listing in the SQL stores, in :func:`summary_of_row`'s order."""


def summary_of_row(row: Sequence[Any], moment: Callable[[Any], datetime]) -> RunSummary:
    """A row of :data:`SUMMARY_COLUMNS` as a listing shows it; ``moment`` reads a timestamp."""
    run_id, version, status, created_at, updated_at, calls, pending = row
    return RunSummary(
        run_id=run_id,
        version=version,
        status=status,
        created_at=moment(created_at),
        updated_at=moment(updated_at),
        calls=calls,
        pending=pending,
    )


def summarize(record: RunRecord) -> RunSummary:
    """``record`` as a listing shows it."""
    return RunSummary(
        run_id=record.run_id,
        version=record.version,
        status=record.status,
        created_at=record.created_at,
        updated_at=record.updated_at,
        calls=len(record.calls),
        pending=len(record.pending),
    )


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC (a naive datetime is taken to be UTC already): the form the SQL stores
    keep in their timestamp columns, so that they sort by time."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def with_status(record: RunRecord, status: RunStatus, updated_at: datetime | None = None) -> RunRecord:
    """A copy of ``record`` with ``status`` and ``updated_at`` (now unless given)."""
    moment = updated_at if updated_at is not None else utc_now()
    return record.model_copy(update={"status": status, "updated_at": moment})


class MemoryExecutionStore(ExecutionStoreBase):
    """An :class:`ExecutionStore` in a dict: for tests and one process (gone when it ends).

    A lock makes each method atomic across threads. Records are kept as their JSON, as the
    other stores keep them: what goes in and what comes out share nothing, and a copy costs
    pydantic's JSON, not a deep copy of Python objects.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, str] = {}

    def _get(self, run_id: str) -> RunRecord | None:
        text = self._records.get(run_id)
        return RunRecord.model_validate_json(text) if text is not None else None

    async def save(self, record: RunRecord) -> None:
        stored = record.model_copy(update={"updated_at": utc_now()})
        text = stored.model_dump_json()
        with self._lock:
            self._records[stored.run_id] = text

    async def load(self, run_id: str) -> RunRecord | None:
        with self._lock:
            return self._get(run_id)

    async def claim(self, run_id: str, version: int) -> RunRecord | None:
        with self._lock:
            record = self._get(run_id)
            if record is None or record.status != "paused" or record.version != version:
                return None
            claimed = with_status(record, "resuming")
            self._records[run_id] = claimed.model_dump_json()
            return claimed

    async def release(self, run_id: str, version: int) -> bool:
        with self._lock:
            record = self._get(run_id)
            if record is None or record.status != "resuming" or record.version != version:
                return False
            self._records[run_id] = with_status(record, "paused").model_dump_json()
            return True

    async def delete(self, run_id: str) -> bool:
        with self._lock:
            return self._records.pop(run_id, None) is not None

    async def list(self, *, limit: int = 50, status: RunStatus | None = None) -> list[RunSummary]:
        with self._lock:
            records = [RunRecord.model_validate_json(text) for text in self._records.values()]
        summaries = [summarize(record) for record in records if status is None or record.status == status]
        summaries.sort(key=lambda summary: summary.run_id)
        summaries.sort(key=lambda summary: as_utc(summary.updated_at), reverse=True)
        return summaries[: max(limit, 0)]


class SQLExecutionStoreBase(ThreadedConnection[C], ExecutionStoreBase):
    """What :class:`~.sqlite.SQLiteExecutionStore` and :class:`~.postgres.PostgresExecutionStore`
    share: one connection, opened on first use, and one lock; each call runs the store's blocking
    implementation (``_save``, ``_load``, ``_claim``, ``_release``, ``_delete``, ``_list``) in a
    worker thread, holding the lock. Each store says how to connect and keeps its own SQL.
    """

    async def save(self, record: RunRecord) -> None:
        stored = record.model_copy(update={"updated_at": utc_now()})
        await self._run(self._save, stored)

    async def load(self, run_id: str) -> RunRecord | None:
        return await self._run(self._load, run_id)

    async def claim(self, run_id: str, version: int) -> RunRecord | None:
        return await self._run(self._claim, run_id, version)

    async def release(self, run_id: str, version: int) -> bool:
        return await self._run(self._release, run_id, version)

    async def delete(self, run_id: str) -> bool:
        return await self._run(self._delete, run_id)

    # -- what each store implements (blocking, called under the lock; and _connect)

    def _save(self, connection: C, record: RunRecord) -> None:
        raise NotImplementedError

    def _load(self, connection: C, run_id: str) -> RunRecord | None:
        raise NotImplementedError

    def _claim(self, connection: C, run_id: str, version: int) -> RunRecord | None:
        raise NotImplementedError

    def _release(self, connection: C, run_id: str, version: int) -> bool:
        raise NotImplementedError

    def _delete(self, connection: C, run_id: str) -> bool:
        raise NotImplementedError

    def _list(self, connection: C, limit: int, status: RunStatus | None) -> list[RunSummary]:
        raise NotImplementedError

    # last: in this class body a later ``list`` annotation would name this method
    async def list(self, *, limit: int = 50, status: RunStatus | None = None) -> list[RunSummary]:
        if limit <= 0:
            return []
        return await self._run(self._list, limit, status)
