"""Execution limits (design section 6)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal


@dataclass(frozen=True)
class Limits:
    """Hard limits of one execution. Every breach fails the execution with a typed error and
    leaves the host unharmed."""

    timeout: float = 30.0
    """Seconds of wall clock for the whole execution, tool waits and timers included."""
    memory_limit_mb: float = 128
    """Engine heap limit in MiB."""
    stack_limit_kb: int = 1024
    """Native stack the engine may use, in KiB. On V8 it is at least 128 KiB (V8 needs that
    much to run the sandbox's own code) and at most the engine process's main-thread stack
    less 1 MiB (7 MiB under the usual 8 MiB ``ulimit -s``)."""
    max_tool_calls: int = 10_000
    """Tool calls one execution may start; the next one rejects."""
    max_concurrent_tool_calls: int = 64
    """Tool calls running at once; further calls queue."""
    max_log_bytes: int = 1 << 20
    max_log_lines: int = 10_000
    log_overflow: Literal["truncate", "error"] = "truncate"
    """Past the log limits: cut the output with a marker, or fail with ``output_limit``."""
    max_result_bytes: int = 16 << 20
    """Largest JSON result."""

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if self.memory_limit_mb <= 0:
            raise ValueError("memory_limit_mb must be positive")
        if self.stack_limit_kb < 1:
            raise ValueError("stack_limit_kb must be positive")
        if self.max_concurrent_tool_calls < 1:
            raise ValueError("max_concurrent_tool_calls must be at least 1")

    def with_overrides(self, **overrides: Any) -> Limits:
        """A copy with the given fields changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})
