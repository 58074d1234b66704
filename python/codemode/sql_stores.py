"""What the SQL stores (skills, and paused or recorded runs) share: one database connection,
opened on first use and used from worker threads under a lock, and SQLite's way of opening a
database and taking its write lock."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import anyio.to_thread

T = TypeVar("T")
C = TypeVar("C")  # the database connection


class ThreadedConnection(Generic[C]):
    """One connection (``_connect`` opens it on first use) and one lock: ``_run`` calls a
    blocking function with the connection in a worker thread, holding the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: C | None = None

    async def aclose(self) -> None:
        def close() -> None:
            with self._lock:
                if self._connection is not None:
                    self._connection.close()  # type: ignore[attr-defined]
                    self._connection = None

        await anyio.to_thread.run_sync(close)

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        def locked() -> T:
            with self._lock:
                return function(self._connect(), *args)

        return await anyio.to_thread.run_sync(locked)

    def _connect(self) -> C:
        raise NotImplementedError


def open_sqlite(path: str | os.PathLike[str], timeout: float, schema: str) -> sqlite3.Connection:
    """An autocommit connection to the database at ``path`` (WAL mode), with ``schema`` (its
    statements separated by ``;``) created in one write transaction."""
    connection = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        with sqlite_transaction(connection):
            for statement in schema.split(";"):
                if statement.strip():
                    connection.execute(statement)
    except BaseException:
        connection.close()
        raise
    return connection


@contextlib.contextmanager
def sqlite_transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection:
    the database's write lock, taken before the transaction reads."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
