"""A person's decision on a paused tool call: :func:`approve`, :func:`reject` or :func:`override`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Approved:
    """Run the call as the program made it."""


@dataclass(frozen=True)
class Rejected:
    """Do not run it: the program's ``await`` rejects with a ``ToolError`` carrying ``reason``,
    which the program can catch."""

    reason: str = ""


@dataclass(frozen=True)
class Overridden:
    """Do not run it: the program gets ``value`` as the call's result (JSON data)."""

    value: Any


Decision = Approved | Rejected | Overridden


def approve() -> Approved:
    """Run the paused call."""
    return Approved()


def reject(reason: str = "") -> Rejected:
    """Refuse the paused call; the program sees a ``ToolError`` saying it was rejected (and why)."""
    return Rejected(reason)


def override(value: Any) -> Overridden:
    """Answer the paused call with ``value`` instead of running it."""
    return Overridden(value)


def rejection_message(function: str, decision: Rejected) -> str:
    """What the program's ``ToolError`` says for a rejected call."""
    return f"{function} was rejected by a person" + (f": {decision.reason}" if decision.reason else "")


def decisions_from_json(
    chosen: Mapping[Any, Any] | None, pending: Iterable[int]
) -> dict[int | str, Decision]:
    """Decisions as JSON data carry them (a framework's resume value, a UI's answer):
    ``{call_id: "approve" | {"reject": reason} | {"override": value}}``; ``None`` approves
    every call of ``pending``. ``ValueError`` for anything else."""
    if chosen is None:
        return {call_id: approve() for call_id in pending}
    if not isinstance(chosen, Mapping):
        raise ValueError("decisions must map each pending call's id to a decision")
    decisions: dict[int | str, Decision] = {}
    for call_id, decision in chosen.items():
        if decision == "approve":
            decisions[call_id] = approve()
        elif isinstance(decision, Mapping) and "reject" in decision:
            decisions[call_id] = reject(str(decision["reject"] or ""))
        elif isinstance(decision, Mapping) and "override" in decision:
            decisions[call_id] = override(decision["override"])
        else:
            raise ValueError(
                f"decision on call {call_id}: 'approve', {{'reject': reason}} or {{'override': value}}"
            )
    return decisions
