"""For driver authors: the engine-neutral protocol every engine implements, and the types a
driver receives (as ``anyio.abc`` is for anyio).

A driver's ``create_context(bindings=..., limits=...)`` gets the tools (:class:`ToolBinding`,
keyed by name) and the :class:`~codemode.Limits`; the context's ``execute`` runs one
:class:`Program` in a fresh engine and reports live events (:class:`Event`) to an
:data:`EventCallback`. ``codemode.engine`` holds what the built-in engines share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ._core import StripResult
from .events import Event, EventCallback
from .limits import Limits
from .results import ExecutionResult
from .tools import ToolBinding


def well_formed(text: str) -> str:
    """``text`` with each lone surrogate (which UTF-8 cannot hold) replaced by U+FFFD, the
    rule at every crossing of the boundary."""
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def program_text(text: str) -> str:
    """Program text as every engine reads it alike: well formed (see :func:`well_formed`),
    with each line ending in ``\n`` (``\r\n`` and a lone ``\r`` become ``\n``, which
    JavaScript reads the same way), so that lines are counted at ``\n`` everywhere."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return well_formed(text)


@dataclass(frozen=True)
class Program:
    """A program ready to run: the JavaScript, and where it came from so errors can point
    into the original TypeScript."""

    javascript: str
    source: str
    stripped: StripResult | None = None

    def original_position(self, line: int, column: int) -> tuple[int, int]:
        if self.stripped is None:
            return line, column
        return self.stripped.original_position(line, column)


@runtime_checkable
class IsolateContext(Protocol):
    """A sandbox bound to a set of tools and limits. Each ``execute`` runs in a fresh engine.

    ``limits`` replaces the context's limits for one execution. ``on_report`` opens the
    report channel and ``library`` is a host library run before the program, which checks
    values against ``library_checks`` (see :meth:`codemode.engine.EngineContext.execute`)."""

    async def execute(
        self,
        javascript: str | Program,
        *,
        on_event: EventCallback | None = None,
        tool_call_id: str | None = None,
        limits: Limits | None = None,
        on_report: Callable[[str], Event | None] | None = None,
        library: str | None = None,
        library_checks: Sequence[str] | None = None,
    ) -> ExecutionResult: ...

    async def dispose(self) -> None: ...

    async def __aenter__(self) -> IsolateContext: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


@runtime_checkable
class IsolateDriver(Protocol):
    """Creates isolate contexts; one driver serves many contexts and executions at once."""

    async def create_context(
        self, *, bindings: Mapping[str, ToolBinding], limits: Limits
    ) -> IsolateContext: ...


__all__ = [
    "Event",
    "EventCallback",
    "IsolateContext",
    "IsolateDriver",
    "Program",
    "ToolBinding",
    "program_text",
    "well_formed",
]
