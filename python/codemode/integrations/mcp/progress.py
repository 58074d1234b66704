"""Progress of upstream tool calls, forwarded as progress of the ``execute_typescript`` call
that made them: the sink a served call sets (:data:`_PROGRESS`) and the proxy's tools report to."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

logger = logging.getLogger("codemode.integrations.mcp")


class _ProgressSink:
    """Sends the progress of upstream tool calls as progress of one ``execute_typescript`` call.

    Several calls of a program can report progress at once, and a progress token's values
    must increase: the value sent is the count of notifications so far (no total), and the
    message says which function reported what (``external_slow: 2/5 copying``)."""

    def __init__(self, report: Callable[[float, float | None, str | None], Awaitable[None]]) -> None:
        self._report = report
        self._count = 0

    async def __call__(
        self, function: str, progress: float, total: float | None, message: str | None
    ) -> None:
        self._count += 1
        detail = f"{progress:g}" if total is None else f"{progress:g}/{total:g}"
        text = f"external_{function}: {detail}" + (f" {message}" if message else "")
        try:
            await self._report(float(self._count), None, text)
        except Exception as e:  # a client gone or a closed stream must not fail the tool call
            logger.debug("could not forward progress: %s", e)


_PROGRESS: ContextVar[_ProgressSink | None] = ContextVar("codemode_mcp_progress", default=None)
"""Where the upstream tool calls of the running ``execute_typescript`` call send progress."""
