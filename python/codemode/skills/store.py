"""The one storage interface every skill store implements, and what the stores share.

Semantics every implementation follows (one test suite checks them on all four):

* ``save(skill)`` stores a new version: version 1 for a new name, the latest + 1 otherwise. The
  previous versions stay retrievable (``get(name, version=N)``, ``versions(name)``). The store
  sets ``version``, ``created_at`` (kept from version 1), ``updated_at`` (now), fresh ``stats``
  and the trust strategy's initial ``trust_level``: whatever the caller put there is ignored, so
  a model cannot register a skill as trusted.
* ``get``, ``list_index`` and ``search`` see the latest version of each skill.
* ``delete(name)`` removes the skill with every version.
* ``record_run`` adds one run to a version's stats (the latest by default) and applies the trust
  strategy, atomically: concurrent recorders, in other tasks, threads or processes, never lose a
  run. ``record_runs`` adds several runs of one skill the same way in one write (a program that
  called a skill many times): the strategy is evaluated after each run, in order, so the result
  is that of ``record_run`` called for each outcome with no other run in between.
* ``set_trust(name, level)`` sets a version's trust level as a person decided it (approving a
  skill is setting it to ``trusted``), with the same atomicity; the stats stay as they are, and
  the runs recorded afterwards apply the trust strategy from the new level.
* ``search(query, limit)`` ranks by relevance (BM25, or PostgreSQL's ``ts_rank``) over the name
  (split at underscores), the description and the usage hints; a match in the name weighs 3 times
  a match elsewhere. Words are matched whole and case-insensitively, any of them (OR). Equal
  scores are ordered by name. A query without words finds nothing.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from .models import TRUST_LEVELS, Skill, SkillNotFoundError, SkillStats, SkillSummary, TrustLevel, utc_now
from .trust import TrustStrategy

NAME_WEIGHT = 3.0
"""How much a query word in the name weighs against one in the description or the hints."""

FIELD_WEIGHTS = (NAME_WEIGHT, 1.0, 1.0)
"""Weights of the searched fields: name, description, usage hints."""

_WORD = re.compile(r"[^\W_]+")


@runtime_checkable
class SkillStore(Protocol):
    """Where skills live. Every method is async; call :meth:`aclose` when done (or ``async with``)."""

    trust: TrustStrategy

    async def get(self, name: str, *, version: int | None = None) -> Skill | None:
        """The latest version of skill ``name`` (or version ``version``), ``None`` if absent."""
        ...

    async def versions(self, name: str) -> list[int]:
        """The stored version numbers of ``name``, ascending (empty when absent)."""
        ...

    async def save(self, skill: Skill) -> Skill:
        """Store ``skill`` as a new version (see the module doc) and return it as stored."""
        ...

    async def delete(self, name: str) -> bool:
        """Remove ``name`` and all its versions; False when there was no such skill."""
        ...

    async def list_index(self) -> list[SkillSummary]:
        """Every skill's latest version without its code, ordered by name."""
        ...

    async def search(self, query: str, limit: int = 10) -> list[SkillSummary]:
        """The ``limit`` skills most relevant to ``query``, best first (see the module doc)."""
        ...

    async def record_run(
        self, name: str, success: bool, *, version: int | None = None, trust: TrustStrategy | None = None
    ) -> Skill:
        """Count one run of ``name`` (its latest version, or ``version``) and update its trust.

        ``trust`` overrides the store's strategy for this call. Raises
        :class:`~.models.SkillNotFoundError` when there is no such skill or version.
        """
        ...

    async def record_runs(
        self,
        name: str,
        outcomes: Sequence[bool],
        *,
        version: int | None = None,
        trust: TrustStrategy | None = None,
    ) -> Skill:
        """Count several runs of ``name`` (``True`` for a success), in order, in one atomic write.

        Stats and trust end as if :meth:`record_run` had been called for each outcome in turn
        (promotions and demotions included), with no other recorder's run in between. An empty
        ``outcomes`` changes nothing. Raises :class:`~.models.SkillNotFoundError` like
        :meth:`record_run`; returns the version as recorded.
        """
        ...

    async def set_trust(self, name: str, level: TrustLevel, *, version: int | None = None) -> Skill:
        """Set the trust level of ``name``'s latest version (or of ``version``): a person's decision.

        Approving a skill is setting it to ``"trusted"``; ``"untrusted"`` revokes that. The stats
        are left untouched, and the runs recorded later keep applying the store's
        :class:`~.trust.TrustStrategy`, starting from the new level (a failing approved skill is
        still demoted). Setting the level a version already has changes nothing and is no error.
        Atomic like :meth:`record_runs`; returns the version as updated. Raises
        :class:`~.models.SkillNotFoundError` when there is no such skill or version, and
        :class:`ValueError` for a level not in :data:`~.models.TRUST_LEVELS`.
        """
        ...

    async def record_decision(self, name: str, approved: bool, *, version: int | None = None) -> Skill:
        """Count a person's decision on running ``name``'s latest version (or ``version``):
        ``stats.approvals`` or ``stats.rejections`` grows by one (evidence a trust function
        can weigh; the trust level is left as it is). Atomic like :meth:`record_runs`; raises
        :class:`~.models.SkillNotFoundError` when there is no such skill or version."""
        ...

    async def aclose(self) -> None:
        """Release connections and files."""
        ...


