"""The public surface: one Limits passed whole to every layer, structured frames, and one
exception tree for what codemode raises."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from collections.abc import Mapping
from typing import Any

import pytest

import codemode
from codemode.drivers import Program
from codemode.errors import CodemodeError
from codemode.limits import LIMIT_NAMES, LimitOverrides
from codemode.results import Frame, format_stack

from .conftest import make_tools

pytestmark = pytest.mark.anyio


# -- one Limits ----------------------------------------------------------------------------------


def test_the_overrides_name_exactly_the_limits() -> None:
    assert set(LimitOverrides.__annotations__) == LIMIT_NAMES


def test_a_misspelt_limit_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="unknown limit 'timout'"):
        codemode.create_code_mode(make_tools(), timout=5)  # type: ignore[call-arg]


async def test_a_misspelt_limit_of_one_execution_is_refused(cm: codemode.CodeMode) -> None:
    with pytest.raises(TypeError, match="unknown limit 'memory_mb'"):
        await cm.execute("return 1", memory_mb=5)  # type: ignore[call-arg]
    assert (await cm.execute("return 1")).result == 1


def test_limits_are_given_whole_or_changed_by_keyword() -> None:
    base = codemode.Limits(timeout=3.0, max_tool_calls=7)
    cm = codemode.create_code_mode(make_tools(), limits=base, memory_limit_mb=32)
    assert cm.limits == codemode.Limits(timeout=3.0, max_tool_calls=7, memory_limit_mb=32)
    with pytest.raises(ValueError, match="log_overflow"):
        codemode.Limits(log_overflow="drop")  # type: ignore[arg-type]


class RecordingDriver:
    """A third-party driver written to the protocol: it runs on QuickJS and records the
    limits each layer hands it."""

    def __init__(self) -> None:
        self.inner = codemode.QuickJSDriver()
        self.context_limits: list[codemode.Limits] = []
        self.execution_limits: list[codemode.Limits | None] = []

    async def create_context(
        self, *, bindings: Mapping[str, codemode.drivers.ToolBinding], limits: codemode.Limits
    ) -> RecordingContext:
        self.context_limits.append(limits)
        return RecordingContext(self, await self.inner.create_context(bindings=bindings, limits=limits))


class RecordingContext:
    def __init__(self, driver: RecordingDriver, inner: codemode.drivers.IsolateContext) -> None:
        self.driver, self.inner = driver, inner

    async def execute(
        self,
        javascript: str | Program,
        *,
        on_event: codemode.drivers.EventCallback | None = None,
        tool_call_id: str | None = None,
        limits: codemode.Limits | None = None,
        on_report: Any = None,
        library: str | None = None,
        library_checks: Any = None,
    ) -> codemode.ExecutionResult:
        self.driver.execution_limits.append(limits)
        return await self.inner.execute(
            javascript,
            on_event=on_event,
            tool_call_id=tool_call_id,
            limits=limits,
            on_report=on_report,
            library=library,
            library_checks=library_checks,
        )

    async def dispose(self) -> None:
        await self.inner.dispose()

    async def __aenter__(self) -> RecordingContext:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.dispose()


async def test_a_driver_written_to_the_protocol_gets_the_limits_whole() -> None:
    driver = RecordingDriver()
    assert isinstance(driver, codemode.drivers.IsolateDriver)
    cm = codemode.create_code_mode(make_tools(), driver=driver, timeout=5.0)
    assert (await cm.execute("return 1")).result == 1
    result = await cm.execute("while (true) {}", timeout=0.2)
    assert result.error is not None and result.error.kind == "timeout"
    assert driver.context_limits == [codemode.Limits(timeout=5.0)]
    assert driver.execution_limits == [None, codemode.Limits(timeout=0.2)]
    assert isinstance(await cm._get_context(), codemode.drivers.IsolateContext)


# -- structured frames ---------------------------------------------------------------------------


async def test_an_error_carries_its_frames_and_the_stack_is_made_from_them(cm: codemode.CodeMode) -> None:
    code = (
        "function inner(n: number): number {\n"
        "  if (n > 1) throw new RangeError('too big: ' + n)\n"
        "  return n\n"
        "}\n"
        "const outer = (n: number) => inner(n * 2)\n"
        "return outer(3)"
    )
    result = await cm.execute(code)
    error = result.error
    assert error is not None and error.kind == "runtime"
    assert error.frames, error
    top = error.frames[0]
    assert (top.file, top.function, top.line) == ("program.ts", "inner", 2)
    assert (error.line, error.column) == (top.line, top.column)
    assert [f.function for f in error.frames[:2]] == ["inner", "outer"]
    assert error.stack == format_stack(error.name, error.message, error.frames)
    assert error.stack.splitlines()[1] == f"    at inner (program.ts:2:{top.column})"
    # the model reads the stack text; the frames are for Python
    assert "frames" not in error.model_dump()
    assert "frames" not in result.to_tool_output()["error"]


async def test_an_error_without_a_position_has_no_frames(cm: codemode.CodeMode) -> None:
    error = (await cm.execute("while (true) {}", timeout=0.2)).error
    assert error is not None and error.kind == "timeout"
    assert error.frames == []


def test_a_frame_is_data() -> None:
    frame = Frame(function="f", line=3, column=7)
    assert frame.file == "program.ts"
    assert format_stack("Error", "boom", [frame]) == "Error: boom\n    at f (program.ts:3:7)"


# -- the exception tree --------------------------------------------------------------------------


def _exceptions_raised_by_codemode() -> list[type[BaseException]]:
    """Every public exception class defined in the package (modules whose optional
    dependencies are missing are left out)."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(codemode.__path__, "codemode."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        if info.name.startswith(("codemode.playground", "codemode.bench")):
            continue  # applications of codemode, not its API
        try:
            module = importlib.import_module(info.name)
        except ImportError:
            continue
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and not name.startswith("_")
                and value.__module__.startswith("codemode.")
                and not value.__module__.startswith("codemode._")
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


