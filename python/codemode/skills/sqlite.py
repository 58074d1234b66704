"""Skills in one SQLite file: the embedded default for anything persistent.

Standard ``sqlite3`` in WAL mode, each call in a worker thread. Every write is one transaction
started with ``BEGIN IMMEDIATE`` (the database's write lock, taken before the transaction reads),
so saves and run recording from several processes serialize: a recorder reads a version's stats,
adds its runs and writes them back with no other write in between.
Search uses SQLite's own FTS5 index and its ``bm25()`` ranking.
"""

from __future__ import annotations

import json
import os
import sqlite3

from ..sql_stores import open_sqlite, sqlite_transaction
from .models import Skill, SkillSummary, TrustLevel
from .sql import SQLStoreBase
from .store import (
    FIELD_WEIGHTS,
    ROW_COLUMNS,
    new_version,
    not_found,
    query_words,
    search_fields,
    summary_fields,
)
from .trust import TrustStrategy, record_decision, record_outcomes

_SCHEMA = """
CREATE TABLE IF NOT EXISTS skill_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    description TEXT NOT NULL,
    code TEXT NOT NULL,
    input_schema TEXT NOT NULL,
    output_schema TEXT,
    usage_hints TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    trust_level TEXT NOT NULL,
    executions INTEGER NOT NULL DEFAULT 0,
    successes INTEGER NOT NULL DEFAULT 0,
    recent TEXT NOT NULL DEFAULT '',
    last_run_at TEXT,
    approvals INTEGER NOT NULL DEFAULT 0,
    rejections INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS skills (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS skills_fts USING fts5(name, description, hints, tokenize='unicode61');
"""

_COLUMNS = ROW_COLUMNS
_LATEST = "skill_versions v JOIN skills s ON s.name = v.name AND s.version = v.version"


