"""The outcome of one execution, and the JSON the model sees."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

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


class ExecutionError(BaseModel):
    """Why a program failed, positioned in the model's own TypeScript where possible."""

    kind: ErrorKind
    name: str
    message: str
    line: int | None = None
    column: int | None = None
    frame: str | None = Field(default=None, description="The source line(s) with a caret under the column.")
    stack: str | None = None


class ExecutionResult(BaseModel):
    """The outcome of one execution."""

    success: bool
    result: Any = None
    error: ExecutionError | None = None
    logs: list[str] = Field(default_factory=list)
    duration_ms: float = 0.0
    tool_calls: int = 0

    def to_tool_output(self) -> dict[str, Any]:
        """The JSON value returned to the model as the tool's output."""
        if self.success:
            return {"success": True, "result": self.result, "logs": self.logs}
        assert self.error is not None
        return {"success": False, "error": self.error.model_dump(exclude_none=True), "logs": self.logs}
