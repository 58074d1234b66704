"""Human approval inside programs: pause, persist, resume anywhere.

A tool made with ``requires_approval=True`` (or a function of its input) never runs on the
program's word alone. When a program calls it, the execution pauses: the result has
``paused`` (the pending calls, every event so far, and a signed, expiring, single-use token),
and the run is kept in an :class:`ExecutionStore`. ``await cm.resume(token, decisions={call_id:
approve() | reject(reason) | override(value)})`` continues it by deterministic replay (see
:mod:`codemode.approvals.replay`), in this process or in another one sharing the store::

    @codemode.tool(requires_approval=lambda args: args.amount > 100)
    async def refund(order_id: str, amount: float) -> str: ...

    cm = codemode.create_code_mode([get_order, refund], execution_store=SQLiteExecutionStore("runs.db"))
    result = await cm.execute(code)
    if result.paused:
        call = result.paused.pending[0]
        result = await cm.resume(result.paused.token, {call.call_id: codemode.approve()})
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .decisions import Approved, Decision, Overridden, Rejected, approve, override, reject
from .models import CallRecord, RunRecord, RunStatus, RunSummary
from .replay import Approvals, ResumeError, intercepted
from .sqlite import SQLiteExecutionStore
from .store import ExecutionStore, MemoryExecutionStore
from .tokens import KEY_ENV, InvalidResumeToken, signing_key
from .url import execution_store_from_url

if TYPE_CHECKING:
    from .postgres import PostgresExecutionStore

__all__ = [
    "KEY_ENV",
    "Approvals",
    "Approved",
    "CallRecord",
    "Decision",
    "ExecutionStore",
    "InvalidResumeToken",
    "MemoryExecutionStore",
    "Overridden",
    "PostgresExecutionStore",
    "Rejected",
    "ResumeError",
    "RunRecord",
    "RunStatus",
    "RunSummary",
    "SQLiteExecutionStore",
    "approve",
    "execution_store_from_url",
    "intercepted",
    "override",
    "reject",
    "signing_key",
]


def __getattr__(name: str) -> Any:
    if name == "PostgresExecutionStore":
        from .postgres import PostgresExecutionStore

        return PostgresExecutionStore
    raise AttributeError(name)
