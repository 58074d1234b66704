"""Fixtures for the execution stores: one fixture yields each of the three, on a fresh location.

PostgreSQL: the session server of ``tests/skills/conftest.py`` (imported from there, not copied:
a real server from Debian's ``postgresql`` package, started once for the session); each test
gets a database of its own on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import codemode
from codemode.approvals.sqlite import SQLiteExecutionStore
from codemode.approvals.store import ExecutionStore, MemoryExecutionStore
from tests.skills.conftest import _new_database, postgres_server

__all__ = ["PERSISTENT_KINDS", "STORE_KINDS", "StoreLocation", "open_store", "postgres_server", "worker"]

STORE_KINDS = ["memory", "sqlite", "postgres"]
PERSISTENT_KINDS = ["sqlite", "postgres"]


@dataclass(frozen=True)
class StoreLocation:
    """Where a test's store lives: enough to open it again, here or in another process."""

    kind: str
    location: str

    def open(self) -> ExecutionStore:
        """A new store object on this location."""
        return open_store(self.kind, self.location)


def open_store(kind: str, location: str) -> ExecutionStore:
    if kind == "memory":
        return MemoryExecutionStore()
    if kind == "sqlite":
        return SQLiteExecutionStore(location)
    from codemode.approvals.postgres import PostgresExecutionStore

    return PostgresExecutionStore(location)


def _location(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreLocation:
    if kind == "postgres":
        return StoreLocation(kind, _new_database(request.getfixturevalue("postgres_server")))
    return StoreLocation(kind, str(tmp_path / "runs.db"))


@pytest.fixture(params=STORE_KINDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> StoreLocation:
    """A fresh location for each of the three stores."""
    return _location(request.param, request, tmp_path)


@pytest.fixture(params=PERSISTENT_KINDS)
def persistent_location(request: pytest.FixtureRequest, tmp_path: Path) -> StoreLocation:
    """A fresh location for each store that outlives its process."""
    return _location(request.param, request, tmp_path)


@pytest.fixture
async def store(location: StoreLocation) -> AsyncIterator[ExecutionStore]:
    """Each of the three stores, empty, closed after the test."""
    opened = location.open()
    yield opened
    await opened.aclose()


# -- other processes

WORKER = textwrap.dedent(
    """
    import json, sys
    import anyio
    from tests.approvals.conftest import open_store

    async def main(kind, location, version, *run_ids):
        store = open_store(kind, location)
        try:
            await store.load(run_ids[0])  # connected and warm
            print("ready", flush=True)
            sys.stdin.readline()  # wait for go, so every process claims at once
            won = [run_id for run_id in run_ids if await store.claim(run_id, int(version)) is not None]
            print(json.dumps(won), flush=True)
        finally:
            await store.aclose()

    anyio.run(main, *sys.argv[1:])
    """
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def worker(location: StoreLocation, *args: str) -> subprocess.Popen[str]:
    """Start a Python process that opens ``location``'s store, says ``ready``, waits for a line
    on stdin, claims each run id of ``args[1:]`` at version ``args[0]`` and prints the ones it won
    (a JSON list)."""
    path = os.environ.get("PYTHONPATH", "")
    package_root = str(Path(codemode.__file__).resolve().parent.parent)  # the codemode this test runs
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, location.kind, location.location, *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, path]))},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
