"""A run against an earlier one: per workload and target, the change of the median, and whether
it is a regression, an improvement, or within the noise.

A change beyond the threshold (10 % by default) counts only when the two runs' interquartile
ranges do not overlap (the new p25 above the old p75 for a regression, the new p75 below the old
p25 for an improvement); otherwise it is reported as noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["regression", "improvement", "noise", "same", "new", "gone", "failed"]

DEFAULT_THRESHOLD = 0.10
"""A median change beyond which a difference is flagged (+10 %)."""


@dataclass(frozen=True)
class Change:
    """One (workload, target) of the new run beside the old one."""

    workload: str
    target: str
    old_ms: float | None
    new_ms: float | None
    status: Status

    @property
    def ratio(self) -> float | None:
        """new / old median (1.25 = 25 % slower), or None if either is missing."""
        if self.old_ms is None or self.new_ms is None or self.old_ms <= 0:
            return None
        return self.new_ms / self.old_ms


def classify(old: dict[str, Any] | None, new: dict[str, Any] | None, threshold: float) -> Status:
    """The status of one result (``median_ms``, ``p25_ms``, ``p75_ms``, ``ok``) against the old."""
    if new is None:
        return "gone"
    if not new.get("ok", True) or new.get("median_ms") is None:
        return "failed"
    if old is None or old.get("median_ms") is None:
        return "new"
    change = new["median_ms"] / old["median_ms"] - 1
    if abs(change) <= threshold:
        return "same"
    if change > 0:
        separated = new.get("p25_ms", new["median_ms"]) > old.get("p75_ms", old["median_ms"])
        return "regression" if separated else "noise"
    separated = new.get("p75_ms", new["median_ms"]) < old.get("p25_ms", old["median_ms"])
    return "improvement" if separated else "noise"


def compare(old: dict[str, Any], new: dict[str, Any], threshold: float = DEFAULT_THRESHOLD) -> list[Change]:
    """Every (workload, target) of either report, in the new report's order, with its status."""
    changes: list[Change] = []
    old_workloads: dict[str, Any] = old.get("workloads", {})
    new_workloads: dict[str, Any] = new.get("workloads", {})
    for workload_id in [*new_workloads, *(w for w in old_workloads if w not in new_workloads)]:
        old_results = old_workloads.get(workload_id, {}).get("results", {})
        new_results = new_workloads.get(workload_id, {}).get("results", {})
        for target in [*new_results, *(t for t in old_results if t not in new_results)]:
            before, after = old_results.get(target), new_results.get(target)
            changes.append(
                Change(
                    workload=workload_id,
                    target=target,
                    old_ms=before.get("median_ms") if before else None,
                    new_ms=after.get("median_ms") if after else None,
                    status=classify(before, after, threshold),
                )
            )
    return changes


def regressions(changes: list[Change]) -> list[Change]:
    """The changes that are regressions."""
    return [c for c in changes if c.status == "regression"]
