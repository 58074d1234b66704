"""Executions in QuickJS worker processes: :class:`RemoteExecution`, which stands in for
``_core.Execution`` and sends each step to a worker of the pool, and :class:`ProcessContext`,
whose runs use it."""

from __future__ import annotations

import array
import functools
import itertools
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from . import _core, _worker
from ._process_worker import CUTOFF, Cutoff, Pending, Worker, WorkerGone, definition_keys
from .drivers import Program
from .engine import EngineContext, per_schemas
from .events import EventCallback
from .limits import Limits
from .quickjs import QuickJSRun
from .tools import ToolBinding

if TYPE_CHECKING:
    from .process import WorkerPool

_LIMIT_KINDS = frozenset({"timeout", "memory", "cancelled", "internal"})
"""Error kinds after which a worker is retired."""

_ids = itertools.count(1)
"""The ids of the executions, as the workers know them."""


class _Toolset:
    """The tool names and input schemas of a context, defined once in each worker."""

    def __init__(self, names: list[str], schemas: list[str | None]) -> None:
        self.key = next(definition_keys)
        self.text = orjson.dumps([names, schemas if any(schemas) else None])


@per_schemas
def _check_set(schemas: tuple[str, ...]) -> tuple[int, bytes]:
    """The key and text of a host library's schemas (``library_checks``), defined once in
    each worker (which compiles them there)."""
    return next(definition_keys), orjson.dumps(list(schemas))


class RemoteExecution:
    """Stands in for ``_core.Execution`` (same constructor), stepping in a worker process."""

    def __init__(
        self,
        pool: WorkerPool,
        toolset: _Toolset,
        javascript: str,
        tool_names: list[str],
        limits: _core.ExecutionLimits,
        *,
        report_channel: bool = False,
        library: str | None = None,
        input_checks: Any = None,
        library_checks: tuple[str, ...] | None = None,
    ) -> None:
        self.pool = pool
        self.toolset = toolset
        self.javascript = javascript
        self.id = next(_ids)
        self.deadline = time.perf_counter() + limits.timeout
        self.limits = [getattr(limits, name) for name in _worker.LIMIT_FIELDS]
        self.report_channel = report_channel
        self.library = library
        self.library_checks = library_checks
        self.worker: Worker | None = None
        self.finished = False
        self.closing = False

    def _start_frame(self, worker: Worker) -> bytes:
        parts = []
        toolset = self.toolset
        if toolset.key not in worker.defined:
            parts.append(_define(toolset.key, 1, toolset.text))
            worker.defined.add(toolset.key)
        library_key = None
        if self.library is not None:
            library_key = self.pool.library_key(self.library)
            if library_key not in worker.defined:
                parts.append(_define(library_key, 0, self.library.encode()))
                worker.defined.add(library_key)
        checks_key = None
        if self.library_checks is not None:
            checks_key, text = _check_set(self.library_checks)
            if checks_key not in worker.defined:
                parts.append(_define(checks_key, 2, text))
                worker.defined.add(checks_key)
        self.limits[0] = max(0.0, self.deadline - time.perf_counter())
        meta = orjson.dumps([toolset.key, self.limits, self.report_channel, library_key, checks_key])
        code = self.javascript.encode()
        head = _worker.ID_META.pack(self.id, len(meta))
        parts.append(_worker.HEADER.pack(1 + len(head) + len(meta) + len(code), _worker.START))
        parts += (head, meta, code)
        return b"".join(parts)

    async def step_async(
        self, ids: list[int], outcomes: bytes | bytearray, answers: bytes | bytearray
    ) -> tuple[int, Any, list[Any], Any]:
        """The same as ``_core.Execution.step``, in a worker."""
        worker = self.worker
        try:
            if worker is None:
                worker = self.worker = await self.pool.acquire()
                frame = self._start_frame(worker)
            else:
                count = len(ids)
                head = _worker.STEP_HEAD.pack(self.id, count)
                packed = array.array("Q", ids).tobytes()
                length = 1 + len(head) + len(packed) + count + len(answers)
                frame = b"".join((_worker.HEADER.pack(length, _worker.STEP), head, packed, outcomes, answers))
            pending = Pending(self.id, self.deadline)
            await worker.request(frame, pending)
            body = await worker.response(pending, self.deadline + CUTOFF)
        except WorkerGone as gone:
            if gone.startup is not None:
                self._end(True)
                raise RuntimeError(f"a QuickJS worker process failed to start: {gone.startup}") from None
            return self._fail("internal", "InternalError", "the engine's worker process stopped unexpectedly")
        except Cutoff:
            return self._fail("timeout", "TimeoutError", "the execution exceeded its time limit")
        _, status, meta_length = _worker.OUTPUT_HEAD.unpack_from(body)
        at = _worker.OUTPUT_HEAD.size
        call_ids, tools, checked, logs, payload = orjson.loads(body[at : at + meta_length])
        blob = body[at + meta_length :]
        if status == _core.WAITING:
            return status, (call_ids, tools, blob, bytes(checked)), logs, payload
        self._end(status == _core.DONE_ERROR and payload[0] in _LIMIT_KINDS)
        if status == _core.DONE_OK:
            payload = blob
        return status, ([], [], b"[]", b""), logs, payload

    def _fail(self, kind: str, name: str, message: str) -> tuple[int, Any, list[Any], Any]:
        if self.deadline <= time.perf_counter() and kind == "internal":
            kind, name, message = "timeout", "TimeoutError", "the execution exceeded its time limit"
        self._end(True)
        return _core.DONE_ERROR, ([], [], b"[]", b""), [], (kind, name, message, [])

    def _end(self, limit_hit: bool) -> None:
        if self.finished:
            return
        self.finished = True
        if self.worker is not None:
            self.pool.release(self.worker, limit_hit)

    def cancel_handle(self) -> RemoteExecution:
        return self

    def cancel(self) -> None:
        """Stop the execution in its worker now (from the event loop's thread)."""
        if self.worker is not None and not self.finished and not self.closing:
            self.closing = True
            self.worker.control(self.id)

    def close(self) -> None:
        """Free the execution in its worker if it has not ended (idempotent)."""
        if not self.finished:
            self.cancel()
            self._end(True)


def _define(key: int, kind: int, text: bytes) -> bytes:
    return (
        _worker.HEADER.pack(10 + len(text), _worker.DEFINE) + key.to_bytes(8, "little") + bytes([kind]) + text
    )


class ProcessContext(EngineContext):
    """Tools and limits; each :meth:`execute` runs in a fresh QuickJS runtime in a worker."""

    def __init__(self, pool: WorkerPool, bindings: Mapping[str, ToolBinding], limits: Limits) -> None:
        super().__init__(bindings, limits, None)
        self._pool = pool
        self._toolset = _Toolset(self._names, [b.precheck_schema for b in self._bindings])

    def _new_run(
        self, program: Program, limits: Limits, on_event: EventCallback | None, tool_call_id: str | None
    ) -> QuickJSRun:
        run = QuickJSRun(self, program, limits, on_event, tool_call_id)
        run._remote = True
        run._execution_type = functools.partial(RemoteExecution, self._pool, self._toolset)
        return run
