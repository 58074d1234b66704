"""Run records in one SQLite file: the embedded store for runs that must outlive the process.

Standard ``sqlite3`` in WAL mode, each call in a worker thread on one connection. Every write is
one transaction started with ``BEGIN IMMEDIATE`` (the database's write lock, taken before the
transaction reads), so writers in several processes serialize. ``claim`` is one conditional
``UPDATE`` (``status = 'paused'`` and the version) checked by its row count: of concurrent claims,
in this process or in others on the same file, exactly one changes the row.

The table, ``codemode_runs``, keeps the record as JSON (``record``) beside the columns a listing
needs; timestamps are UTC ISO 8601 text with microseconds, so they sort as text.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime

from ..sql_stores import open_sqlite, sqlite_transaction
from .models import RunRecord, RunStatus, RunSummary, utc_now
from .store import SUMMARY_COLUMNS, SQLExecutionStoreBase, as_utc, summary_of_row, with_status

_SCHEMA = """
CREATE TABLE IF NOT EXISTS codemode_runs (
    run_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    calls INTEGER NOT NULL,
    pending INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS codemode_runs_updated_at ON codemode_runs (updated_at);
"""


class SQLiteExecutionStore(SQLExecutionStoreBase[sqlite3.Connection]):
    """An :class:`~.store.ExecutionStore` in the SQLite database at ``path`` (created if missing).

    ``timeout``: how long a write waits for another connection's write lock, in seconds.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self._timeout = timeout

    # -- blocking implementations, each under the connection lock

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = open_sqlite(self.path, self._timeout, _SCHEMA)
        return self._connection

    def _save(self, connection: sqlite3.Connection, record: RunRecord) -> None:
        with sqlite_transaction(connection):
            connection.execute(
                f"INSERT INTO codemode_runs ({SUMMARY_COLUMNS}, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id) DO UPDATE SET version = excluded.version, status = excluded.status, "
                "created_at = excluded.created_at, updated_at = excluded.updated_at, "
                "calls = excluded.calls, pending = excluded.pending, record = excluded.record",
                _row(record),
            )

    def _load(self, connection: sqlite3.Connection, run_id: str) -> RunRecord | None:
        row = connection.execute("SELECT record FROM codemode_runs WHERE run_id = ?", (run_id,)).fetchone()
        return RunRecord.model_validate_json(row[0]) if row is not None else None

    def _claim(self, connection: sqlite3.Connection, run_id: str, version: int) -> RunRecord | None:
        return self._move(connection, run_id, version, "paused", "resuming")

    def _release(self, connection: sqlite3.Connection, run_id: str, version: int) -> bool:
        return self._move(connection, run_id, version, "resuming", "paused") is not None

    def _move(
        self,
        connection: sqlite3.Connection,
        run_id: str,
        version: int,
        current: RunStatus,
        new: RunStatus,
    ) -> RunRecord | None:
        """In one write transaction: when ``run_id`` is ``current`` at ``version``, make it
        ``new`` (the columns and the record's JSON) and return it; else ``None``."""
        now = utc_now()
        with sqlite_transaction(connection):
            # the conditional UPDATE decides: of concurrent movers exactly one changes the row
            changed = connection.execute(
                "UPDATE codemode_runs SET status = ?, updated_at = ? "
                "WHERE run_id = ? AND version = ? AND status = ?",
                (new, _timestamp(now), run_id, version, current),
            ).rowcount
            if changed != 1:
                return None
            # the winner reads the record in the same transaction and keeps its JSON in step
            stored = self._load(connection, run_id)
            assert stored is not None
            moved = with_status(stored, new, now)
            connection.execute(
                "UPDATE codemode_runs SET record = ? WHERE run_id = ?", (moved.model_dump_json(), run_id)
            )
            return moved

    def _delete(self, connection: sqlite3.Connection, run_id: str) -> bool:
        with sqlite_transaction(connection):
            return connection.execute("DELETE FROM codemode_runs WHERE run_id = ?", (run_id,)).rowcount > 0

    def _list(self, connection: sqlite3.Connection, limit: int, status: RunStatus | None) -> list[RunSummary]:
        where, parameters = ("WHERE status = ?", (status,)) if status is not None else ("", ())
        rows = connection.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM codemode_runs {where} ORDER BY updated_at DESC, run_id LIMIT ?",
            (*parameters, limit),
        ).fetchall()
        return [summary_of_row(row, datetime.fromisoformat) for row in rows]


def _timestamp(moment: datetime) -> str:
    """``moment`` as the timestamp columns keep it: UTC, microseconds always written."""
    return as_utc(moment).isoformat(timespec="microseconds")


def _row(record: RunRecord) -> tuple[object, ...]:
    """The values of the table's columns for ``record``, in ``SUMMARY_COLUMNS`` order, then the JSON."""
    return (
        record.run_id,
        record.version,
        record.status,
        _timestamp(record.created_at),
        _timestamp(record.updated_at),
        len(record.calls),
        len(record.pending),
        record.model_dump_json(),
    )
