"""Every error kind, positioned in the model's original TypeScript."""

from __future__ import annotations

import pytest

import codemode

from .conftest import make_tools, runs_on_v8

pytestmark = pytest.mark.anyio


async def failure(cm: codemode.CodeMode, code: str, **limits: object) -> codemode.ExecutionError:
    result = await cm.execute(code, **limits)
    assert not result.success, result.result
    assert result.error is not None
    return result.error


async def test_syntax_error_points_into_typescript(cm: codemode.CodeMode) -> None:
    error = await failure(cm, "interface A { x: number }\nconst a: A = { x: 1 }\nreturn a.x +* 2")
    assert error.kind == "syntax"
    assert error.line == 3
    assert error.column is not None and 11 <= error.column <= 13
    assert error.frame is not None and "return a.x +* 2" in error.frame and "^" in error.frame


async def test_syntax_error_on_line_one(cm: codemode.CodeMode) -> None:
    error = await failure(cm, "const x: number = ;")
    assert (error.kind, error.line) == ("syntax", 1)
    assert error.column == 19


async def test_runtime_error_after_type_syntax_keeps_columns(cm: codemode.CodeMode) -> None:
    code = (
        "interface User { name: string; tags?: string[] }\n"
        "const users: User[] = [{ name: 'ann' }]\n"
        "const first = users[0] as User\n"
        "const n: Array<number> = [1]; const t = <string[]>first.tags!; return t.length"
    )
    error = await failure(cm, code)
    assert (error.kind, error.name) == ("runtime", "TypeError")
    assert error.line == 4
    last_line = code.splitlines()[3]
    # after blanked annotations and casts; engines point at `t` (QuickJS) or `length` (V8)
    start = last_line.index("t.length") + 1
    assert error.column is not None and start <= error.column < start + len("t.length")
    assert error.frame is not None and "return t.length" in error.frame


async def test_runtime_error_in_transformed_program_maps_back(cm: codemode.CodeMode) -> None:
    code = (
        "enum Color { Red, Green }\n"
        "class Box { constructor(private readonly size: number) {} get area() { return this.size ** 2 } }\n"
        "const b = new Box(2)\n"
        "if (b.area === 4) {\n"
        "  throw new Error('mapped ' + Color.Green)\n"
        "}\n"
    )
    error = await failure(cm, code)
    assert (error.kind, error.message) == ("runtime", "mapped 1")
    assert error.line == 5
    assert error.frame is not None and "throw new Error" in error.frame


async def test_error_inside_nested_function_has_stack(cm: codemode.CodeMode) -> None:
    code = "function inner(n: number): number {\n  if (n > 2) throw new RangeError('too deep')\n  return inner(n + 1)\n}\nreturn inner(0)"
    error = await failure(cm, code)
    assert (error.kind, error.name, error.line) == ("runtime", "RangeError", 2)
    assert error.stack is not None
    assert error.stack.startswith("RangeError: too deep")
    assert "at inner (program.ts:2:" in error.stack


@pytest.mark.parametrize(
    ("code", "name", "message"),
    [
        ("throw 'plain string'", "Error", "plain string"),
        ("throw 42", "Error", "42"),
        ("throw { code: 7 }", "Error", '{"code":7}'),
        ("throw null", "Error", "null"),
    ],
)
async def test_thrown_non_errors_are_runtime_errors(
    cm: codemode.CodeMode, code: str, name: str, message: str
) -> None:
    error = await failure(cm, code)
    assert (error.kind, error.name, error.message) == ("runtime", name, message)


async def test_uncaught_tool_error(cm: codemode.CodeMode) -> None:
    error = await failure(cm, "const r = await external_fail({ sku: 'A-1' })\nreturn r")
    assert (error.kind, error.name) == ("tool", "ToolError")
    assert error.message == "inventory service unavailable for A-1"


async def test_an_uncaught_tool_error_points_at_the_await(driver: codemode.drivers.IsolateDriver) -> None:
    cm = codemode.create_code_mode(make_tools(), driver=driver)
    top = await failure(cm, "const a = 1\nconst r = await external_fail({ sku: 'A-1' })\nreturn r")
    nested = await failure(
        cm,
        "async function stock(sku: string) {\n  return await external_fail({ sku })\n}\n"
        "return await Promise.all([stock('A'), stock('B')])",
    )
    if runs_on_v8(driver):
        # V8 keeps the stack of where the host made the error: no line (docs/engines.md)
        assert top.line is None and nested.line is None
        return
    assert (top.kind, top.line, top.column) == ("tool", 2, 17)
    assert top.frame is not None and "const r = await external_fail" in top.frame
    assert (nested.kind, nested.line, nested.column) == ("tool", 2, 16)
    assert nested.stack is not None and "at stock (program.ts:2:16)" in nested.stack


