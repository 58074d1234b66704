"""Skills: programs that worked, saved as named, typed, trusted functions.

A :class:`Skill` is TypeScript (the body of an async function receiving ``input``) plus its
metadata. Skills live in a :class:`SkillStore`: :class:`MemorySkillStore`,
:class:`FileSkillStore` (files to review in a pull request), :class:`SQLiteSkillStore` (the
embedded default) or :class:`PostgresSkillStore` (``pip install "codemode[postgres]"``). Every
run is recorded in the store, and a :class:`TrustStrategy` promotes (or demotes) the skill.

```python
from codemode.skills import Skill, SQLiteSkillStore

async with SQLiteSkillStore("skills.db") as store:
    await store.save(Skill(name="double", description="Double a number", code="return input.n * 2;"))
    skill = await store.record_run("double", success=True)
    hits = await store.search("double a number", limit=5)
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .completions import ProviderModel, completion_for
from .file import FileSkillStore
from .memory import MemorySkillStore
from .models import (
    TRUST_LEVELS,
    InvalidSkillName,
    Skill,
    SkillNotFoundError,
    SkillStats,
    SkillSummary,
    TrustLevel,
    trust_rank,
    validate_skill_name,
)
from .sandbox import SKILL_CALL, SKILL_ERROR, SKILL_RESULT, Approve, SkillRuntime
from .selection import (
    BM25SkillSelector,
    LLMSkillSelector,
    SkillContext,
    SkillSelector,
    pydantic_ai_completion,
    with_skills,
)
from .sqlite import SQLiteSkillStore
from .store import SkillStore
from .tools import SkillRegistrationError
from .trust import Threshold, TrustFunction, TrustStrategy

if TYPE_CHECKING:
    from .postgres import PostgresSkillStore

__all__ = [
    "SKILL_CALL",
    "SKILL_ERROR",
    "SKILL_RESULT",
    "TRUST_LEVELS",
    "Approve",
    "BM25SkillSelector",
    "FileSkillStore",
    "InvalidSkillName",
    "LLMSkillSelector",
    "MemorySkillStore",
    "PostgresSkillStore",
    "ProviderModel",
    "SQLiteSkillStore",
    "Skill",
    "SkillContext",
    "SkillNotFoundError",
    "SkillRegistrationError",
    "SkillRuntime",
    "SkillSelector",
    "SkillStats",
    "SkillStore",
    "SkillSummary",
    "Threshold",
    "TrustFunction",
    "TrustLevel",
    "TrustStrategy",
    "completion_for",
    "pydantic_ai_completion",
    "trust_rank",
    "validate_skill_name",
    "with_skills",
]


def __getattr__(name: str) -> Any:
    # psycopg is an optional extra: import the Postgres store only when it is asked for
    if name == "PostgresSkillStore":
        from .postgres import PostgresSkillStore

        return PostgresSkillStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
