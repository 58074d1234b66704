"""Shared fixtures: every test runs on asyncio and trio, through every driver."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

import codemode

DRIVERS: dict[str, Callable[[], codemode.IsolateDriver]] = {
    "quickjs": codemode.QuickJSDriver,
    # every step in a worker thread: the path long-running programs take
    "quickjs-threaded": lambda: codemode.QuickJSDriver(inline_slice=None),
    "v8": codemode.V8Driver,
    # the engine in confined worker processes
    "quickjs-process": lambda: codemode.QuickJSDriver(isolation="process"),
}


def _v8_missing() -> str | None:
    try:
        codemode.v8.find_node()
    except RuntimeError as e:
        return str(e)
    return None


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Iterator[codemode.IsolateDriver]:
    if request.param == "v8" and (missing := _v8_missing()) is not None:
        pytest.skip(missing)
    made = DRIVERS[request.param]()
    yield made
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
def cm(driver: codemode.IsolateDriver) -> codemode.CodeMode:
    return codemode.create_code_mode(make_tools(), driver=driver, timeout=10.0)
