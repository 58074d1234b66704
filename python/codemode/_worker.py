"""A worker process of ``QuickJSDriver(isolation="process")``: a remote ``_core.Execution``.

Started by :mod:`codemode.process` as ``python -I -S _worker.py CORE SITE DATA_IN DATA_OUT
CONTROL POLICY [--test-hooks]``, with an empty environment and no descriptors but its pipes.
It loads the native module by path (not the package: nothing else of the host is imported),
confines itself (see :func:`codemode._core.confine`), reports which layers hold, and then
serves requests one at a time:

- ``START`` creates an execution and runs its first step; ``STEP`` settles tool answers and
  runs the next. Each is answered with the step's output.
- ``DEFINE`` keeps a text the parent refers to by key (a library, a set of input schemas,
  the schemas a library checks values with).
- On the control pipe, read by a thread of its own, ``CLOSE`` cancels and forgets an
  execution at once, even in the middle of its step.
- ``PAYLOAD`` (only when started with ``--test-hooks``): runs Python in this process, outside
  the JavaScript sandbox, as a broken engine could; the confinement tests use it.

Frames: a 4-byte little-endian length, then the op byte and its body (see ``process.py``).
The worker exits when its input pipe closes.
"""

from __future__ import annotations

import importlib.util
import os
import select
import struct
import sys
import threading
import time
import traceback
from typing import Any

