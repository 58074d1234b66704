"""The Python peers, pydeno and mini-racer, run through their own public APIs.

Same programs, tools and data as codemode's engines: each program's TypeScript is stripped by
codemode (outside the timing), wrapped as ``(async () => { <program> })()``, and the five tools
of tools.json are bound as async Python functions ``external_<name>``. A fresh runtime serves
each execution and is made *outside* the timed region, as a pool would make it ahead (this
favours the peers: codemode's samples include making its context). mini-racer's callbacks take
and return only primitives, so tool inputs and outputs cross as JSON text.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from .workload_tools import HANDLERS


class PeerRuntime(Protocol):
    """A fresh runtime of a peer, with the tools bound."""

    async def run(self, javascript: str) -> Any:
        """Evaluate ``(async () => { ... })()`` and return its resolved JSON value."""
        ...

    async def close(self) -> None:
        """Dispose of the runtime."""
        ...


class PydenoRuntime:
    """A ``pydeno.Runtime`` with a 128 MiB heap and the tools bound as async functions."""

    def __init__(self) -> None:
        import pydeno  # type: ignore[import-not-found]

        self.runtime = pydeno.Runtime(pydeno.RuntimeConfig(max_heap_size=128 << 20))

    async def start(self) -> PydenoRuntime:
        await self.runtime.eval_async("1")
        for name, handler in HANDLERS.items():
            self.runtime.bind_function("external_" + name, handler)
        return self

    async def run(self, javascript: str) -> Any:
        return await self.runtime.eval_async(javascript)

    async def close(self) -> None:
        self.runtime.close()


def _as_json(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[str]]:
    """A tool handler taking and returning JSON text."""

    async def call(text: str) -> str:
        return json.dumps(await handler(json.loads(text)))

    return call


class MiniRacerRuntime:
    """A ``MiniRacer`` with a 128 MiB hard memory limit and the tools bound through JSON text."""

    def __init__(self) -> None:
        from py_mini_racer import MiniRacer  # type: ignore[import-not-found]

        self.racer = MiniRacer()
        self.racer.set_hard_memory_limit(128 << 20)
        self.stack = contextlib.AsyncExitStack()

    async def start(self) -> MiniRacerRuntime:
        for name, handler in HANDLERS.items():
            raw = await self.stack.enter_async_context(self.racer.wrap_py_function(_as_json(handler)))
            self.racer.eval("this")["__raw_" + name] = raw
            self.racer.eval(
                f"this.external_{name} = async (a) => JSON.parse(await __raw_{name}(JSON.stringify(a)))"
            )
        return self

    async def run(self, javascript: str) -> Any:
        value = self.racer.eval("(async () => JSON.stringify(await " + javascript + "))()")
        return json.loads(await value)

    async def close(self) -> None:
        await self.stack.aclose()
        self.racer.close()


RUNTIMES: dict[str, Callable[[], Any]] = {"pydeno": PydenoRuntime, "mini-racer": MiniRacerRuntime}
"""Peer id -> the class of its fresh runtime (``await Cls().start()``)."""


async def fresh_runtime(peer: str) -> PeerRuntime:
    """A fresh runtime of ``peer`` with the tools bound."""
    runtime: PeerRuntime = await RUNTIMES[peer]().start()
    return runtime


def wrap_program(typescript: str) -> str:
    """The program as a JavaScript expression: types stripped by codemode, in an async IIFE."""
    from codemode import _core

    return "(async () => {" + _core.strip_types(typescript).javascript + "\n})()"
