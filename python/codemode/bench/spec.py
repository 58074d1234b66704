"""The shared workloads: tools.json and the TypeScript programs shipped beside it.

``workloads/`` is a verbatim copy of the yardstick the peers were measured with (TanStack AI Code
Mode's drivers and others): the programs ``W*.ts``, ``W9-limits/*.ts``, ``ts-features/*.ts`` and
``tools.json`` (tools, data, run counts, expected results). It is the only copy: ``benches/``
reads it from here, and an installed wheel carries it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

WORKLOADS_DIR = Path(__file__).resolve().parent / "workloads"
"""The programs and tools.json; tools.json's ``file`` fields are relative to its parent."""

SPEC: dict[str, Any] = json.loads((WORKLOADS_DIR / "tools.json").read_text(encoding="utf-8"))
"""The parsed tools.json."""

LIMIT_KINDS = {"W9a": "timeout", "W9b": "timeout", "W9c": "timeout", "W9d": "memory", "W9e": "memory"}
"""The error kind each limit test must fail with."""

LIMIT_RUNS = 3
"""Samples of a limit test (time until ``execute()`` returned); one with ``--quick``."""


@dataclass(frozen=True)
class Workload:
    """One entry of tools.json's ``workloads`` (W1-W8, timed) or ``limits`` (W9a-W9e)."""

    id: str
    name: str
    file: str
    warmup: int
    runs: int
    timeout_ms: int
    memory_limit_mb: int
    expected_result: Any = None
    """W1-W8: the result every execution must return."""
    expected_kind: str | None = None
    """W9: the error kind the execution must fail with (``timeout`` or ``memory``)."""
    tool_calls: int | None = None
    """W3/W4: tool calls per execution."""

    @property
    def is_limit(self) -> bool:
        """Whether this is a W9 limit test (must fail), not a timed workload (must succeed)."""
        return self.expected_kind is not None

    @property
    def path(self) -> Path:
        """The program's file."""
        return WORKLOADS_DIR.parent / self.file

    @property
    def program(self) -> str:
        """The program's TypeScript."""
        return self.path.read_text(encoding="utf-8")

    def sample_count(self, quick: bool) -> int:
        """Timed runs: tools.json's count, divided by 10 (at least 3) with ``--quick``; limit
        tests run :data:`LIMIT_RUNS` times, once with ``--quick``."""
        if self.is_limit:
            return 1 if quick else self.runs
        return max(3, self.runs // 10) if quick else self.runs


@cache
def all_workloads() -> tuple[Workload, ...]:
    """W1-W8 then W9a-W9e, in tools.json's order."""
    timed = [
        Workload(
            id=w["id"],
            name=w["name"],
            file=w["file"],
            warmup=w["warmup"],
            runs=w["runs"],
            timeout_ms=w["timeoutMs"],
            memory_limit_mb=w["memoryLimitMb"],
            expected_result=w["expectedResult"],
            tool_calls=w.get("toolCalls"),
        )
        for w in SPEC["workloads"]
    ]
    limits = [
        Workload(
            id=w["id"],
            name=w["name"],
            file=w["file"],
            warmup=0,
            runs=LIMIT_RUNS,
            timeout_ms=w["timeoutMs"],
            memory_limit_mb=w["memoryLimitMb"],
            expected_kind=LIMIT_KINDS[w["id"]],
        )
        for w in SPEC["limits"]
    ]
    return tuple(timed + limits)


def workload(workload_id: str) -> Workload:
    """The workload with this id (``W1`` ... ``W9e``); KeyError if there is none."""
    for candidate in all_workloads():
        if candidate.id == workload_id:
            return candidate
    raise KeyError(workload_id)


def select(only: str | None) -> list[Workload]:
    """The workloads ``--only`` names (comma-separated; ``W9`` = every limit test), in order.

    Raises ValueError naming the ids that match nothing."""
    if not only:
        return list(all_workloads())
    tokens = [token.strip() for token in only.split(",") if token.strip()]
    known = {w.id for w in all_workloads()}
    unknown = [t for t in tokens if t not in known and t != "W9"]
    if unknown:
        raise ValueError(f"unknown workload(s): {', '.join(unknown)} (known: {', '.join(sorted(known))}, W9)")
    wanted = set(tokens)
    return [w for w in all_workloads() if w.id in wanted or ("W9" in wanted and w.is_limit)]