class SQLiteSkillStore(SQLStoreBase[sqlite3.Connection]):
    """A :class:`~.store.SkillStore` in the SQLite database at ``path`` (created if missing)."""

    def __init__(
        self, path: str | os.PathLike[str], *, trust: TrustStrategy | None = None, timeout: float = 30.0
    ) -> None:
        super().__init__(trust)
        self.path = os.fspath(path)
        self._timeout = timeout

    async def versions(self, name: str) -> list[int]:
        rows = await self._run(
            self._query, "SELECT version FROM skill_versions WHERE name = ? ORDER BY version", (name,)
        )
        return [row[0] for row in rows]

    async def list_index(self) -> list[SkillSummary]:
        rows = await self._run(self._query, f"SELECT {_COLUMNS} FROM {_LATEST} ORDER BY v.name", ())
        return [SkillSummary.model_validate(summary_fields(row)) for row in rows]

    async def search(self, query: str, limit: int = 10) -> list[SkillSummary]:
        terms = query_words(query)
        if not terms or limit <= 0:
            return []
        match = " OR ".join(f'"{term}"' for term in terms)
        weights = ", ".join(str(weight) for weight in FIELD_WEIGHTS)
        sql = (
            f"SELECT {_COLUMNS} FROM skills_fts f JOIN skills s ON s.id = f.rowid "
            "JOIN skill_versions v ON v.name = s.name AND v.version = s.version "
            f"WHERE skills_fts MATCH ? ORDER BY bm25(skills_fts, {weights}), v.name LIMIT ?"
        )
        rows = await self._run(self._query, sql, (match, limit))
        return [SkillSummary.model_validate(summary_fields(row)) for row in rows]

    # -- blocking implementations, each under the connection lock

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = open_sqlite(self.path, self._timeout, _SCHEMA)
            with sqlite_transaction(connection):  # a database made before these columns
                have = {row[1] for row in connection.execute("PRAGMA table_info(skill_versions)")}
                for column in ("approvals", "rejections"):
                    if column not in have:
                        connection.execute(
                            f"ALTER TABLE skill_versions ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0"
                        )
            self._connection = connection
        return self._connection

    def _fetch(self, connection: sqlite3.Connection, name: str, version: int | None) -> Skill | None:
        if version is None:
            row = connection.execute(
                f"SELECT {_COLUMNS}, v.code FROM {_LATEST} WHERE v.name = ?", (name,)
            ).fetchone()
        else:
            row = connection.execute(
                f"SELECT {_COLUMNS}, v.code FROM skill_versions v WHERE v.name = ? AND v.version = ?",
                (name, version),
            ).fetchone()
        return Skill.model_validate({**summary_fields(row), "code": row[-1]}) if row is not None else None

    def _save(self, connection: sqlite3.Connection, skill: Skill) -> Skill:
        with sqlite_transaction(connection):
            stored = new_version(skill, self._fetch(connection, skill.name, None), self.trust)
            connection.execute(
                "INSERT INTO skill_versions (name, version, description, code, input_schema, output_schema, "
                "usage_hints, depends_on, trust_level, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    stored.name,
                    stored.version,
                    stored.description,
                    stored.code,
                    json.dumps(stored.input_schema),
                    json.dumps(stored.output_schema) if stored.output_schema is not None else None,
                    json.dumps(stored.usage_hints),
                    json.dumps(stored.depends_on),
                    stored.trust_level,
                    stored.created_at.isoformat(),
                    stored.updated_at.isoformat(),
                ),
            )
            (row_id,) = connection.execute(
                "INSERT INTO skills (name, version) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET version = excluded.version RETURNING id",
                (stored.name, stored.version),
            ).fetchone()
            connection.execute("DELETE FROM skills_fts WHERE rowid = ?", (row_id,))
            connection.execute(
                "INSERT INTO skills_fts (rowid, name, description, hints) VALUES (?, ?, ?, ?)",
                (row_id, *search_fields(stored)),
            )
            return stored

    def _delete(self, connection: sqlite3.Connection, name: str) -> bool:
        with sqlite_transaction(connection):
            row = connection.execute("DELETE FROM skills WHERE name = ? RETURNING id", (name,)).fetchone()
            if row is None:
                return False
            connection.execute("DELETE FROM skills_fts WHERE rowid = ?", (row[0],))
            connection.execute("DELETE FROM skill_versions WHERE name = ?", (name,))
            return True

    def _record_runs(
        self,
        connection: sqlite3.Connection,
        name: str,
        outcomes: list[bool],
        version: int | None,
        trust: TrustStrategy,
    ) -> Skill:
        # BEGIN IMMEDIATE holds the database's write lock from the read to the write: no other
        # recorder, in this process or another, runs in between
        with sqlite_transaction(connection):
            skill = self._fetch(connection, name, version)
            if skill is None:
                raise not_found(name, version)
            if not outcomes:
                return skill
            stats, level = record_outcomes(skill.stats, skill.trust_level, outcomes, trust)
            assert stats.last_run_at is not None
            connection.execute(
                "UPDATE skill_versions SET executions = ?, successes = ?, recent = ?, last_run_at = ?, "
                "trust_level = ? WHERE name = ? AND version = ?",
                (
                    stats.executions,
                    stats.successes,
                    "".join("1" if outcome else "0" for outcome in stats.recent),
                    stats.last_run_at.isoformat(),
                    level,
                    name,
                    skill.version,
                ),
            )
            return skill.model_copy(update={"stats": stats, "trust_level": level})

    def _set_trust(
        self, connection: sqlite3.Connection, name: str, level: TrustLevel, version: int | None
    ) -> Skill:
        # one write transaction, like _record_runs: no recorder's run lands between the read and
        # the write
        with sqlite_transaction(connection):
            skill = self._fetch(connection, name, version)
            if skill is None:
                raise not_found(name, version)
            connection.execute(
                "UPDATE skill_versions SET trust_level = ? WHERE name = ? AND version = ?",
                (level, name, skill.version),
            )
            return skill.model_copy(update={"trust_level": level})

    def _count(self, connection: sqlite3.Connection, name: str, column: str, version: int | None) -> Skill:
        with sqlite_transaction(connection):
            skill = self._fetch(connection, name, version)
            if skill is None:
                raise not_found(name, version)
            stats = record_decision(skill.stats, column == "approvals")
            connection.execute(
                "UPDATE skill_versions SET approvals = ?, rejections = ? WHERE name = ? AND version = ?",
                (stats.approvals, stats.rejections, name, skill.version),
            )
            return skill.model_copy(update={"stats": stats})
