"""What a skill is: TypeScript text plus metadata, as pydantic models."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from ..errors import CodemodeError
from ..tools import is_js_identifier

TrustLevel = Literal["untrusted", "provisional", "trusted"]
"""How far a skill is trusted, lowest first."""

TRUST_LEVELS: tuple[TrustLevel, ...] = ("untrusted", "provisional", "trusted")
"""The trust levels in order, lowest first."""

RESERVED_PREFIXES = ("external_", "skill_")
"""Name prefixes a skill cannot have: they belong to the sandbox's own functions."""

MAX_NAME_LENGTH = 64

_SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


class InvalidSkillName(CodemodeError, ValueError):
    """A skill name that is not allowed; the message says why and what to do instead."""


class SkillNotFoundError(CodemodeError, LookupError):
    """No skill (or no such version of it) in the store."""


def trust_rank(level: TrustLevel) -> int:
    """The position of ``level`` in :data:`TRUST_LEVELS` (0 for ``untrusted``)."""
    return TRUST_LEVELS.index(level)


def validate_skill_name(name: str) -> str:
    """Return ``name`` when it is a valid skill name, else raise :class:`InvalidSkillName`.

    A valid name is snake_case (lowercase letters, digits, single underscores between words,
    starting with a letter), at most 64 characters, does not start with ``external_`` or
    ``skill_`` and is a valid JavaScript identifier (not a reserved word such as ``delete``).
    """
    if not isinstance(name, str) or not name:
        raise InvalidSkillName("a skill name cannot be empty: use snake_case, e.g. 'fetch_weather'")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidSkillName(f"skill name {name!r} is longer than {MAX_NAME_LENGTH} characters")
    if not _SNAKE_CASE.fullmatch(name):
        raise InvalidSkillName(
            f"skill name {name!r} is not snake_case: use lowercase letters, digits and single "
            "underscores, starting with a letter, e.g. 'fetch_weather'"
        )
    for prefix in RESERVED_PREFIXES:
        if name.startswith(prefix):
            raise InvalidSkillName(
                f"skill name {name!r} starts with {prefix!r}, which is reserved for the sandbox's "
                f"functions: drop the prefix, e.g. {name[len(prefix) :]!r}"
            )
    if not is_js_identifier(name):
        raise InvalidSkillName(
            f"skill name {name!r} is a JavaScript reserved word: choose a more descriptive name"
        )
    return name


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


class SkillStats(BaseModel):
    """How a skill's current version has fared: counts since it was saved.

    ``recent`` keeps the outcomes of the last runs (oldest first, at most the trust strategy's
    demotion window); demotion looks at it.
    """

    executions: int = Field(default=0, ge=0)
    successes: int = Field(default=0, ge=0)
    recent: list[bool] = Field(default_factory=list)
    last_run_at: datetime | None = None
    approvals: int = Field(default=0, ge=0)
    """Times a person approved this version to run (``with_skills(approve="ask")``)."""
    rejections: int = Field(default=0, ge=0)
    """Times a person refused to let it run."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def success_rate(self) -> float:
        """``successes / executions`` over every run of this version; 0.0 before the first run."""
        return self.successes / self.executions if self.executions else 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def recent_success_rate(self) -> float | None:
        """The success rate over ``recent``; ``None`` before the first run."""
        return sum(self.recent) / len(self.recent) if self.recent else None


class SkillSummary(BaseModel):
    """A skill's index entry: everything but its code."""

    model_config = ConfigDict(extra="ignore")

    name: str
    description: str
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    output_schema: dict[str, Any] | None = None
    usage_hints: list[str] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    trust_level: TrustLevel = "untrusted"
    stats: SkillStats = Field(default_factory=SkillStats)
    version: int = Field(default=1, ge=1)
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        return validate_skill_name(name)


class Skill(SkillSummary):
    """A saved program: the body of ``async function (input) { ... }`` plus its metadata.

    ``code`` may call ``external_*`` tools and other ``skill_*`` functions and returns a JSON
    value. ``version`` counts from 1 and grows on each save under the same name; ``stats`` and
    ``trust_level`` belong to this version. ``created_at`` is when the first version was saved,
    ``updated_at`` when this one was.
    """

    code: str

    def summary(self) -> SkillSummary:
        """The index entry of this skill (without its code)."""
        return SkillSummary.model_validate(self.model_dump(exclude={"code"}))
