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
  run.
* ``search(query, limit)`` ranks by relevance (BM25, or PostgreSQL's ``ts_rank``) over the name
  (split at underscores), the description and the usage hints; a match in the name weighs 3 times
  a match elsewhere. Words are matched whole and case-insensitively, any of them (OR). Equal
  scores are ordered by name. A query without words finds nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .models import Skill, SkillStats, SkillSummary, utc_now
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

    async def aclose(self) -> None:
        """Release connections and files."""
        ...


class StoreBase:
    """Shared plumbing: the trust strategy and ``async with`` support."""

    trust: TrustStrategy

    def __init__(self, trust: TrustStrategy | None = None) -> None:
        self.trust = trust if trust is not None else TrustStrategy.default()

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


@dataclass(frozen=True)
class SearchDocument:
    """A skill's searched fields, split into words once."""

    summary: SkillSummary
    fields: tuple[Counter[str], ...]
    length: int

    @classmethod
    def of(cls, summary: SkillSummary) -> SearchDocument:
        fields = tuple(Counter(words(text)) for text in search_fields(summary))
        return cls(summary, fields, sum(sum(field.values()) for field in fields))


def bm25_rank(
    documents: Sequence[SearchDocument], query: str, limit: int, *, k1: float = 1.2, b: float = 0.75
) -> list[SkillSummary]:
    """Rank ``documents`` for ``query`` the way SQLite FTS5's ``bm25()`` does with field weights.

    Score of a document: the sum over query words of ``idf * tf * (k1 + 1) / (tf + k1 * (1 - b +
    b * length / average length))``, ``tf`` being the weighted count of the word over the fields
    and ``idf = log((N - n + 0.5) / (n + 0.5))`` (at least 1e-6). Ties ordered by name.
    """
    terms = query_words(query)
    if not terms or not documents or limit <= 0:
        return []
    total = len(documents)
    average = sum(doc.length for doc in documents) / total or 1.0
    idf = {term: _idf(total, sum(1 for doc in documents if _contains(doc, term))) for term in terms}
    scored: list[tuple[float, str, SkillSummary]] = []
    for doc in documents:
        score = 0.0
        for term in terms:
            tf = sum(weight * field[term] for weight, field in zip(FIELD_WEIGHTS, doc.fields, strict=True))
            if tf:
                score += idf[term] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * doc.length / average))
        if score > 0:
            scored.append((-score, doc.summary.name, doc.summary))
    scored.sort(key=lambda item: (item[0], item[1]))
    return [summary for _, _, summary in scored[:limit]]


def _contains(doc: SearchDocument, term: str) -> bool:
    return any(term in field for field in doc.fields)


def _idf(total: int, containing: int) -> float:
    value = math.log((total - containing + 0.5) / (containing + 0.5))
    return value if value > 1e-6 else 1e-6


def summaries_by_name(summaries: Iterable[SkillSummary]) -> list[SkillSummary]:
    """``summaries`` ordered by name."""
    return sorted(summaries, key=lambda summary: summary.name)


ROW_COLUMNS = (
    "v.name, v.version, v.description, v.input_schema, v.output_schema, v.usage_hints, v.depends_on, "
    "v.trust_level, v.executions, v.successes, v.recent, v.last_run_at, v.created_at, v.updated_at"
)
"""The columns of a summary in the SQL stores (table alias ``v``), in :func:`summary_fields` order."""


def summary_fields(row: Sequence[Any]) -> dict[str, Any]:
    """A summary's fields from a row of :data:`ROW_COLUMNS` (JSON as text, outcomes as ``"1"``/``"0"``)."""
    (name, version, description, input_schema, output_schema, usage_hints, depends_on, trust_level) = row[:8]
    executions, successes, recent, last_run_at, created_at, updated_at = row[8:14]
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
        },
        "created_at": created_at,
        "updated_at": updated_at,
    }
