"""Skills in PostgreSQL (``pip install "codemode[postgres]"``: psycopg 3).

Each call runs psycopg's blocking API in a worker thread (psycopg's own async API runs only on
asyncio; this way the store works on asyncio and trio alike). Every write is one transaction;
recording runs, or setting a trust level by hand, locks the version's row (``SELECT ... FOR
UPDATE``) before reading its stats and holds it until the new stats and trust level are written,
and saves of one name are serialized with an advisory lock, so several processes can share one
database. Search uses PostgreSQL full-text search: a ``tsvector`` per skill (``simple``
configuration: whole words, no stemming; the name weighted ``A``, the description ``B``, the
hints ``C``) and ``ts_rank``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import psycopg

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

_PREFIX = re.compile(r"[a-z_][a-z0-9_]{0,40}")

# ts_rank's weights are given for D, C, B, A: hints (C) and description (B) against the name (A)
_RANK_WEIGHTS = f"{{0.1, {FIELD_WEIGHTS[2] / FIELD_WEIGHTS[0]}, {FIELD_WEIGHTS[1] / FIELD_WEIGHTS[0]}, 1.0}}"

_COLUMNS = ROW_COLUMNS


class PostgresSkillStore(SQLStoreBase[psycopg.Connection[Any]]):
    """A :class:`~.store.SkillStore` in the PostgreSQL database at ``dsn``.

    The tables (``<table_prefix>skills`` and ``<table_prefix>skill_versions``) are created on
    first use.
    """

    def __init__(
        self, dsn: str, *, trust: TrustStrategy | None = None, table_prefix: str = "codemode_"
    ) -> None:
        super().__init__(trust)
        if not _PREFIX.fullmatch(table_prefix):
            raise ValueError("table_prefix must be lowercase letters, digits and underscores")
        self.dsn = dsn
        self._skills = f"{table_prefix}skills"
        self._versions = f"{table_prefix}skill_versions"

    async def versions(self, name: str) -> list[int]:
        rows = await self._run(
            self._query, f"SELECT version FROM {self._versions} WHERE name = %s ORDER BY version", (name,)
        )
        return [row[0] for row in rows]

    async def list_index(self) -> list[SkillSummary]:
        rows = await self._run(self._query, f"SELECT {_COLUMNS} FROM {self._latest} ORDER BY v.name", ())
        return [SkillSummary.model_validate(summary_fields(row)) for row in rows]

    async def search(self, query: str, limit: int = 10) -> list[SkillSummary]:
        terms = query_words(query)
        if not terms or limit <= 0:
            return []
        sql = (
            f"SELECT {_COLUMNS} FROM {self._latest}, to_tsquery('simple', %s) q "
            "WHERE s.search @@ q ORDER BY ts_rank(%s::float4[], s.search, q) DESC, v.name LIMIT %s"
        )
        rows = await self._run(self._query, sql, (" | ".join(terms), _RANK_WEIGHTS, limit))
        return [SkillSummary.model_validate(summary_fields(row)) for row in rows]

    # -- blocking implementations, each under the connection lock

    @property
    def _latest(self) -> str:
        return f"{self._versions} v JOIN {self._skills} s ON s.name = v.name AND s.version = v.version"

    def _connect(self) -> psycopg.Connection[Any]:
        if self._connection is None or self._connection.closed:
            connection = psycopg.connect(self.dsn, autocommit=True)
            with connection.transaction():
                connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._skills,))
                connection.execute(
                    f"""CREATE TABLE IF NOT EXISTS {self._versions} (
                        name text NOT NULL,
                        version integer NOT NULL,
                        description text NOT NULL,
                        code text NOT NULL,
                        input_schema text NOT NULL,
                        output_schema text,
                        usage_hints text NOT NULL,
                        depends_on text NOT NULL,
                        trust_level text NOT NULL,
                        executions bigint NOT NULL DEFAULT 0,
                        successes bigint NOT NULL DEFAULT 0,
                        recent text NOT NULL DEFAULT '',
                        last_run_at timestamptz,
                        approvals bigint NOT NULL DEFAULT 0,
                        rejections bigint NOT NULL DEFAULT 0,
                        created_at timestamptz NOT NULL,
                        updated_at timestamptz NOT NULL,
                        PRIMARY KEY (name, version))"""
                )
                for column in ("approvals", "rejections"):  # a table made before these columns
                    connection.execute(
                        f"ALTER TABLE {self._versions} ADD COLUMN IF NOT EXISTS {column} "
                        "bigint NOT NULL DEFAULT 0"
                    )
                connection.execute(
                    f"""CREATE TABLE IF NOT EXISTS {self._skills} (
                        name text PRIMARY KEY,
                        version integer NOT NULL,
                        search tsvector NOT NULL)"""
                )
                connection.execute(
                    f"CREATE INDEX IF NOT EXISTS {self._skills}_search ON {self._skills} USING gin (search)"
                )
            self._connection = connection
        return self._connection

    def _fetch(self, connection: psycopg.Connection[Any], name: str, version: int | None) -> Skill | None:
        if version is None:
            row = connection.execute(
                f"SELECT {_COLUMNS}, v.code FROM {self._latest} WHERE v.name = %s", (name,)
            ).fetchone()
        else:
            row = connection.execute(
                f"SELECT {_COLUMNS}, v.code FROM {self._versions} v WHERE v.name = %s AND v.version = %s",
                (name, version),
            ).fetchone()
        return Skill.model_validate({**summary_fields(row), "code": row[-1]}) if row is not None else None

    def _save(self, connection: psycopg.Connection[Any], skill: Skill) -> Skill:
        with connection.transaction():
            connection.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{self._skills}:{skill.name}",)
            )
            stored = new_version(skill, self._fetch(connection, skill.name, None), self.trust)
            connection.execute(
                f"INSERT INTO {self._versions} (name, version, description, code, input_schema, "
                "output_schema, usage_hints, depends_on, trust_level, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
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
                    stored.created_at,
                    stored.updated_at,
                ),
            )
            name_text, description, hints = search_fields(stored)
            connection.execute(
                f"INSERT INTO {self._skills} (name, version, search) VALUES (%s, %s, "
                "setweight(to_tsvector('simple', %s), 'A') || setweight(to_tsvector('simple', %s), 'B') "
                "|| setweight(to_tsvector('simple', %s), 'C')) "
                "ON CONFLICT (name) DO UPDATE SET version = excluded.version, search = excluded.search",
                (stored.name, stored.version, name_text, description, hints),
            )
            return stored

    def _delete(self, connection: psycopg.Connection[Any], name: str) -> bool:
        with connection.transaction():
            deleted = connection.execute(f"DELETE FROM {self._skills} WHERE name = %s", (name,)).rowcount
            connection.execute(f"DELETE FROM {self._versions} WHERE name = %s", (name,))
            return deleted > 0

    def _record_runs(
        self,
        connection: psycopg.Connection[Any],
        name: str,
        outcomes: list[bool],
        version: int | None,
        trust: TrustStrategy,
    ) -> Skill:
        with connection.transaction():
            skill = self._fetch_for_update(connection, name, version)
            if not outcomes:
                return skill
            stats, level = record_outcomes(skill.stats, skill.trust_level, outcomes, trust)
            connection.execute(
                f"UPDATE {self._versions} SET executions = %s, successes = %s, recent = %s, "
                "last_run_at = %s, trust_level = %s WHERE name = %s AND version = %s",
                (
                    stats.executions,
                    stats.successes,
                    "".join("1" if outcome else "0" for outcome in stats.recent),
                    stats.last_run_at,
                    level,
                    name,
                    skill.version,
                ),
            )
            return skill.model_copy(update={"stats": stats, "trust_level": level})

    def _set_trust(
        self, connection: psycopg.Connection[Any], name: str, level: TrustLevel, version: int | None
    ) -> Skill:
        with connection.transaction():
            skill = self._fetch_for_update(connection, name, version)
            connection.execute(
                f"UPDATE {self._versions} SET trust_level = %s WHERE name = %s AND version = %s",
                (level, name, skill.version),
            )
            return skill.model_copy(update={"trust_level": level})

    def _count(
        self, connection: psycopg.Connection[Any], name: str, column: str, version: int | None
    ) -> Skill:
        with connection.transaction():
            skill = self._fetch_for_update(connection, name, version)
            stats = record_decision(skill.stats, column == "approvals")
            connection.execute(
                f"UPDATE {self._versions} SET approvals = %s, rejections = %s "
                "WHERE name = %s AND version = %s",
                (stats.approvals, stats.rejections, name, skill.version),
            )
            return skill.model_copy(update={"stats": stats})

    def _fetch_for_update(self, connection: psycopg.Connection[Any], name: str, version: int | None) -> Skill:
        """The latest version of ``name`` (or ``version``), its row locked until the transaction
        ends; raises SkillNotFoundError when absent. Called inside a transaction."""
        if version is None:
            row = connection.execute(
                f"SELECT version FROM {self._skills} WHERE name = %s", (name,)
            ).fetchone()
            number = row[0] if row is not None else None
        else:
            number = version
        # the version's row stays locked until the transaction ends: concurrent recorders (and
        # set_trust) wait here and read the stats and level this one writes
        locked = connection.execute(
            f"SELECT 1 FROM {self._versions} WHERE name = %s AND version = %s FOR UPDATE",
            (name, number),
        ).fetchone()
        skill = self._fetch(connection, name, number) if locked is not None else None
        if skill is None:
            raise not_found(name, version)
        return skill
