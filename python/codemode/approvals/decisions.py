"""A person's decision on a paused tool call: :func:`approve`, :func:`reject` or :func:`override`."""

from __future__ import annotations

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
