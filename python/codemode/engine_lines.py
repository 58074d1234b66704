"""The line protocol of the engines that run outside this process (V8 engine processes and the
Cloudflare Worker), seen from the host: the engine's lines read, tool results answered.

Engine -> host, one line each::

    c <callId> <toolIndex> <json args>    a tool call
    k <checkId> <schemaIndex> <json>      a host library's check of a value (no tool call)
    l <level> <timestampMs> <json text>   a console line
    r <timestampMs> <json text>           a line of the report channel
    o <json result>                       finished with a result
    f <json [kind, name, message, [[fn, line, column], ...]]>   finished with an error

Host -> engine: ``R <json spec>`` to run (:meth:`LineRun.spec`), then
``S <callId> <status> <json payload>`` per settled call (0 ok, 1 tool error, 2 invalid),
``K <checkId> <json answer>`` per check (``null`` or ``[path, message]``, by the schema of
``library_checks`` with that index, with the validator of :class:`codemode._core.JsonSchema`).
"""

from __future__ import annotations

import json
import time
from collections import deque
from typing import Any

import orjson

from . import _core
from .engine import SETTLE_INVALID, EngineRun, per_schemas
from .results import ExecutionResult

LEVELS = ("log", "info", "warn", "error", "debug")
FAILED = -1
"""The status of a run that ended with an error (``_finish``)."""


def loads(data: bytes | str) -> Any:
    """JSON from the engine; lone surrogates are taken (as the stdlib does). ``ValueError``
    when it cannot be read, nesting too deep included."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data)
    except RecursionError as e:
        raise ValueError("nested too deeply") from e


@per_schemas
def _validators(schemas: tuple[str, ...]) -> tuple[_core.JsonSchema | str, ...]:
    """The validator of each schema of ``library_checks`` (compiled once per tuple), or why it
    cannot check anything (the schema is not valid)."""
    made: list[_core.JsonSchema | str] = []
    for text in schemas:
        try:
            made.append(_core.JsonSchema(text))
        except _core.InvalidSchema as e:
            path, message = e.args
            where = f"{path.lstrip('.')}: " if path else ""
            made.append(f"cannot be checked: the schema is not valid ({where}{message})")
    return tuple(made)


class LineRun(EngineRun):
    """An execution whose engine speaks lines: a subclass moves them (``inbox`` in,
    ``completions`` out) and handles its own kinds of message (:meth:`_other`)."""

    def _init_lines(self) -> None:
        self.inbox: deque[bytes] = deque()
        self.completions: list[bytes] = []

    def spec(self) -> dict[str, Any]:
        """What ``R`` carries: the program and its limits."""
        limits = self.limits
        return {
            "code": self.program.javascript,
            "names": self.names,
            "stackKb": limits.stack_limit_kb,
            "maxCalls": limits.max_tool_calls,
            "maxLogLines": limits.max_log_lines,
            "maxLogBytes": limits.max_log_bytes,
            "failLog": limits.log_overflow == "error",
            "maxResult": limits.max_result_bytes,
            "channel": self.on_report is not None,
            "library": self.library,
        }

    def _drain(self) -> ExecutionResult | None:
        """Handle the engine's messages in order; the result once the run is over."""
        inbox = self.inbox
        while inbox:
            message = inbox.popleft()
            kind = message[0]
            if kind == 0x63:  # c <callId> <tool> <args>
                _, call_id, tool, args = message.split(b" ", 3)
                self._tool_call(int(call_id), int(tool), args)
            elif kind == 0x6B:  # k <checkId> <schema> <value>
                _, check_id, index, value = message.split(b" ", 3)
                answer = self._check(int(index), value)
                self.completions.append(b"K %d " % int(check_id) + answer + b"\n")
            elif kind == 0x6C:  # l <level> <timestamp> <text>
                _, level, stamp, text = message.split(b" ", 3)
                n = int(level)
                self._record_logs([(LEVELS[n] if 0 <= n < 5 else "log", loads(text), self._stamp(stamp), 0)])
            elif kind == 0x72:  # r <timestamp> <text>
                _, stamp, text = message.split(b" ", 2)
                self._record_logs([("report", loads(text), self._stamp(stamp), 0)])
            elif kind == 0x6F:  # o <result>
                try:
                    value = loads(message[2:])
                except ValueError as e:
                    why = f"the return value cannot be read back as JSON: {e}"
                    return self._finish(FAILED, ("result", "ResultError", why, []))
                return self._finish_value(value)
            elif kind == 0x66:  # f <[kind, name, message, frames]>
                return self._finish(FAILED, tuple(loads(message[2:])))
            else:
                result = self._other(kind, message)
                if result is not None:
                    return result
        return None

    def _check(self, index: int, value_json: bytes) -> bytes:
        """The answer to a host library's check: ``null`` or ``[path, message]`` as JSON."""
        validators = _validators(self.library_checks or ())
        if not 0 <= index < len(validators):
            return orjson.dumps(["", f"cannot be checked: there is no schema {index}"])
        validator = validators[index]
        if isinstance(validator, str):
            return orjson.dumps(["", validator])
        try:
            value = loads(value_json)
        except ValueError as e:
            return orjson.dumps(["", f"cannot be checked: it is not JSON ({e})"])
        problem = validator.validate(value)
        return b"null" if problem is None else orjson.dumps(list(problem))

    def _stamp(self, stamp: bytes) -> float:
        """The time (ms since the epoch) of a line the engine stamped ``stamp``."""
        return float(stamp)

    def _other(self, kind: int, message: bytes) -> ExecutionResult | None:
        """A message of the subclass's own (its result, if it ends the run)."""
        return None

    def _tool_call(self, call_id: int, tool: int, args_json: bytes) -> None:
        try:
            args = loads(args_json)
        except ValueError as e:
            binding = self.bindings[tool]
            self.calls += 1
            why = f"{binding.sandbox_name}: the argument cannot be read as JSON ({e})"
            self._settle(call_id, binding, time.perf_counter(), error=(SETTLE_INVALID, why), launched=False)
            return
        self._start_parsed_call(call_id, tool, args)

    def _finish_value(self, value: Any) -> ExecutionResult:
        """A successful result, its value already parsed."""
        result = self._finish(_core.DONE_OK, b"null")
        result.result = value
        return result

    def _answer(self, call_id: int, outcome: int, json: bytes) -> None:
        self.completions.append(b"S %d %d " % (call_id, outcome) + json + b"\n")
