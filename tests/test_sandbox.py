"""The sandbox holds nothing but ECMAScript, console, timers and the tools; nothing leaks."""

from __future__ import annotations

import pytest

import codemode

from .conftest import NO_EVAL, engine_gap

pytestmark = pytest.mark.anyio


@engine_gap(
    "cloudflare",
    reason=NO_EVAL,
    only=("Function('return this')", "constructor('return typeof require')", "code3"),
)
@pytest.mark.parametrize(
    "code",
    [
        "try { return typeof this.constructor.constructor('return process')() } catch { return 'undefined' }",
        "return typeof Function('return this')().process",
        "return await (async () => {}).constructor('return typeof require')()",
        "return (await (Object.getPrototypeOf(async function* () {}).constructor('yield typeof process') as any)().next()).value",
        "return [typeof require, typeof process, typeof Deno, typeof fetch, typeof XMLHttpRequest]",
        "return [typeof module, typeof exports, typeof __dirname, typeof Bun, typeof WebAssembly]",
        "return [typeof std, typeof os, typeof print, typeof scriptArgs, typeof SharedArrayBuffer, typeof Atomics]",
    ],
)
async def test_no_host_objects(cm: codemode.CodeMode, code: str) -> None:
    result = await cm.execute(code)
    assert result.success, result.error
    values = result.result if isinstance(result.result, list) else [result.result]
    assert all(v in ("undefined", "none") for v in values), values


async def test_no_module_loading(cm: codemode.CodeMode) -> None:
    result = await cm.execute("try { await import('os') } catch (e: any) { return e.name }\nreturn 'loaded'")
    assert result.success and result.result != "loaded"
    result = await cm.execute(
        "try { await import('./x.js') } catch (e: any) { return e.name }\nreturn 'loaded'"
    )
    assert result.success and result.result != "loaded"


async def test_only_expected_globals(cm: codemode.CodeMode) -> None:
    result = await cm.execute(
        "return Object.getOwnPropertyNames(globalThis).filter(n => /^[a-z_$]/.test(n)).sort()"
    )
    allowed = {
        "atob", "btoa", "clearTimeout", "console", "decodeURI", "decodeURIComponent", "encodeURI",
        "encodeURIComponent", "escape", "eval", "globalThis", "isFinite", "isNaN", "parseFloat", "parseInt",
        "queueMicrotask", "setTimeout", "undefined", "unescape",
        "external_add", "external_echo", "external_fail", "external_sleep",
    }  # fmt: skip
    # the same set on every engine
    assert set(result.result) == allowed, set(result.result) ^ allowed


async def test_the_web_globals_behave_alike(cm: codemode.CodeMode) -> None:
    code = (
        "const order: string[] = []\nqueueMicrotask(() => order.push('micro'))\norder.push('sync')\nawait null\n"
        "const bad = (f: () => unknown) => { try { f(); return 'ok' } catch (e: any) { return e.name } }\n"
        "return [order, btoa('hello, w\\u00f6rld'), atob(' aGVs bG8=\\n'), atob(btoa('\\x00\\xff\\x80ab')) === '\\x00\\xff\\x80ab',"
        " bad(() => btoa('\\u0100')), bad(() => atob('a')), bad(() => atob('a*bc')), btoa(''), atob('')]"
    )
    result = await cm.execute(code)
    assert result.success, result.error
    assert result.result == [
        ["sync", "micro"], "aGVsbG8sIHf2cmxk", "hello", True,
        "InvalidCharacterError", "InvalidCharacterError", "InvalidCharacterError", "", "",
    ]  # fmt: skip


async def test_nothing_leaks_between_executions(cm: codemode.CodeMode) -> None:
    first = await cm.execute(
        "(globalThis as any).secret = 42; (Array.prototype as any).evil = 1; (Object.prototype as any).polluted = true\n"
        "Math.random = () => 4; JSON.parse = () => 'hacked'; return 1"
    )
    assert first.success
    second = await cm.execute(
        "return [typeof (globalThis as any).secret, typeof ([] as any).evil, ({} as any).polluted,"
        " Math.random() !== 4, JSON.parse('1')]"
    )
    assert second.result == ["undefined", "undefined", None, True, 1]


async def test_externals_cannot_be_replaced(cm: codemode.CodeMode) -> None:
    result = await cm.execute(
        "'use strict'\ntry { (globalThis as any).external_echo = () => 'fake' } catch (e) {}\n"
        "try { delete (globalThis as any).external_echo } catch (e) {}\nreturn (await external_echo({ i: 9 })).i"
    )
    assert result.result == 9


async def test_tools_receive_plain_json(driver: codemode.drivers.IsolateDriver) -> None:
    received: list[object] = []

    async def capture(args: dict[str, object]) -> None:
        received.append(args)

    tool = codemode.Tool.from_schema("capture", "capture", {"type": "object"}, None, capture)
    cm = codemode.create_code_mode([tool], driver=driver)
    code = """
    class Sneaky { constructor() { (this as any).x = 1 } get y() { return 2 } toJSON() { return { x: 1, y: 2 } } }
    await external_capture({ a: new Sneaky(), d: new Date(0), f: () => 1, n: NaN, u: undefined })
    """
    result = await cm.execute(code)
    assert result.success, result.error
    assert received == [{"a": {"x": 1, "y": 2}, "d": "1970-01-01T00:00:00.000Z", "n": None}]


async def test_prototype_tricks_in_tool_results_are_inert(driver: codemode.drivers.IsolateDriver) -> None:
    async def evil(args: dict[str, object]) -> dict[str, object]:
        return {"__proto__": {"polluted": True}, "constructor": {"prototype": {"x": 1}}}

    tool = codemode.Tool.from_schema("evil", "evil", {"type": "object"}, None, evil)
    cm = codemode.create_code_mode([tool], driver=driver)
    result = await cm.execute(
        "const r = await external_evil({})\nreturn [({} as any).polluted ?? null, Object.keys(r).length]"
    )
    assert result.result == [None, 2]
