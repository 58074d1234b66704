"""Fixtures for the skill stores: one fixture yields each of the four, on a fresh location.

PostgreSQL: a session fixture starts a real server from Debian's ``postgresql`` package
(``initdb`` + ``pg_ctl`` from ``/usr/lib/postgresql/*/bin``) in a temporary directory on a free
port, as an unprivileged user when the tests run as root (initdb refuses root), and stops it at
the end. Each test gets a database of its own.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from codemode.skills import FileSkillStore, MemorySkillStore, SkillStore, SQLiteSkillStore, TrustStrategy

STORE_KINDS = ["memory", "file", "sqlite", "postgres"]
PERSISTENT_KINDS = ["file", "sqlite", "postgres"]


@dataclass(frozen=True)
class StoreLocation:
    """Where a test's store lives: enough to open it again, here or in another process."""

    kind: str
    location: str

    def open(self, trust: TrustStrategy | None = None) -> SkillStore:
        """A new store object on this location."""
        return open_store(self.kind, self.location, trust)


def open_store(kind: str, location: str, trust: TrustStrategy | None = None) -> SkillStore:
    if kind == "memory":
        return MemorySkillStore(trust=trust)
    if kind == "file":
        return FileSkillStore(location, trust=trust)
    if kind == "sqlite":
        return SQLiteSkillStore(location, trust=trust)
    from codemode.skills import PostgresSkillStore

    return PostgresSkillStore(location, trust=trust)


# -- PostgreSQL server


def _postgres_bin() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user() -> tuple[list[str], str | None]:
    """The command prefix that runs a program as an unprivileged user (none unless we are root)."""
    if os.geteuid() != 0:
        return [], None
    for user in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(user)
            if shutil.which("runuser"):
                return ["runuser", "-u", user, "--"], user
            return [
                "setpriv",
                f"--reuid={user}",
                f"--regid={pwd.getpwnam(user).pw_gid}",
                "--clear-groups",
            ], user
    pytest.fail("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A running PostgreSQL server for the session: yields the DSN of its ``postgres`` database."""
    pytest.importorskip("psycopg", reason="PostgresSkillStore needs the codemode[postgres] extra")
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql"
        )
    prefix, user = _as_server_user()
    root = Path(tempfile.mkdtemp(prefix="codemode-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data, port = root / "data", _free_port()
    subprocess.run(
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    options = f"-k {root} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    subprocess.run(
        [
            *prefix,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "server.log"),
            "-w",
            "-o",
            options,
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def _new_database(server_dsn: str) -> str:
    import psycopg

    name = f"skills_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return server_dsn.rsplit("/", 1)[0] + f"/{name}"


def _location(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreLocation:
    if kind == "postgres":
        return StoreLocation(kind, _new_database(request.getfixturevalue("postgres_server")))
    return StoreLocation(kind, str(tmp_path / ("skills" if kind == "file" else "skills.db")))


@pytest.fixture(params=STORE_KINDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> StoreLocation:
    """A fresh location for each of the four stores."""
    return _location(request.param, request, tmp_path)


@pytest.fixture(params=PERSISTENT_KINDS)
def persistent_location(request: pytest.FixtureRequest, tmp_path: Path) -> StoreLocation:
    """A fresh location for each store that outlives its process."""
    return _location(request.param, request, tmp_path)


@pytest.fixture
async def store(location: StoreLocation) -> SkillStore:  # type: ignore[misc]
    """Each of the four stores, empty, closed after the test."""
    opened = location.open()
    yield opened
    await opened.aclose()


# -- other processes

WORKER = textwrap.dedent(
    """
    import json, sys
    import anyio
    from tests.skills.conftest import open_store
    from codemode.skills import Skill

    async def main(kind, location, command, *args):
        store = open_store(kind, location)
        try:
            if command == "save":
                skill = Skill(name=args[0], description=args[1], code=args[2])
                print((await store.save(skill)).model_dump_json(), flush=True)
            elif command == "get":
                skill = await store.get(args[0])
                print(skill.model_dump_json() if skill else "null", flush=True)
            elif command == "record":
                await store.get(args[0])  # connected and warm
                print("ready", flush=True)
                sys.stdin.readline()  # wait for go, so both processes record at once
                for index in range(int(args[1])):
                    await store.record_run(args[0], index % 4 != 0)
                print("done", flush=True)
            elif command == "record_batch":  # the same runs, five per write
                await store.get(args[0])
                print("ready", flush=True)
                sys.stdin.readline()
                for start in range(0, int(args[1]), 5):
                    await store.record_runs(args[0], [index % 4 != 0 for index in range(start, start + 5)])
                print("done", flush=True)
        finally:
            await store.aclose()

    anyio.run(main, *sys.argv[1:])
    """
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def worker(location: StoreLocation, *args: str, **kwargs: object) -> subprocess.Popen[str]:
    """Start a Python process that opens ``location``'s store and runs one command."""
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, location.kind, location.location, *args],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )
