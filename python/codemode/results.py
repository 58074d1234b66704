"""The outcome of one execution, and the JSON the model sees."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ErrorKind = Literal[
    "syntax",
    "runtime",
    "timeout",
    "memory",
    "tool",
    "invalid_args",
    "result",
    "output_limit",
    "cancelled",
    "internal",
]
"""Why an execution failed (exactly these kinds). ``internal`` is a fault of codemode itself
(an engine crash or a bug), never of the program: the host is unharmed and the next
execution runs."""


BUILT_ON_FIRST_USE = ConfigDict(defer_build=True)
"""The results' validators and serializers are built when first used (validating, dumping):
an execution makes its result with ``model_construct``, so ``import codemode`` does not pay
for them (about 25 ms)."""

PROGRAM_FILE = "program.ts"
"""The file name of the model's program in frames and stacks."""


class Frame(BaseModel):
    """One call of an error's stack, innermost first, positioned in the code the model
    wrote: ``file`` is ``program.ts`` for the program, ``skill:<name>`` for a skill's code."""

    model_config = BUILT_ON_FIRST_USE

    file: str = PROGRAM_FILE
    function: str
    line: int
    column: int


def format_stack(name: str, message: str, frames: list[Frame]) -> str:
    """The ``stack`` text of an error: ``Name: message``, then one ``at`` line per frame."""
    lines = [f"{name}: {message}"]
    lines.extend(f"    at {f.function} ({f.file}:{f.line}:{f.column})" for f in frames)
    return "\n".join(lines)


class ExecutionError(BaseModel):
    """Why a program failed, positioned in the model's own TypeScript where possible."""

    model_config = BUILT_ON_FIRST_USE

    kind: ErrorKind
    name: str
    message: str
    line: int | None = None
    column: int | None = None
    frame: str | None = Field(default=None, description="The source line(s) with a caret under the column.")
    stack: str | None = None
    """``Name: message`` and the frames, as text (:func:`format_stack`): what the model reads."""
    frames: list[Frame] = Field(default_factory=list, exclude=True)
    """The stack as data, innermost first (empty when the engine gave no position). Not in the
    JSON of the error (``model_dump``, the tool output): the model reads ``stack``."""


class PendingCall(BaseModel):
    """A tool call waiting for a person's decision: decide with ``call_id`` as the key of
    :meth:`codemode.CodeMode.resume`'s ``decisions``."""

    model_config = BUILT_ON_FIRST_USE

    call_id: int
    tool: str
    function: str
    """The name the program called (``external_<tool>``)."""
    args: Any = None
    kind: Literal["tool", "skill"] = "tool"
    """``skill``: an untrusted skill the program would call, asked before the program starts
    (``with_skills(approve="ask")``); its ``call_id`` is negative and ``args`` holds the skill's
    name, version, description and code. Approving it lets it run in this run; rejecting it makes
    it reject with ``SkillError``."""


class Paused(BaseModel):
    """Why and where an execution paused: the calls waiting for decisions, and the token that
    resumes it (signed, single use, expiring)."""

    model_config = BUILT_ON_FIRST_USE

    token: str
    run_id: str
    pending: list[PendingCall]
    expires_at: float
    """Seconds since the Unix epoch."""
    events: list[dict[str, Any]] = Field(default_factory=list)
    """Every event of the run so far (``{"name", "value"}``), replayed runs included."""


class ExecutionResult(BaseModel):
    """The outcome of one execution. A paused execution (``paused`` set) is neither a success
    nor an error: it waits for decisions on ``paused.pending``."""

    model_config = BUILT_ON_FIRST_USE

    success: bool
    result: Any = None
    error: ExecutionError | None = None
    logs: list[str] = Field(default_factory=list)
    duration_ms: float = 0.0
    tool_calls: int = 0
    paused: Paused | None = None

    def to_tool_output(self) -> dict[str, Any]:
        """The JSON value returned to the model as the tool's output."""
        if self.paused is not None:
            calls = ", ".join(f"{call.function} (call {call.call_id})" for call in self.paused.pending)
            return {
                "success": False,
                "paused": True,
                "message": f"the program is paused, waiting for a person to approve {calls}; "
                "it resumes from where it stopped once they decide",
                "pending": [call.model_dump() for call in self.paused.pending],
                "logs": self.logs,
            }
        if self.success:
            return {"success": True, "result": self.result, "logs": self.logs}
        assert self.error is not None
        return {"success": False, "error": self.error.model_dump(exclude_none=True), "logs": self.logs}
