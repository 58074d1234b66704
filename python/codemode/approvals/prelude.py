"""The deterministic prelude of a run that may pause: ``Math.random`` seeded by the run, ``Date``
giving on replay the readings it gave before, and timers reported as they fire, so that a
replay takes the same path."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

from ..drivers import Program

MAX_CLOCK_VALUES = 100_000
"""``Date`` readings recorded per run; later ones are not replayed."""

DETERMINISTIC_JS = (
    "(function (channel) { return function deterministic(seed, clock, max) { channel('s');"
    " let a = seed >>> 0, b = Math.floor(seed / 4294967296) ^ 0x9e3779b9, c = 0x243f6a88, d = 0xb7e15162;"
    " const next = () => { a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0; let t = (a + b) | 0;"
    " a = b ^ (b >>> 9); b = (c + (c << 3)) | 0; c = (c << 21) | (c >>> 11); d = (d + 1) | 0;"
    " t = (t + d) | 0; c = (c + t) | 0; return (t >>> 0) / 4294967296; };"
    " for (let k = 0; k < 15; k++) next();"
    " Math.random = function random() { return next(); };"
    " const RealDate = Date, realNow = Date.now; let i = 0;"
    " const now = () => { if (i < clock.length) return clock[i++]; i++; const t = realNow();"
    " if (i <= max) channel('d ' + t); return t; };"
    " const CodemodeDate = function Date(...args) {"
    " if (new.target === undefined) return new RealDate(now()).toString();"
    " return Reflect.construct(RealDate, args.length ? args : [now()], new.target); };"
    " CodemodeDate.prototype = RealDate.prototype; CodemodeDate.now = function now_() { return now(); };"
    " CodemodeDate.parse = RealDate.parse; CodemodeDate.UTC = RealDate.UTC; globalThis.Date = CodemodeDate;"
    " const realSetTimeout = setTimeout; let timers = 0;"
    " globalThis.setTimeout = function setTimeout(callback, ms, ...args) {"
    " if (typeof callback !== 'function') return realSetTimeout(callback, ms, ...args);"
    " const k = timers++; return realSetTimeout(() => { channel('t ' + k); callback(...args); }, ms); };"
    " }; })"
)
"""What makes a run's program deterministic, as a host library (compiled once per process):
called with the report channel, it returns ``deterministic(seed, clock, max)``, which line 1 of
the program calls: ``Math.random`` seeded, ``Date`` replaying ``clock`` first (readings past it
reported as ``d <ms>``), timers reported as they fire (``t <k>``)."""


@dataclasses.dataclass(frozen=True)
class _Shifted(Program):
    """A program behind one line of host code: positions map one line up, then as before."""

    inner: Program | None = None

    def original_position(self, line: int, column: int) -> tuple[int, int]:
        assert self.inner is not None
        return self.inner.original_position(max(1, line - 1), column if line > 1 else 1)


def deterministic_prelude(seed: int, clock: Sequence[float], function: str = "__codemode_channel") -> str:
    """The JavaScript, on line 1, that calls ``function`` (:data:`DETERMINISTIC_JS`'s) with the run's
    seed and clock."""
    return f"{function}({seed}, {json.dumps(list(clock))}, {MAX_CLOCK_VALUES});"


def deterministic(program: Program, seed: int, clock: Sequence[float]) -> Program:
    """``program`` with ``Math.random`` seeded and ``Date`` replaying ``clock`` first (run it
    with ``library=DETERMINISTIC_JS``)."""
    prelude = deterministic_prelude(seed, clock) + " __codemode_channel = undefined;"
    return _Shifted(prelude + "\n" + program.javascript, program.source, None, program)