# Ops, and the layout of their bodies (all integers little-endian).
START, STEP, DEFINE, PAYLOAD = 1, 2, 3, 9  # parent -> worker
READY, OUTPUT, PAYLOAD_RESULT = 1, 2, 9  # worker -> parent
CLOSE = 1  # control: u8 op + u64 execution id
HEADER = struct.Struct("<IB")  # frame length (after these 4 bytes), op
ID_META = struct.Struct("<QI")  # execution id, length of the JSON meta that follows
STEP_HEAD = struct.Struct("<QI")  # execution id, number of answers
OUTPUT_HEAD = struct.Struct("<QBI")  # execution id, status, length of the JSON meta
CONTROL = struct.Struct("<BQ")
SPIN_SECONDS = 50e-6
LIMIT_FIELDS = (
    "timeout",
    "memory_limit_bytes",
    "stack_limit_bytes",
    "max_tool_calls",
    "max_log_bytes",
    "max_log_lines",
    "fail_on_log_overflow",
    "max_result_bytes",
)
"""The fields of ``_core.ExecutionLimits``, in the order a start frame carries them."""
"""How long a side polls for the other's next frame before it blocks (see ``Worker.fill``)."""


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Worker:
    """The request loop; ``core`` is ``codemode._core``, ``orjson`` the JSON codec."""

    def __init__(self, core: Any, orjson: Any, out_fd: int, test_hooks: bool) -> None:
        self.core = core
        self.orjson = orjson
        self.out_fd = out_fd
        self.test_hooks = test_hooks
        self.executions: dict[int, Any] = {}
        self.closed_early: set[int] = set()
        self.lock = threading.Lock()  # executions and closed_early, shared with the control thread
        self.defined: dict[int, Any] = {}

    # -- control thread ----------------------------------------------------------------------

    def control(self, fd: int) -> None:
        """Close executions as the parent asks, even while one of them is stepping."""
        while True:
            message = _read_exact(fd, CONTROL.size)
            if message is None:
                os._exit(0)  # the parent is gone
            _, execution_id = CONTROL.unpack(message)
            with self.lock:
                execution = self.executions.pop(execution_id, None)
                if execution is None:
                    self.closed_early.add(execution_id)
            if execution is not None:
                try:
                    execution.cancel_handle().cancel()
                except RuntimeError:  # it failed to start: nothing runs
                    pass

    # -- requests ----------------------------------------------------------------------------

    def serve(self, fd: int) -> None:
        os.set_blocking(fd, False)
        buffer = bytearray()
        while True:
            if not self.fill(fd, buffer):
                return
            at = 0
            while len(buffer) - at >= HEADER.size:
                length, op = HEADER.unpack_from(buffer, at)
                end = at + 4 + length
                if len(buffer) < end:
                    break
                body = bytes(buffer[at + HEADER.size : end])
                at = end
                if op == STEP:
                    self.step(body)
                elif op == START:
                    self.start(body)
                elif op == DEFINE:
                    self.define(body)
                elif op == PAYLOAD and self.test_hooks:
                    self.payload(body)
            del buffer[:at]

    @staticmethod
    def fill(fd: int, buffer: bytearray) -> bool:
        """Read what has arrived into ``buffer``, waiting for it: first polling for a few
        tens of microseconds (the next step of a program often follows at once, and waking
        from a blocking read costs more), then blocking. False at the end of the input."""
        spin_until = time.perf_counter() + SPIN_SECONDS
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                if time.perf_counter() < spin_until:
                    continue
                select.select([fd], [], [])
                continue
            if not chunk:
                return False
            buffer += chunk
            return True

    def define(self, body: bytes) -> None:
        """Kind 0: a library's text; kind 1: a toolset, ``[names, schemas or null]``; kind 2:
        the schemas a library checks values with (``library_checks``), ``[schema text, ...]``."""
        key, kind = struct.unpack_from("<QB", body)
        text = body[9:].decode()
        if kind == 0:
            self.defined[key] = text
        elif kind == 2:
            self.defined[key] = self.core.LibraryChecks(self.orjson.loads(text))
        else:
            names, schemas = self.orjson.loads(text)
            self.defined[key] = (names, None if schemas is None else self.core.InputChecks(schemas))

    def start(self, body: bytes) -> None:
        execution_id, meta_length = ID_META.unpack_from(body)
        meta = self.orjson.loads(body[ID_META.size : ID_META.size + meta_length])
        javascript = body[ID_META.size + meta_length :].decode()
        toolset, limits, report, library, library_checks = meta
        names, checks = self.defined[toolset]
        with self.lock:
            closed = execution_id in self.closed_early
            self.closed_early.discard(execution_id)
        if closed:
            self.send_output(execution_id, self.cancelled())
            return
        execution = self.core.Execution(
            javascript,
            names,
            self.core.ExecutionLimits(**dict(zip(LIMIT_FIELDS, limits, strict=True))),
            report_channel=report,
            library=None if library is None else self.defined[library],
            input_checks=checks,
            library_checks=None if library_checks is None else self.defined[library_checks],
        )
        with self.lock:
            self.executions[execution_id] = execution
        self.run(execution_id, execution, [], b"", b"[]")

    def step(self, body: bytes) -> None:
        execution_id, count = STEP_HEAD.unpack_from(body)
        at = STEP_HEAD.size
        ids = list(struct.unpack_from(f"<{count}Q", body, at))
        at += 8 * count
        outcomes = body[at : at + count]
        with self.lock:
            execution = self.executions.get(execution_id)
        if execution is None:  # closed by the parent meanwhile
            self.send_output(execution_id, self.cancelled())
            return
        self.run(execution_id, execution, ids, outcomes, memoryview(body)[at + count :])

    def run(self, execution_id: int, execution: Any, ids: list[int], outcomes: bytes, answers: Any) -> None:
        output = execution.step(ids, outcomes, bytes(answers), None)
        if output[0] != self.core.WAITING:
            with self.lock:
                self.executions.pop(execution_id, None)
            execution.close()
        self.send_output(execution_id, output)

    def cancelled(self) -> tuple[int, Any, list[Any], Any]:
        error: tuple[str, str, str, list[Any]] = (
            "cancelled",
            "CancelledError",
            "the execution was cancelled",
            [],
        )
        return self.core.DONE_ERROR, ([], [], "[]", b""), [], error

    def send_output(self, execution_id: int, output: tuple[int, Any, list[Any], Any]) -> None:
        status, (ids, tools, arguments, checked), logs, payload = output
        if status == self.core.DONE_OK:
            blob, payload = payload, None
        else:
            blob = arguments
        meta = self.orjson.dumps([ids, tools, list(checked), logs, payload])
        blob = blob.encode()
        head = OUTPUT_HEAD.pack(execution_id, status, len(meta))
        length = 1 + len(head) + len(meta) + len(blob)
        _write_all(self.out_fd, b"".join((HEADER.pack(length, OUTPUT), head, meta, blob)))

    def payload(self, body: bytes) -> None:
        namespace: dict[str, Any] = {}
        try:
            exec(body.decode(), namespace)
            outcome = {"ok": True, "result": repr(namespace.get("result"))}
        except BaseException as e:
            outcome = {
                "ok": False,
                "error": type(e).__name__,
                "message": str(e),
                "errno": getattr(e, "errno", None),
            }
        text = self.orjson.dumps(outcome)
        _write_all(self.out_fd, HEADER.pack(1 + len(text), PAYLOAD_RESULT) + text)


def main(argv: list[str]) -> None:
    core_path, site_dir, in_fd, out_fd, control_fd, policy_json = argv[:6]
    test_hooks = "--test-hooks" in argv[6:]
    spec = importlib.util.spec_from_file_location("codemode._core", core_path)
    assert spec is not None and spec.loader is not None
    core = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(core)
    sys.path.append(site_dir)
    import orjson

    if test_hooks:  # what the payloads of the confinement tests use, loaded while they can be
        import ctypes
        import signal
        import socket
        import subprocess

        del ctypes, signal, socket, subprocess
    policy = orjson.loads(policy_json)
    report = core.confine(**policy)
    worker = Worker(core, orjson, int(out_fd), test_hooks)
    ready = orjson.dumps(report)
    _write_all(worker.out_fd, HEADER.pack(1 + len(ready), READY) + ready)
    threading.Thread(target=worker.control, args=(int(control_fd),), daemon=True).start()
    try:
        worker.serve(int(in_fd))
    except BaseException:
        traceback.print_exc()
        os._exit(70)
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
