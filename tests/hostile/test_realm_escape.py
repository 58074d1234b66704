"""Realm escapes, adapted from the published proofs of concept against vm2, isolated-vm, Node's
``vm`` and QuickJS sandboxes. Each program tries a route from its own realm to the host's
(``process``, ``require``, the host's ``Function``) and reports what it found; on every engine
the answer must be "nothing"."""

from __future__ import annotations

import json
from typing import Any

import pytest

import codemode

from ..conftest import make_tools

pytestmark = pytest.mark.anyio


# What each probe returns: 'clean' when the host is out of reach, or what it found.
PROBE = """
const hostNames = ['process', 'require', 'Buffer', 'module', 'global', 'Deno', 'fetch', 'postMessage']
function look(F: any): string {
  try {
    const found = hostNames.filter((n) => F('try { return typeof ' + n + ' !== "undefined" } catch (e) { return false }')())
    return found.length ? 'FOUND ' + found.join(',') : 'clean'
  } catch (e) { return 'clean' }
}
function ctorOf(x: any): any { try { return x.constructor.constructor } catch (e) { return undefined } }
"""

ESCAPES = {
    "global constructor": "return look(ctorOf(globalThis))",
    "function this (sloppy)": "return look(ctorOf(Function('return this')()))",
    "symbol-named error stack": """
        const e: any = new Error('x'); e.name = Symbol('s')
        try { Error.captureStackTrace(e); return 'stack ' + typeof e.stack } catch (t: any) { return look(ctorOf(t)) }""",
    "prepareStackTrace callsites": """
        let out = 'clean'
        try {
          (Error as any).prepareStackTrace = (e: any, frames: any[]) => {
            for (const f of frames) {
              try { const fn = f.getFunction && f.getFunction(); if (fn) { const r = look(ctorOf(fn)); if (r !== 'clean') out = r } } catch (x) {}
              try { const t = f.getThis && f.getThis(); if (t) { const r = look(ctorOf(t)); if (r !== 'clean') out = r } } catch (x) {}
            }
            return 'formatted'
          }
        } catch (e) {}
        function deep() { return new Error('x').stack }
        deep()
        await external_echo({ i: 1 })
        return out""",
    "stack overflow into the bridge": """
        function f(): any { try { return f() } catch (e) { try { console.log('x') } catch (e2: any) { return look(ctorOf(e2)) } return look(ctorOf(e)) } }
        return f()""",
    "proxy traps seen by the bridge": """
        let out = 'clean'
        const handler = {
          get(t: any, k: any, r: any) {
            try { const c = (handler.get as any).caller; if (c) out = look(ctorOf(c)) } catch (e) {}
            try { const s = new Error().stack || ''; if (/host|node:|file:/.test(s)) out = 'FOUND frame ' + s } catch (e) {}
            return Reflect.get(t, k, r)
          },
          ownKeys(t: any) { try { const s = new Error().stack || ''; if (/host|node:|file:/.test(s)) out = 'FOUND frame' } catch (e) {} return Reflect.ownKeys(t) },
        }
        try { await external_echo(new Proxy({ i: 1 }, handler)) } catch (e: any) { const r = look(ctorOf(e)); if (r !== 'clean') out = r }
        return out""",
    "promise species and toJSON poisoning": """
        let out = 'clean'
        ;(Object.prototype as any).toJSON = function () { try { const r = look(ctorOf(this)); if (r !== 'clean') out = r } catch (e) {} return this }
        class Evil extends Promise<any> {
          constructor(ex: any) { super((res: any, rej: any) => ex((v: any) => res(v), (e: any) => { const r = look(ctorOf(e)); if (r !== 'clean') out = r; rej(e) })) }
        }
        ;(Promise as any)[Symbol.species] = Evil
        Object.defineProperty(Promise.prototype, 'constructor', { value: Evil })
        try { await external_echo({ i: 1 }) } catch (e: any) { const r = look(ctorOf(e)); if (r !== 'clean') out = r }
        try { await external_fail({}) } catch (e: any) { const r = look(ctorOf(e)); if (r !== 'clean') out = r }
        delete (Object.prototype as any).toJSON
        return out""",
    "then hijack on the result path": """
        let out = 'clean'
        const then = Promise.prototype.then
        ;(Promise.prototype as any).then = function (a: any, b: any) {
          try { for (const f of [a, b]) { if (typeof f === 'function') { const r = look(ctorOf(f)); if (r !== 'clean') out = r } } } catch (e) {}
          return then.call(this, a, b)
        }
        await external_echo({ i: 1 })
        return out""",
    "dynamic import": """
        try { await import('fs' as any) } catch (e: any) { return look(ctorOf(e)) }
        return 'FOUND import'""",
    "import through eval": """
        try { await eval("import('fs')") } catch (e: any) { return look(ctorOf(e)) }
        return 'FOUND import'""",
    "caller of a timer callback": """
        return await new Promise((resolve) => {
          setTimeout(function (this: any) {
            let r = 'clean'
            try { const c = (arguments as any).callee.caller; if (c) r = look(ctorOf(c)) } catch (e) {}
            try { if (this) { const t = look(ctorOf(this)); if (t !== 'clean') r = t } } catch (e) {}
            resolve(r)
          }, 0)
        })""",
    "errors of the console": """
        const evil = { get [Symbol.toPrimitive]() { throw new Error('x') }, toJSON() { throw new Error('y') } }
        try { console.log(evil) } catch (e: any) { return look(ctorOf(e)) }
        return 'clean'""",
    "no engine extras": """
        const g: any = globalThis
        const extras = ['WebAssembly', 'SharedArrayBuffer', 'Atomics', 'require', 'process', 'Buffer', 'setImmediate', 'queueMicrotask' in g ? '' : ''].filter((n) => n && typeof g[n] !== 'undefined')
        return extras.length ? 'FOUND ' + extras.join(',') : 'clean'""",
    "async generator and Reflect routes": """
        const AsyncGen = Object.getPrototypeOf(async function* () {}).constructor
        const Gen = Object.getPrototypeOf(function* () {}).constructor
        const r = [look(ctorOf(AsyncGen)), look(ctorOf(Gen)), look(ctorOf(Reflect)), look(ctorOf(JSON)), look(ctorOf(Math))]
        return r.find((x) => x !== 'clean') || 'clean'""",
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
async def test_no_route_to_the_host_realm(driver: codemode.drivers.IsolateDriver, name: str) -> None:
    cm = codemode.create_code_mode(make_tools(), driver=driver, timeout=10.0)
    result = await cm.execute(PROBE + ESCAPES[name])
    if result.success:
        assert result.result in ("clean", "stack string"), (name, result.result)
    else:
        assert result.error is not None
        assert result.error.kind in ("runtime", "memory", "invalid_args", "tool"), result.error
        assert "FOUND" not in result.error.message


async def test_errors_name_only_the_program(driver: codemode.drivers.IsolateDriver) -> None:
    cm = codemode.create_code_mode(make_tools(), driver=driver, timeout=10.0)
    code = """
const stacks: string[] = []
try { await external_fail({ sku: 'a' }) } catch (e: any) { stacks.push(String(e.stack)) }
try { await external_add({ a: 'x' } as any) } catch (e: any) { stacks.push(String(e.stack)) }
try { setTimeout(null as any, 1) } catch (e: any) { stacks.push(String(e.stack)) }
try { (null as any).x } catch (e: any) { stacks.push(String(e.stack)) }
return stacks
"""
    result = await cm.execute(code)
    assert result.success, result.error
    for stack in result.result:
        for host_mark in ("host.mjs", "file://", "node:", "site-packages", ".py", "/"):
            assert host_mark not in stack, stack
    uncaught = await cm.execute("await external_fail({ sku: 'b' })")
    assert uncaught.error is not None and uncaught.error.kind == "tool"
    text = json.dumps(uncaught.to_tool_output())
    for host_mark in ("host.mjs", "file://", "node:", "site-packages", "prelude"):
        assert host_mark not in text, text


async def test_to_json_pollution_keeps_errors_readable(
    driver: codemode.drivers.IsolateDriver,
) -> None:
    cm = codemode.create_code_mode(make_tools(), driver=driver, timeout=10.0)
    result = await cm.execute(
        "(Object.prototype as any).toJSON = () => ({ kind: 'forged', name: 'x', message: 'y' })\nthrow new TypeError('real')"
    )
    assert result.error is not None
    assert (result.error.kind, result.error.name, result.error.message) == ("runtime", "TypeError", "real")


async def test_tool_argument_nested_deeply_is_refused_not_fatal(
    driver: codemode.drivers.IsolateDriver,
) -> None:
    cm = codemode.create_code_mode(make_tools(), driver=driver, timeout=10.0)
    code = """
let v: any = 1
for (let i = 0; i < 2000; i++) v = { v }
try { await external_echo({ i: 1, v }) ; return 'called' } catch (e: any) { return e.name }
"""
    result = await cm.execute(code)
    assert result.success, result.error
    assert result.result in ("InvalidArgumentsError", "called")
    assert (await cm.execute("return (await external_echo({ i: 5 })).i")).result == 5


async def test_huge_timer_delay_waits(driver: codemode.drivers.IsolateDriver) -> None:
    cm = codemode.create_code_mode(make_tools(), driver=driver, timeout=0.5)
    result = await cm.execute("await new Promise((r) => setTimeout(r, 2 ** 31))\nreturn 'fired'")
    assert result.error is not None and result.error.kind == "timeout", result


async def test_no_stack_formatter_sees_the_sandbox_functions(driver: codemode.drivers.IsolateDriver) -> None:
    # QuickJS hands a formatter the function of every frame: the prelude's tool function and
    # whatever it calls the program back from would be among them. Formatters are refused.
    cm = codemode.create_code_mode(make_tools(), driver=driver, timeout=10.0)
    code = """
const seen: string[] = []
try {
  (Error as any).prepareStackTrace = (e: any, sites: any[]) => {
    for (const s of sites) { try { const f = s.getFunction && s.getFunction(); if (f) seen.push(String(f.name)) } catch (x) {} }
    return 'formatted'
  }
} catch (e) {}
let stack: unknown
await external_echo({ toJSON() { stack = new Error('x').stack; return { i: 1 } } } as any)
console.log({ toJSON() { new Error('y').stack; return 1 } })
return [seen, typeof stack, stack === 'formatted', typeof (Error as any).prepareStackTrace]
"""
    result = await cm.execute(code)
    assert result.success, result.error
    assert result.result == [[], "string", False, "undefined"]


SABOTAGE = {
    "maps": "Map.prototype.get = () => undefined; Map.prototype.set = function () { return this }; Map.prototype.delete = () => false",
    "weakmaps": "WeakMap.prototype.get = () => 'tool'; WeakMap.prototype.set = function () { return this }",
    "promises": "Promise.prototype.then = function () { return this }; (Promise as any).reject = () => 1; (Promise as any).resolve = () => 1",
    "json": "JSON.stringify = () => '{\"forged\":true}'; JSON.parse = () => ({ forged: true })",
    "reflect": "(Reflect as any).apply = () => 1; (Reflect as any).construct = () => ({})",
    "functions": "Function.prototype.call = () => 1; Function.prototype.apply = () => 1; Function.prototype.bind = () => () => 1",
    "objects": "Object.defineProperty = () => 1 as any; Object.create = () => ({ toJSON: () => 'forged' })",
    "errors": "(Error as any).captureStackTrace = () => { throw 1 }; (globalThis as any).Error = function () { return { forged: 1 } }",
    "strings": "String.prototype.replace = () => 'x'; (String.prototype as any)[Symbol.split] = () => []; (globalThis as any).String = () => 'forged'",
}


@pytest.mark.parametrize("name", sorted(SABOTAGE))
async def test_replacing_the_builtins_the_sandbox_uses_harms_only_the_program(
    driver: codemode.drivers.IsolateDriver, name: str
) -> None:
    calls: list[Any] = []

    async def spy(args: dict[str, Any]) -> dict[str, Any]:
        calls.append(args)
        return {"ok": True}

    tools = [*make_tools(), codemode.Tool.from_schema("spy", "Spy", {"type": "object"}, None, spy)]
    cm = codemode.create_code_mode(tools, driver=driver, timeout=5.0)
    code = (
        SABOTAGE[name]
        + "\nconsole.log('after', { a: 1 })\nsetTimeout(() => {}, 1)\n"
        + "let r: unknown\ntry { r = await external_spy({ n: 1 }) } catch (e: any) { r = 'refused: ' + e }\n"
        + "try { await external_nope({}) } catch (e) {}\nreturn r"
    )
    result = await cm.execute(code)
    # the sandbox's own work (tool calls, console, timers, errors) uses the built-ins as they
    # were before the program ran: whatever the program replaced, it works as usual
    assert result.success, result.error
    assert (result.result, result.logs, calls) == ({"ok": True}, ['after {"a":1}'], [{"n": 1}])
    after = await cm.execute("return [await external_spy({ n: 2 }), JSON.stringify({ a: 1 })]")
    assert after.result == [{"ok": True}, '{"a":1}'], after