class StoreBase:
    """Shared plumbing: the trust strategy, ``record_run`` as a batch of one, and
    ``async with`` support."""

    trust: TrustStrategy

    def __init__(self, trust: TrustStrategy | None = None) -> None:
        self.trust = trust if trust is not None else TrustStrategy.default()

    async def record_runs(
        self,
        name: str,
        outcomes: Sequence[bool],
        *,
        version: int | None = None,
        trust: TrustStrategy | None = None,
    ) -> Skill:
        """See :meth:`SkillStore.record_runs` (each store implements it)."""
        raise NotImplementedError

    async def set_trust(self, name: str, level: TrustLevel, *, version: int | None = None) -> Skill:
        """See :meth:`SkillStore.set_trust` (each store implements it)."""
        raise NotImplementedError

    async def record_run(
        self, name: str, success: bool, *, version: int | None = None, trust: TrustStrategy | None = None
    ) -> Skill:
        """See :meth:`SkillStore.record_run`: :meth:`record_runs` with one outcome."""
        return await self.record_runs(name, [success], version=version, trust=trust)

    async def aclose(self) -> None:
        """Release connections and files (nothing to release here)."""

    async def __aenter__(self) -> StoreBase:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def new_version(skill: Skill, latest: Skill | None, trust: TrustStrategy) -> Skill:
    """``skill`` as the store saves it after ``latest`` (the current latest version, if any)."""
    now = utc_now()
    return skill.model_copy(
        update={
            "version": latest.version + 1 if latest is not None else 1,
            "created_at": latest.created_at if latest is not None else now,
            "updated_at": now,
            "stats": SkillStats(),
            "trust_level": trust.initial,
        },
        deep=True,
    )


def checked_trust_level(level: str) -> TrustLevel:
    """``level`` when it is one of :data:`~.models.TRUST_LEVELS`, else :class:`ValueError`."""
    for known in TRUST_LEVELS:
        if level == known:
            return known
    raise ValueError(f"unknown trust level {level!r}: use one of {', '.join(TRUST_LEVELS)}")


def not_found(name: str, version: int | None) -> SkillNotFoundError:
    """The error for a missing skill ``name`` (or its missing ``version``)."""
    return SkillNotFoundError(f"no skill {name!r}" + (f" version {version}" if version else ""))


def words(text: str) -> list[str]:
    """The searchable words of ``text``: lowercase runs of letters and digits (``_`` splits)."""
    return _WORD.findall(text.lower())


def query_words(query: str) -> list[str]:
    """The distinct words of a search query, in order."""
    return list(dict.fromkeys(words(query)))


def search_fields(summary: SkillSummary) -> tuple[str, str, str]:
    """The text of the searched fields: name (underscores as spaces), description, hints."""
    return summary.name.replace("_", " "), summary.description, "\n".join(summary.usage_hints)


def code_digest(code: str) -> str:
    """The SHA-256 of a skill's code (hex)."""
    return hashlib.sha256(code.encode()).hexdigest()


