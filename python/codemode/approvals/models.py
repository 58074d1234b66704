"""What a paused (or recorded) execution keeps: the program, its limits, the values that make
it deterministic, and every tool call with its outcome, in the order the program made them."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field

RunStatus = Literal["running", "paused", "resuming", "finished"]
"""``paused``: waiting for decisions (its token resumes it); ``resuming``: a resume has claimed
it; ``finished``: ended (recorded runs)."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class CallRecord(BaseModel):
    """One tool call as the program made it. ``index`` counts the execution's calls from 1
    in the order the program made them; ``outcome`` is ``{"result": value}``,
    ``{"error": message}``, or ``None`` while the call waits for a decision; ``settled`` is its
    place in the order the calls settled (``None`` while pending)."""

    index: int
    tool: str
    args: Any = None
    outcome: dict[str, Any] | None = None
    settled: int | None = None
    duration_ms: float = 0.0
    approval: Literal["approved", "rejected", "overridden"] | None = None
    """The decision this call got, when it needed one."""


class SkillPlan(BaseModel):
    """The skills a run's program was given (a run started by a skills runtime): what its
    program is rebuilt from on resume, so it runs the skills' code as it was when it started."""

    skills: list[dict[str, Any]]
    """Each skill as saved (``Skill.model_dump``), the runtime's whole closure."""
    denied: list[str] = Field(default_factory=list)
    """Untrusted skills that may not run (not approved): they reject with ``SkillError``."""
    asked: list[str] = Field(default_factory=list)
    """Untrusted skills waiting for a person's decision before the program starts."""
    max_events: int = 1000


class RunRecord(BaseModel):
    """A run that can be resumed (paused) or read back (recorded)."""

    run_id: str
    version: int = 1
    """Grows by one at each pause: a token names the version it resumes."""
    status: RunStatus = "running"
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    code: str
    tool_call_id: str | None = None
    limits: dict[str, Any] = Field(default_factory=dict)
    """The limit overrides the run was started with (``timeout``, ``memory_limit_mb``...)."""
    seed: int = 0
    """``Math.random``'s seed: the same numbers on every replay."""
    clock: list[float] = Field(default_factory=list)
    """The values ``Date.now()`` / ``new Date()`` gave, in order: replayed before real time."""
    calls: list[CallRecord] = Field(default_factory=list)
    timers: list[list[int]] = Field(default_factory=list)
    """The timers that fired, ``[timer, settled, ms]`` each: the program's count of its timers,
    the firing's place in the calls' settle order (so a replay keeps the order), and when it
    fired (ms after the execution started)."""
    pending: list[int] = Field(default_factory=list)
    """Indexes of the calls waiting for a decision (when paused)."""
    events: list[dict[str, Any]] = Field(default_factory=list)
    """The events so far (``{"name", "value"}``), when the run was watched."""
    result: dict[str, Any] | None = None
    """The model-facing output, once finished."""
    skills: SkillPlan | None = None
    """The skills the program can call, when a skills runtime started the run."""


class RunSummary(BaseModel):
    """A run in a listing."""

    run_id: str
    version: int
    status: RunStatus
    created_at: datetime
    updated_at: datetime
    calls: int
    pending: int
