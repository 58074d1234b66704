"""Skills in a dict: for tests, demos and one-process throwaway use."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from .models import Skill, SkillSummary, TrustLevel
from .store import (
    SearchIndex,
    StoreBase,
    checked_trust_level,
    new_version,
    not_found,
    summaries_by_name,
)
from .trust import TrustStrategy, record_decision, record_outcomes


class MemorySkillStore(StoreBase):
    """A :class:`~.store.SkillStore` in memory; gone when the process ends.

    Search reads an inverted index (:class:`~.store.SearchIndex`) kept up to date by every save
    and delete, so it scores only the skills that hold a word of the query.
    """

    def __init__(self, *, trust: TrustStrategy | None = None) -> None:
        super().__init__(trust)
        self._lock = threading.Lock()
        self._versions: dict[str, dict[int, Skill]] = {}
        self._index = SearchIndex()

    async def get(self, name: str, *, version: int | None = None) -> Skill | None:
        with self._lock:
            versions = self._versions.get(name)
            if not versions:
                return None
            skill = versions.get(max(versions) if version is None else version)
            return skill.model_copy(deep=True) if skill is not None else None

    async def versions(self, name: str) -> list[int]:
        with self._lock:
            return sorted(self._versions.get(name, {}))

    async def save(self, skill: Skill) -> Skill:
        with self._lock:
            versions = self._versions.setdefault(skill.name, {})
            stored = new_version(skill, versions[max(versions)] if versions else None, self.trust)
            versions[stored.version] = stored
            self._index.add(stored.summary())
            return stored.model_copy(deep=True)

    async def delete(self, name: str) -> bool:
        with self._lock:
            self._index.remove(name)
            return self._versions.pop(name, None) is not None

    async def list_index(self) -> list[SkillSummary]:
        with self._lock:
            return summaries_by_name(
                versions[max(versions)].summary() for versions in self._versions.values()
            )

    async def search(self, query: str, limit: int = 10) -> list[SkillSummary]:
        with self._lock:
            return [summary.model_copy(deep=True) for summary in self._index.search(query, limit)]

    async def record_runs(
        self,
        name: str,
        outcomes: Sequence[bool],
        *,
        version: int | None = None,
        trust: TrustStrategy | None = None,
    ) -> Skill:
        strategy = trust if trust is not None else self.trust
        with self._lock:
            skill = self._find(name, version)
            if not outcomes:
                return skill.model_copy(deep=True)
            stats, level = record_outcomes(skill.stats, skill.trust_level, outcomes, strategy)
            return self._replace(skill.model_copy(update={"stats": stats, "trust_level": level}))

    async def set_trust(self, name: str, level: TrustLevel, *, version: int | None = None) -> Skill:
        level = checked_trust_level(level)
        with self._lock:
            skill = self._find(name, version)
            return self._replace(skill.model_copy(update={"trust_level": level}))

    async def record_decision(self, name: str, approved: bool, *, version: int | None = None) -> Skill:
        with self._lock:
            skill = self._find(name, version)
            return self._replace(skill.model_copy(update={"stats": record_decision(skill.stats, approved)}))

    # -- under the lock

    def _find(self, name: str, version: int | None) -> Skill:
        """The stored latest version of ``name`` (or ``version``); SkillNotFoundError if absent."""
        versions = self._versions.get(name)
        number = (max(versions) if versions else 0) if version is None else version
        skill = versions.get(number) if versions else None
        if skill is None:
            raise not_found(name, version)
        return skill

    def _replace(self, updated: Skill) -> Skill:
        """Store ``updated`` over its version (refreshing the index for the latest); a copy of it."""
        versions = self._versions[updated.name]
        versions[updated.version] = updated
        if updated.version == max(versions):
            self._index.refresh(updated.summary())
        return updated.model_copy(deep=True)