def test_everything_codemode_raises_is_a_codemode_error() -> None:
    classes = _exceptions_raised_by_codemode()
    names = {c.__name__ for c in classes}
    assert {"TypeScriptSyntaxError", "InvalidArgumentsError", "InvalidSchemaError", "ResumeError"} <= names
    outside = sorted(c.__qualname__ for c in classes if not issubclass(c, CodemodeError))
    assert outside == []


def test_a_syntax_error_has_its_position_as_attributes() -> None:
    with pytest.raises(codemode.TypeScriptSyntaxError) as caught:
        codemode.compile_typescript("const a = 1\nreturn a +* 2")
    error = caught.value
    assert isinstance(error, CodemodeError)
    assert error.line == 2 and error.column >= 10
    assert "return a +* 2" in error.frame and "^" in error.frame
    assert str(error) == f"{error.message} (line 2, column {error.column})"
    assert isinstance(error, codemode._core.TypeScriptSyntaxError)  # raised by the stripper as such
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.line, copy.column, copy.frame) == (
        error.message,
        error.line,
        error.column,
        error.frame,
    )


def test_an_invalid_schema_is_an_invalid_schema_error() -> None:
    with pytest.raises(codemode.InvalidSchemaError, match=r"input_schema\.type") as caught:
        codemode.Tool.from_schema("t", "d", {"type": 7}, None, lambda args: args)
    assert isinstance(caught.value, ValueError)  # what callers caught before
    assert caught.value.path == ".type"


async def test_invalid_arguments_raised_by_a_handler_has_the_name_the_program_sees() -> None:
    def pick(args: dict[str, Any]) -> Any:
        raise codemode.InvalidArgumentsError("pick: 'n' must be below 10")

    tool = codemode.Tool.from_schema("pick", "d", {"type": "object"}, None, pick)
    cm = codemode.create_code_mode([tool])
    code = "try { await external_pick({ n: 12 }) } catch (e) { return [e.name, e.message] }"
    result = await cm.execute(code)
    assert result.result == ["InvalidArgumentsError", "pick: 'n' must be below 10"]
    assert codemode.InvalidArguments is codemode.InvalidArgumentsError


# -- a decorated tool keeps its function's type ----------------------------------------------------


@codemode.tool
async def price_of(sku: str, qty: int = 1) -> float:
    """The price of ``qty`` items."""
    return 2.5 * qty


async def test_a_decorated_tool_is_still_its_function() -> None:
    total: float = await price_of("A-1", qty=2)  # typed as the function (checked by mypy)
    assert total == 5.0
    with pytest.raises(TypeError):
        await price_of(sku="A-1", quantity=2)  # type: ignore[call-arg]
    cm = codemode.create_code_mode([price_of])
    assert (await cm.execute("return await external_price_of({ sku: 'A-1', qty: 4 })")).result == 10.0
