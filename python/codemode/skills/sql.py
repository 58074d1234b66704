"""The async face the SQL stores share: one connection, one lock, blocking work in a thread.

Each call runs the store's blocking implementation (``_fetch``, ``_save``, ``_delete``,
``_record_runs``, ``_set_trust``, or ``_query`` with its own SQL) in a worker thread, holding the lock, on the
connection ``_connect`` opens on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from ..sql_stores import ThreadedConnection
from .models import Skill, TrustLevel
from .store import StoreBase, checked_trust_level
from .trust import TrustStrategy

C = TypeVar("C")  # the database connection


class SQLStoreBase(ThreadedConnection[C], StoreBase):
    """What :class:`~.sqlite.SQLiteSkillStore` and :class:`~.postgres.PostgresSkillStore`
    share; each says how to connect and keeps its own SQL."""

    def __init__(self, trust: TrustStrategy | None = None) -> None:
        ThreadedConnection.__init__(self)
        StoreBase.__init__(self, trust)

    async def get(self, name: str, *, version: int | None = None) -> Skill | None:
        return await self._run(self._fetch, name, version)

    async def save(self, skill: Skill) -> Skill:
        return await self._run(self._save, skill)

    async def delete(self, name: str) -> bool:
        return await self._run(self._delete, name)

    async def record_runs(
        self,
        name: str,
        outcomes: Sequence[bool],
        *,
        version: int | None = None,
        trust: TrustStrategy | None = None,
    ) -> Skill:
        strategy = trust if trust is not None else self.trust
        return await self._run(self._record_runs, name, list(outcomes), version, strategy)

    async def set_trust(self, name: str, level: TrustLevel, *, version: int | None = None) -> Skill:
        return await self._run(self._set_trust, name, checked_trust_level(level), version)

    async def record_decision(self, name: str, approved: bool, *, version: int | None = None) -> Skill:
        column = "approvals" if approved else "rejections"
        return await self._run(self._count, name, column, version)

    @staticmethod
    def _query(connection: Any, sql: str, parameters: tuple[Any, ...]) -> list[Any]:
        return connection.execute(sql, parameters).fetchall()  # type: ignore[no-any-return]

    # -- what each store implements (blocking, called under the lock; and _connect)

    def _fetch(self, connection: C, name: str, version: int | None) -> Skill | None:
        raise NotImplementedError

    def _save(self, connection: C, skill: Skill) -> Skill:
        raise NotImplementedError

    def _delete(self, connection: C, name: str) -> bool:
        raise NotImplementedError

    def _record_runs(
        self, connection: C, name: str, outcomes: list[bool], version: int | None, trust: TrustStrategy
    ) -> Skill:
        raise NotImplementedError

    def _set_trust(self, connection: C, name: str, level: TrustLevel, version: int | None) -> Skill:
        raise NotImplementedError

    def _count(self, connection: C, name: str, column: str, version: int | None) -> Skill:
        """Add one to ``column`` (``approvals`` or ``rejections``) of the version."""
        raise NotImplementedError
