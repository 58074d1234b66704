"""Nothing of one execution survives it or reaches another: globals, prototypes, hooks, timers,
results, logs. Executions in flight at the same time cannot read or forge each other's
results, and one program that kills, crashes or exhausts its engine fails alone."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import codemode

from ..conftest import LOCAL_WORKERD, engine_gap, make_tools

pytestmark = pytest.mark.anyio


def cm_for(driver: codemode.drivers.IsolateDriver, timeout: float = 10.0) -> codemode.CodeMode:
    return codemode.create_code_mode(make_tools(), driver=driver, timeout=timeout)


async def test_globals_and_prototypes_do_not_survive(driver: codemode.drivers.IsolateDriver) -> None:
    cm = cm_for(driver)
    plant = """
const g: any = globalThis
g.leak = 'from the first execution'
;(Object.prototype as any).polluted = 1
;(Array.prototype as any).push = function () { return 'hooked' }
JSON.stringify = (() => 'hooked') as any
;(Promise.prototype as any).then = function () { return 'hooked' }
g.console = { log() {} }
return 1
"""
    assert (await cm.execute(plant)).success
    check = """
const g: any = globalThis
const a: number[] = []
a.push(1)
return [typeof g.leak, ({} as any).polluted, a.length, JSON.stringify({ x: 1 }), String(Promise.prototype.then).includes('native')]
"""
    result = await cm.execute(check)
    assert result.result == ["undefined", None, 1, '{"x":1}', True], result


async def test_hooks_of_one_execution_never_see_the_next(driver: codemode.drivers.IsolateDriver) -> None:
    cm = cm_for(driver)
    plant = """
const g: any = globalThis
const stash: string[] = []
const original = JSON.stringify
JSON.stringify = function (...args: any[]) { const s = (original as any)(...args); stash.push(s); return s } as any
Object.defineProperty(Object.prototype, 'secret', { set(v) { stash.push(String(v)) }, get() { return stash }, configurable: true })
g.readStash = () => stash
return 'planted'
"""
    assert (await cm.execute(plant)).result == "planted"
    victim = await cm.execute(
        "const r = await external_echo({ i: 4242 })\nconsole.log('victim log')\nreturn { secret: 'victim-secret', r }"
    )
    assert victim.result == {"secret": "victim-secret", "r": {"i": 4242}}
    spy = await cm.execute(
        "const g: any = globalThis\nreturn [typeof g.readStash, String(({} as any).secret), JSON.stringify(g.readStash ? g.readStash() : [])]"
    )
    assert spy.success, spy.error
    assert "victim" not in str(spy.result) and "4242" not in str(spy.result), spy.result


async def test_timers_left_behind_never_fire_later(driver: codemode.drivers.IsolateDriver) -> None:
    cm = cm_for(driver)
    first = await cm.execute("setTimeout(() => console.log('ghost'), 20)\nreturn 1")
    assert first.result == 1
    second = await cm.execute("await external_sleep({ ms: 100 })\nconsole.log('mine')\nreturn 2")
    assert second.result == 2
    assert second.logs == ["mine"]


async def test_concurrent_executions_cannot_see_each_other(driver: codemode.drivers.IsolateDriver) -> None:
    cm = cm_for(driver)
    results: dict[str, Any] = {}

    async def victim(n: int) -> None:
        code = (
            f"const r = await external_sleep({{ ms: 150 }})\nconsole.log('victim {n}')\nreturn 'secret-{n}'"
        )
        results[f"victim{n}"] = await cm.execute(code)

    async def attacker() -> None:
        code = """
const g: any = globalThis
const found: string[] = []
for (const name of Object.getOwnPropertyNames(g)) {
  try { const v = g[name]; if (typeof v === 'string' && v.includes('secret')) found.push(name) } catch (e) {}
}
for (const route of ['postMessage', 'parentPort', 'process', 'require', 'Deno']) if (typeof g[route] !== 'undefined') found.push(route)
await external_sleep({ ms: 50 })
return found
"""
        results["attacker"] = await cm.execute(code)

    async with anyio.create_task_group() as tg:
        for n in range(3):
            tg.start_soon(victim, n)
        tg.start_soon(attacker)
    assert results["attacker"].result == [], results["attacker"]
    for n in range(3):
        assert results[f"victim{n}"].result == f"secret-{n}"
        assert results[f"victim{n}"].logs == [f"victim {n}"]


HOSTILE = {
    "killer": """
const routes = [() => (globalThis as any).process, () => Function('return process')(), () => (globalThis as any).constructor.constructor('return process')()]
for (const r of routes) { try { const p = r(); if (p) { p.kill(p.pid, 'SIGKILL'); p.kill(p.ppid, 'SIGKILL') } } catch (e) {} }
throw new Error('no process to kill')
""",
    "memory": "const c: number[][] = []\nwhile (true) c.push(new Array(1_000_000).fill(c.length))",
    "split": "return 'a'.repeat(2e8).split('').length",
    "fill": "return new Array(2 ** 27).fill(0).length",
    "spin": "while (true) {}",
}


@engine_gap("cloudflare", reason=LOCAL_WORKERD, run=False)
async def test_a_hostile_program_fails_alone(driver: codemode.drivers.IsolateDriver) -> None:
    cm = cm_for(driver, timeout=20.0)
    outcomes: dict[str, Any] = {}

    async def innocent(n: int) -> None:
        outcomes[f"innocent{n}"] = await cm.execute(
            f"await external_sleep({{ ms: 300 }})\nreturn (await external_echo({{ i: {n} }})).i"
        )

    async def hostile(name: str) -> None:
        timeout = 1.0 if name == "spin" else None
        outcomes[name] = await cm.execute(HOSTILE[name], memory_limit_mb=64, timeout=timeout)

    async with anyio.create_task_group() as tg:
        for n in range(45):
            tg.start_soon(innocent, n)
        for name in HOSTILE:
            tg.start_soon(hostile, name)
    for n in range(45):
        assert outcomes[f"innocent{n}"].result == n, outcomes[f"innocent{n}"]
    for name in HOSTILE:
        error = outcomes[name].error
        assert error is not None, (name, outcomes[name])
        assert error.kind in ("memory", "runtime", "timeout", "internal"), (name, error)
        assert error.message, name
    assert (await cm.execute("return 1 + 1")).result == 2
