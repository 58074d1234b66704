"""Skills in a dict: for tests, demos and one-process throwaway use."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from .models import Skill, SkillNotFoundError, SkillSummary
from .store import SearchIndex, StoreBase, new_version, summaries_by_name
from .trust import TrustStrategy, record_outcomes


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
            versions = self._versions.get(name)
            number = (max(versions) if versions else 0) if version is None else version
            skill = versions.get(number) if versions else None
            if skill is None:
                raise SkillNotFoundError(f"no skill {name!r}" + (f" version {version}" if version else ""))
            if not outcomes:
                return skill.model_copy(deep=True)
            stats, level = record_outcomes(skill.stats, skill.trust_level, outcomes, strategy)
            updated = skill.model_copy(update={"stats": stats, "trust_level": level})
            versions[number] = updated
            if number == max(versions):
                self._index.refresh(updated.summary())
            return updated.model_copy(deep=True)