class SearchIndex:
    """An inverted index of skills' searched fields, ranked the way SQLite FTS5's ``bm25()`` is.

    Each word maps to its postings: the skills containing it with the word's weighted count
    (a match in the name counts :data:`NAME_WEIGHT` times). Each skill's length (its words over
    every field) is kept, with their total, so :meth:`search` reads only the postings of the
    query's words and scores only the skills holding one of them. Built incrementally with
    :meth:`add` and :meth:`remove`. Not thread-safe: its owner locks around it.
    """

    def __init__(self, summaries: Iterable[SkillSummary] = ()) -> None:
        self._postings: dict[str, dict[str, float]] = {}
        self._terms: dict[str, tuple[str, ...]] = {}
        self._lengths: dict[str, int] = {}
        self._summaries: dict[str, SkillSummary] = {}
        self._total_length = 0
        for summary in summaries:
            self.add(summary)

    def __len__(self) -> int:
        return len(self._summaries)

    def __contains__(self, name: object) -> bool:
        return name in self._summaries

    def add(self, summary: SkillSummary) -> None:
        """Index ``summary``, replacing whatever was indexed under its name."""
        name = summary.name
        self.remove(name)
        frequencies: dict[str, float] = {}
        length = 0
        for weight, text in zip(FIELD_WEIGHTS, search_fields(summary), strict=True):
            for term, count in Counter(words(text)).items():
                frequencies[term] = frequencies.get(term, 0.0) + weight * count
                length += count
        for term, frequency in frequencies.items():
            self._postings.setdefault(term, {})[name] = frequency
        self._terms[name] = tuple(frequencies)
        self._lengths[name] = length
        self._summaries[name] = summary
        self._total_length += length

    def remove(self, name: str) -> bool:
        """Take skill ``name`` out of the index; False when it was not there."""
        if name not in self._summaries:
            return False
        for term in self._terms.pop(name):
            postings = self._postings[term]
            del postings[name]
            if not postings:
                del self._postings[term]
        self._total_length -= self._lengths.pop(name)
        del self._summaries[name]
        return True

    def refresh(self, summary: SkillSummary) -> None:
        """Replace the summary returned for ``summary.name`` (its stats changed, not its searched
        text); indexes it when it is not indexed yet."""
        if summary.name in self._summaries:
            self._summaries[summary.name] = summary
        else:
            self.add(summary)

    def search(self, query: str, limit: int, *, k1: float = 1.2, b: float = 0.75) -> list[SkillSummary]:
        """The ``limit`` indexed skills most relevant to ``query``, best first.

        Score of a skill: the sum over the query's words of ``idf * tf * (k1 + 1) / (tf + k1 *
        (1 - b + b * length / average length))``, ``tf`` being the weighted count of the word in
        the skill and ``idf = log((N - n + 0.5) / (n + 0.5))`` (at least 1e-6) for ``n`` of the
        ``N`` skills holding it. Equal scores are ordered by name.
        """
        terms = query_words(query)
        total = len(self._summaries)
        if not terms or not total or limit <= 0:
            return []
        average = self._total_length / total or 1.0
        lengths = self._lengths
        boost, flat = k1 + 1, 1 - b
        scores: dict[str, float] = {}
        for term in terms:  # term at a time: each skill's score sums its words in query order
            postings = self._postings.get(term)
            if not postings:
                continue
            idf = _idf(total, len(postings))
            for name, tf in postings.items():
                score = idf * tf * boost / (tf + k1 * (flat + b * lengths[name] / average))
                scores[name] = scores.get(name, 0.0) + score
        best = heapq.nsmallest(limit, scores.items(), key=lambda item: (-item[1], item[0]))
        return [self._summaries[name] for name, score in best if score > 0]


def bm25_rank(summaries: Iterable[SkillSummary], query: str, limit: int) -> list[SkillSummary]:
    """The ``limit`` of ``summaries`` most relevant to ``query``, best first (see
    :meth:`SearchIndex.search`); for stores that do not keep an index."""
    return SearchIndex(summaries).search(query, limit)


def _idf(total: int, containing: int) -> float:
    value = math.log((total - containing + 0.5) / (containing + 0.5))
    return value if value > 1e-6 else 1e-6


def summaries_by_name(summaries: Iterable[SkillSummary]) -> list[SkillSummary]:
    """``summaries`` ordered by name."""
    return sorted(summaries, key=lambda summary: summary.name)


ROW_COLUMNS = (
    "v.name, v.version, v.description, v.input_schema, v.output_schema, v.usage_hints, v.depends_on, "
    "v.trust_level, v.executions, v.successes, v.recent, v.last_run_at, v.created_at, v.updated_at, "
    "v.approvals, v.rejections"
)
"""The columns of a summary in the SQL stores (table alias ``v``), in :func:`summary_fields` order."""


def summary_fields(row: Sequence[Any]) -> dict[str, Any]:
    """A summary's fields from a row of :data:`ROW_COLUMNS` (JSON as text, outcomes as ``"1"``/``"0"``)."""
    (name, version, description, input_schema, output_schema, usage_hints, depends_on, trust_level) = row[:8]
    executions, successes, recent, last_run_at, created_at, updated_at, approvals, rejections = row[8:16]
    return {
        "name": name,
        "version": version,
        "description": description,
        "input_schema": json.loads(input_schema),
        "output_schema": json.loads(output_schema) if output_schema is not None else None,
        "usage_hints": json.loads(usage_hints),
        "depends_on": json.loads(depends_on),
        "trust_level": trust_level,
        "stats": {
            "executions": executions,
            "successes": successes,
            "recent": [char == "1" for char in recent],
            "last_run_at": last_run_at,
            "approvals": approvals,
            "rejections": rejections,
        },
        "created_at": created_at,
        "updated_at": updated_at,
    }
