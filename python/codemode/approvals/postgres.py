"""Run records in PostgreSQL (``pip install "codemode[postgres]"``: psycopg 3).

Each call runs psycopg's blocking API in a worker thread on one connection (psycopg's own async
API runs only on asyncio; this way the store works on asyncio and trio alike). Every write is one
transaction. ``claim`` is one conditional ``UPDATE ... RETURNING`` (``status = 'paused'`` and the
version): PostgreSQL locks the row, and a concurrent claim waits, then finds the status changed
and updates nothing, so of concurrent claims, from any number of processes, exactly one wins.

The table (``<table_prefix>runs``, ``codemode_runs`` by default) keeps the record's JSON as
``text`` (not ``jsonb``, which would reorder the keys of tool arguments and results that a replay
must give back as they were) beside the columns a listing needs.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

try:
    import psycopg
except ImportError as e:  # pragma: no cover - depends on the installed extras
    raise ImportError('PostgresExecutionStore needs psycopg 3: pip install "codemode[postgres]"') from e

from .models import RunRecord, RunStatus, RunSummary, utc_now
from .store import SUMMARY_COLUMNS, SQLExecutionStoreBase, as_utc, summary_of_row, with_status

_PREFIX = re.compile(r"[a-z_][a-z0-9_]{0,40}")


class PostgresExecutionStore(SQLExecutionStoreBase[psycopg.Connection[Any]]):
    """An :class:`~.store.ExecutionStore` in the PostgreSQL database at ``dsn``.

    The table (``<table_prefix>runs``) and its index on ``updated_at`` are created on first use.
    """

    def __init__(self, dsn: str, *, table_prefix: str = "codemode_") -> None:
        super().__init__()
        if not _PREFIX.fullmatch(table_prefix):
            raise ValueError("table_prefix must be lowercase letters, digits and underscores")
        self.dsn = dsn
        self._table = f"{table_prefix}runs"

    # -- blocking implementations, each under the connection lock

    def _connect(self) -> psycopg.Connection[Any]:
        if self._connection is None or self._connection.closed:
            connection = psycopg.connect(self.dsn, autocommit=True)
            try:
                with connection.transaction():
                    # concurrent CREATE ... IF NOT EXISTS can still collide: one creator at a time
                    connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._table,))
                    connection.execute(
                        f"""CREATE TABLE IF NOT EXISTS {self._table} (
                            run_id text PRIMARY KEY,
                            version integer NOT NULL,
                            status text NOT NULL,
                            created_at timestamptz NOT NULL,
                            updated_at timestamptz NOT NULL,
                            calls integer NOT NULL,
                            pending integer NOT NULL,
                            record text NOT NULL)"""
                    )
                    connection.execute(
                        f"CREATE INDEX IF NOT EXISTS {self._table}_updated_at ON {self._table} (updated_at)"
                    )
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return self._connection

    def _save(self, connection: psycopg.Connection[Any], record: RunRecord) -> None:
        with connection.transaction():
            connection.execute(
                f"INSERT INTO {self._table} ({SUMMARY_COLUMNS}, record) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (run_id) DO UPDATE SET version = excluded.version, status = excluded.status, "
                "created_at = excluded.created_at, updated_at = excluded.updated_at, "
                "calls = excluded.calls, pending = excluded.pending, record = excluded.record",
                (
                    record.run_id,
                    record.version,
                    record.status,
                    as_utc(record.created_at),
                    as_utc(record.updated_at),
                    len(record.calls),
                    len(record.pending),
                    record.model_dump_json(),
                ),
            )

    def _load(self, connection: psycopg.Connection[Any], run_id: str) -> RunRecord | None:
        row = connection.execute(f"SELECT record FROM {self._table} WHERE run_id = %s", (run_id,)).fetchone()
        return RunRecord.model_validate_json(row[0]) if row is not None else None

    def _claim(self, connection: psycopg.Connection[Any], run_id: str, version: int) -> RunRecord | None:
        return self._move(connection, run_id, version, "paused", "resuming")

    def _release(self, connection: psycopg.Connection[Any], run_id: str, version: int) -> bool:
        return self._move(connection, run_id, version, "resuming", "paused") is not None

    def _move(
        self,
        connection: psycopg.Connection[Any],
        run_id: str,
        version: int,
        current: RunStatus,
        new: RunStatus,
    ) -> RunRecord | None:
        """In one transaction: when ``run_id`` is ``current`` at ``version``, make it ``new``
        (the columns and the record's JSON) and return it; else ``None``."""
        now = utc_now()
        with connection.transaction():
            # the conditional UPDATE decides; its row lock holds until the JSON is rewritten
            row = connection.execute(
                f"UPDATE {self._table} SET status = %s, updated_at = %s "
                "WHERE run_id = %s AND version = %s AND status = %s RETURNING record",
                (new, now, run_id, version, current),
            ).fetchone()
            if row is None:
                return None
            moved = with_status(RunRecord.model_validate_json(row[0]), new, now)
            connection.execute(
                f"UPDATE {self._table} SET record = %s WHERE run_id = %s", (moved.model_dump_json(), run_id)
            )
            return moved

    def _delete(self, connection: psycopg.Connection[Any], run_id: str) -> bool:
        with connection.transaction():
            deleted = connection.execute(f"DELETE FROM {self._table} WHERE run_id = %s", (run_id,)).rowcount
            return deleted > 0

    def _list(
        self, connection: psycopg.Connection[Any], limit: int, status: RunStatus | None
    ) -> list[RunSummary]:
        where, parameters = ("WHERE status = %s", (status,)) if status is not None else ("", ())
        rows = connection.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM {self._table} {where} "
            'ORDER BY updated_at DESC, run_id COLLATE "C" LIMIT %s',
            (*parameters, limit),
        ).fetchall()
        return [summary_of_row(row, _utc) for row in rows]


def _utc(moment: datetime) -> datetime:
    """A ``timestamptz`` as psycopg reads it (in the session's time zone), in UTC."""
    return moment.astimezone(timezone.utc)