async def test_tool_error_caught_inside_program(cm: codemode.CodeMode) -> None:
    code = """
    try {
      await external_fail({ sku: 'B-2' })
      return 'unreachable'
    } catch (e) {
      const err = e as Error
      return { name: err.name, message: err.message, isError: err instanceof Error, after: (await external_echo({ i: 3 })).i }
    }
    """
    result = await cm.execute(code)
    assert result.success, result.error
    assert result.result == {
        "name": "ToolError",
        "message": "inventory service unavailable for B-2",
        "isError": True,
        "after": 3,
    }


async def test_invalid_arguments_name_the_field(cm: codemode.CodeMode) -> None:
    error = await failure(cm, "return await external_add({ a: 1, b: 'two' })")
    assert (error.kind, error.name) == ("invalid_args", "InvalidArgumentsError")
    assert "external_add" in error.message and "b" in error.message and "integer" in error.message
    error = await failure(cm, "return await external_add({ a: 1 })")
    assert error.kind == "invalid_args" and "b" in error.message


async def test_invalid_arguments_caught_inside_program(cm: codemode.CodeMode) -> None:
    code = "try { await external_echo({ i: 'x' } as any) } catch (e: any) { return e.name }"
    result = await cm.execute(code)
    assert result.result == "InvalidArgumentsError"


@pytest.mark.parametrize(
    "code",
    [
        "return await external_echo(5 as any)",
        "return await external_echo([1] as any)",
        "return await external_echo({ i: 10n } as any)",
        "const o: any = {}; o.o = o; return await external_echo(o)",
    ],
)
async def test_non_object_or_non_json_arguments(cm: codemode.CodeMode, code: str) -> None:
    error = await failure(cm, code)
    assert (error.kind, error.name) == ("invalid_args", "InvalidArgumentsError")


async def test_missing_external_function(cm: codemode.CodeMode) -> None:
    error = await failure(cm, "const x = 1\nreturn await external_doesNotExist({})")
    assert error.kind == "invalid_args"
    assert "external_doesNotExist" in error.message
    assert "external_echo" in error.message  # lists what exists
    assert error.line == 2


async def test_deadlocked_program(cm: codemode.CodeMode) -> None:
    error = await failure(cm, "await new Promise(() => {})")
    assert (error.kind, error.name) == ("runtime", "DeadlockError")


async def test_exception_in_timer_callback(cm: codemode.CodeMode) -> None:
    code = (
        "await new Promise(r => { setTimeout(() => { throw new Error('in timer') }, 1); setTimeout(r, 50) })"
    )
    error = await failure(cm, code)
    assert (error.kind, error.message) == ("runtime", "in timer")


async def test_tool_returning_non_json_is_a_tool_error(driver: codemode.drivers.IsolateDriver) -> None:
    async def weird(args: dict[str, object]) -> object:
        return {"when": object()}  # a set or a Decimal would be converted (to_jsonable_python)

    tool = codemode.Tool.from_schema("weird", "returns an object()", {"type": "object"}, None, weird)
    cm = codemode.create_code_mode([tool], driver=driver)
    error = await failure(cm, "return await external_weird({})")
    assert error.kind == "tool"
    assert "not JSON" in error.message
    result = await cm.execute("try { await external_weird({}) } catch (e) { return 'caught' }")
    assert result.result == "caught"


async def test_next_execution_after_every_kind_of_failure(cm: codemode.CodeMode) -> None:
    for code in [
        "return (",
        "throw 1",
        "await external_fail({})",
        "return 1n",
        "return await external_nope({})",
    ]:
        assert not (await cm.execute(code)).success
        assert (await cm.execute("return 1 + 1")).result == 2


async def test_redacted_tool_errors(
    driver: codemode.drivers.IsolateDriver, caplog: pytest.LogCaptureFixture
) -> None:
    async def leaky(args: dict[str, object]) -> None:
        raise RuntimeError("password=hunter2 rejected by db-7.internal")

    tool = codemode.Tool.from_schema("leaky", "fails", {"type": "object"}, None, leaky, redact_errors=True)
    cm = codemode.create_code_mode([tool], driver=driver)
    error = await failure(cm, "return await external_leaky({})")
    assert (error.kind, error.name, error.message) == ("tool", "ToolError", "external_leaky failed")
    assert "hunter2" in caplog.text  # the host still logs the real exception
