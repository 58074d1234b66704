"""Shared fixtures: every test runs on asyncio and trio, through every driver."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import codemode

CODEMODE_PATH = str(Path(codemode.__file__).resolve().parent.parent)
"""Where this test run imports codemode from: the installed package (CI), or the source tree
(``PYTHONPATH=python``). Child processes must import the same one: a fresh clone's source tree
has no built ``_core``."""


def child_python_path() -> str:
    """``PYTHONPATH`` for a child process that imports codemode: :data:`CODEMODE_PATH` first."""
    return os.pathsep.join(filter(None, [CODEMODE_PATH, os.environ.get("PYTHONPATH")]))


DRIVERS: dict[str, Callable[[], codemode.drivers.IsolateDriver]] = {
    "quickjs": codemode.QuickJSDriver,
    # every step in a worker thread: the path long-running programs take
    "quickjs-threaded": lambda: codemode.QuickJSDriver(inline_slice=None),
    "v8": codemode.V8Driver,
    # the engine in confined worker processes
    "quickjs-process": lambda: codemode.QuickJSDriver(isolation="process"),
    # a Worker on a local workerd (one for the session), over a signed WebSocket
    "cloudflare": lambda: _cloudflare_driver(),
}

_LOCAL_WORKER: list[Any] = []  # the session's LocalWorker, once started


def _local_worker() -> Any:
    from codemode.cloudflare.local import LocalWorker

    if not _LOCAL_WORKER:
        worker = LocalWorker()
        worker.start()
        _LOCAL_WORKER.append(worker)
    return _LOCAL_WORKER[0]


def _cloudflare_driver() -> codemode.drivers.IsolateDriver:
    from codemode.cloudflare import CloudflareDriver

    worker = _local_worker()
    return CloudflareDriver(worker.url, worker.secret)


def _workerd_missing() -> str | None:
    from codemode.cloudflare.local import find_workerd

    try:
        find_workerd()
    except RuntimeError as e:
        return str(e)
    return None


def _revive_local_worker() -> None:
    """A local workerd enforces no CPU limit: after a test whose program never yields, start
    it again (the host's deadline ended that run; the runtime still spins)."""
    if _LOCAL_WORKER and not _LOCAL_WORKER[0].answers(timeout=1.0):
        _LOCAL_WORKER[0].restart()


@pytest.fixture(scope="session", autouse=True)
def _stop_local_worker() -> Iterator[None]:
    yield
    for worker in _LOCAL_WORKER:
        worker.stop()


def runs_on_v8(driver: object) -> bool:
    """Whether ``driver`` runs programs on V8 (V8Driver, and CloudflareDriver on a Worker):
    errors, frames and the speed of built-ins are V8's."""
    from codemode.cloudflare import CloudflareDriver

    return isinstance(driver, (codemode.V8Driver, CloudflareDriver))


def _v8_missing() -> str | None:
    try:
        codemode.v8.find_node()
    except RuntimeError as e:
        return str(e)
    return None


def engine_gap(
    *drivers: str, reason: str, only: tuple[str, ...] = (), run: bool = True
) -> pytest.MarkDecorator:
    """Mark a test as a known gap of ``drivers`` (names from ``DRIVERS``): the test still runs
    there and must fail (a strict xfail), so the day the gap closes, the mark has to go.
    ``only``: the gap is in the cases whose test id contains one of these strings.
    ``run=False``: skip it there instead (running it would hold a shared runtime)."""
    return pytest.mark.engine_gap(*drivers, reason=reason, only=only, run=run)


LOCAL_WORKERD = (
    "a local workerd enforces no CPU or memory limit on a dynamic Worker (Cloudflare does): the "
    "host's deadline ends the run, but the program keeps the shared local runtime busy"
)
"""Why the Cloudflare driver skips a test of the CPU or memory limit against a local workerd."""

NO_EVAL = "Workers refuse code made from strings (eval, new Function): the program gets an EvalError"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Apply the ``engine_gap`` marks: a strict xfail on the named drivers, or a skip."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        driver = callspec.params.get("driver") if callspec is not None else None
        for mark in item.iter_markers("engine_gap"):
            only = mark.kwargs.get("only", ())
            if driver in mark.args and (not only or any(part in item.name for part in only)):
                if mark.kwargs.get("run", True):
                    item.add_marker(pytest.mark.xfail(strict=True, reason=mark.kwargs["reason"]))
                else:
                    item.add_marker(pytest.mark.skip(reason=mark.kwargs["reason"]))


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Iterator[codemode.drivers.IsolateDriver]:
    if request.param == "v8" and (missing := _v8_missing()) is not None:
        pytest.skip(missing)
    if request.param == "cloudflare" and (missing := _workerd_missing()) is not None:
        pytest.skip(missing)
    made = DRIVERS[request.param]()
    yield made
    if request.param == "cloudflare":
        _revive_local_worker()
    # engine processes and worker pools end with their test, not whenever they are collected
    close = getattr(made, "close", None)
    if close is not None:
        close()


async def _echo(args: dict[str, Any]) -> dict[str, Any]:
    return args


async def _fail(args: dict[str, Any]) -> None:
    raise RuntimeError(f"inventory service unavailable for {args.get('sku', '?')}")


async def _sleep(args: dict[str, Any]) -> dict[str, Any]:
    await anyio.sleep(args["ms"] / 1000)
    return {"sleptMs": args["ms"]}


def _add(args: dict[str, Any]) -> dict[str, Any]:  # a sync tool
    return {"sum": args["a"] + args["b"]}


def make_tools() -> list[codemode.Tool]:
    """The tools most tests use."""
    number_schema = {"type": "object", "properties": {"i": {"type": "number"}}, "required": ["i"]}
    return [
        codemode.Tool.from_schema("echo", "Return the input", number_schema, number_schema, _echo),
        codemode.Tool.from_schema(
            "fail", "Always fails", {"type": "object", "properties": {"sku": {"type": "string"}}}, None, _fail
        ),
        codemode.Tool.from_schema(
            "sleep",
            "Sleep on the host",
            {"type": "object", "properties": {"ms": {"type": "number", "minimum": 0}}, "required": ["ms"]},
            None,
            _sleep,
        ),
        codemode.Tool.from_schema(
            "add",
            "Add two integers",
            {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
                "additionalProperties": False,
            },
            None,
            _add,
        ),
    ]


@pytest.fixture
def cm(driver: codemode.drivers.IsolateDriver) -> codemode.CodeMode:
    return codemode.create_code_mode(make_tools(), driver=driver, timeout=10.0)
