"""Execution limits (design section 6): one :class:`Limits`, passed whole from
:func:`codemode.create_code_mode` through the driver to the engine."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

from typing_extensions import TypedDict, Unpack


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
    """Bytes of console output kept (UTF-8, level prefixes included)."""
    max_log_lines: int = 10_000
    """Console lines kept."""
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
        if self.log_overflow not in ("truncate", "error"):
            raise ValueError(f"log_overflow must be 'truncate' or 'error', not {self.log_overflow!r}")

    def with_overrides(self, **overrides: Unpack[LimitOverrides]) -> Limits:
        """A copy with the given fields changed (``None`` values are ignored); an unknown
        name is a ``TypeError`` naming it."""
        unknown = sorted(set(overrides) - LIMIT_NAMES)
        if unknown:
            raise TypeError(f"unknown limit {unknown[0]!r}; the limits are: {', '.join(sorted(LIMIT_NAMES))}")
        changed = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **changed) if changed else self  # type: ignore[arg-type]


class LimitOverrides(TypedDict, total=False):
    """Some fields of :class:`Limits`, as keyword arguments (``timeout=5``): what
    :func:`codemode.create_code_mode` and :meth:`codemode.CodeMode.execute` take, so that a
    type checker rejects a misspelt limit."""

    timeout: float
    memory_limit_mb: float
    stack_limit_kb: int
    max_tool_calls: int
    max_concurrent_tool_calls: int
    max_log_bytes: int
    max_log_lines: int
    log_overflow: Literal["truncate", "error"]
    max_result_bytes: int


LIMIT_NAMES = frozenset(field.name for field in fields(Limits))
"""The names of the limits (the fields of :class:`Limits`, the keys of :class:`LimitOverrides`)."""
